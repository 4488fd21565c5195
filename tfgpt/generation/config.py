"""GenerationConfig: HF's generation options (names, defaults, ``generation_config.json``)."""

from __future__ import annotations

import copy
import math
import os
import warnings
from typing import Any, Dict, Tuple

from tfgpt.io import atomic_write_json, json_text, read_json
from tfgpt.validation import stop_string_list

GENERATION_CONFIG_NAME = "generation_config.json"

# The transformers release whose generation_config.json format is written.
TRANSFORMERS_VERSION = "4.57.6"

# HF's fields and defaults (transformers 4.57 GenerationConfig.__init__), in its order.
DEFAULTS: Dict[str, Any] = {
    # length
    "max_length": 20, "max_new_tokens": None, "min_length": 0, "min_new_tokens": None,
    "early_stopping": False, "max_time": None, "stop_strings": None,
    # strategy
    "do_sample": False, "num_beams": 1, "num_beam_groups": 1, "penalty_alpha": None, "dola_layers": None,
    # cache
    "use_cache": True, "cache_implementation": None, "cache_config": None, "return_legacy_cache": None,
    "prefill_chunk_size": None,
    # logits
    "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None, "typical_p": 1.0, "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0, "diversity_penalty": 0.0, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0,
    "length_penalty": 1.0, "no_repeat_ngram_size": 0, "bad_words_ids": None, "force_words_ids": None,
    "renormalize_logits": False, "constraints": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "remove_invalid_values": False, "exponential_decay_length_penalty": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "sequence_bias": None, "token_healing": False, "guidance_scale": None,
    "watermarking_config": None,
    # outputs
    "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False,
    "output_scores": False, "output_logits": None, "return_dict_in_generate": False,
    # special tokens
    "pad_token_id": None, "bos_token_id": None, "eos_token_id": None,
    # encoder-decoder only
    "encoder_no_repeat_ngram_size": 0, "decoder_start_token_id": None,
    # assisted / prompt-lookup decoding
    "is_assistant": False, "num_assistant_tokens": 20, "num_assistant_tokens_schedule": "constant",
    "assistant_confidence_threshold": 0.4, "prompt_lookup_num_tokens": None, "max_matching_ngram_size": None,
    "assistant_early_exit": None, "assistant_lookbehind": 10, "target_lookbehind": 10,
    # compilation
    "compile_config": None, "disable_compile": False,
    # wild card
    "generation_kwargs": {},
}

# Written to the file when set, but not generation options.
METADATA_FIELDS = ("_from_model_config", "transformers_version")

# generate() arguments that do not belong in a config (HF refuses them too).
GENERATE_ARGUMENTS = ("logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn", "synced_gpus",
                      "assistant_model", "streamer", "negative_prompt_ids", "negative_prompt_attention_mask")

SAMPLING_FLAGS = (("temperature", 1.0), ("top_p", 1.0), ("min_p", None), ("typical_p", 1.0),
                  ("epsilon_cutoff", 0.0), ("eta_cutoff", 0.0))
BEAM_FLAGS = (("early_stopping", False), ("num_beam_groups", 1), ("diversity_penalty", 0.0),
              ("length_penalty", 1.0), ("constraints", None))
EXTRA_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states", "output_scores", "output_logits")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class GenerationConfig:
    """The options of ``generate``, with HF's names and defaults.

    Keys HF does not define (read from a file or passed here) are kept as attributes and written back,
    as HF does; ``update`` returns the keys it does not know so that ``generate`` can refuse them.
    """

    def __init__(self, **kwargs):
        for key in GENERATE_ARGUMENTS:
            if key in kwargs:
                raise ValueError(f"{key} is not a GenerationConfig option; pass it to generate() directly")
        for key, default in DEFAULTS.items():
            setattr(self, key, copy.deepcopy(kwargs.pop(key, default)))
        self._from_model_config = bool(kwargs.pop("_from_model_config", False))
        self.transformers_version = kwargs.pop("transformers_version", TRANSFORMERS_VERSION)
        kwargs.pop("_commit_hash", None)
        if not self._from_model_config:  # a model config's other fields are not generation options
            for key, value in kwargs.items():
                setattr(self, key, value)
        self.validate()

    # --- validation ---------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming a bad value; warn (as HF) about options the chosen mode ignores."""
        for name in ("max_length", "min_length", "num_beams", "num_return_sequences", "num_beam_groups",
                     "no_repeat_ngram_size", "encoder_no_repeat_ngram_size"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value is not None and value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("max_new_tokens", "min_new_tokens", "prompt_lookup_num_tokens", "max_matching_ngram_size"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
            if value is not None and value < 0:
                raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
        if self.max_new_tokens is not None and self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be greater than 0, got {self.max_new_tokens}")
        if self.num_beams is not None and self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.num_return_sequences is not None and self.num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be >= 1, got {self.num_return_sequences}")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        for name in ("temperature", "top_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "repetition_penalty",
                     "length_penalty", "min_p", "penalty_alpha", "max_time", "diversity_penalty"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or math.isnan(value)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 0):
            raise ValueError(f"top_k must be a non-negative integer, got {self.top_k!r}")
        if self.repetition_penalty is not None and not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty must be strictly positive, got {self.repetition_penalty}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max_time must be a positive number of seconds, got {self.max_time}")
        if self.penalty_alpha is not None and not 0 <= self.penalty_alpha <= 1:
            raise ValueError(f"penalty_alpha must be in [0, 1], got {self.penalty_alpha}")
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id", "forced_bos_token_id"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer id, got {value!r}")
        for name in ("eos_token_id", "forced_eos_token_id"):
            value = getattr(self, name)
            ids = value if isinstance(value, (list, tuple)) else [value]
            if value is not None and (not ids or any(not _is_int(t) or t < 0 for t in ids)):
                raise ValueError(f"{name} must be a non-negative id or a non-empty list of them, got {value!r}")
        if self.stop_strings is not None:
            stop_string_list(self.stop_strings)
        if self.do_sample:
            if self.temperature is not None and not self.temperature > 0:
                raise ValueError(f"temperature must be strictly positive when sampling, got {self.temperature} "
                                 f"(for greedy decoding set do_sample=False)")
            if self.top_p is not None and not 0 < self.top_p <= 1:
                raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
            if self.typical_p is not None and not 0 < self.typical_p <= 1:
                raise ValueError(f"typical_p must be in (0, 1], got {self.typical_p}")
            if self.min_p is not None and not 0 <= self.min_p <= 1:
                raise ValueError(f"min_p must be in [0, 1], got {self.min_p}")
            for name in ("epsilon_cutoff", "eta_cutoff"):
                value = getattr(self, name)
                if value is not None and not 0 <= value < 1:
                    raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.num_return_sequences is not None and self.num_return_sequences != 1:
            if self.num_beams == 1 and not self.do_sample:
                raise ValueError(f"greedy search returns one sequence per prompt; num_return_sequences="
                                 f"{self.num_return_sequences} needs do_sample=True or num_beams > 1")
            if self.num_beams is not None and self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ValueError(f"num_return_sequences ({self.num_return_sequences}) must be <= num_beams "
                                 f"({self.num_beams})")
        for key in GENERATE_ARGUMENTS:
            if key in self.__dict__:
                raise ValueError(f"{key} is not a GenerationConfig option; pass it to generate() directly")
        self._warn_ignored()

    def _warn_ignored(self) -> None:
        if not self.do_sample:
            for name, off in SAMPLING_FLAGS:
                value = getattr(self, name)
                if value is not None and value != off:
                    warnings.warn(f"do_sample is False, but {name}={value!r} is set: it only applies when "
                                  f"sampling; set do_sample=True or unset {name}", UserWarning, stacklevel=3)
        if self.num_beams == 1:
            for name, off in BEAM_FLAGS:
                value = getattr(self, name)
                if value is not None and value != off:
                    warnings.warn(f"num_beams is 1, but {name}={value!r} is set: it only applies to beam "
                                  f"search; set num_beams > 1 or unset {name}", UserWarning, stacklevel=3)
        if self.return_dict_in_generate is not True:
            for name in EXTRA_OUTPUT_FLAGS:
                if getattr(self, name) is True:
                    warnings.warn(f"{name}=True has no effect unless return_dict_in_generate=True",
                                  UserWarning, stacklevel=3)

    # --- dicts --------------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Every field, known and unknown, with ``transformers_version``."""
        out = copy.deepcopy({k: v for k, v in self.__dict__.items() if not k.startswith("_")})
        if self._from_model_config:
            out["_from_model_config"] = True
        out["transformers_version"] = self.transformers_version
        return out

    def to_diff_dict(self) -> Dict[str, Any]:
        """The fields that differ from ``GenerationConfig()``, plus ``transformers_version`` (HF's file)."""
        defaults = dict(DEFAULTS)
        return {k: v for k, v in self.to_dict().items()
                if k not in defaults or k == "transformers_version" or v != defaults[k]}

    @classmethod
    def from_dict(cls, config_dict: Dict[str, Any], **kwargs) -> "GenerationConfig":
        if not isinstance(config_dict, dict):
            raise ValueError(f"a generation config must be a JSON object, got {type(config_dict).__name__}")
        return cls(**{**config_dict, **kwargs})

    def update(self, *, validate: bool = True, **kwargs) -> Dict[str, Any]:
        """Set the known fields among ``kwargs``; return the others, untouched (HF).

        The config is validated afterwards (unless ``validate=False``: ``generate`` checks its arguments
        first, with messages naming them, then validates); a bad value raises and leaves the config
        as it was.
        """
        known = {k: v for k, v in kwargs.items() if hasattr(self, k) and not k.startswith("_")}
        before = copy.deepcopy(self.__dict__)
        for key, value in known.items():
            setattr(self, key, value)
        if not validate:
            return {k: v for k, v in kwargs.items() if k not in known}
        try:
            self.validate()
        except (ValueError, TypeError):
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return {k: v for k, v in kwargs.items() if k not in known}

    def merged(self, **kwargs) -> "GenerationConfig":
        """A copy with ``kwargs`` applied; an unknown key raises a ValueError naming it."""
        out = copy.deepcopy(self)
        unused = out.update(**kwargs)
        if unused:
            raise ValueError(f"unknown generation option(s): {', '.join(sorted(unused))}")
        return out

    # --- files --------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory) -> str:
        """Write ``generation_config.json`` (non-default fields only) into ``save_directory``, atomically.

        As HF, a config that ``validate`` warns about (an option its mode ignores) is refused.
        """
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file, not a folder")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.validate()
        if caught:
            raise ValueError("the generation config is inconsistent and is not saved: "
                             + "; ".join(str(w.message) for w in caught))
        return atomic_write_json(os.path.join(os.fspath(save_directory), GENERATION_CONFIG_NAME),
                                 self.to_diff_dict())

    @classmethod
    def from_pretrained(cls, path_or_id, config_file_name: str = GENERATION_CONFIG_NAME,
                        **kwargs) -> "GenerationConfig":
        """Read ``generation_config.json`` from a folder, a file path or a hub id; ``kwargs`` override it."""
        path = os.fspath(path_or_id)
        if os.path.isfile(path):
            file = path
        elif os.path.isdir(path):
            file = os.path.join(path, config_file_name)
        else:
            from tfgpt.hub import resolve_dir

            hub = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
            file = os.path.join(resolve_dir(path, allow_patterns=[config_file_name], **hub), config_file_name)
        data = read_json(file, what="generation config")
        return cls.from_dict(data, **kwargs)

    @classmethod
    def from_model_config(cls, model_config) -> "GenerationConfig":
        """The generation options a model config holds (token ids, lengths ...); the rest of it is ignored."""
        data = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
        data = {k: v for k, v in data.items() if k in DEFAULTS and v is not None}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = cls(**data, _from_model_config=True)
        if not out.return_dict_in_generate and any(getattr(out, f) for f in EXTRA_OUTPUT_FLAGS):
            out.return_dict_in_generate = True
        return out

    # --- misc ---------------------------------------------------------------------------------------
    def eos_ids(self) -> Tuple[int, ...]:
        """``eos_token_id`` as a tuple (empty when unset)."""
        e = self.eos_token_id
        return () if e is None else tuple(e) if isinstance(e, (list, tuple)) else (e,)

    def __eq__(self, other) -> bool:
        if not isinstance(other, GenerationConfig):
            return NotImplemented
        strip = lambda d: {k: v for k, v in d.items() if k not in METADATA_FIELDS}  # noqa: E731
        return strip(self.to_dict()) == strip(other.to_dict())

    def __hash__(self) -> int:
        strip = {k: v for k, v in self.to_dict().items() if k not in METADATA_FIELDS}
        return hash(json_text(strip, indent=None))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_diff_dict()!r})"
