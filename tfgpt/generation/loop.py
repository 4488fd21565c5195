"""The sequential program: greedy search or sampling, one token per row per step.

It prefills the prompt into the KV cache, then runs one ``tf.while_loop`` step per token through the
model's own blocks, until ``max_new`` tokens or every row emitted an eos token. Each step: raw logits
[B, V] -> score processors -> sampler -> eos / padding bookkeeping -> the token buffer.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfgpt.generation.program import (
    CachedForward,
    DecodeOptions,
    ScoreProcessors,
    count_trace,
    static_dim,
)
from tfgpt.generation.sampling import make_sampler


class SequentialState(NamedTuple):
    """The loop state of the sequential program."""

    step: tf.Tensor       # [] int32: tokens emitted so far (the next one is new token ``step``)
    token: tf.Tensor      # [B] int32: the tokens emitted last
    done: tf.Tensor       # [B] bool: rows that emitted an eos token (they emit pad from then on)
    sequences: tf.Tensor  # [B, T] int32: the prompt in columns < P, new token i in column P + i
    cache: tuple          # L x [B, 2, H, T, D]: the KV cache


def build_sequential_program(model, options: DecodeOptions):
    """The greedy / sampling program of ``model``: a function to run under ``tf.function``.

    ``program(prompt_ids, prompt_mask, new_slots, max_new, params) -> (tokens [B, N], steps)``:
    ``prompt_ids`` / ``prompt_mask`` [B, P] int32 left-padded prompts, ``new_slots`` any [N] tensor
    (only its length is read: the bucketed new-token count, so it is a shape of the compiled
    program), ``max_new`` [] int32 <= N, ``params`` a ``DecodeParams`` of tensors. ``tokens[:, :steps]``
    are the new tokens; rows that finished early hold ``pad_token_id`` after their eos token.

    Chunks (``tfgpt.generation.streaming``): with ``stop`` ([] int32) the program runs only while
    ``step < min(stop, max_new)`` and returns its ``SequentialState``; ``resume`` (such a state)
    continues from it instead of prefilling. The steps are the same ops, so chunked decoding emits
    the tokens of one uninterrupted run (sampling draws are seeded by the step index).
    """
    if options.mode not in ("greedy", "sample"):
        raise ValueError(f"the sequential program runs greedy or sample, not {options.mode!r}")
    forward = CachedForward(model)
    has_eos = options.n_eos > 0

    def program(prompt_ids, prompt_mask, new_slots, max_new, params, resume=None, stop=None):
        count_trace()
        B, P, N = static_dim(prompt_ids, 0), static_dim(prompt_ids, 1), static_dim(new_slots, 0)
        T = P + N
        sampler = make_sampler(options, params)
        processors = ScoreProcessors(options, params)
        cache_mask = tf.concat([prompt_mask, tf.ones([B, N], tf.int32)], axis=1)  # (B, T)
        prompt_lengths = tf.reduce_sum(prompt_mask, axis=1)  # (B,)
        columns = tf.range(T)[None, :]  # (1, T)
        rows = tf.range(B)  # (B,)

        def choose(logits, step, sequences, done):
            """Pick new token ``step`` of every row from its logits [B, V]; write it to the buffer."""
            cur_len = P + step
            valid = (cache_mask > 0) & (columns < cur_len)  # (B, T)
            scores = processors(sequences, logits, cur_len, valid, prompt_lengths)  # (B, V)
            token = sampler(scores, step)  # (B,)
            if has_eos:  # finished rows emit pad; a row finishes on emitting any eos token
                token = tf.where(done, params.pad_token_id, token)
                done = done | tf.reduce_any(tf.equal(token[:, None], params.eos_token_ids[None, :]), axis=-1)
            at = tf.stack([rows, tf.fill([B], cur_len)], axis=1)  # (B, 2)
            return token, tf.tensor_scatter_nd_update(sequences, at, token), done

        limit = max_new if stop is None else tf.minimum(stop, max_new)

        def cond(state):
            return (state.step < limit) & ~tf.reduce_all(state.done)

        def body(state):
            logits, cache = forward.next_logits(state.token[:, None], cache_mask, state.cache,
                                                P + state.step - 1)  # (B, V)
            token, sequences, done = choose(logits, state.step, state.sequences, state.done)
            return (SequentialState(state.step + 1, token, done, sequences, cache),)

        if resume is None:
            sequences = tf.concat([prompt_ids, tf.fill([B, N], params.pad_token_id)], axis=1)  # (B, T)
            logits, cache = forward.next_logits(prompt_ids, cache_mask, forward.empty_cache(B, T), 0)  # prefill
            token, sequences, done = choose(logits, 0, sequences, tf.zeros([B], tf.bool))
            start = SequentialState(tf.constant(1), token, done, sequences, cache)
        else:
            start = SequentialState(*resume)
        (end,) = tf.while_loop(cond, body, (start,), maximum_iterations=N)
        if stop is not None:
            return end
        return end.sequences[:, P:], end.step  # (B, N), []

    return program
