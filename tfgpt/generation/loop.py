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
    StopCheck,
    count_trace,
    put_step,
    record,
    static_dim,
)
from tfgpt.generation.sampling import make_sampler


class SequentialState(NamedTuple):
    """The loop state of the sequential program."""

    step: tf.Tensor       # [] int32: tokens emitted so far (the next one is new token ``step``)
    token: tf.Tensor      # [B] int32: the tokens emitted last
    done: tf.Tensor       # [B] bool: rows that emitted an eos token (they emit pad from then on)
    sequences: tf.Tensor  # [B, T] int32: the prompt in columns < P, new token i in column P + i
    cache: tuple          # the KV cache, L x (keys, values) [B, H, T, D] (L x [B, 2, H, T, D] at batch 1)
    score_log: tuple = ()  # ([B, N, V] float32 processed scores of every step,) with output_scores
    logit_log: tuple = ()  # ([B, N, V] float32 raw logits of every step,) with output_logits
    attn_log: tuple = ()   # (prefill [L, B, H, P, T], steps [N, L, B, H, T]) float32 with output_attentions
    hidden_log: tuple = ()  # (prefill [L + 1, B, P, E], steps [N, L + 1, B, E]) with output_hidden_states


def build_sequential_program(model, options: DecodeOptions):
    """The greedy / sampling program of ``model``: a function to run under ``tf.function``.

    ``program(prompt_ids, prompt_mask, new_slots, max_new, params) -> (tokens [B, N], steps)``:
    ``prompt_ids`` / ``prompt_mask`` [B, P] int32 left-padded prompts, ``new_slots`` any [N] tensor
    (only its length is read: the bucketed new-token count, so it is a shape of the compiled
    program), ``max_new`` [] int32 <= N, ``params`` a ``DecodeParams`` of tensors. ``tokens[:, :steps]``
    are the new tokens; rows that finished early hold ``pad_token_id`` after their eos token (or the
    token a stopping criterion stopped them on). With ``options.output_scores`` / ``output_logits``
    the result also holds the [B, N, V] buffers of processed scores / raw logits, in that order;
    then with ``options.output_attentions`` the prefill's attentions [L, B, H, P, T] and those of the
    query of every later step i over the cache, [N, L, B, H, T] (slot i; slot 0 unused), and with
    ``options.output_hidden_states`` the prefill's hidden states [L + 1, B, P, E] and the steps'
    [N, L + 1, B, E] (the embeddings output first).

    Chunks (``tfgpt.generation.streaming``): with ``stop_at`` ([] int32) the program runs only while
    ``step < min(stop_at, max_new)`` and returns its ``SequentialState``; ``resume`` (such a state)
    continues from it instead of prefilling. The steps are the same ops, so chunked decoding emits
    the tokens of one uninterrupted run (sampling draws are seeded by the step index).
    """
    if options.mode not in ("greedy", "sample"):
        raise ValueError(f"the sequential program runs greedy or sample, not {options.mode!r}")
    forward = CachedForward(model)
    has_eos = options.n_eos > 0
    stop = StopCheck(options)
    pads = has_eos or bool(stop)  # whether rows can finish before max_new

    def program(prompt_ids, prompt_mask, new_slots, max_new, params, resume=None, stop_at=None):
        count_trace()
        B, P, N = static_dim(prompt_ids, 0), static_dim(prompt_ids, 1), static_dim(new_slots, 0)
        T = P + N
        sampler = make_sampler(options, params)
        processors = ScoreProcessors(options, params)
        cache_mask = tf.concat([prompt_mask, tf.ones([B, N], tf.int32)], axis=1)  # (B, T)
        prompt_lengths = tf.reduce_sum(prompt_mask, axis=1)  # (B,)
        columns = tf.range(T)[None, :]  # (1, T)
        rows = tf.range(B)  # (B,)

        def choose(logits, step, sequences, done, logs):
            """Pick new token ``step`` of every row from its logits [B, V]; write it to the buffer."""
            cur_len = P + step
            valid = (cache_mask > 0) & (columns < cur_len)  # (B, T)
            scores = processors(sequences, logits, cur_len, valid, prompt_lengths)  # (B, V)
            token = sampler(scores, step)  # (B,)
            if pads:  # finished rows emit pad
                token = tf.where(done, params.pad_token_id, token)
            if has_eos:  # a row finishes on emitting any eos token
                done = done | tf.reduce_any(tf.equal(token[:, None], params.eos_token_ids[None, :]), axis=-1)
            at = tf.stack([rows, tf.fill([B], cur_len)], axis=1)  # (B, 2)
            sequences = tf.tensor_scatter_nd_update(sequences, at, token)
            if stop:  # or when a stopping criterion says so, judged on the buffer with the new token
                done = done | stop(sequences, scores, cur_len + 1, (cache_mask > 0) & (columns < cur_len + 1))
            score_log, logit_log = logs
            if options.output_scores:
                score_log = (record(score_log[0], rows, step, scores),)
            if options.output_logits:
                logit_log = (record(logit_log[0], rows, step, logits),)
            return token, sequences, done, (score_log, logit_log)

        limit = max_new if stop_at is None else tf.minimum(stop_at, max_new)

        def cond(state):
            return (state.step < limit) & ~tf.reduce_all(state.done)

        def body(state):
            logits, cache, attn, hidden = forward.next_outputs(
                state.token[:, None], cache_mask, state.cache, P + state.step - 1,
                options.output_attentions, options.output_hidden_states)  # (B, V)
            token, sequences, done, logs = choose(logits, state.step, state.sequences, state.done,
                                                  (state.score_log, state.logit_log))
            attn_log = put_step(state.attn_log, state.step, attn)  # attn: L x (B, H, 1, T)
            hidden_log = put_step(state.hidden_log, state.step, hidden)  # hidden: (L + 1) x (B, 1, E)
            return (SequentialState(state.step + 1, token, done, sequences, cache, *logs, attn_log, hidden_log),)

        if resume is None:
            V = forward.vocab_size
            logs = (((tf.zeros([B, N, V]),) if options.output_scores else ()),
                    ((tf.zeros([B, N, V]),) if options.output_logits else ()))
            sequences = tf.concat([prompt_ids, tf.fill([B, N], params.pad_token_id)], axis=1)  # (B, T)
            logits, cache, attn, hidden = forward.next_outputs(  # prefill
                prompt_ids, cache_mask, forward.empty_cache(B, T), 0, options.output_attentions,
                options.output_hidden_states)
            token, sequences, done, logs = choose(logits, 0, sequences, tf.zeros([B], tf.bool), logs)
            L, H, E = forward.n_layer, forward.n_head, forward.n_head * forward.head_dim
            attn_log = ((tf.stack(attn), tf.zeros([N, L, B, H, T])) if options.output_attentions else ())
            hidden_log = ((tf.stack(hidden), tf.zeros([N, L + 1, B, E], forward.dtype))
                          if options.output_hidden_states else ())
            start = SequentialState(tf.constant(1), token, done, sequences, cache, *logs, attn_log, hidden_log)
        else:
            start = SequentialState(*resume)
        (end,) = tf.while_loop(cond, body, (start,), maximum_iterations=N)
        if stop_at is not None:
            return end
        return outputs(end, P)

    return program


def outputs(state: SequentialState, P: int) -> tuple:
    """The program's result from its final state: (tokens [B, N], steps, *score / logit / attention /
    hidden-state buffers) (``run_chunked`` returns the same)."""
    return ((state.sequences[:, P:], state.step) + tuple(state.score_log) + tuple(state.logit_log)
            + tuple(state.attn_log) + tuple(state.hidden_log))
