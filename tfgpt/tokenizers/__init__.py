"""GPT-1's BPE tokenizer in Python (HF-identical) and as an in-graph Keras layer, and BPE learning.

Modules, in the order text flows through them: ``normalization`` (lowercasing, character classes,
the BasicTokenizer and ftfy + spaCy pre-tokenizers), ``bpe`` (merges and the vocabulary files),
``tokenization`` (the Python tokenizer), ``tf_tokenizer`` (the in-graph tables and layer) and
``trainer`` (learning a vocabulary).
"""

from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer  # noqa: F401
