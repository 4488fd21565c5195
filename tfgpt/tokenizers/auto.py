"""``AutoTokenizer`` for the one family tfgpt implements: HF's entry point, returning OpenAIGPTTokenizer.

A folder (or hub id) whose ``tokenizer_config.json`` names another ``tokenizer_class``, or whose
``config.json`` names another ``model_type`` (when no tokenizer class is given), raises ``ValueError``
naming it instead of loading a tokenizer that would give other ids.
"""

from __future__ import annotations

import os
from typing import Union

from tfgpt.io import read_json
from tfgpt.tokenizers.tokenization import TOKENIZER_CLASSES, TOKENIZER_FILE_PATTERNS, OpenAIGPTTokenizer

MODEL_TYPES = ("openai-gpt",)


class AutoTokenizer:
    """``AutoTokenizer.from_pretrained(path_or_id)`` -> :class:`~tfgpt.OpenAIGPTTokenizer`."""

    def __init__(self, *args, **kwargs):
        raise EnvironmentError("AutoTokenizer is designed to be instantiated using "
                               "`AutoTokenizer.from_pretrained(pretrained_model_name_or_path)`.")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *inputs,
                        use_fast: bool = True, **kwargs) -> OpenAIGPTTokenizer:
        """Load the folder's tokenizer after checking that it is GPT-1's.

        ``use_fast`` is accepted for HF compatibility: tfgpt has one (Python) tokenizer, whose ids
        equal those of HF's fast and slow OpenAI GPT tokenizers, so either value returns it
        (``tok.is_fast`` is False).
        """
        from tfgpt.hub import resolve_dir

        if inputs:
            raise TypeError(f"AutoTokenizer.from_pretrained takes keyword arguments only after the path, got "
                            f"{len(inputs)} more positional argument(s)")
        if not isinstance(use_fast, bool):
            raise TypeError(f"use_fast must be True or False, got {use_fast!r}")
        hub_kwargs = {k: kwargs[k] for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        directory = resolve_dir(pretrained_model_name_or_path,
                                allow_patterns=list(TOKENIZER_FILE_PATTERNS) + ["config.json"], **hub_kwargs)
        check_tokenizer_class(directory)
        for key in hub_kwargs:
            kwargs.pop(key)
        kwargs.setdefault("name_or_path", os.fspath(pretrained_model_name_or_path))
        return OpenAIGPTTokenizer.from_pretrained(directory, **kwargs)


def check_tokenizer_class(directory: str) -> None:
    """Raise ValueError when the folder's files name a tokenizer class or model type other than GPT-1's."""
    config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(config_path):
        config = read_json(config_path, "tokenizer_config.json")
        name = config.get("tokenizer_class") if isinstance(config, dict) else None
        if name is not None:
            if name not in TOKENIZER_CLASSES:
                raise ValueError(f"{config_path} names tokenizer_class {name!r}; tfgpt provides only the OpenAI GPT "
                                 f"tokenizer ({', '.join(TOKENIZER_CLASSES)})")
            return
    model_config = os.path.join(directory, "config.json")
    if os.path.exists(model_config):
        config = read_json(model_config, "config.json")
        model_type = config.get("model_type") if isinstance(config, dict) else None
        if model_type is not None and model_type not in MODEL_TYPES:
            raise ValueError(f"{model_config} has model_type {model_type!r}; tfgpt provides only the OpenAI GPT "
                             f"tokenizer (model_type {MODEL_TYPES[0]!r})")
