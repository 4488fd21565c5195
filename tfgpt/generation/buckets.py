"""Length buckets of the compiled programs: prompt and new-token lengths rounded up to powers of two.

Varied calls then share a few compiled programs. The same functions run on Python ints (``generate``)
and on scalar int32 tensors inside a graph (the exported text signatures), so both pick the same
buckets.
"""

from __future__ import annotations

import tensorflow as tf

MIN_PROMPT_BUCKET = 8   # smallest bucketed prompt length P
MIN_NEW_BUCKET = 16     # smallest bucketed new-token count N


def bucket(n, minimum: int):
    """The smallest ``minimum * 2**k`` >= ``n``; ``n`` a Python int or a scalar int32 tensor."""
    if tf.is_tensor(n):
        return tf.while_loop(lambda b: b < n, lambda b: (b * 2,), (tf.constant(minimum, n.dtype),))[0]
    b = minimum
    while b < n:
        b *= 2
    return b


def cache_lengths(prompt_len, new_tokens, n_positions: int):
    """Bucketed (P, N) with prompt_len <= P, new_tokens <= N and P + N <= n_positions.

    The caller guarantees ``prompt_len + new_tokens <= n_positions``; buckets are clipped to fit.
    Python ints give Python ints; scalar int32 tensors give tensors (for use inside a graph).
    """
    in_graph = tf.is_tensor(prompt_len) or tf.is_tensor(new_tokens)
    where = tf.where if in_graph else (lambda cond, a, b: a if cond else b)
    maximum = tf.maximum if in_graph else max
    p = bucket(prompt_len, MIN_PROMPT_BUCKET)
    n = bucket(new_tokens, MIN_NEW_BUCKET)
    n = where(p + n > n_positions, maximum(new_tokens, n_positions - p), n)
    p = where(p + n > n_positions, n_positions - n, p)
    return p, n
