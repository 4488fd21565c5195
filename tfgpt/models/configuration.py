"""OpenAIGPTConfig: the hyper-parameters of a GPT-1 model, read and written as HF's config.json."""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, Optional

CONFIG_NAME = "config.json"

ACTIVATIONS = ("gelu", "gelu_exact", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")
SUMMARY_TYPES = ("last", "first", "mean", "cls_index", "attn")

# HF's generic names for the GPT-1 fields.
ATTRIBUTE_MAP = {
    "max_position_embeddings": "n_positions",
    "hidden_size": "n_embd",
    "num_attention_heads": "n_head",
    "num_hidden_layers": "n_layer",
}


class OpenAIGPTConfig:
    """Configuration of a GPT-1 model, with HF's field names, defaults and aliases.

    Keys this class does not know (``n_ctx``, ``architectures``, ``task_specific_params``, ...) are
    kept as attributes and written back by :meth:`to_dict`, so a config.json survives a round trip.
    """

    model_type = "openai-gpt"

    def __init__(
        self,
        vocab_size: int = 40478,
        n_positions: int = 512,
        n_embd: int = 768,
        n_layer: int = 12,
        n_head: int = 12,
        afn: str = "gelu",
        resid_pdrop: float = 0.1,
        embd_pdrop: float = 0.1,
        attn_pdrop: float = 0.1,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        summary_type: str = "cls_index",
        summary_use_proj: bool = True,
        summary_activation: Optional[str] = None,
        summary_proj_to_labels: bool = True,
        summary_first_dropout: float = 0.1,
        num_labels: Optional[int] = None,
        pad_token_id: Optional[int] = None,
        problem_type: Optional[str] = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        id2label: Optional[Dict[Any, str]] = None,
        label2id: Optional[Dict[str, int]] = None,
        **kwargs,
    ):
        for alias, field in ATTRIBUTE_MAP.items():
            if alias in kwargs:
                value = kwargs.pop(alias)
                if field == "n_positions":
                    n_positions = value
                elif field == "n_embd":
                    n_embd = value
                elif field == "n_head":
                    n_head = value
                else:
                    n_layer = value
        kwargs.pop("model_type", None)
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.afn = afn
        self.resid_pdrop = resid_pdrop
        self.embd_pdrop = embd_pdrop
        self.attn_pdrop = attn_pdrop
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.summary_type = summary_type
        self.summary_use_proj = summary_use_proj
        self.summary_activation = summary_activation
        self.summary_proj_to_labels = summary_proj_to_labels
        self.summary_first_dropout = summary_first_dropout
        self.pad_token_id = pad_token_id
        self.problem_type = problem_type
        self.output_attentions = output_attentions
        self.output_hidden_states = output_hidden_states
        self.return_dict = return_dict
        if id2label is not None:
            id2label = {int(k): v for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(id2label):
                raise ValueError(
                    f"num_labels={num_labels} does not match id2label with {len(id2label)} entries"
                )
            num_labels = len(id2label)
        if num_labels is None:
            num_labels = 2
        self.num_labels = num_labels
        self.id2label = id2label if id2label is not None else {i: f"LABEL_{i}" for i in range(num_labels)}
        self.label2id = (
            dict(label2id) if label2id is not None else {v: k for k, v in self.id2label.items()}
        )
        for key, value in kwargs.items():
            setattr(self, key, value)
        self.validate()

    # --- aliases ------------------------------------------------------------------------------------
    @property
    def max_position_embeddings(self) -> int:
        return self.n_positions

    @property
    def hidden_size(self) -> int:
        return self.n_embd

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def validate(self) -> None:
        """Raise ValueError naming the first field whose value cannot build a model."""
        for field in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})"
            )
        if self.afn not in ACTIVATIONS:
            raise ValueError(f"afn must be one of {ACTIVATIONS}, got {self.afn!r}")
        for field in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout"):
            value = getattr(self, field)
            if value is None:
                continue
            if not (0.0 <= float(value) < 1.0):
                raise ValueError(f"{field} must be in [0, 1), got {value!r}")
        if not float(self.layer_norm_epsilon) > 0:
            raise ValueError(f"layer_norm_epsilon must be positive, got {self.layer_norm_epsilon!r}")
        if self.summary_type not in SUMMARY_TYPES:
            raise ValueError(f"summary_type must be one of {SUMMARY_TYPES}, got {self.summary_type!r}")
        if self.summary_type == "attn":
            raise ValueError("summary_type='attn' is not implemented (HF does not implement it either)")
        if self.summary_activation not in (None, "tanh", "linear", "relu", "gelu"):
            raise ValueError(
                f"summary_activation must be None, 'tanh', 'linear', 'relu' or 'gelu', "
                f"got {self.summary_activation!r}"
            )
        if not isinstance(self.num_labels, int) or self.num_labels <= 0:
            raise ValueError(f"num_labels must be a positive integer, got {self.num_labels!r}")
        if self.pad_token_id is not None and not (0 <= int(self.pad_token_id) < self.vocab_size):
            raise ValueError(
                f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})"
            )
        if self.problem_type not in (
            None, "regression", "single_label_classification", "multi_label_classification"
        ):
            raise ValueError(f"problem_type {self.problem_type!r} is not one of HF's three")

    # --- dict / json ---------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """All fields, known and unknown, plus ``model_type``; id2label keys as strings (HF's JSON)."""
        out = copy.deepcopy({k: v for k, v in self.__dict__.items() if not k.startswith("_")})
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["model_type"] = self.model_type
        return out

    @classmethod
    def from_dict(cls, config_dict: Dict[str, Any], **kwargs) -> "OpenAIGPTConfig":
        merged = dict(config_dict)
        merged.update(kwargs)
        if "num_labels" in kwargs and "id2label" not in kwargs:
            merged.pop("id2label", None)
            merged.pop("label2id", None)
        model_type = merged.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"config model_type is {model_type!r}, expected {cls.model_type!r}")
        return cls(**merged)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write config.json (atomically) into ``save_directory``; returns its path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_NAME)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())
        os.replace(tmp, path)
        return path

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **kwargs) -> "OpenAIGPTConfig":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        return cls.from_dict(data, **kwargs)

    @classmethod
    def from_pretrained(cls, path_or_id: str | os.PathLike, **kwargs) -> "OpenAIGPTConfig":
        """Read config.json from a folder, a config.json path, or a hub id."""
        from tfgpt.hub import resolve_dir

        path = os.fspath(path_or_id)
        if os.path.isfile(path):
            return cls.from_json_file(path, **kwargs)
        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token")
                      if k in kwargs}
        folder = resolve_dir(path, allow_patterns=[CONFIG_NAME], **hub_kwargs)
        file = os.path.join(folder, CONFIG_NAME)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no {CONFIG_NAME} in {folder}")
        return cls.from_json_file(file, **kwargs)

    def __eq__(self, other) -> bool:
        return isinstance(other, OpenAIGPTConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"
