"""Token choice for the sequential program: greedy search, or sampling after HF's temperature, top-k
and top-p warpers (in that order) from a stateless generator, so a seed reproduces a draw.

A sampler is called as ``sampler(scores [B, V] float32, step) -> tokens [B] int32``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfgpt.generation.processors import kth_largest, top_p_among_top_k, top_p_drop_mask
from tfgpt.generation.program import DecodeOptions, DecodeParams


class GreedySampler:
    """The highest-scoring token of each row (the first on ties, as ``argmax``)."""

    def __call__(self, scores, step):
        return tf.argmax(scores, axis=-1, output_type=tf.int32)


class MultinomialSampler:
    """One draw per row from softmax(warped scores), seeded by (seed, step).

    ``top_k`` (a Python int, 0 = off) keeps the k best tokens; with ``use_top_p`` the smallest set
    of best tokens whose probability reaches ``top_p`` is kept. Both keep at least
    ``min_tokens_to_keep`` tokens (HF keeps one more than the eos ids when sampling beams).
    """

    def __init__(self, temperature, top_k: int, use_top_p: bool, top_p, seed, min_tokens_to_keep: int = 1):
        self.temperature, self.top_k, self.top_p, self.seed = temperature, int(top_k), top_p, seed
        self.use_top_p = bool(use_top_p)
        self.keep = int(min_tokens_to_keep)
        if self.top_k:
            self.top_k = max(self.top_k, self.keep)

    def warp(self, scores):
        scores = scores / self.temperature
        if self.top_k:
            scores = tf.where(scores < kth_largest(scores, min(self.top_k, scores.shape[-1])), -np.inf, scores)
        if self.use_top_p:
            if self.top_k and self.top_k < scores.shape[-1]:
                scores = top_p_among_top_k(scores, self.top_p, self.top_k, self.keep)
            else:
                scores = tf.where(top_p_drop_mask(scores, self.top_p, self.keep), -np.inf, scores)
        return scores

    def __call__(self, scores, step):
        return sample_categorical(self.warp(scores), tf.stack([self.seed, step]))


def sample_categorical(scores, seed):
    """One draw per row [B] int32 from softmax(``scores`` [B, V]), by inverting the row's CDF at one
    uniform per row (``seed``: a [2] int32 stateless seed); a token of probability 0 is never drawn.

    Under XLA on CPU this costs about a softmax, where ``tf.random.stateless_categorical`` (a uniform
    per token) costs several decode steps of GPT-1 at batch 1.
    """
    probs = tf.nn.softmax(scores, axis=-1)  # (B, V)
    cdf = tf.cumsum(probs, axis=-1)
    u = tf.random.stateless_uniform([tf.shape(scores)[0], 1], seed) * cdf[:, -1:]  # (B, 1)
    allowed = probs > 0
    # the first allowed token whose CDF passes u; u rounded up to the total falls back to the last one
    hit = (cdf > u) & allowed
    last = tf.shape(probs)[1] - 1 - tf.argmax(tf.cast(tf.reverse(allowed, [1]), tf.int32), axis=-1,
                                                output_type=tf.int32)
    return tf.where(tf.reduce_any(hit, axis=-1), tf.argmax(tf.cast(hit, tf.int32), axis=-1, output_type=tf.int32),
                    last)


def sample_without_replacement(scores, k: int, seed):
    """``k`` distinct indices per row [B, k] drawn from softmax(``scores`` [B, M]) without replacement.

    Gumbel top-k: the order of the k largest ``scores + Gumbel noise`` is distributed as k successive
    draws without replacement (``torch.multinomial(..., replacement=False)``, which HF's beam sampling
    uses), so the indices come in draw order. ``seed`` is a [2] int32 stateless seed.
    """
    # Philox named explicitly: XLA on CPU generates "auto_select" uniforms about 25 times slower
    uniform = tf.random.stateless_uniform(tf.shape(scores), seed, minval=np.finfo(np.float32).tiny, maxval=1.0,
                                          alg="philox")
    gumbel = -tf.math.log(-tf.math.log(uniform))  # (B, M)
    return tf.math.top_k(scores + gumbel, k=k, sorted=True).indices


def make_sampler(options: DecodeOptions, params: DecodeParams):
    """The sampler of a greedy or sample program (``params`` as tensors)."""
    if options.mode == "greedy":
        return GreedySampler()
    if options.mode == "sample":
        return MultinomialSampler(params.temperature, options.top_k, options.use_top_p, params.top_p,
                                  params.seed)
    raise ValueError(f"mode {options.mode!r} has no sampler (beam search picks its own tokens)")
