"""HF's Auto entry points for the one model family tfgpt implements (``openai-gpt``).

``AutoConfig.from_pretrained(path)`` reads config.json and checks its ``model_type``; each
``TFAutoModel*`` class maps that config to the head HF's TF auto mappings give GPT-1 (the class comes
from :mod:`tfgpt.models.registry`) and loads or builds it. HF maps no multiple-choice auto class to
GPT-1 (the double-heads model is used by name), so tfgpt has none either.
"""

from __future__ import annotations

import os
from typing import Any, Dict

from tfgpt.models import registry
from tfgpt.models.configuration import MODEL_TYPE, OpenAIGPTConfig

# model_type -> config class (HF's CONFIG_MAPPING, for the family tfgpt implements)
CONFIG_MAPPING: Dict[str, type] = {MODEL_TYPE: OpenAIGPTConfig}

# Options of the loaders that locate config.json (the rest go to the model class or config fields).
_LOCATION_KWARGS = ("subfolder", "revision", "cache_dir", "local_files_only", "token", "use_auth_token",
                    "force_download", "proxies")


def config_class_for_model_type(model_type: Any, where: str = "config.json") -> type:
    """The config class of ``model_type``; another model type raises ValueError naming it."""
    if model_type not in CONFIG_MAPPING:
        raise ValueError(f"Unrecognized model type {model_type!r} in {where}: tfgpt implements "
                         f"{sorted(CONFIG_MAPPING)} only")
    return CONFIG_MAPPING[model_type]


class AutoConfig:
    """The config class named by a config.json's ``model_type`` (HF's ``AutoConfig``)."""

    def __init__(self, *args, **kwargs):
        raise EnvironmentError("AutoConfig is designed to be instantiated using the "
                               "`AutoConfig.from_pretrained(pretrained_model_name_or_path)` method.")

    @classmethod
    def for_model(cls, model_type: str, *args, **kwargs):
        """A new config of ``model_type`` built from ``args``/``kwargs``."""
        return config_class_for_model_type(model_type, "for_model")(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        """Read config.json from a folder, a config.json path or a hub id, as the class its
        ``model_type`` names; kwargs as :meth:`OpenAIGPTConfig.from_pretrained`.

        A config.json without ``model_type`` is accepted when the path names the family
        (``openai-gpt``), as HF does.
        """
        location = {k: kwargs[k] for k in _LOCATION_KWARGS if k in kwargs}
        config_dict, _ = OpenAIGPTConfig.get_config_dict(pretrained_model_name_or_path, **location)
        model_type = config_dict.get("model_type")
        if model_type is None:
            if MODEL_TYPE not in os.fspath(pretrained_model_name_or_path):
                raise ValueError(f"Unrecognized model in {os.fspath(pretrained_model_name_or_path)!r}. Should "
                                 f"have a `model_type` key in its config.json, or contain {MODEL_TYPE!r} in its "
                                 f"name")
            model_type = MODEL_TYPE
        config_class = config_class_for_model_type(model_type, os.fspath(pretrained_model_name_or_path))
        kwargs.setdefault("name_or_path", os.fspath(pretrained_model_name_or_path))
        return config_class.from_pretrained(pretrained_model_name_or_path, **kwargs)


class TFAutoModelBase:
    """Shared behaviour of the ``TFAutoModel*`` classes; ``head`` is the registry head each maps to."""

    head: str = ""

    def __init__(self, *args, **kwargs):
        raise EnvironmentError(f"{type(self).__name__} is designed to be instantiated using the "
                               f"`{type(self).__name__}.from_pretrained(pretrained_model_name_or_path)` or "
                               f"`{type(self).__name__}.from_config(config)` methods.")

    @classmethod
    def model_class_for(cls, config) -> type:
        """The tfgpt model class this auto class builds for ``config``."""
        if not isinstance(config, tuple(CONFIG_MAPPING.values())):
            raise ValueError(f"Unrecognized configuration class {type(config).__name__} for this kind of "
                             f"AutoModel: {cls.__name__}. Model type should be one of "
                             f"{[c.__name__ for c in CONFIG_MAPPING.values()]}.")
        return registry.class_for_head(cls.head)

    @classmethod
    def from_config(cls, config, **kwargs):
        """A new model with random weights for ``config`` (no weights are loaded)."""
        return cls.model_class_for(config)(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *model_args, **kwargs):
        """Load the model from a folder or hub id; the config (given or read from config.json) picks
        the class; every other kwarg goes to that class's ``from_pretrained``."""
        config = kwargs.get("config")
        if config is None or isinstance(config, (str, os.PathLike)):
            location = {k: kwargs[k] for k in _LOCATION_KWARGS if k in kwargs}
            config = AutoConfig.from_pretrained(config or pretrained_model_name_or_path, **location)
        elif isinstance(config, dict):
            config = OpenAIGPTConfig.from_dict(config)
        model_class = cls.model_class_for(config)
        return model_class.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)


class TFAutoModel(TFAutoModelBase):
    """The bare transformer (HF maps openai-gpt to ``TFOpenAIGPTModel``)."""

    head = "base"


class TFAutoModelForCausalLM(TFAutoModelBase):
    """The language-model head (``TFOpenAIGPTLMHeadModel``)."""

    head = "lm"


class TFAutoModelForPreTraining(TFAutoModelBase):
    """The pre-training head; for GPT-1 the language-model head, as HF maps it."""

    head = "lm"


class TFAutoModelWithLMHead(TFAutoModelBase):
    """HF's older name for the LM-head auto class (``TFOpenAIGPTLMHeadModel``)."""

    head = "lm"


class TFAutoModelForSequenceClassification(TFAutoModelBase):
    """The sequence-classification head (``TFOpenAIGPTForSequenceClassification``)."""

    head = "seqcls"
