"""Beam search over K beams: HF's algorithm (transformers 4.57 ``_beam_search``) with static shapes.

Running beams and finished hypotheses are kept apart; each step takes the top K2 = 2K continuations
(more with several eos ids) of all running beams, keeps the best K that did not just stop as the
next running beams, and merges the best K that stopped (eos, a stopping criterion such as a stop
string, or the last step) into the finished set, scored by sum log-prob / generated_length **
length_penalty.

Beam sampling (``DecodeOptions.do_sample``, HF's ``_beam_search`` with ``do_sample=True``) warps the
processed log-probs (temperature, top-k, top-p, keeping at least one more token than there are eos
ids) and draws the K2 candidates without replacement from softmax(warped log-probs + beam scores)
over all beams x vocabulary, in draw order, instead of taking the top K2; the rest is the same.

Shapes in comments: B prompts, K beams, K2 candidates per step, N bucketed new tokens, V vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfgpt.generation.program import (
    NEG_INF,
    CachedForward,
    DecodeOptions,
    ScoreProcessors,
    StopCheck,
    count_trace,
    put_step,
    record,
    static_dim,
)
from tfgpt.generation.sampling import MultinomialSampler, sample_without_replacement


class BeamState(NamedTuple):
    """The loop state of beam search (besides the step index and the KV cache)."""

    running: tf.Tensor          # [B, K, N] int32: generated tokens of the running beams
    running_scores: tf.Tensor   # [B, K] float32: their summed log-probs
    finished: tf.Tensor         # [B, K, N] int32: the best finished hypotheses so far
    finished_scores: tf.Tensor  # [B, K] float32: their length-normalised scores (NEG_INF: empty slot)
    finished_len: tf.Tensor     # [B, K] int32: their generated lengths
    is_finished: tf.Tensor      # [B, K] bool: the slot holds a finished hypothesis
    unsatisfied: tf.Tensor      # [B, 1] bool: a running beam may still beat the worst finished one
    going: tf.Tensor            # [] bool: some row still searches
    origin: tf.Tensor           # [B*K] int32: the flat beam each running beam extends (cache reorder)
    tokens: tf.Tensor           # [B*K] int32: the last token of each running beam
    running_idx: tuple = ()     # ([B, K, N] int32 flat beam index of each token, -1 after the end,) ...
    finished_idx: tuple = ()    # ... and of the finished hypotheses: HF's beam_indices, with output_scores
    score_log: tuple = ()       # ([B*K, N, V] processed log-probs of the running beams per step,)
    logit_log: tuple = ()       # ([B*K, N, V] raw logits per step,) with output_logits


def gather_beams(x, index):
    """x [B, M, ...], index [B, k] -> [B, k, ...]."""
    return tf.gather(x, index, batch_dims=1)


def build_beam_program(model, options: DecodeOptions):
    """The beam-search program of ``model``: a function to run under ``tf.function``.

    ``program(prompt_ids, prompt_mask, new_slots, max_new, params) -> (finished [B, K, N],
    finished_len [B, K], finished_scores [B, K])``, hypotheses best first; arguments as for
    ``build_sequential_program``. With ``options.output_scores`` or ``output_logits`` the result goes
    on with the number of steps run, then (output_scores) the finished hypotheses' beam indices
    [B, K, N] and the processed log-probs [B*K, N, V], then (output_logits) the raw logits [B*K, N, V].
    ``options.output_attentions`` / ``output_hidden_states`` add (after the number of steps) the
    prefill's attentions [L, B, H, P, T] / hidden states [L + 1, B, P, E] (one per prompt: every beam
    starts from them) and the running beams' at every later step i, [N, L, B*K, H, T] /
    [N, L + 1, B*K, E] (slot i; slot 0 unused).
    """
    if options.mode != "beam":
        raise ValueError(f"the beam program runs beam search, not {options.mode!r}")
    forward = CachedForward(model)
    K = options.num_beams
    K2 = max(2, 1 + options.n_eos) * K  # candidates kept per step (HF's beams_to_keep)
    V = forward.vocab_size
    has_eos = options.n_eos > 0
    stopper = StopCheck(options)
    early = options.early_stopping
    sampling = options.do_sample

    def program(prompt_ids, prompt_mask, new_slots, max_new, params):
        count_trace()
        B, P, N = static_dim(prompt_ids, 0), static_dim(prompt_ids, 1), static_dim(new_slots, 0)
        BK, T = B * K, P + N
        processors = ScoreProcessors(options, params)
        if sampling:  # HF's warpers for beams keep at least one non-eos token
            warper = MultinomialSampler(params.temperature, options.top_k, options.use_top_p, params.top_p,
                                        params.seed, min_tokens_to_keep=max(1, options.n_eos) + 1)
        lp = params.length_penalty
        max_new_f = tf.cast(max_new, tf.float32)
        cache_mask = tf.concat([prompt_mask, tf.ones([B, N], tf.int32)], axis=1)  # (B, T)
        cand_prompts = tf.repeat(prompt_ids, K2, axis=0)  # (B*K2, P): the candidates' prompts
        cand_real = tf.repeat(cache_mask > 0, K2, axis=0)  # (B*K2, T)
        logits, cache, attn, hidden = forward.next_outputs(  # prefill once
            prompt_ids, cache_mask, forward.empty_cache(B, T), 0, options.output_attentions,
            options.output_hidden_states)
        L, H, E = forward.n_layer, forward.n_head, forward.n_head * forward.head_dim
        attn_log = (tf.stack(attn), tf.zeros([N, L, BK, H, T])) if options.output_attentions else ()
        hidden_log = ((tf.stack(hidden), tf.zeros([N, L + 1, BK, E], forward.dtype))
                      if options.output_hidden_states else ())
        rep = lambda x: tf.repeat(x, K, axis=0)  # noqa: E731  (B, ...) -> (B*K, ...), a row's beams adjacent
        logits, cache_mask = rep(logits), rep(cache_mask)  # (BK, V), (BK, T)
        cache = tf.nest.map_structure(rep, cache)
        beam_prompts = rep(prompt_ids)  # (BK, P)
        prompt_lengths = rep(tf.reduce_sum(prompt_mask, axis=1))  # (BK,)
        columns = tf.range(T)[None, :]  # (1, T)
        top_mask = tf.range(K2) < K  # (K2,)
        flat_rows = tf.range(BK)  # (BK,)

        def step(i, logits, s: BeamState) -> BeamState:
            """Extend the running beams by one token from their logits [BK, V]."""
            buffer = tf.concat([beam_prompts, tf.reshape(s.running, [BK, N])], axis=1)  # (BK, T)
            valid = (cache_mask > 0) & (columns < P + i)  # (BK, T)
            log_probs = tf.nn.log_softmax(logits, axis=-1)  # (BK, V)
            log_probs = processors(buffer, log_probs, P + i, valid, prompt_lengths)
            if sampling:
                log_probs = warper.warp(log_probs)
            score_log = (record(s.score_log[0], flat_rows, i, log_probs),) if options.output_scores else ()
            logit_log = (record(s.logit_log[0], flat_rows, i, logits),) if options.output_logits else ()
            log_probs = log_probs + tf.reshape(s.running_scores, [BK, 1])
            flat = tf.reshape(log_probs, [B, K * V])
            if sampling:  # K2 draws in draw order (HF keeps that order), their scores gathered
                top_index = sample_without_replacement(flat, K2, tf.stack([params.seed, i]))  # (B, K2)
                top_scores = tf.gather(flat, top_index, batch_dims=1)
            else:
                top_scores, top_index = tf.math.top_k(flat, k=K2)  # (B, K2)
            beam = top_index // V
            token = top_index % V
            cand = gather_beams(s.running, beam)  # (B, K2, N)
            col = tf.one_hot(i, N, on_value=True, off_value=False)[None, None, :]  # (1, 1, N)
            cand = tf.where(col, token[:, :, None], cand)
            if options.output_scores:
                cand_idx = gather_beams(s.running_idx[0], beam)  # (B, K2, N)
                cand_idx = tf.where(col, (beam + tf.range(B)[:, None] * K)[:, :, None], cand_idx)
            stop = tf.fill([B, K2], i + 1 >= max_new)
            if has_eos:
                stop |= tf.reduce_any(tf.equal(token[:, :, None], params.eos_token_ids[None, None, :]), -1)
            if stopper:  # HF checks the criteria on every candidate, its new token included
                cand_buffer = tf.concat([cand_prompts, tf.reshape(cand, [B * K2, N])], axis=1)  # (B*K2, T)
                hit = stopper(cand_buffer, None, P + i + 1, cand_real & (columns < P + i + 1))
                stop |= tf.reshape(hit, [B, K2])

            # next running beams: the best K candidates that did not stop
            run_scores = top_scores + tf.cast(stop, tf.float32) * NEG_INF
            run_scores, pick = tf.math.top_k(run_scores, k=K)  # (B, K)
            running = gather_beams(cand, pick)  # (B, K, N)
            origin = gather_beams(beam, pick)  # (B, K): the old beam each new running beam extends
            tokens = gather_beams(token, pick)  # (B, K)

            # finished hypotheses: merge the candidates among the top K that stopped
            just = stop & top_mask[None, :]  # (B, K2)
            gen_len = tf.cast(i + 1, tf.float32)
            norm = top_scores / tf.pow(gen_len, lp)  # (B, K2)
            if early is True:
                norm += tf.cast(tf.reduce_all(s.is_finished, -1, keepdims=True), tf.float32) * NEG_INF
            norm += tf.cast(~s.unsatisfied, tf.float32) * NEG_INF
            norm += tf.cast(~just, tf.float32) * NEG_INF
            merged_scores = tf.concat([s.finished_scores, norm], 1)  # (B, K + K2)
            finished_scores, pick_f = tf.math.top_k(merged_scores, k=K)  # (B, K)
            finished = gather_beams(tf.concat([s.finished, cand], 1), pick_f)  # (B, K, N)
            finished_len = gather_beams(tf.concat([s.finished_len, tf.fill([B, K2], i + 1)], 1), pick_f)
            is_finished = gather_beams(tf.concat([s.is_finished, just], 1), pick_f)
            running_idx, finished_idx = (), ()
            if options.output_scores:
                running_idx = (gather_beams(cand_idx, pick),)
                finished_idx = (gather_beams(tf.concat([s.finished_idx[0], cand_idx], 1), pick_f),)

            # early-stop heuristic: can a running beam still beat the worst finished one?
            hyp_len = tf.where(lp > 0.0, max_new_f, gen_len) if early == "never" else gen_len
            best_running = run_scores[:, :1] / tf.pow(hyp_len, lp)  # (B, 1)
            worst = tf.where(is_finished, tf.reduce_min(finished_scores, 1, keepdims=True), NEG_INF)
            unsatisfied = s.unsatisfied & tf.reduce_any(best_running > worst, -1, keepdims=True)
            going = tf.reduce_any(unsatisfied) & ~tf.reduce_all(stop)
            if early is True:
                going &= ~tf.reduce_all(is_finished)
            flat_origin = tf.reshape(origin + tf.range(B)[:, None] * K, [BK])
            return BeamState(running, run_scores, finished, finished_scores, finished_len, is_finished,
                             unsatisfied, going, flat_origin, tf.reshape(tokens, [BK]), running_idx,
                             finished_idx, score_log, logit_log)

        start = BeamState(
            running=tf.fill([B, K, N], params.pad_token_id),
            running_scores=tf.tile(tf.concat([[0.0], tf.fill([K - 1], NEG_INF)], 0)[None, :], [B, 1]),
            finished=tf.fill([B, K, N], params.pad_token_id),
            finished_scores=tf.fill([B, K], NEG_INF),
            finished_len=tf.zeros([B, K], tf.int32),
            is_finished=tf.zeros([B, K], tf.bool),
            unsatisfied=tf.ones([B, 1], tf.bool),
            going=tf.constant(True),
            origin=tf.range(BK),
            tokens=tf.zeros([BK], tf.int32),
            running_idx=(tf.fill([B, K, N], -1),) if options.output_scores else (),
            finished_idx=(tf.fill([B, K, N], -1),) if options.output_scores else (),
            score_log=(tf.zeros([BK, N, V]),) if options.output_scores else (),
            logit_log=(tf.zeros([BK, N, V]),) if options.output_logits else (),
        )
        state = step(0, logits, start)

        def cond(i, s, cache, attn_log, hidden_log):
            return s.going & (i < max_new)

        def body(i, s, cache, attn_log, hidden_log):
            cache = tf.nest.map_structure(lambda c: tf.gather(c, s.origin), cache)  # follow the surviving beams
            logits, cache, attn, hidden = forward.next_outputs(
                s.tokens[:, None], cache_mask, cache, P + i - 1, options.output_attentions,
                options.output_hidden_states)  # (BK, V)
            attn_log = put_step(attn_log, i, attn)  # attn: L x (BK, H, 1, T)
            hidden_log = put_step(hidden_log, i, hidden)  # hidden: (L + 1) x (BK, 1, E)
            return i + 1, step(i, logits, s), cache, attn_log, hidden_log

        steps, end, _, attn_log, hidden_log = tf.while_loop(
            cond, body, (tf.constant(1), state, cache, attn_log, hidden_log), maximum_iterations=N)
        out = (end.finished, end.finished_len, end.finished_scores)
        if (options.output_scores or options.output_logits or options.output_attentions
                or options.output_hidden_states):
            out += (steps,) + end.finished_idx + end.score_log + end.logit_log + attn_log + hidden_log
        return out

    return program
