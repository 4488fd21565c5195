"""The GPT-1 model family: configuration, layers, the main layer, the four heads, their outputs, the Auto classes."""

from tfgpt.models.configuration import OpenAIGPTConfig  # noqa: F401
from tfgpt.models.modeling import (  # noqa: F401
    TFOpenAIGPTDoubleHeadsModel,
    TFOpenAIGPTForSequenceClassification,
    TFOpenAIGPTLMHeadModel,
    TFOpenAIGPTMainLayer,
    TFOpenAIGPTModel,
    TFOpenAIGPTPreTrainedModel,
)
from tfgpt.models.auto import (  # noqa: F401
    AutoConfig,
    TFAutoModel,
    TFAutoModelForCausalLM,
    TFAutoModelForPreTraining,
    TFAutoModelForSequenceClassification,
    TFAutoModelWithLMHead,
)
