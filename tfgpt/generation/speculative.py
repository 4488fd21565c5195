"""Speculative decoding in one XLA program: prompt lookup and assisted (draft-model) generation.

Batch-1 decoding reads every weight once per token; verifying several drafted tokens in one pass
over the KV cache reads them once per *pass*. Each ``tf.while_loop`` iteration

1. drafts up to K tokens per row: by prompt lookup (HF's ``PromptLookupCandidateGenerator``: the
   last n-gram, n from ``max_matching_ngram_size`` down to 1, is looked up in the prompt and the
   tokens generated so far; the up-to-K tokens after its first earlier occurrence are the drafts),
   or greedily by a smaller ``assistant_model`` with a KV cache of its own;
2. runs the target model once over S = K + 1 tokens (the last emitted token and the drafts) at the
   cache index, scoring every drafted position;
3. accepts the longest prefix of drafts the target agrees with (greedy: its argmax; sampling: the
   draft token with probability min(1, p/q), else a token from norm(max(0, p - q)), q one-hot at the
   draft, which keeps the target distribution), plus the target's own next token;
4. moves the cache index past the accepted tokens only: the cache entries of rejected drafts lie
   beyond it, hidden by the causal mask until they are overwritten.

Rows advance together by the fewest tokens any unfinished row accepted (the cache index is one
scalar); greedy results are the plain greedy tokens, row for row, left padding included. Iterations
with no drafts (no n-gram match anywhere, or too close to the end of the cache for S tokens) run the
ordinary one-token step instead of the S-token pass.

Shapes in comments: B rows, P bucketed prompt, N bucketed new tokens, K drafts per pass, S = K + 1,
T the cache length, W = P + N + S the token buffer, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from tfgpt.generation.program import (
    CachedForward,
    DecodeOptions,
    ScoreProcessors,
    count_trace,
    static_dim,
)
from tfgpt.generation.sampling import make_sampler

SCHEDULES = ("constant", "heuristic", "heuristic_transient")
DEFAULT_PROMPT_LOOKUP_NGRAM = 2   # HF's PromptLookupCandidateGenerator default max_matching_ngram_size
DEFAULT_NUM_ASSISTANT_TOKENS = 20  # HF's GenerationConfig.num_assistant_tokens
DEFAULT_SCHEDULE = "constant"      # HF's GenerationConfig.num_assistant_tokens_schedule


@dataclass(frozen=True)
class SpeculativeOptions:
    """The compile-time choices of a speculative program.

    ``source`` is "prompt_lookup" or "assistant"; ``num_tokens`` K is the static number of drafts
    scored per pass (the verification width is K + 1); ``max_matching_ngram_size`` bounds the
    looked-up n-gram; ``schedule`` is HF's ``num_assistant_tokens_schedule``: "constant" drafts K
    tokens each pass, the heuristic ones start at ``num_assistant_tokens``, add 2 after a pass that
    accepted every draft and take 1 away (not below 1) otherwise, up to K.
    """

    source: str = "prompt_lookup"
    num_tokens: int = 10
    max_matching_ngram_size: int = DEFAULT_PROMPT_LOOKUP_NGRAM
    schedule: str = "constant"

    def __post_init__(self):
        if self.source not in ("prompt_lookup", "assistant"):
            raise ValueError(f"source must be 'prompt_lookup' or 'assistant', got {self.source!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"num_assistant_tokens_schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.num_tokens < 1 or self.max_matching_ngram_size < 1:
            raise ValueError("num_tokens and max_matching_ngram_size must be >= 1")


class SpeculativeStats(NamedTuple):
    """What one speculative ``generate`` call did: target passes over the weights in the decode loop
    (the prefill not counted), drafted and accepted tokens (summed over unfinished rows), and the
    draft count the heuristic schedule ended on."""

    passes: int
    drafted: int
    accepted: int
    new_tokens: int
    num_assistant_tokens: int

    @property
    def acceptance_rate(self) -> float:
        """Accepted / drafted tokens (0 when nothing was drafted)."""
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def tokens_per_pass(self) -> float:
        """New tokens per pass of the target over its weights, the prefill's token included."""
        return self.new_tokens / (self.passes + 1)


class SpeculativeState(NamedTuple):
    """The loop state of the speculative program."""

    step: tf.Tensor        # [] int32: new tokens emitted by every row so far
    done: tf.Tensor        # [B] bool: rows that emitted an eos token
    finish: tf.Tensor      # [B] int32: the new-token count at which a row finished (N + S: not yet)
    sequences: tf.Tensor   # [B, W] int32: prompt in columns < P, new token i in column P + i
    cache: tuple           # the target's KV cache (CachedForward.empty_cache), valid below column P + step - 1
    draft_cache: tuple     # the assistant's cache, valid below column P + step - 2 (empty: prompt lookup)
    num_draft: tf.Tensor   # [] int32: drafts to propose next pass (the schedule's value)
    passes: tf.Tensor      # [] int32
    drafted: tf.Tensor     # [] int32
    accepted: tf.Tensor    # [] int32


def prompt_lookup_drafts(sequences, start, length, num_tokens: int, max_ngram: int):
    """HF's prompt lookup for every row: (drafts [B, K] int32, counts [B] int32).

    ``sequences`` [B, W] holds row b's real tokens in columns [start[b], length); the last n-gram
    (n from ``max_ngram`` down to 1, n < the row's length) is matched against every earlier window
    of real tokens, the first match wins, and the drafts are the up-to-K tokens after it (never past
    ``length``). Rows without a match get count 0; drafts past a row's count are 0.
    """
    B, W = static_dim(sequences, 0), static_dim(sequences, 1)
    cols = tf.range(W)[None, :]  # (1, W)
    found = tf.zeros([B], tf.bool)
    source = tf.zeros([B], tf.int32)  # the column of the first draft
    for n in range(max_ngram, 0, -1):
        ngram = tf.slice(sequences, tf.stack([0, length - n]), [-1, n])  # (B, n)
        match = (cols >= start[:, None]) & (cols + n < length)  # (B, W): windows of real, earlier tokens
        for j in range(n):
            shifted = tf.concat([sequences[:, j:], tf.fill([B, j], -1)], axis=1)  # (B, W): column i + j
            match &= tf.equal(shifted, ngram[:, j:j + 1])
        hit = tf.reduce_any(match, axis=1) & (length - start > n)  # (B,)
        first = tf.argmax(tf.cast(match, tf.int32), axis=1, output_type=tf.int32)  # first match
        source = tf.where(hit & ~found, first + n, source)
        found |= hit
    counts = tf.where(found, tf.minimum(num_tokens, length - source), 0)  # (B,)
    offsets = tf.range(num_tokens)[None, :]  # (1, K)
    index = tf.minimum(source[:, None] + offsets, W - 1)  # (B, K)
    drafts = tf.where(offsets < counts[:, None], tf.gather(sequences, index, batch_dims=1), 0)
    return drafts, counts


def leading_true(x):
    """The number of leading True values of each row of a bool [B, K] tensor: [B] int32."""
    return tf.reduce_sum(tf.math.cumprod(tf.cast(x, tf.int32), axis=1), axis=1)


def build_speculative_program(model, options: DecodeOptions, speculative: SpeculativeOptions,
                              assistant=None):
    """The speculative greedy / sampling program of ``model``: a function to run under ``tf.function``.

    ``program(prompt_ids, prompt_mask, new_slots, max_new, params, num_draft) -> (tokens [B, N],
    steps, passes, drafted, accepted, num_draft)``; the first five arguments as for
    ``build_sequential_program``, ``num_draft`` [] int32 the schedule's first draft count (<= K).
    """
    if options.mode not in ("greedy", "sample"):
        raise ValueError(f"speculative decoding runs greedy or sample, not {options.mode!r}")
    if (assistant is None) != (speculative.source == "prompt_lookup"):
        raise ValueError("an assistant model is needed exactly when source='assistant'")
    forward = CachedForward(model)
    drafter = CachedForward(assistant) if assistant is not None else None
    K = speculative.num_tokens
    S = K + 1
    has_eos = options.n_eos > 0
    sampling = options.mode == "sample"
    heuristic = speculative.schedule != "constant"

    def program(prompt_ids, prompt_mask, new_slots, max_new, params, num_draft):
        count_trace()
        B, P, N = static_dim(prompt_ids, 0), static_dim(prompt_ids, 1), static_dim(new_slots, 0)
        n_positions = model.config.n_positions
        if drafter is not None:
            n_positions = min(n_positions, assistant.config.n_positions)
        static = isinstance(P, int) and isinstance(N, int)  # else inside another graph (the export)
        T = (min if static else tf.minimum)(P + N + S, n_positions)  # the cache: slack for S where it fits
        W = P + N + S  # the token buffer: a pass may write S columns past the last needed one
        sampler = make_sampler(options, params)
        processors = ScoreProcessors(options, params)
        cache_mask = tf.concat([prompt_mask, tf.ones([B, T - P], tf.int32)], axis=1)  # (B, T)
        buffer_mask = tf.concat([prompt_mask, tf.ones([B, W - P], tf.int32)], axis=1)  # (B, W)
        prompt_lengths = tf.reduce_sum(prompt_mask, axis=1)  # (B,)
        start = P - prompt_lengths  # (B,): the first real column of each row
        columns = tf.range(W)[None, :]  # (1, W)
        offsets = tf.range(S)[None, :]  # (1, S)

        def scores_at(sequences, logits, cur_len):
            """The processed scores [B, V] of the token for column ``cur_len``."""
            valid = (buffer_mask > 0) & (columns < cur_len)  # (B, W)
            return processors(sequences, logits, cur_len, valid, prompt_lengths)

        def settle(tokens, counts, step, done, finish):
            """Eos bookkeeping of ``tokens`` [B, S] (new tokens step..step+S-1 per row, the first
            ``counts`` [] of them kept): finished rows emit pad; returns (tokens, done, finish)."""
            kept = offsets < counts  # (1, S)
            if not has_eos:
                return tf.where(kept, tokens, params.pad_token_id), done, finish
            is_eos = tf.reduce_any(tf.equal(tokens[:, :, None], params.eos_token_ids[None, None, :]), -1) & kept
            before = tf.cumsum(tf.cast(is_eos, tf.int32), axis=1, exclusive=True) > 0  # (B, S): after an eos
            pad = done[:, None] | before | ~kept
            hit = tf.reduce_any(is_eos, axis=1) & ~done  # (B,)
            first = tf.argmax(tf.cast(is_eos, tf.int32), axis=1, output_type=tf.int32)
            finish = tf.where(hit, step + first + 1, finish)
            return tf.where(pad, params.pad_token_id, tokens), done | hit, finish

        def pick_first(logits, sequences):
            """New token 0 (column P) from the prefill's logits, as the sequential program picks it."""
            return sampler(scores_at(sequences, logits, P), 0)  # (B,)

        def single_step(state, length):
            """The ordinary one-token step: (tokens [B, S] with only column 0 used, accepted [B],
            cache, draft cache, drafted [B])."""
            last = tf.slice(state.sequences, tf.stack([0, length - 1]), [-1, 1])  # (B, 1)
            logits, cache = forward.next_logits(last, cache_mask, state.cache, length - 1)  # (B, V)
            scores = scores_at(state.sequences, logits, length)
            token = sampler(scores, 3 * state.passes + 3)  # random streams: 0 first token, 3i+1..3i+3 pass i
            tokens = tf.concat([token[:, None], tf.zeros([B, K], tf.int32)], axis=1)  # (B, S)
            zeros = tf.zeros([B], tf.int32)
            return tokens, zeros, cache, state.draft_cache, zeros

        def assistant_drafts(state, length, limit):
            """``limit`` [] greedy drafts of the assistant: (drafts [B, K], its cache)."""
            two = tf.slice(state.sequences, tf.stack([0, length - 2]), [-1, 2])  # (B, 2)
            logits, dcache = drafter.next_logits(two, cache_mask, state.draft_cache, length - 2)
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            drafts = tf.tensor_scatter_nd_update(tf.zeros([K, B], tf.int32), [[0]], token[None, :])  # (K, B)

            def body(j, token, drafts, dcache):
                logits, dcache = drafter.next_logits(token[:, None], cache_mask, dcache, length + j - 1)
                token = tf.argmax(logits, axis=-1, output_type=tf.int32)
                return j + 1, token, tf.tensor_scatter_nd_update(drafts, [[j]], token[None, :]), dcache

            _, _, drafts, dcache = tf.while_loop(lambda j, *_: j < limit, body, (1, token, drafts, dcache),
                                                 maximum_iterations=K - 1)
            return tf.transpose(drafts), dcache  # (B, K)

        def verify_step(state, length, drafts, counts, dcache):
            """The S-token pass: (tokens [B, S], accepted [B], cache, draft cache, counts [B])."""
            last = tf.slice(state.sequences, tf.stack([0, length - 1]), [-1, 1])  # (B, 1)
            logits, cache = forward.all_logits(tf.concat([last, drafts], axis=1), cache_mask, state.cache,
                                               length - 1)  # (B, S, V)
            candidate = tf.tensor_scatter_nd_update(  # the drafts in place, for the processors
                state.sequences, tf.stack([tf.repeat(tf.range(B), K), tf.tile(length + tf.range(K), [B])], axis=1),
                tf.reshape(drafts, [-1]))
            scores = tf.stack([scores_at(candidate, logits[:, j], length + j) for j in range(S)], axis=1)
            draftable = tf.range(K)[None, :] < counts[:, None]  # (B, K)
            if not sampling:
                chosen = tf.argmax(scores, axis=-1, output_type=tf.int32)  # (B, S)
                accepted = leading_true(tf.equal(chosen[:, :K], drafts) & draftable)  # (B,)
                return chosen, accepted, cache, dcache, counts
            warped = tf.reshape(sampler.warp(tf.reshape(scores, [B * S, -1])), [B, S, -1])  # (B, S, V)
            probs = tf.nn.softmax(warped, axis=-1)
            p_draft = tf.gather(probs[:, :K], drafts[:, :, None], batch_dims=2)[:, :, 0]  # (B, K)
            seed = tf.stack([params.seed, 3 * state.passes + 1])
            uniform = tf.random.stateless_uniform([B, K], seed)
            accepted = leading_true((uniform < p_draft) & draftable)  # (B,)
            # The token after the accepted drafts: from norm(max(0, p - q)) with q one-hot at the
            # rejected draft (p with the draft removed), or from p where every draft was accepted.
            is_draft = tf.one_hot(tf.concat([drafts, tf.zeros([B, 1], tf.int32)], 1), forward.vocab_size,
                                  on_value=True, off_value=False)  # (B, S, V)
            is_draft &= tf.concat([draftable, tf.zeros([B, 1], tf.bool)], axis=1)[:, :, None]
            residual = tf.where(is_draft, -np.inf, warped)
            residual = tf.where(tf.reduce_max(residual, -1, keepdims=True) > -np.inf, residual, warped)
            draws = tf.random.stateless_categorical(tf.reshape(residual, [B * S, -1]), 1,
                                                    tf.stack([params.seed, 3 * state.passes + 2]),
                                                    dtype=tf.int32)
            draws = tf.reshape(draws, [B, S])
            padded = tf.concat([drafts, tf.zeros([B, 1], tf.int32)], axis=1)  # (B, S)
            chosen = tf.where(offsets < accepted[:, None], padded, draws)
            return chosen, accepted, cache, dcache, counts

        def cond(state):
            return (state.step < max_new) & ~tf.reduce_all(state.done)

        def body(state):
            length = P + state.step  # filled columns; the last one is not in the target cache yet
            limit = tf.maximum(tf.minimum(state.num_draft, max_new - state.step - 1), 0)  # drafts worth scoring
            fits = length - 1 + S <= T  # the S-token pass stays inside the cache
            if drafter is None:
                drafts, counts = prompt_lookup_drafts(state.sequences, start, length, K,
                                                      speculative.max_matching_ngram_size)
                counts = tf.where(fits, tf.minimum(counts, limit), 0)
                verify = lambda: verify_step(state, length, drafts, counts, state.draft_cache)  # noqa: E731
            else:
                counts = tf.fill([B], tf.where(fits, limit, 0))

                def verify():
                    drafts, dcache = assistant_drafts(state, length, counts[0])
                    return verify_step(state, length, drafts, counts, dcache)
            active = ~state.done
            use_verify = tf.reduce_any((counts > 0) & active)
            tokens, accepted, cache, dcache, counts = tf.cond(
                use_verify, verify, lambda: single_step(state, length))
            # Rows advance together by the fewest tokens an unfinished row accepted, plus one.
            advance = tf.reduce_min(tf.where(active, accepted, K)) + 1
            tokens, done, finish = settle(tokens, advance, state.step, state.done, state.finish)
            sequences = tf.tensor_scatter_nd_update(  # write S columns at `length` (pads past `advance`)
                state.sequences,
                tf.stack([tf.repeat(tf.range(B), S), tf.tile(length + tf.range(S), [B])], axis=1),
                tf.reshape(tokens, [-1]))
            num_draft = state.num_draft
            if heuristic:  # HF: +2 when every draft was accepted, else -1 (not below 1); at most K
                all_in = tf.reduce_min(tf.where(active, accepted - counts, 0)) >= 0
                num_draft = tf.where(all_in, tf.minimum(num_draft + 2, K), tf.maximum(num_draft - 1, 1))
            drafted = state.drafted + tf.reduce_sum(tf.where(active, counts, 0))
            accepted_sum = state.accepted + tf.reduce_sum(tf.where(active, accepted, 0))
            return (SpeculativeState(state.step + advance, done, finish, sequences, cache, dcache, num_draft,
                                     state.passes + 1, drafted, accepted_sum),)

        sequences = tf.concat([prompt_ids, tf.fill([B, W - P], params.pad_token_id)], axis=1)  # (B, W)
        logits, cache = forward.next_logits(prompt_ids, cache_mask, forward.empty_cache(B, T), 0)  # prefill
        draft_cache = ()
        if drafter is not None:
            _, draft_cache = drafter.next_logits(prompt_ids, cache_mask, drafter.empty_cache(B, T), 0)
        token = pick_first(logits, sequences)  # (B,)
        first = tf.concat([token[:, None], tf.zeros([B, K], tf.int32)], axis=1)
        never = tf.fill([B], N + S)
        first, done, finish = settle(first, 1, 0, tf.zeros([B], tf.bool), never)
        sequences = tf.concat([sequences[:, :P], first[:, :1], sequences[:, P + 1:]], axis=1)
        zero = tf.constant(0)
        start_state = SpeculativeState(tf.constant(1), done, finish, sequences, cache, draft_cache,
                                       tf.minimum(tf.cast(num_draft, tf.int32), K), zero, zero, zero)
        (end,) = tf.while_loop(cond, body, (start_state,), maximum_iterations=N)
        steps = tf.minimum(end.step, max_new)
        steps = tf.where(tf.reduce_all(end.done), tf.minimum(steps, tf.reduce_max(end.finish)), steps)
        return end.sequences[:, P:P + N], steps, end.passes, end.drafted, end.accepted, end.num_draft

    return program


# --- the Python side: arguments, compiled programs, the call -------------------------------------------

def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def speculative_options(model, prompt_lookup_num_tokens=None, max_matching_ngram_size=None,
                        assistant_model=None, num_assistant_tokens=None,
                        num_assistant_tokens_schedule=None) -> Optional[SpeculativeOptions]:
    """Validate the speculative arguments of ``generate`` (HF's names); None when none is given."""
    if assistant_model is None:
        for name, value in (("num_assistant_tokens", num_assistant_tokens),
                            ("num_assistant_tokens_schedule", num_assistant_tokens_schedule)):
            if value is not None:
                raise ValueError(f"{name} needs assistant_model")
    if prompt_lookup_num_tokens is None:
        if max_matching_ngram_size is not None:
            raise ValueError("max_matching_ngram_size needs prompt_lookup_num_tokens")
        if assistant_model is None:
            return None
    elif assistant_model is not None:
        raise ValueError("pass either prompt_lookup_num_tokens or assistant_model, not both")
    if prompt_lookup_num_tokens is not None:
        ngram = DEFAULT_PROMPT_LOOKUP_NGRAM if max_matching_ngram_size is None else max_matching_ngram_size
        return SpeculativeOptions("prompt_lookup", _positive_int(prompt_lookup_num_tokens, "prompt_lookup_num_tokens"),
                                  _positive_int(ngram, "max_matching_ngram_size"))
    if not hasattr(assistant_model, "transformer") or not hasattr(assistant_model, "config"):
        raise TypeError(f"assistant_model must be a tfgpt model with an LM head, got {type(assistant_model).__name__}")
    if assistant_model.config.vocab_size != model.config.vocab_size:
        raise ValueError(f"assistant_model has vocab_size={assistant_model.config.vocab_size}, the model "
                         f"{model.config.vocab_size}: they must share the vocabulary")
    schedule = DEFAULT_SCHEDULE if num_assistant_tokens_schedule is None else num_assistant_tokens_schedule
    if schedule not in SCHEDULES:
        raise ValueError(f"num_assistant_tokens_schedule must be one of {SCHEDULES}, got {schedule!r}")
    k = _positive_int(DEFAULT_NUM_ASSISTANT_TOKENS if num_assistant_tokens is None else num_assistant_tokens,
                      "num_assistant_tokens")
    # The heuristic schedules grow the draft count; the verification width is static: twice the start.
    return SpeculativeOptions("assistant", k if schedule == "constant" else 2 * k, schedule=schedule)


def _program_for(model, options: DecodeOptions, speculative: SpeculativeOptions, assistant, shape):
    cache = getattr(model, "_generate_cache", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_generate_cache", cache)  # plain dict, outside Keras tracking
    key = ("speculative", shape, model.config.vocab_size, model.transformer.compute_dtype, options, speculative,
           id(assistant))
    entry = cache.get(key)
    if entry is None or entry[0] is not assistant:
        build = build_speculative_program(model, options, speculative, assistant)
        entry = cache[key] = (assistant, tf.function(build, jit_compile=True, autograph=False))
    return entry[1]


def run_speculative(model, request, speculative: SpeculativeOptions, assistant=None, num_draft=None):
    """Run the speculative program for a prepared ``GenerationRequest``: (tokens [B, N], steps,
    ``SpeculativeStats``). ``num_draft`` is the schedule's first draft count (default K; for the
    heuristic schedules half of K, i.e. ``num_assistant_tokens``)."""
    r = request
    if r.options.mode == "beam":
        raise ValueError("speculative decoding (prompt_lookup_num_tokens / assistant_model) needs num_beams=1")
    if assistant is not None and r.prompt_bucket + r.new_bucket > assistant.config.n_positions:
        raise ValueError(f"assistant_model has n_positions={assistant.config.n_positions}, fewer than the "
                         f"{r.prompt_bucket + r.new_bucket} positions of this call")
    if num_draft is None:
        num_draft = speculative.num_tokens if speculative.schedule == "constant" else speculative.num_tokens // 2
    ids, mask = r.bucketed_prompts()
    program = _program_for(model, r.options, speculative, assistant, (r.batch, r.prompt_bucket, r.new_bucket))
    tokens, steps, passes, drafted, accepted, end_draft = program(
        tf.constant(ids), tf.constant(mask), tf.zeros([r.new_bucket], tf.int32),
        tf.constant(r.max_new_tokens, tf.int32), r.params.as_tensors(), tf.constant(int(num_draft), tf.int32))
    stats = SpeculativeStats(int(passes), int(drafted), int(accepted), int(steps), int(end_draft))
    object.__setattr__(model, "last_speculative_stats", stats)
    return tokens, steps, stats


def speculative_generate(model, request, speculative: SpeculativeOptions, assistant=None):
    """(tokens [B, N], steps) of a prepared request; what ``generate`` dispatches to.

    The "heuristic" schedule keeps its draft count on the assistant between calls (as HF keeps it
    on the assistant's generation config); "heuristic_transient" starts every call afresh.
    """
    start = None
    if speculative.schedule == "heuristic":
        start = getattr(assistant, "num_assistant_tokens", None)
    tokens, steps, stats = run_speculative(model, request, speculative, assistant, start)
    if speculative.schedule == "heuristic":
        object.__setattr__(assistant, "num_assistant_tokens", stats.num_assistant_tokens)
    return tokens, steps
