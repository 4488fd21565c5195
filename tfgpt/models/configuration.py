"""OpenAIGPTConfig: the hyper-parameters of a GPT-1 model, read and written as HF's config.json.

The class behaves as HF's ``OpenAIGPTConfig`` (a ``PretrainedConfig``): the GPT-1 fields with HF's
defaults and aliases, the common fields every HF config carries (``num_labels``/``id2label``,
``return_dict``, token ids, ...), ``to_dict``/``to_diff_dict``/``to_json_string``, ``from_dict``,
``from_json_file``, ``from_pretrained`` (folder, file, hub id, ``subfolder``), ``save_pretrained`` and
``push_to_hub``. Every value is checked when the config is built and again when a model field is
assigned, so a config that reaches a model can build it.
"""

from __future__ import annotations

import copy
import logging
import numbers
import os
import warnings
from typing import Any, Dict, Mapping, Optional, Tuple

from tfgpt.io import atomic_write_json, json_text, read_json

logger = logging.getLogger("tfgpt")

CONFIG_NAME = "config.json"
MODEL_TYPE = "openai-gpt"

ACTIVATIONS = ("gelu", "gelu_exact", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")
SUMMARY_TYPES = ("last", "first", "mean", "cls_index", "attn")
SUMMARY_ACTIVATIONS = (None, "tanh", "linear", "relu", "gelu")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")

# The GPT-1 fields and HF's defaults for them, in HF's order.
MODEL_DEFAULTS: Dict[str, Any] = {
    "vocab_size": 40478,
    "n_positions": 512,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "afn": "gelu",
    "resid_pdrop": 0.1,
    "embd_pdrop": 0.1,
    "attn_pdrop": 0.1,
    "layer_norm_epsilon": 1e-5,
    "initializer_range": 0.02,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "summary_activation": None,
    "summary_proj_to_labels": True,
    "summary_first_dropout": 0.1,
}

# HF's generic names for the GPT-1 fields (HF's ``attribute_map``): readable, settable, accepted by __init__.
ATTRIBUTE_MAP = {
    "max_position_embeddings": "n_positions",
    "hidden_size": "n_embd",
    "num_attention_heads": "n_head",
    "num_hidden_layers": "n_layer",
}

# The fields every HF config carries (PretrainedConfig.__init__), with HF's defaults. id2label/label2id
# and num_labels are handled apart: num_labels is the length of id2label.
COMMON_DEFAULTS: Dict[str, Any] = {
    "return_dict": True,
    "output_hidden_states": False,
    "output_attentions": False,
    "torchscript": False,
    "dtype": None,
    "pruned_heads": {},
    "tie_word_embeddings": True,
    "chunk_size_feed_forward": 0,
    "is_encoder_decoder": False,
    "is_decoder": False,
    "cross_attention_hidden_size": None,
    "add_cross_attention": False,
    "tie_encoder_decoder": False,
    "architectures": None,
    "finetuning_task": None,
    "tokenizer_class": None,
    "prefix": None,
    "bos_token_id": None,
    "pad_token_id": None,
    "eos_token_id": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
    "task_specific_params": None,
    "problem_type": None,
}

# Generation parameters an HF config still loads and stores for backward compatibility, with HF's
# global defaults. New code keeps them in generation_config.json; save_pretrained warns when one differs.
GENERATION_DEFAULTS: Dict[str, Any] = {
    "max_length": 20,
    "min_length": 0,
    "do_sample": False,
    "early_stopping": False,
    "num_beams": 1,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "num_return_sequences": 1,
    "output_scores": False,
    "return_dict_in_generate": False,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "remove_invalid_values": False,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
}

SIZE_FIELDS = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
DROPOUT_FIELDS = ("resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout")
BOOL_FIELDS = ("summary_use_proj", "summary_proj_to_labels", "return_dict", "output_hidden_states",
               "output_attentions")
# Assigning one of these re-validates the config (and is undone when the result is invalid).
VALIDATED_FIELDS = frozenset(MODEL_DEFAULTS) | {"id2label", "label2id", "problem_type", *BOOL_FIELDS}

# Options of HF's loaders that only concern telemetry or remote code.
_LOADER_INTERNAL_KWARGS = ("_from_auto", "_from_pipeline", "_commit_hash")


def _default_labels(num_labels: int) -> Tuple[Dict[int, str], Dict[str, int]]:
    id2label = {i: f"LABEL_{i}" for i in range(num_labels)}
    return id2label, {v: k for k, v in id2label.items()}


def _tuples_to_lists(value):
    if isinstance(value, (tuple, list)):
        return [_tuples_to_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _tuples_to_lists(v) for k, v in value.items()}
    return value


def _alias(field: str) -> property:
    return property(lambda self: getattr(self, field), lambda self, value: setattr(self, field, value),
                    doc=f"HF's generic name for ``{field}``.")


class OpenAIGPTConfig:
    """Configuration of a GPT-1 model, with HF's field names, defaults, aliases and methods.

    Keys this class does not know (``n_ctx``, ``transformers_version``, ...) are kept as attributes and
    written back by :meth:`to_dict`, so a config.json survives a round trip. One deviation from HF:
    ``n_embd`` must be a positive multiple of ``n_head`` (HF accepts any value and fails later).
    """

    model_type = MODEL_TYPE
    attribute_map = ATTRIBUTE_MAP
    sub_configs: Dict[str, type] = {}
    has_no_defaults_at_init = False
    is_composition = False
    base_config_key = ""
    keys_to_ignore_at_inference: list = []

    max_position_embeddings = _alias("n_positions")
    hidden_size = _alias("n_embd")
    num_attention_heads = _alias("n_head")
    num_hidden_layers = _alias("n_layer")

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
        **kwargs,
    ):
        self.__dict__["_ready"] = False
        fields = dict(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                      n_head=n_head, afn=afn, resid_pdrop=resid_pdrop, embd_pdrop=embd_pdrop,
                      attn_pdrop=attn_pdrop, layer_norm_epsilon=layer_norm_epsilon,
                      initializer_range=initializer_range, summary_type=summary_type,
                      summary_use_proj=summary_use_proj, summary_activation=summary_activation,
                      summary_proj_to_labels=summary_proj_to_labels,
                      summary_first_dropout=summary_first_dropout)
        for alias, field in ATTRIBUTE_MAP.items():
            if alias in kwargs:
                value = kwargs.pop(alias)
                if fields[field] != MODEL_DEFAULTS[field] and fields[field] != value:
                    raise ValueError(f"got both {alias}={value!r} and {field}={fields[field]!r}; "
                                     f"{alias} is another name for {field}, pass one")
                fields[field] = value
        model_type = kwargs.pop("model_type", MODEL_TYPE)
        if model_type != MODEL_TYPE:
            raise ValueError(f"model_type is {model_type!r}; {type(self).__name__} is for {MODEL_TYPE!r}")
        for key in _LOADER_INTERNAL_KWARGS:
            kwargs.pop(key, None)
        attn_implementation = kwargs.pop("attn_implementation", None)
        if attn_implementation not in (None, "eager"):
            raise ValueError(f"attn_implementation={attn_implementation!r} is not supported: tfgpt computes "
                             f"attention one way (HF's 'eager'); pass None or 'eager'")
        if "torch_dtype" in kwargs:  # HF's older name for dtype; dtype wins when both are given
            torch_dtype = kwargs.pop("torch_dtype")
            if kwargs.get("dtype") is None:
                kwargs["dtype"] = torch_dtype

        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        num_labels = kwargs.pop("num_labels", None)
        if id2label is not None and not isinstance(id2label, Mapping):
            raise ValueError(f"id2label must be a dict of id -> label, got {type(id2label).__name__}")
        if label2id is not None and not isinstance(label2id, Mapping):
            raise ValueError(f"label2id must be a dict of label -> id, got {type(label2id).__name__}")
        if id2label is not None:
            if num_labels is not None and num_labels != len(id2label):
                raise ValueError(f"num_labels={num_labels!r} does not match id2label with {len(id2label)} "
                                 f"entries; pass one of them")
            id2label = self._int_keys(id2label)
        else:
            num_labels = 2 if num_labels is None else num_labels
            self._check_num_labels(num_labels)
            id2label, default_label2id = _default_labels(num_labels)
            if label2id is None:
                label2id = default_label2id
        if label2id is None:
            label2id = {v: k for k, v in id2label.items()}

        for name, value in fields.items():
            self.__dict__[name] = self._normalized(name, value)
        for name, default in COMMON_DEFAULTS.items():
            self.__dict__[name] = kwargs.pop(name, copy.deepcopy(default))
        if isinstance(self.pruned_heads, Mapping):  # layer indices come back from JSON as strings
            self.__dict__["pruned_heads"] = {int(k) if isinstance(k, str) and k.isdigit() else k: v
                                             for k, v in self.pruned_heads.items()}
        self.__dict__["id2label"] = dict(id2label)
        self.__dict__["label2id"] = dict(label2id)
        for name, default in GENERATION_DEFAULTS.items():
            self.__dict__[name] = kwargs.pop(name, default)
        self.__dict__["_name_or_path"] = str(kwargs.pop("name_or_path", kwargs.pop("_name_or_path", "")))
        self.__dict__["transformers_version"] = kwargs.pop("transformers_version", None)
        for key, value in kwargs.items():
            self._check_free_key(key)
            self.__dict__[key] = value
        self.validate()
        self.__dict__["_ready"] = True

    # --- attribute access ---------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        """Plain assignment, except that a model field is normalised and checked against the others.

        An assignment that makes the config invalid raises ValueError and leaves the old value in place;
        to change fields that depend on each other (``n_embd`` and ``n_head``), use :meth:`update`.
        """
        if isinstance(getattr(type(self), name, None), property) or not self.__dict__.get("_ready"):
            object.__setattr__(self, name, value)
            return
        self._check_free_key(name)
        if name not in VALIDATED_FIELDS:
            self.__dict__[name] = value
            return
        self._assign({name: value})

    def _assign(self, values: Mapping[str, Any]) -> None:
        """Set ``values`` together, validate once, and restore every old value if validation fails."""
        missing = object()
        old = {k: self.__dict__.get(k, missing) for k in values}
        try:
            for k, v in values.items():
                self.__dict__[k] = self._normalized(k, v)
            if "id2label" in values:
                self.__dict__["id2label"] = self._int_keys(self.id2label)
            self.validate()
        except BaseException:
            for k, v in old.items():
                if v is missing:
                    self.__dict__.pop(k, None)
                else:
                    self.__dict__[k] = v
            raise

    @staticmethod
    def _normalized(name: str, value: Any) -> Any:
        # numpy integers (a width read from an array) become ints, so the config stays JSON-serialisable
        if name in SIZE_FIELDS and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if name in MODEL_DEFAULTS and isinstance(value, numbers.Real) and not isinstance(
                value, (bool, numbers.Integral)):
            return float(value)
        return value

    @staticmethod
    def _int_keys(id2label: Any) -> Any:
        if not isinstance(id2label, Mapping):
            return id2label  # validate() names the problem
        try:
            return {int(k): v for k, v in id2label.items()}
        except (TypeError, ValueError):
            raise ValueError(f"id2label keys must be integers (or their strings), got {list(id2label)!r}") from None

    def _check_free_key(self, key: Any) -> None:
        if not isinstance(key, str):
            raise ValueError(f"config key {key!r} is not a string")
        if key == "_ready":
            raise ValueError(f"config key {key!r} is reserved by {type(self).__name__}")
        attr = getattr(type(self), key, None)
        if attr is not None and not isinstance(attr, property):
            raise ValueError(f"config key {key!r} names a {type(self).__name__} method or class attribute")

    @staticmethod
    def _check_num_labels(num_labels: Any) -> None:
        if not isinstance(num_labels, numbers.Integral) or isinstance(num_labels, bool) or num_labels < 0:
            raise ValueError(f"num_labels must be a non-negative integer, got {num_labels!r}")

    @property
    def num_labels(self) -> int:
        """The number of labels: the length of ``id2label``. Setting it to a new count replaces
        ``id2label``/``label2id`` with ``LABEL_0 ...`` (HF's behaviour)."""
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, num_labels: int) -> None:
        self._check_num_labels(num_labels)
        if self.__dict__.get("id2label") is None or len(self.id2label) != num_labels:
            id2label, label2id = _default_labels(int(num_labels))
            self._assign({"id2label": id2label, "label2id": label2id})

    @property
    def name_or_path(self) -> str:
        """The folder or hub id this config was loaded from (set by the Auto classes and models)."""
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value) -> None:
        self.__dict__["_name_or_path"] = str(value)

    @property
    def torch_dtype(self):
        """HF's older name for ``dtype``."""
        return self.dtype

    @torch_dtype.setter
    def torch_dtype(self, value) -> None:
        self.dtype = value

    @property
    def use_return_dict(self) -> bool:
        """Whether models return output objects (HF: ``return_dict`` unless ``torchscript``)."""
        return bool(self.return_dict) and not self.torchscript

    def get_text_config(self, decoder: Optional[bool] = None, encoder: Optional[bool] = None) -> "OpenAIGPTConfig":
        """The text part of the config: GPT-1 is text only, so the config itself (as HF)."""
        return self

    # --- validation ---------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first field whose value cannot build a model."""
        for field in SIZE_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head}); to change both, "
                f"use config.update({{'n_embd': ..., 'n_head': ...}})")
        if not isinstance(self.afn, str) or self.afn not in ACTIVATIONS:
            raise ValueError(f"afn must be one of {ACTIVATIONS}, got {self.afn!r}")
        for field in DROPOUT_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value < 1.0:
                raise ValueError(f"{field} must be a number in [0, 1), got {value!r}")
        for field in ("layer_norm_epsilon", "initializer_range"):
            value = getattr(self, field)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{field} must be a positive number, got {value!r}")
        if not isinstance(self.summary_type, str) or self.summary_type not in SUMMARY_TYPES:
            raise ValueError(f"summary_type must be one of {SUMMARY_TYPES}, got {self.summary_type!r}")
        if self.summary_type == "attn":
            raise ValueError("summary_type='attn' is not implemented (HF does not implement it either)")
        if self.summary_activation not in SUMMARY_ACTIVATIONS:
            raise ValueError(f"summary_activation must be one of {SUMMARY_ACTIVATIONS}, "
                             f"got {self.summary_activation!r}")
        for field in BOOL_FIELDS:
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{field} must be True or False, got {getattr(self, field)!r}")
        if not isinstance(self.id2label, dict):
            raise ValueError(f"id2label must be a dict of id -> label, got {type(self.id2label).__name__}")
        if not isinstance(self.label2id, dict):
            raise ValueError(f"label2id must be a dict of label -> id, got {type(self.label2id).__name__}")
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        for field in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, field, None)
            ids = value if isinstance(value, (list, tuple)) else [value]
            for i in ids:
                if i is not None and (not isinstance(i, numbers.Integral) or isinstance(i, bool)):
                    raise ValueError(f"{field} must be an integer token id or None, got {value!r}")

    # --- dict / json ---------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Every field, known and unknown, plus ``model_type`` (HF's ``to_dict``; tuples become lists)."""
        out = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "_ready"}
        if out.get("transformers_version") is None:
            out.pop("transformers_version", None)
        out = {k: _tuples_to_lists(v) for k, v in out.items()}
        out["model_type"] = self.model_type
        return out

    @staticmethod
    def _generic_defaults() -> Dict[str, Any]:
        id2label, label2id = _default_labels(2)
        return {**COMMON_DEFAULTS, **GENERATION_DEFAULTS, "id2label": id2label, "label2id": label2id,
                "_name_or_path": ""}

    def to_diff_dict(self) -> Dict[str, Any]:
        """:meth:`to_dict` without the common fields left at HF's defaults (what config.json holds).

        The GPT-1 fields, ``model_type`` and ``transformers_version`` are always kept, as HF does.
        """
        generic = self._generic_defaults()
        class_defaults = type(self)().to_dict()
        out = {}
        for key, value in self.to_dict().items():
            if (key not in generic or value != generic[key]
                    or (key in class_defaults and value != class_defaults[key])):
                out[key] = value
        out.pop("_name_or_path", None)
        return out

    def non_default_generation_parameters(self) -> Dict[str, Any]:
        """The generation parameters stored here that differ from HF's defaults (they belong in
        generation_config.json)."""
        return {k: getattr(self, k) for k, v in GENERATION_DEFAULTS.items() if getattr(self, k, v) != v}

    def to_json_string(self, use_diff: bool = True) -> str:
        """The config as JSON text, keys sorted; ``use_diff`` (default, as HF) writes :meth:`to_diff_dict`."""
        return json_text(self.to_diff_dict() if use_diff else self.to_dict())

    def to_json_file(self, json_file_path: str | os.PathLike, use_diff: bool = True) -> str:
        """Write :meth:`to_json_string` to ``json_file_path`` atomically; returns the path."""
        return atomic_write_json(json_file_path, self.to_diff_dict() if use_diff else self.to_dict())

    def update(self, config_dict: Mapping[str, Any]) -> None:
        """Set several attributes at once (aliases accepted); validated together, all or nothing."""
        if not isinstance(config_dict, Mapping):
            raise TypeError(f"config_dict must be a dict, got {type(config_dict).__name__}")
        plain, props = {}, {}
        for key, value in config_dict.items():
            key = ATTRIBUTE_MAP.get(key, key)
            if isinstance(getattr(type(self), key, None), property):
                props[key] = value
            else:
                self._check_free_key(key)
                plain[key] = value
        before = copy.deepcopy(self.__dict__)
        try:
            self._assign(plain)
            for key, value in props.items():
                setattr(self, key, value)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def update_from_string(self, update_str: str) -> None:
        """Update existing attributes from ``"n_embd=10,resid_pdrop=0.2,summary_use_proj=false"`` (HF's
        format), each value parsed as the type of the current one."""
        if not isinstance(update_str, str):
            raise TypeError(f"update_str must be a string, got {type(update_str).__name__}")
        updates = {}
        for item in update_str.split(","):
            if "=" not in item:
                raise ValueError(f"update_str item {item!r} is not key=value")
            k, v = item.split("=", 1)
            if not hasattr(self, k):
                raise ValueError(f"key {k} isn't in the original config dict")
            old = getattr(self, k)
            if isinstance(old, bool):
                if v.lower() in ("true", "1", "y", "yes"):
                    v = True
                elif v.lower() in ("false", "0", "n", "no"):
                    v = False
                else:
                    raise ValueError(f"can't derive true or false from {v} (key {k})")
            elif isinstance(old, int):
                v = int(v)
            elif isinstance(old, float):
                v = float(v)
            elif not isinstance(old, str):
                raise TypeError(f"You can only update int, float, bool or string values in the config, "
                                f"got {v} for key {k}")
            updates[k] = v
        self.update(updates)

    def _is_field(self, key: str) -> bool:
        return key in self.__dict__ or isinstance(getattr(type(self), key, None), property)

    @classmethod
    def _build(cls, config_dict: Mapping[str, Any], kwargs: Dict[str, Any], source: Optional[str] = None):
        """``cls(**config_dict)`` then ``kwargs`` applied over it (HF's ``from_dict``)."""
        if not isinstance(config_dict, Mapping):
            raise TypeError(f"config_dict must be a dict, got {type(config_dict).__name__}")
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        for key in _LOADER_INTERNAL_KWARGS:
            kwargs.pop(key, None)
        if "num_labels" in kwargs and kwargs.get("id2label") is not None \
                and len(kwargs["id2label"]) != kwargs["num_labels"]:
            raise ValueError(f"You passed along `num_labels={kwargs['num_labels']}` with an incompatible id "
                             f"to label map: {kwargs['id2label']}. Since those arguments are inconsistent with "
                             f"each other, you should remove one of them.")
        if "attn_implementation" in kwargs:
            config_dict = {**config_dict, "attn_implementation": kwargs.pop("attn_implementation")}
        try:
            config = cls(**config_dict)
        except (ValueError, TypeError) as e:
            if source is None:
                raise
            raise ValueError(f"config file {source!r}: {e}") from None
        overrides = {}
        unused = {}
        for key, value in kwargs.items():
            field = ATTRIBUTE_MAP.get(key, key)
            if config._is_field(field):
                overrides[field] = value
            else:
                unused[key] = value
        config.update(overrides)
        if return_unused_kwargs:
            return config, unused
        if unused:
            raise TypeError(f"{sorted(unused)} are not {cls.__name__} fields; pass return_unused_kwargs=True "
                            f"to get them back instead")
        return config

    @classmethod
    def from_dict(cls, config_dict: Mapping[str, Any], **kwargs):
        """Build a config from a dict (e.g. config.json's), then apply ``kwargs`` that are config fields.

        With ``return_unused_kwargs=True`` returns ``(config, unused_kwargs)``; without it, a kwarg that
        is not a config field raises TypeError (HF drops it silently).
        """
        return cls._build(dict(config_dict) if isinstance(config_dict, Mapping) else config_dict, kwargs)

    @classmethod
    def _dict_from_json_file(cls, json_file: str | os.PathLike) -> Dict[str, Any]:
        data = read_json(json_file, "config file")
        if not isinstance(data, dict):
            raise ValueError(f"config file {os.fspath(json_file)!r} holds a JSON {type(data).__name__}, "
                             f"not an object of config fields")
        return data

    @classmethod
    def from_json_file(cls, json_file: str | os.PathLike, **kwargs):
        """Build a config from a config.json file; ``kwargs`` as in :meth:`from_dict`. A file that is
        not a JSON object of valid fields raises ValueError naming it."""
        return cls._build(cls._dict_from_json_file(json_file), kwargs, source=os.fspath(json_file))

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: str | os.PathLike,
                        **kwargs) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """``(config.json's dict, the kwargs left)`` for a folder, a config.json path or a hub id.

        Loader options used here: ``subfolder``, ``revision``, ``cache_dir``, ``local_files_only``,
        ``token`` (or ``use_auth_token``); ``force_download``/``proxies`` are refused for hub ids
        (huggingface_hub's cache decides).
        """
        config_file, kwargs = cls._resolve_config_file(pretrained_model_name_or_path, kwargs)
        return cls._dict_from_json_file(config_file), kwargs

    @staticmethod
    def _resolve_config_file(path_or_id, kwargs: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
        kwargs = dict(kwargs)
        subfolder = kwargs.pop("subfolder", "") or ""
        hub = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        if "use_auth_token" in kwargs:
            token = kwargs.pop("use_auth_token")
            hub.setdefault("token", token)
        force_download = kwargs.pop("force_download", False)
        proxies = kwargs.pop("proxies", None)
        if kwargs.pop("trust_remote_code", None):
            logger.warning("trust_remote_code has no effect on %s: tfgpt runs no code from the hub",
                           MODEL_TYPE)
        path = os.fspath(path_or_id)
        if os.path.isfile(os.path.join(subfolder, path)):
            return os.path.join(subfolder, path), kwargs
        if not os.path.isdir(path):
            if force_download:
                raise ValueError("force_download=True is not supported: huggingface_hub's cache decides; "
                                 "delete the cached copy to fetch it again")
            if proxies:
                raise ValueError("proxies is not supported: set HTTP(S)_PROXY for huggingface_hub instead")
            from tfgpt.hub import resolve_dir

            pattern = f"{subfolder}/{CONFIG_NAME}" if subfolder else CONFIG_NAME
            hub.setdefault("revision", None)
            path = resolve_dir(path, allow_patterns=[pattern], **hub)
        file = os.path.join(path, subfolder, CONFIG_NAME)
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{os.fspath(path_or_id)!r} does not appear to have a file named "
                                    f"{os.path.join(subfolder, CONFIG_NAME)}")
        return file, kwargs

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """Read config.json from a folder (or its ``subfolder``), a config.json path, or a hub id.

        Other kwargs override config fields; with ``return_unused_kwargs=True`` returns
        ``(config, unused_kwargs)`` (HF's contract). A missing folder or file raises OSError.
        """
        config_file, kwargs = cls._resolve_config_file(pretrained_model_name_or_path, kwargs)
        return cls._build(cls._dict_from_json_file(config_file), kwargs, source=config_file)

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> str:
        """Write config.json (HF's diff form, atomically) into ``save_directory``; returns its path.

        ``push_to_hub=True`` then uploads it (``repo_id`` defaults to the folder's name; other kwargs as
        :func:`tfgpt.checkpoints.push.push_folder`).
        """
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory ({save_directory}) should be a directory, not a file")
        if kwargs and not push_to_hub:
            raise TypeError(f"save_pretrained got {sorted(kwargs)}, which only apply with push_to_hub=True")
        generation = self.non_default_generation_parameters()
        if generation:
            warnings.warn("Some non-default generation parameters are set in the model config. These should "
                          "go into generation_config.json (tfgpt's generate reads its arguments, not these)."
                          f"\nNon-default generation parameters: {generation}", UserWarning, stacklevel=2)
        self.validate()
        os.makedirs(save_directory, exist_ok=True)
        path = self.to_json_file(os.path.join(save_directory, CONFIG_NAME), use_diff=True)
        if push_to_hub:
            from tfgpt.checkpoints.push import push_folder

            repo_id = kwargs.pop("repo_id", os.path.basename(os.path.abspath(save_directory)))
            kwargs.setdefault("commit_message", "Upload config")
            push_folder(save_directory, repo_id, allow_patterns=[CONFIG_NAME], **kwargs)
        return path

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload config.json to the hub repo ``repo_id`` (see :func:`tfgpt.checkpoints.push.push_to_hub`)."""
        from tfgpt.checkpoints.push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def __eq__(self, other) -> bool:
        return isinstance(other, OpenAIGPTConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"
