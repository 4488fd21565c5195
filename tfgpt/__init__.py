"""tfgpt: OpenAI GPT (GPT-1) for TensorFlow and Keras 3.

Names are loaded on first use so that ``import tfgpt`` stays quick; TensorFlow is imported only when a
model, tokenizer layer or pipeline is touched.
"""

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# Before TensorFlow runs its first op, which is when it reads TF_XLA_FLAGS.
from tfgpt import compilation_cache  # noqa: E402

compilation_cache.configure_from_env()

__version__ = "0.1.0"

_EXPORTS = {
    "OpenAIGPTConfig": "tfgpt.models.configuration",
    "TFOpenAIGPTMainLayer": "tfgpt.models.modeling",
    "TFOpenAIGPTModel": "tfgpt.models.modeling",
    "TFOpenAIGPTLMHeadModel": "tfgpt.models.modeling",
    "TFOpenAIGPTDoubleHeadsModel": "tfgpt.models.modeling",
    "TFOpenAIGPTForSequenceClassification": "tfgpt.models.modeling",
    "TFOpenAIGPTPreTrainedModel": "tfgpt.models.modeling",
    "AutoConfig": "tfgpt.models.auto",
    "TFAutoModel": "tfgpt.models.auto",
    "TFAutoModelForCausalLM": "tfgpt.models.auto",
    "TFAutoModelForPreTraining": "tfgpt.models.auto",
    "TFAutoModelWithLMHead": "tfgpt.models.auto",
    "TFAutoModelForSequenceClassification": "tfgpt.models.auto",
    "OpenAIGPTTokenizer": "tfgpt.tokenizers.tokenization",
    "TFOpenAIGPTTokenizer": "tfgpt.tokenizers.tf_tokenizer",
    "AutoTokenizer": "tfgpt.tokenizers.auto",
    "GenerationConfig": "tfgpt.generation.config",
    "TextStreamer": "tfgpt.generation.streamers",
    "TextIteratorStreamer": "tfgpt.generation.streamers",
    "pipeline": "tfgpt.pipelines",
    "TextGenerationPipeline": "tfgpt.pipelines",
}
_SUBMODULES = {"models", "tokenizers", "generation", "checkpoints", "export", "training", "data", "cli", "io",
               "hub", "compilation_cache", "pipelines"}

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
