"""tfgpt: OpenAI GPT (GPT-1) for TensorFlow and Keras 3.

Names are loaded on first use so that ``import tfgpt`` stays quick; TensorFlow is imported only when a
model, tokenizer layer or pipeline is touched.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"

_EXPORTS = {
    "OpenAIGPTConfig": "tfgpt.configuration",
    "TFOpenAIGPTMainLayer": "tfgpt.modeling",
    "TFOpenAIGPTModel": "tfgpt.modeling",
    "TFOpenAIGPTLMHeadModel": "tfgpt.modeling",
    "TFOpenAIGPTDoubleHeadsModel": "tfgpt.modeling",
    "TFOpenAIGPTForSequenceClassification": "tfgpt.modeling",
    "TFOpenAIGPTPreTrainedModel": "tfgpt.modeling",
    "OpenAIGPTTokenizer": "tfgpt.tokenization",
    "TFOpenAIGPTTokenizer": "tfgpt.tf_tokenizer",
}
_SUBMODULES = {"export", "data", "generation", "checkpoints", "layers", "modeling", "configuration",
               "tokenization", "tf_tokenizer", "bpe_trainer", "hub", "training", "cli"}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"tfgpt.{name}")
    raise AttributeError(f"module 'tfgpt' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
