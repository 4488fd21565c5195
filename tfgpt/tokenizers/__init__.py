"""GPT-1's BPE tokenizer in Python (HF-identical) and as an in-graph Keras layer, and BPE learning.

Modules, in the order text flows through them: ``normalization`` (lowercasing, character classes,
the BasicTokenizer and ftfy + spaCy pre-tokenizers), ``bpe`` (merges and the vocabulary files),
``tokenization`` (the Python tokenizer), ``tf_tokenizer`` (the in-graph tables and layer) and
``trainer`` (learning a vocabulary); ``encoding`` holds HF's ids-to-model-inputs API
(padding, truncation, ``BatchEncoding``) and ``auto`` the ``AutoTokenizer`` entry point.
"""

from tfgpt.tokenizers.auto import AutoTokenizer  # noqa: F401
from tfgpt.tokenizers.encoding import BatchEncoding  # noqa: F401
from tfgpt.tokenizers.tokenization import AddedToken, OpenAIGPTTokenizer  # noqa: F401
