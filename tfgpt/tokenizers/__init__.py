"""GPT-1's BPE tokenizer in Python (HF-identical) and as an in-graph Keras layer, and BPE learning."""

from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer  # noqa: F401
