"""The one model registry: head names, HF architecture names and classes, in one table.

Every module that picks a model class (checkpoint loading, conversion, training, export, the CLI's
``--head``) asks this table, so a new head is added in one place.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from tfgpt.io import read_json
from tfgpt.models.configuration import CONFIG_NAME
from tfgpt.models.modeling import (
    TFOpenAIGPTDoubleHeadsModel,
    TFOpenAIGPTForSequenceClassification,
    TFOpenAIGPTLMHeadModel,
    TFOpenAIGPTModel,
)


class ModelEntry(NamedTuple):
    head: str           # the CLI's --head value
    cls: type           # the tfgpt class
    architecture: str   # the name HF writes into config.json "architectures" (PyTorch class name)
    has_lm_head: bool   # logits over the vocabulary (generation, text signatures)


MODELS = (
    ModelEntry("lm", TFOpenAIGPTLMHeadModel, "OpenAIGPTLMHeadModel", True),
    ModelEntry("base", TFOpenAIGPTModel, "OpenAIGPTModel", False),
    ModelEntry("double-heads", TFOpenAIGPTDoubleHeadsModel, "OpenAIGPTDoubleHeadsModel", True),
    ModelEntry("seqcls", TFOpenAIGPTForSequenceClassification, "OpenAIGPTForSequenceClassification", False),
)

HEADS = tuple(e.head for e in MODELS)
DEFAULT_HEAD = "lm"


def entry_for(model_or_class) -> ModelEntry:
    """The registry entry of a model instance or class (the most specific class wins)."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    for e in sorted(MODELS, key=lambda e: -len(e.cls.__mro__)):
        if issubclass(cls, e.cls):
            return e
    raise TypeError(f"{cls.__name__} is not one of the tfgpt GPT-1 models: "
                    f"{[e.cls.__name__ for e in MODELS]}")


def class_for_head(head: str) -> type:
    """The class for a ``--head`` name."""
    for e in MODELS:
        if e.head == head:
            return e.cls
    raise ValueError(f"unknown head {head!r}; expected one of {list(HEADS)}")


def class_for_architecture(name: str) -> Optional[type]:
    """The class for an HF architecture name (``OpenAIGPTLMHeadModel`` or ``TFOpenAIGPTLMHeadModel``)."""
    for e in MODELS:
        if name in (e.architecture, e.cls.__name__):
            return e.cls
    return None


def class_for_folder(folder: Optional[str], head: Optional[str] = None) -> type:
    """``head``'s class if given; else the class named by ``folder``'s config.json architectures;
    else the LM head model."""
    if head is not None:
        return class_for_head(head)
    if folder is not None and os.path.isfile(os.path.join(folder, CONFIG_NAME)):
        config = read_json(os.path.join(folder, CONFIG_NAME), "config file")
        archs = config.get("architectures") if isinstance(config, dict) else None
        for arch in archs if isinstance(archs, list) else []:
            cls = class_for_architecture(arch) if isinstance(arch, str) else None
            if cls is not None:
                return cls
    return class_for_head(DEFAULT_HEAD)
