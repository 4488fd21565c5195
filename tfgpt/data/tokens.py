"""Tokenizers inside tf.data pipelines, GPT-1's task tokens, and padding of ragged token rows."""

from __future__ import annotations

import os
import weakref
from typing import Dict, Optional, Sequence

import tensorflow as tf

# GPT-1's task tokens (the paper's start, delimiter and extract tokens; names as in HF's examples).
GPT1_SPECIAL_TOKENS = ("_start_", "_delimiter_", "_classify_")
# The GPT-1 vocabulary's newline token: what separates documents in a packed LM stream.
NEWLINE_TOKEN = "\n</w>"


# id(Python tokenizer) -> (weak reference to it, its length, its in-graph twin): building the twin's
# tables takes seconds, and the train and validation pipelines of a run share one tokenizer.
_GRAPH_TOKENIZERS: Dict[int, tuple] = {}


def as_graph_tokenizer(tokenizer):
    """A callable: tf.string [N] -> int32 RaggedTensor [N, None], usable inside ``tf.data.map``.

    Accepts a ``TFOpenAIGPTTokenizer`` (or any such callable), a Python ``OpenAIGPTTokenizer`` (its
    in-graph twin is built from it once and reused), or a folder / hub id holding tokenizer files.
    """
    if isinstance(tokenizer, (str, os.PathLike)):
        from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

        return TFOpenAIGPTTokenizer.from_pretrained(os.fspath(tokenizer))
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "save_pretrained") and not callable(
        getattr(tokenizer, "detokenize", None)
    ):
        from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

        key = id(tokenizer)
        hit = _GRAPH_TOKENIZERS.get(key)
        if hit is not None and hit[0]() is tokenizer and hit[1] == len(tokenizer):
            return hit[2]
        graph = TFOpenAIGPTTokenizer.from_tokenizer(tokenizer)
        try:
            ref = weakref.ref(tokenizer, lambda _, k=key: _GRAPH_TOKENIZERS.pop(k, None))
        except TypeError:  # not weak-referenceable: do not cache
            return graph
        _GRAPH_TOKENIZERS[key] = (ref, len(tokenizer), graph)
        return graph
    if not callable(tokenizer):
        raise TypeError(f"expected a tokenizer, got {type(tokenizer).__name__}")
    return tokenizer


def tokenize_batch(tokenizer, texts):
    """int32 RaggedTensor [N, None] of a batch of texts, whatever (ragged or dense) the tokenizer returns."""
    ids = tokenizer(texts)
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids)
    return tf.cast(ids, tf.int32)


def token_id(tokenizer, token: str) -> Optional[int]:
    """The id of ``token`` in a Python tokenizer's vocabulary, or None when it has none."""
    if tokenizer is None or not hasattr(tokenizer, "convert_tokens_to_ids"):
        return None
    idx = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if idx is None or (unk is not None and idx == unk and token != getattr(tokenizer, "unk_token", None)):
        return None
    return int(idx)


def add_gpt1_special_tokens(tokenizer, model=None, tokens: Sequence[str] = GPT1_SPECIAL_TOKENS,
                            pad_token: Optional[str] = None) -> Dict[str, int]:
    """Add GPT-1's task tokens (and optionally a pad token) to ``tokenizer``; grow ``model``'s token
    table to match (new rows ~ N(0, initializer_range)). Returns ``{token: id}`` (pad under "pad").
    Tokens already in the vocabulary keep their ids, so this is safe to call on a fine-tuned model."""
    missing = [t for t in tokens if token_id(tokenizer, t) is None]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                     replace_additional_special_tokens=False)
    if pad_token is not None and token_id(tokenizer, pad_token) is None:
        tokenizer.add_special_tokens({"pad_token": pad_token})
    ids = {t: token_id(tokenizer, t) for t in tokens}
    if pad_token is not None:
        ids["pad"] = token_id(tokenizer, pad_token)
    if model is not None:
        if len(tokenizer) > model.config.vocab_size:
            model.resize_token_embeddings(len(tokenizer))
        if pad_token is not None:
            model.config.pad_token_id = ids["pad"]
    return ids



def pad_ragged(ids: tf.RaggedTensor, pad_id, length=None):
    """Dense [N, S] ids and mask from ragged rows; S = ``length`` or the longest row."""
    lengths = ids.row_lengths()
    if length is None:
        dense = ids.to_tensor(default_value=pad_id)
        length = tf.shape(dense)[1]
    else:
        dense = ids.to_tensor(default_value=pad_id, shape=[None, length])
    mask = tf.sequence_mask(lengths, length, dtype=tf.int32)
    return dense, mask

