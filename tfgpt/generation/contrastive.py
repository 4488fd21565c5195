"""Contrastive search (Su et al. 2022; HF's ``penalty_alpha`` > 0 with ``top_k`` > 1) as one XLA program.

Each step takes the k most likely next tokens of every row (softmax of the processed scores), runs the
model once on all B * k candidates over a KV cache expanded to k copies per row, and keeps per row the
candidate with the best ``(1 - alpha) * p(candidate) - alpha * max_j cos(h_candidate, h_j)``, where
``h_j`` are the last-layer hidden states of the row's real tokens so far (prompt and generated; the
degeneration penalty). The chosen candidate's logits are the next step's, so a step costs one forward
pass of B * k tokens, as in HF's ``_contrastive_search``.

Only the chosen candidate's keys and values at the new position are copied to the row's other k - 1
cache copies, instead of gathering the whole cache. Shapes: B rows, k candidates, P bucketed prompt,
N bucketed new tokens, T = P + N, E hidden size, V vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from tfgpt.generation.program import (
    CachedForward,
    DecodeOptions,
    ScoreProcessors,
    StopCheck,
    count_trace,
    record,
    static_dim,
)


class ContrastiveState(NamedTuple):
    """The loop state of contrastive search."""

    step: tf.Tensor       # [] int32: tokens emitted so far
    logits: tf.Tensor     # [B, V] float32: raw logits of the next token (the chosen candidate's)
    done: tf.Tensor       # [B] bool: rows that emitted an eos token
    sequences: tf.Tensor  # [B, T] int32: the prompt in columns < P, new token i in column P + i
    context: tf.Tensor    # [B, T, E] float32: unit-norm last hidden states of the tokens so far
    cache: tuple          # k copies of each row's cache, L x (keys, values) [B*k, H, T, D] or L x [B*k, 2, H, T, D]
    score_log: tuple = ()  # ([B, N, V] float32 processed scores of every step,) with output_scores
    logit_log: tuple = ()  # ([B, N, V] float32 raw logits of every step,) with output_logits


def unit_norm(x):
    """``x / ||x||`` over the last axis (HF's normalisation; a zero vector stays zero)."""
    norm = tf.norm(x, axis=-1, keepdims=True)
    return x / tf.where(norm > 0, norm, tf.ones_like(norm))


def degeneration_penalty(context, candidates, valid):
    """max_j cos(candidate, context_j) over the ``valid`` columns: context [B, T, E] (unit norm),
    candidates [B, k, E] (unit norm), valid [B, T] bool -> [B, k]."""
    cosine = tf.einsum("bke,bte->bkt", candidates, context)  # (B, k, T)
    cosine = tf.where(valid[:, None, :], cosine, tf.float32.min)  # HF: + (1 - mask) * finfo.min
    return tf.reduce_max(cosine, axis=-1)


def contrastive_scores(top_probs, penalty, alpha):
    """HF's ranking score ``(1 - alpha) * p - alpha * penalty`` of each candidate [B, k]."""
    return (1.0 - alpha) * top_probs - alpha * penalty


def build_contrastive_program(model, options: DecodeOptions):
    """The contrastive-search program of ``model``: a function to run under ``tf.function``.

    Same call and result as ``build_sequential_program``: ``program(prompt_ids, prompt_mask,
    new_slots, max_new, params) -> (tokens [B, N], steps)``; ``options.top_k`` is k and
    ``params.penalty_alpha`` the penalty's weight; stopping criteria and the score / logit buffers as
    in the sequential program.
    """
    if options.mode != "contrastive":
        raise ValueError(f"the contrastive program runs contrastive search, not {options.mode!r}")
    forward = CachedForward(model)
    k = options.top_k
    has_eos = options.n_eos > 0
    stop = StopCheck(options)
    pads = has_eos or bool(stop)

    def program(prompt_ids, prompt_mask, new_slots, max_new, params):
        count_trace()
        B, P, N = static_dim(prompt_ids, 0), static_dim(prompt_ids, 1), static_dim(new_slots, 0)
        T, BK = P + N, B * k
        processors = ScoreProcessors(options, params)
        alpha = params.penalty_alpha
        cache_mask = tf.concat([prompt_mask, tf.ones([B, N], tf.int32)], axis=1)  # (B, T)
        cand_mask = tf.repeat(cache_mask, k, axis=0)  # (BK, T): a row's k candidates adjacent
        prompt_lengths = tf.reduce_sum(prompt_mask, axis=1)  # (B,)
        columns = tf.range(T)[None, :]  # (1, T)
        rows = tf.range(B)  # (B,)

        hidden, cache = forward.hidden_states(prompt_ids, cache_mask, forward.empty_cache(B, T), 0)  # prefill
        logits = forward.logits(hidden[:, -1, :])  # (B, V)
        E = hidden.shape[-1]
        context = tf.concat([unit_norm(tf.cast(hidden, tf.float32)), tf.zeros([B, N, E])], axis=1)  # (B, T, E)
        cache = tf.nest.map_structure(lambda c: tf.repeat(c, k, axis=0), cache)  # (BK, ...) each
        sequences = tf.concat([prompt_ids, tf.fill([B, N], params.pad_token_id)], axis=1)  # (B, T)

        def cond(s):
            return (s.step < max_new) & ~tf.reduce_all(s.done)

        def body(s):
            cur_len = P + s.step  # the new token's column
            valid = (cache_mask > 0) & (columns < cur_len)  # (B, T)
            scores = processors(s.sequences, s.logits, cur_len, valid, prompt_lengths)  # (B, V)
            top_probs, top_ids = tf.math.top_k(tf.nn.softmax(scores, axis=-1), k=k)  # (B, k)

            # every candidate through the model, each over its own copy of the row's cache
            cand_hidden, cache = forward.hidden_states(tf.reshape(top_ids, [BK, 1]), cand_mask, s.cache, cur_len)
            cand_hidden = cand_hidden[:, 0, :]  # (BK, E)
            cand_logits = tf.reshape(forward.logits(cand_hidden), [B, k, -1])  # (B, k, V)
            cand_unit = unit_norm(tf.reshape(tf.cast(cand_hidden, tf.float32), [B, k, E]))  # (B, k, E)

            penalty = degeneration_penalty(s.context, cand_unit, valid)  # (B, k)
            best = tf.argmax(contrastive_scores(top_probs, penalty, alpha), axis=-1, output_type=tf.int32)  # (B,)
            token = tf.gather(top_ids, best, batch_dims=1)  # (B,)
            done = s.done
            if pads:  # finished rows emit pad
                token = tf.where(s.done, params.pad_token_id, token)
            if has_eos:  # a row finishes on emitting any eos token
                done = s.done | tf.reduce_any(tf.equal(token[:, None], params.eos_token_ids[None, :]), axis=-1)
            at = tf.stack([rows, tf.fill([B], cur_len)], axis=1)  # (B, 2)
            sequences = tf.tensor_scatter_nd_update(s.sequences, at, token)
            if stop:
                done = done | stop(sequences, scores, cur_len + 1, (cache_mask > 0) & (columns < cur_len + 1))
            score_log = (record(s.score_log[0], rows, s.step, scores),) if options.output_scores else ()
            logit_log = (record(s.logit_log[0], rows, s.step, s.logits),) if options.output_logits else ()
            chosen = tf.gather(cand_unit, best, batch_dims=1)  # (B, E)
            context = tf.tensor_scatter_nd_update(s.context, at, chosen)
            logits = tf.gather(cand_logits, best, batch_dims=1)  # (B, V)

            # the chosen candidate's keys / values at column cur_len go to all k copies of its row
            pick = tf.repeat(rows * k + best, k)  # (BK,)
            cache = tf.nest.map_structure(lambda c: copy_column(c, pick, cur_len), cache)
            return (ContrastiveState(s.step + 1, logits, done, sequences, context, cache, score_log, logit_log),)

        V = forward.vocab_size
        start = ContrastiveState(tf.constant(0), logits, tf.zeros([B], tf.bool), sequences, context, cache,
                                 (tf.zeros([B, N, V]),) if options.output_scores else (),
                                 (tf.zeros([B, N, V]),) if options.output_logits else ())
        (end,) = tf.while_loop(cond, body, (start,), maximum_iterations=N)
        return (end.sequences[:, P:], end.step) + end.score_log + end.logit_log  # (B, N), [], ([B, N, V],)*

    return program


def copy_column(cache, pick, column):
    """cache [BK, ..., T, D] (keys or values [BK, H, T, D], or both [BK, 2, H, T, D]) with column
    ``column`` of every row replaced by that of row ``pick[row]``."""
    shape, lead = tf.unstack(tf.shape(cache)), cache.shape.rank - 2
    start = tf.stack([0] * lead + [column, 0])
    col = tf.slice(cache, start, tf.stack(shape[:lead] + [1, shape[-1]]))  # (BK, ..., 1, D)
    return dynamic_update_slice(cache, tf.gather(col, pick), start)
