"""Text generation for GPT-1: greedy, sampling and beam search in one XLA-compiled decode loop.

``generate(model, input_ids, ...)`` (what ``model.generate`` calls) prepares the prompts in Python,
then runs one ``tf.function(jit_compile=True)`` that prefills the prompt into a KV cache and decodes
one token per ``tf.while_loop`` step through the model's own blocks (the cache is an argument of the
same forward pass). Shapes are static: the cache is allocated once at its final length and written in
place; prompt lengths and new-token counts are rounded up to buckets so that varied calls reuse the
compiled programs, which are kept on the model in ``model._generate_cache``.

Conventions follow HF transformers: the result holds the prompt and the new tokens; prompts are
left-padded (``attention_mask`` marks real tokens) and every row continues exactly as if it were
generated alone (positions come from the mask, so padding does not shift them).

Shapes in comments: B batch, K beams, P bucketed prompt length, N bucketed new tokens, T = P + N the
cache length, V vocabulary, L layers, H heads, D head dim.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence, Union

import numpy as np
import tensorflow as tf

NEG_INF = -1.0e9  # HF's "impossible" beam score: finite, so sums and comparisons stay well defined
_DEFAULT_MAX_LENGTH = 20  # HF's GenerationConfig default, used when neither length is given
_MIN_PROMPT_BUCKET = 8
_MIN_NEW_BUCKET = 16

# Number of traces of the compiled programs (all models); tests check that same-bucket calls reuse them.
_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times a generation program has been traced in this process."""
    return _TRACES["count"]


def bucket(n: int, minimum: int) -> int:
    """Round ``n`` up to a power of two, at least ``minimum``."""
    b = minimum
    while b < n:
        b *= 2
    return b


def cache_lengths(prompt_len: int, new_tokens: int, n_positions: int):
    """Bucketed (prompt, new) lengths with prompt_len <= P, new_tokens <= N and P + N <= n_positions.

    The caller guarantees ``prompt_len + new_tokens <= n_positions``; buckets are clipped to fit.
    """
    p = bucket(prompt_len, _MIN_PROMPT_BUCKET)
    n = bucket(new_tokens, _MIN_NEW_BUCKET)
    if p + n > n_positions:
        n = max(new_tokens, n_positions - p)
    if p + n > n_positions:
        p = n_positions - n
    return p, n


# --- input preparation (Python, eager) ---------------------------------------------------------------

def _ragged_rows(x):
    """Rows of a list of id lists of different lengths, else None."""
    if isinstance(x, (list, tuple)) and x and all(isinstance(r, (list, tuple, np.ndarray)) for r in x):
        lengths = {len(r) for r in x}
        if len(lengths) > 1 and all(np.ndim(r) == 1 for r in x):
            return [list(r) for r in x]
    return None


def _to_numpy_ids(x, name):
    if isinstance(x, (tf.Tensor, tf.Variable)):
        x = x.numpy()
    try:
        arr = np.asarray(x)
    except ValueError:
        arr = np.asarray(x, dtype=object)
    if arr.dtype == object:
        raise ValueError(f"{name} must be a rectangular array of token ids (pad and pass an attention_mask)")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _as_id_list(value, name) -> list:
    if value is None:
        return []
    if isinstance(value, (tf.Tensor, np.ndarray)):
        value = np.asarray(value).ravel().tolist()
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    out = [int(v) for v in value]
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def _left_align(ids, mask):
    """Move each row's real tokens (mask 1) to the right end, keeping their order.

    Left-padded rows are returned unchanged; right-padded rows (or masks with holes) become
    left-padded, which is what the decode loop expects.
    """
    order = np.argsort(mask == 1, axis=1, kind="stable")  # pads first, real tokens after, in order
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(mask, order, axis=1)


class _Request:
    """The validated, normalised arguments of one generate call."""


def _prepare(model, input_ids, attention_mask, max_new_tokens, max_length, do_sample, temperature,
             top_k, top_p, num_beams, repetition_penalty, eos_token_id, pad_token_id, seed,
             length_penalty, early_stopping, num_return_sequences):
    cfg = model.config
    r = _Request()
    rows = _ragged_rows(input_ids) if attention_mask is None else None
    if rows is not None:  # prompts of different lengths: left-pad them here
        width = max(len(row) for row in rows)
        fill = pad_token_id if pad_token_id is not None else (cfg.pad_token_id or 0)
        input_ids = [[fill] * (width - len(row)) + row for row in rows]
        attention_mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    ids = _to_numpy_ids(input_ids, "input_ids")
    r.lead_shape = None
    if ids.ndim == 1:
        ids = ids[None, :]
    elif ids.ndim == 3:  # double heads [B, C, S]: every choice is a prompt
        r.lead_shape = ids.shape[:2]
        ids = ids.reshape(-1, ids.shape[-1])
    elif ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, length] (or [batch, choices, length]), got shape {ids.shape}")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"input_ids must hold at least one token per row, got shape {ids.shape}")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        bad = ids[(ids < 0) | (ids >= cfg.vocab_size)].ravel()[0]
        raise ValueError(f"input_ids holds {bad}, outside [0, vocab_size={cfg.vocab_size})")

    eos = _as_id_list(eos_token_id, "eos_token_id")
    if eos_token_id is None and getattr(cfg, "eos_token_id", None) is not None:
        eos = _as_id_list(cfg.eos_token_id, "config.eos_token_id")
    for t in eos:
        if not 0 <= t < cfg.vocab_size:
            raise ValueError(f"eos_token_id {t} outside [0, vocab_size={cfg.vocab_size})")
    if pad_token_id is None:
        pad_token_id = cfg.pad_token_id
    explicit_pad = pad_token_id
    pad_token_id = int(pad_token_id) if pad_token_id is not None else (eos[0] if eos else 0)

    if attention_mask is None:
        # HF: a known pad token in the prompt (that is not also an eos token) marks padding.
        if explicit_pad is not None and explicit_pad not in eos and np.any(ids == explicit_pad):
            mask = (ids != explicit_pad).astype(np.int64)
        else:
            mask = np.ones_like(ids)
    else:
        mask = _to_numpy_ids(attention_mask, "attention_mask")
        if r.lead_shape is not None and mask.ndim == 3:
            mask = mask.reshape(-1, mask.shape[-1])
        if mask.ndim == 1 and ids.shape[0] == 1:
            mask = mask[None, :]
        if mask.shape != ids.shape:
            raise ValueError(f"attention_mask has shape {mask.shape}, expected the input_ids shape {ids.shape}")
        if not np.all((mask == 0) | (mask == 1)):
            raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token)")
    real = mask.sum(axis=1)
    if np.any(real == 0):
        raise ValueError(f"row {int(np.argmin(real))} of the prompt has no real token (attention_mask all 0)")
    ids, mask = _left_align(ids, mask)
    r.ids, r.mask = ids, mask
    r.batch, r.width = ids.shape
    r.prompt_len = int(real.max())  # leading all-padding columns are dropped inside

    if max_new_tokens is None:  # max_new_tokens wins when both are given (HF)
        if max_length is None:
            max_length = _DEFAULT_MAX_LENGTH
        max_new_tokens = int(max_length) - r.width
        if max_new_tokens <= 0:
            raise ValueError(f"max_length={max_length} leaves no room after the {r.width}-token prompt; "
                             f"pass max_new_tokens")
    max_new_tokens = int(max_new_tokens)
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    if r.prompt_len + max_new_tokens > cfg.n_positions:
        raise ValueError(f"prompt of {r.prompt_len} tokens + max_new_tokens={max_new_tokens} = "
                         f"{r.prompt_len + max_new_tokens} exceeds n_positions={cfg.n_positions}")
    r.max_new = max_new_tokens
    r.P, r.N = cache_lengths(r.prompt_len, max_new_tokens, cfg.n_positions)

    num_beams = int(num_beams)
    num_return_sequences = int(num_return_sequences)
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if num_return_sequences < 1:
        raise ValueError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
    if num_beams > 1 and do_sample:
        raise ValueError("beam sampling (num_beams > 1 with do_sample=True) is not supported; "
                         "use num_beams=1 for sampling or do_sample=False for beam search")
    if num_beams > 1 and num_return_sequences > num_beams:
        raise ValueError(f"num_return_sequences={num_return_sequences} must be <= num_beams={num_beams}")
    if num_beams == 1 and not do_sample and num_return_sequences > 1:
        raise ValueError("greedy search returns one sequence per prompt; use do_sample=True or "
                         "num_beams >= num_return_sequences")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    temperature = float(temperature)
    top_k = int(top_k or 0)
    top_p = float(1.0 if top_p is None else top_p)
    repetition_penalty = float(repetition_penalty)
    if do_sample:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {repetition_penalty}")

    r.mode = "beam" if num_beams > 1 else ("sample" if do_sample else "greedy")
    r.num_beams, r.num_return_sequences = num_beams, num_return_sequences
    r.temperature, r.top_k, r.top_p = temperature, min(top_k, cfg.vocab_size), top_p
    r.repetition_penalty, r.eos, r.pad = repetition_penalty, eos, pad_token_id
    r.length_penalty, r.early_stopping = float(length_penalty), early_stopping
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    r.seed = int(seed) % (2**31 - 1)
    if r.mode == "sample" and num_return_sequences > 1:  # HF: each prompt repeated, rows sampled apart
        r.ids = np.repeat(r.ids, num_return_sequences, axis=0)
        r.mask = np.repeat(r.mask, num_return_sequences, axis=0)
        r.batch = r.ids.shape[0]
    return r


# --- the compiled programs ---------------------------------------------------------------------------

def _count_trace():
    _TRACES["count"] += 1


class _Decoder:
    """Pieces shared by the programs: the cached forward pass and the logits processors."""

    def __init__(self, model, P, N, opts):
        self.transformer = model.transformer
        c = model.config
        self.L, self.H, self.D = c.n_layer, c.n_head, c.n_embd // c.n_head
        self.V = c.vocab_size
        self.P, self.N, self.T = P, N, P + N
        self.dtype = self.transformer.compute_dtype
        self.opts = opts

    def empty_cache(self, batch):
        """One zero [B, 2, H, T, D] tensor per layer (a tuple, so each layer is updated in place)."""
        return tuple(tf.zeros([batch, 2, self.H, self.T, self.D], self.dtype) for _ in range(self.L))

    def logits(self, ids, mask, cache, index):
        """Logits [B, V] (float32) of the last of ``ids`` [B, S], written into the cache at ``index``."""
        out = self.transformer(ids, attention_mask=mask, cache=cache, cache_index=index,
                               return_dict=True, training=False)
        last = out.last_hidden_state[:, -1, :]  # (B, E)
        return tf.cast(self.transformer.tokens_embed(last, reverse=True), tf.float32), out.cache

    # HF's processors, in HF's order: repetition penalty, then temperature, top-k, top-p.
    def penalize(self, scores, seen, penalty):
        if not self.opts["repetition_penalty"]:
            return scores
        penalized = tf.where(scores < 0, scores * penalty, scores / penalty)
        return tf.where(seen, penalized, scores)

    def warp(self, logits, temperature, top_p):
        logits = logits / temperature
        k = self.opts["top_k"]
        if k:
            kth = tf.math.top_k(logits, k=k, sorted=True).values[:, -1:]  # (B, 1)
            logits = tf.where(logits < kth, -np.inf, logits)
        if self.opts["top_p"]:
            order = tf.argsort(logits, axis=-1, direction="ASCENDING", stable=True)  # (B, V)
            ascending = tf.gather(logits, order, batch_dims=1)
            cum = tf.cumsum(tf.nn.softmax(ascending, axis=-1), axis=-1)
            remove = cum <= 1.0 - top_p
            remove = tf.concat([remove[:, :-1], tf.zeros_like(remove[:, -1:])], axis=1)  # keep the top
            remove = tf.gather(remove, tf.argsort(order, axis=-1), batch_dims=1)  # back to vocab order
            logits = tf.where(remove, -np.inf, logits)
        return logits

    def mark_seen(self, seen, tokens):
        if not self.opts["repetition_penalty"]:
            return seen
        return seen | tf.cast(tf.one_hot(tokens, self.V, dtype=tf.int32), tf.bool)

    def prompt_seen(self, ids, mask):
        """[B, V] bool: which tokens occur (unmasked) in each prompt row."""
        b = tf.shape(ids)[0]
        if not self.opts["repetition_penalty"]:
            return tf.zeros([b, 1], tf.bool)
        rows = tf.broadcast_to(tf.range(b)[:, None], tf.shape(ids))
        index = tf.reshape(tf.stack([rows, ids], axis=-1), [-1, 2])
        hit = tf.tensor_scatter_nd_max(tf.zeros([b, self.V], tf.int32), index, tf.reshape(mask, [-1]))
        return hit > 0


def _build_sequential(model, B, P, N, opts):
    """Greedy search or sampling: one token per row per step."""
    dec = _Decoder(model, P, N, opts)
    sample = opts["mode"] == "sample"
    has_eos = opts["n_eos"] > 0

    def choose(logits, step, seen, params):
        scores = dec.penalize(logits, seen, params["repetition_penalty"])
        if not sample:
            return tf.argmax(scores, axis=-1, output_type=tf.int32)
        scores = dec.warp(scores, params["temperature"], params["top_p"])
        seed = tf.stack([params["seed"], step])
        return tf.reshape(tf.random.stateless_categorical(scores, 1, seed, dtype=tf.int32), [-1])

    def emit(tokens, done, params):
        """Rows already finished emit pad; a row finishes on emitting any eos token."""
        if not has_eos:
            return tokens, done
        tokens = tf.where(done, params["pad"], tokens)
        hit = tf.reduce_any(tf.equal(tokens[:, None], params["eos"][None, :]), axis=-1)
        return tokens, done | hit

    def program(ids, prompt_mask, max_new, params):
        _count_trace()
        mask = tf.concat([prompt_mask, tf.ones([B, N], tf.int32)], axis=1)  # (B, T)
        seen = dec.prompt_seen(ids, prompt_mask)
        logits, cache = dec.logits(ids, mask, dec.empty_cache(B), 0)  # prefill: (B, V)
        done = tf.zeros([B], tf.bool)
        token, done = emit(choose(logits, 0, seen, params), done, params)
        seen = dec.mark_seen(seen, token)
        out = tf.fill([B, N], params["pad"])
        out = tf.tensor_scatter_nd_update(out, tf.stack([tf.range(B), tf.zeros([B], tf.int32)], 1), token)

        def cond(i, token, done, seen, out, cache):
            return (i < max_new) & ~tf.reduce_all(done)

        def body(i, token, done, seen, out, cache):
            logits, cache = dec.logits(token[:, None], mask, cache, P + i - 1)
            token, done = emit(choose(logits, i, seen, params), done, params)
            seen = dec.mark_seen(seen, token)
            col = tf.fill([B], i)
            out = tf.tensor_scatter_nd_update(out, tf.stack([tf.range(B), col], 1), token)
            return i + 1, token, done, seen, out, cache

        i, _, _, _, out, _ = tf.while_loop(cond, body, (tf.constant(1), token, done, seen, out, cache),
                                           maximum_iterations=N)
        return out, i

    return program


def _build_beam(model, B, P, N, opts):
    """Beam search over K beams, HF's algorithm (transformers 4.57 ``_beam_search``) with static shapes.

    Running beams and finished hypotheses are kept apart; each step takes the top 2K continuations
    of all running beams, keeps the best K that did not just stop as the next running beams, and
    merges the best K that stopped (eos, or the last step) into the finished set, scored by
    sum log-prob / generated_length ** length_penalty.
    """
    dec = _Decoder(model, P, N, opts)
    K = opts["num_beams"]
    K2 = max(2, 1 + opts["n_eos"]) * K  # candidates kept per step (HF's beams_to_keep)
    V = dec.V
    has_eos = opts["n_eos"] > 0
    early = opts["early_stopping"]
    BK = B * K

    def gather_beams(x, index):  # x (B, M, ...), index (B, k) -> (B, k, ...)
        return tf.gather(x, index, batch_dims=1)

    def program(ids, prompt_mask, max_new, params):
        _count_trace()
        lp = params["length_penalty"]
        max_new_f = tf.cast(max_new, tf.float32)
        mask = tf.concat([prompt_mask, tf.ones([B, N], tf.int32)], axis=1)  # (B, T)
        seen = dec.prompt_seen(ids, prompt_mask)
        logits, cache = dec.logits(ids, mask, dec.empty_cache(B), 0)  # prefill once per prompt
        rep = lambda x: tf.repeat(x, K, axis=0)  # (B, ...) -> (B*K, ...), beams of a row adjacent
        logits, seen, mask = rep(logits), rep(seen), rep(mask)
        cache = tuple(rep(c) for c in cache)

        running = tf.fill([B, K, N], params["pad"])  # generated tokens of the running beams
        running_scores = tf.tile(tf.concat([[0.0], tf.fill([K - 1], NEG_INF)], 0)[None, :], [B, 1])
        finished = tf.fill([B, K, N], params["pad"])
        finished_scores = tf.fill([B, K], NEG_INF)
        finished_len = tf.zeros([B, K], tf.int32)
        is_finished = tf.zeros([B, K], tf.bool)
        unsatisfied = tf.ones([B, 1], tf.bool)  # early-stop heuristic not yet met, per row
        top_mask = tf.range(K2) < K

        def step(i, logits, seen, running, running_scores, finished, finished_scores, finished_len,
                 is_finished, unsatisfied):
            log_probs = tf.nn.log_softmax(logits, axis=-1)  # (BK, V)
            log_probs = dec.penalize(log_probs, seen, params["repetition_penalty"])
            log_probs = log_probs + tf.reshape(running_scores, [BK, 1])
            flat = tf.reshape(log_probs, [B, K * V])
            top_scores, top_index = tf.math.top_k(flat, k=K2)  # (B, K2)
            beam = top_index // V
            token = top_index % V
            cand = gather_beams(running, beam)  # (B, K2, N)
            col = tf.one_hot(i, N, on_value=True, off_value=False)[None, None, :]
            cand = tf.where(col, token[:, :, None], cand)
            stop = tf.fill([B, K2], i + 1 >= max_new)
            if has_eos:
                stop |= tf.reduce_any(tf.equal(token[:, :, None], params["eos"][None, None, :]), -1)

            # next running beams: the best K candidates that did not stop
            run_scores = top_scores + tf.cast(stop, tf.float32) * NEG_INF
            run_scores, pick = tf.math.top_k(run_scores, k=K)  # (B, K)
            new_running = gather_beams(cand, pick)
            origin = gather_beams(beam, pick)  # which old beam each new running beam extends
            new_tokens = gather_beams(token, pick)

            # finished hypotheses: merge candidates among the top K that stopped
            just = stop & top_mask[None, :]
            gen_len = tf.cast(i + 1, tf.float32)
            norm = top_scores / tf.pow(gen_len, lp)
            if early is True:
                norm += tf.cast(tf.reduce_all(is_finished, -1, keepdims=True), tf.float32) * NEG_INF
            norm += tf.cast(~unsatisfied, tf.float32) * NEG_INF
            norm += tf.cast(~just, tf.float32) * NEG_INF
            merged_scores = tf.concat([finished_scores, norm], 1)  # (B, K + K2)
            best, pick_f = tf.math.top_k(merged_scores, k=K)
            finished = gather_beams(tf.concat([finished, cand], 1), pick_f)
            finished_len = gather_beams(tf.concat([finished_len, tf.fill([B, K2], i + 1)], 1), pick_f)
            is_finished = gather_beams(tf.concat([is_finished, just], 1), pick_f)
            finished_scores = best

            # early-stop heuristic: can a running beam still beat the worst finished one?
            if early == "never":
                hyp_len = tf.where(lp > 0.0, max_new_f, gen_len)
            else:
                hyp_len = gen_len
            best_running = run_scores[:, :1] / tf.pow(hyp_len, lp)
            worst = tf.where(is_finished, tf.reduce_min(finished_scores, 1, keepdims=True), NEG_INF)
            unsatisfied = unsatisfied & tf.reduce_any(best_running > worst, -1, keepdims=True)
            going = tf.reduce_any(unsatisfied) & ~tf.reduce_all(stop)
            if early is True:
                going &= ~tf.reduce_all(is_finished)
            flat_origin = tf.reshape(origin + tf.range(B)[:, None] * K, [BK])
            return (new_running, run_scores, finished, finished_scores, finished_len, is_finished,
                    unsatisfied, going, flat_origin, tf.reshape(new_tokens, [BK]))

        def advance(i, logits, seen, running, running_scores, finished, finished_scores, finished_len,
                    is_finished, unsatisfied):
            (running, running_scores, finished, finished_scores, finished_len, is_finished, unsatisfied,
             going, origin, tokens) = step(i, logits, seen, running, running_scores, finished,
                                           finished_scores, finished_len, is_finished, unsatisfied)
            seen = dec.mark_seen(tf.gather(seen, origin), tokens) if opts["repetition_penalty"] else seen
            return (running, running_scores, finished, finished_scores, finished_len, is_finished,
                    unsatisfied, going, origin, tokens, seen)

        state = advance(0, logits, seen, running, running_scores, finished, finished_scores,
                        finished_len, is_finished, unsatisfied)
        (running, running_scores, finished, finished_scores, finished_len, is_finished, unsatisfied,
         going, origin, tokens, seen) = state

        def cond(i, going, *rest):
            return going & (i < max_new)

        def body(i, going, origin, tokens, seen, running, running_scores, finished, finished_scores,
                 finished_len, is_finished, unsatisfied, cache):
            cache = tuple(tf.gather(c, origin) for c in cache)  # follow the beams that survived
            logits, cache = dec.logits(tokens[:, None], mask, cache, P + i - 1)
            (running, running_scores, finished, finished_scores, finished_len, is_finished, unsatisfied,
             going, origin, tokens, seen) = advance(i, logits, seen, running, running_scores, finished,
                                                    finished_scores, finished_len, is_finished, unsatisfied)
            return (i + 1, going, origin, tokens, seen, running, running_scores, finished, finished_scores,
                    finished_len, is_finished, unsatisfied, cache)

        loop = tf.while_loop(
            cond, body,
            (tf.constant(1), going, origin, tokens, seen, running, running_scores, finished,
             finished_scores, finished_len, is_finished, unsatisfied, cache),
            maximum_iterations=N)
        finished, finished_scores, finished_len = loop[7], loop[8], loop[9]
        return finished, finished_len, finished_scores

    return program


def _program(model, r):
    """The compiled program for this request's mode and shapes, from the model's cache or new."""
    cache = getattr(model, "_generate_cache", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_generate_cache", cache)  # plain dict, outside Keras tracking
    opts = dict(mode=r.mode, top_k=r.top_k if r.mode == "sample" else 0,
                top_p=r.mode == "sample" and r.top_p < 1.0,
                repetition_penalty=r.repetition_penalty != 1.0, n_eos=len(r.eos),
                num_beams=r.num_beams, early_stopping=r.early_stopping)
    key = (r.batch, r.P, r.N, model.config.vocab_size, model.transformer.compute_dtype,
           tuple(sorted(opts.items(), key=lambda kv: kv[0])))
    fn = cache.get(key)
    if fn is None:
        build = _build_beam if r.mode == "beam" else _build_sequential
        fn = tf.function(build(model, r.batch, r.P, r.N, opts), jit_compile=True, autograph=False)
        cache[key] = fn
    return fn


def generate(model, input_ids, attention_mask=None, max_new_tokens: Optional[int] = None,
             max_length: Optional[int] = None, do_sample: bool = False, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, num_beams: int = 1, repetition_penalty: float = 1.0,
             eos_token_id: Union[int, Sequence[int], None] = None, pad_token_id: Optional[int] = None,
             seed: Optional[int] = None, length_penalty: float = 1.0,
             early_stopping: Union[bool, str] = False, num_return_sequences: int = 1):
    """Generate continuations of ``input_ids`` [B, S] (or [B, C, S]); returns int32 [B', S + new].

    ``B' = B * num_return_sequences``. The prompt is included (left-aligned when a right-padded mask
    was given); rows that emitted an eos token continue with ``pad_token_id``; the result stops at
    the last step any row needed (HF's convention). Greedy by default; ``do_sample`` samples with
    ``temperature`` / ``top_k`` / ``top_p`` from a stateless generator seeded by ``seed``
    (reproducible); ``num_beams > 1`` runs beam search with ``length_penalty`` / ``early_stopping``
    (True, False or "never"). ``repetition_penalty`` divides (multiplies if negative) the scores of
    tokens already in the row. ``max_new_tokens`` or ``max_length`` (prompt included; 20 when
    neither is given) bound the length; the real prompt plus new tokens must fit ``n_positions``.
    """
    r = _prepare(model, input_ids, attention_mask, max_new_tokens, max_length, do_sample, temperature,
                 top_k, top_p, num_beams, repetition_penalty, eos_token_id, pad_token_id, seed,
                 length_penalty, early_stopping, num_return_sequences)
    # Bucketed prompt: the last P columns, left-padded with masked zeros when shorter.
    P, width = r.P, r.width
    ids = np.zeros((r.batch, P), np.int32)
    mask = np.zeros((r.batch, P), np.int32)
    keep = min(P, width)
    ids[:, P - keep:] = r.ids[:, width - keep:]
    mask[:, P - keep:] = r.mask[:, width - keep:]
    params = {
        "temperature": tf.constant(r.temperature, tf.float32),
        "top_p": tf.constant(r.top_p, tf.float32),
        "repetition_penalty": tf.constant(r.repetition_penalty, tf.float32),
        "length_penalty": tf.constant(r.length_penalty, tf.float32),
        "eos": tf.constant(r.eos if r.eos else [0], tf.int32),
        "pad": tf.constant(r.pad, tf.int32),
        "seed": tf.constant(r.seed, tf.int32),
    }
    fn = _program(model, r)
    result = fn(tf.constant(ids), tf.constant(mask), tf.constant(r.max_new, tf.int32), params)
    prompt = r.ids.astype(np.int32)
    if r.mode == "beam":
        seqs, lengths, _ = (t.numpy() for t in result)
        n = r.num_return_sequences
        new = int(lengths[:, :n].max())
        tokens = seqs[:, :n, :new].reshape(r.batch * n, new)
        prompt = np.repeat(prompt, n, axis=0)
    else:
        out, steps = result
        tokens = out.numpy()[:, : int(steps)]
    full = np.concatenate([prompt, tokens], axis=1)
    if r.lead_shape is not None:
        full = full.reshape(r.lead_shape[0], -1, full.shape[-1])
    return tf.constant(full, tf.int32)


def _generate_no_cache(model, input_ids, max_new_tokens, attention_mask=None):
    """Greedy decoding that re-runs the full forward pass each step (a reference, eager, slow)."""
    ids = tf.convert_to_tensor(np.asarray(input_ids), tf.int32)
    mask = tf.ones_like(ids) if attention_mask is None else tf.cast(attention_mask, tf.int32)
    for _ in range(max_new_tokens):
        logits = model(ids, attention_mask=mask, training=False, return_dict=True)["logits"]
        nxt = tf.argmax(logits[:, -1, :], axis=-1, output_type=tf.int32)[:, None]
        ids = tf.concat([ids, nxt], axis=1)
        mask = tf.concat([mask, tf.ones_like(nxt)], axis=1)
    return ids


# --- command line ------------------------------------------------------------------------------------

def register_cli(subparsers):
    """Add ``tfgpt generate --model DIR "prompt" [options]``."""
    p = subparsers.add_parser(
        "generate", help="generate text from a prompt",
        description="Continue a prompt with a GPT-1 model folder (config.json + weights) and print the text.")
    p.add_argument("prompt", nargs="?", help="prompt text (needs a tokenizer)")
    p.add_argument("--model", required=True, help="model folder or hub id")
    p.add_argument("--tokenizer", help="tokenizer folder (vocab.json + merges.txt); default: the model folder")
    p.add_argument("--ids", help="prompt as token ids, comma or space separated (instead of text)")
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy search")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--num-return-sequences", type=int, default=1)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--eos-token-id", type=int, action="append", help="stop a row at this id (repeatable)")
    p.add_argument("--seed", type=int, help="seed for sampling (reproducible results)")
    p.set_defaults(func=_cli_generate)
    return p


def _cli_generate(args):
    import tfgpt

    if (args.prompt is None) == (args.ids is None):
        raise ValueError("give either a prompt text or --ids")
    tok = None
    if args.prompt is not None or args.tokenizer:
        tok_dir = args.tokenizer or args.model
        try:
            tok = tfgpt.OpenAIGPTTokenizer.from_pretrained(tok_dir)
        except (OSError, ValueError, ImportError, AttributeError) as e:
            if args.prompt is not None:
                raise ValueError(f"cannot load a tokenizer from {tok_dir} ({e}); pass --tokenizer DIR "
                                 f"or a prompt as --ids") from e
    if args.ids is not None:
        try:
            prompt = [int(t) for t in args.ids.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"--ids must be integers, got {args.ids!r}") from None
    else:
        prompt = list(tok.encode(args.prompt))
    if not prompt:
        raise ValueError("the prompt is empty")
    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(args.model)
    print("generating (the first call compiles) ...", file=sys.stderr, flush=True)
    out = generate(model, [prompt], max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                   temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   num_beams=args.num_beams, num_return_sequences=args.num_return_sequences,
                   repetition_penalty=args.repetition_penalty, eos_token_id=args.eos_token_id,
                   seed=args.seed)
    for row in out.numpy().tolist():
        print(tok.decode(row) if tok is not None else " ".join(str(t) for t in row))
    return 0
