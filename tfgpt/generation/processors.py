"""Logits processors and warpers: HF's ``generate`` options as in-graph TensorFlow ops.

Every processor is a small class whose ``__call__(state, scores)`` takes the decode state and the
next-token scores [B, V] float32 and returns new scores. All of them are XLA-safe: static shapes, no
Python branching on tensor values, so a list of them runs inside ``tf.function(jit_compile=True)`` and
in an exported SavedModel. They are batched and left-padding correct: lengths and n-grams are taken
per row from ``state.valid``, so a left-padded row gets exactly the scores it would get alone (HF's
PyTorch processors count the padding; their results on a row generated alone are the reference).

User processors follow HF's TF protocol, ``fn(input_ids [B, L] int32, scores [B, V], cur_len) ->
scores``, where ``input_ids`` is the static-length buffer whose positions >= ``cur_len`` are not yet
written; :class:`LogitsProcessorList` calls plain callables that way.

``build_processors(generation_config)`` returns the list HF's ``_get_logits_processor`` builds for a
config, in HF's order (processors, then the user's, then the sampling warpers).

Shapes in comments: B batch rows, L buffer length, V vocabulary, W biased sequences, M longest one.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf

FILTER_VALUE = float("-inf")  # what filtered scores become (HF's filter_value); not the beam loop's -1e9


class DecodeState(NamedTuple):
    """What a processor may look at besides the scores.

    ``input_ids`` [B, L] int32: the token buffer (left-padded prompt, then generated tokens); positions
    >= ``cur_len`` are not yet written. ``valid`` [B, L] bool: True where a real prompt token or a
    generated token sits (left padding and unwritten positions False). ``cur_len``: int32 scalar, the
    number of written buffer positions. ``prompt_len`` [B] int32: each row's real prompt length.
    """

    input_ids: tf.Tensor
    valid: tf.Tensor
    cur_len: tf.Tensor
    prompt_len: tf.Tensor

    @classmethod
    def from_prompt(cls, input_ids, attention_mask=None, prompt_width=None) -> "DecodeState":
        """A state whose buffer is ``input_ids`` [B, L] written in full (``cur_len = L``).

        The first ``prompt_width`` columns (default: all) are the prompt; ``attention_mask`` marks its
        real tokens (default: all real); later columns count as generated tokens.
        """
        ids = tf.cast(tf.convert_to_tensor(input_ids), tf.int32)
        if ids.shape.rank != 2:
            raise ValueError(f"input_ids must be [batch, length], got shape {ids.shape}")
        length = ids.shape[1]
        width = length if prompt_width is None else int(prompt_width)
        if not 0 <= width <= length:
            raise ValueError(f"prompt_width={prompt_width} outside [0, {length}]")
        if attention_mask is None:
            valid = tf.ones_like(ids, tf.bool)
        else:
            valid = tf.cast(tf.convert_to_tensor(attention_mask), tf.bool)
            if valid.shape != ids.shape:
                raise ValueError(f"attention_mask has shape {valid.shape}, expected {ids.shape}")
        prompt_len = tf.reduce_sum(tf.cast(valid[:, :width], tf.int32), axis=1)
        return cls(ids, valid, tf.constant(length, tf.int32), prompt_len)

    def lengths(self) -> tf.Tensor:
        """Real length of each row (prompt + generated tokens) [B] int32."""
        written = tf.range(tf.shape(self.input_ids)[1]) < self.cur_len  # (L,)
        return tf.reduce_sum(tf.cast(self.valid & written[None, :], tf.int32), axis=1)

    def new_tokens(self) -> tf.Tensor:
        """Number of tokens generated so far in each row [B] int32."""
        return self.lengths() - self.prompt_len

    def written_valid(self) -> tf.Tensor:
        """``valid`` restricted to written positions [B, L] bool."""
        written = tf.range(tf.shape(self.input_ids)[1]) < self.cur_len
        return self.valid & written[None, :]


# --- shared helpers ------------------------------------------------------------------------------------

def _vocab_size(scores) -> int:
    v = scores.shape[-1]
    if v is None:
        raise ValueError("scores must have a static vocabulary dimension")
    return int(v)


def _as_id_list(value, name: str) -> List[int]:
    """One id or a sequence of ids as a list of non-negative ints; a clear error otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a list of ints, got {value!r}")
    if isinstance(value, int):
        value = [value]
    try:
        ids = list(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a list of ints, got {value!r}") from None
    if not ids:
        raise ValueError(f"{name} must not be empty")
    for t in ids:
        if isinstance(t, bool) or not isinstance(t, int) and not hasattr(t, "__index__"):
            raise TypeError(f"{name} must hold ints, got {t!r}")
        if int(t) < 0:
            raise ValueError(f"{name} must hold non-negative ids, got {int(t)}")
    return [int(t) for t in ids]


def _check_ids_in_vocab(ids: Iterable[int], vocab_size: int, name: str) -> None:
    bad = sorted({t for t in ids if t >= vocab_size})
    if bad:
        raise ValueError(f"{name} holds {bad}, outside the vocabulary of {vocab_size} tokens")


def _vocab_mask(ids: Sequence[int], vocab_size: int, name: str) -> tf.Tensor:
    """A constant [V] bool mask, True at ``ids``."""
    _check_ids_in_vocab(ids, vocab_size, name)
    mask = [False] * vocab_size
    for t in ids:
        mask[t] = True
    return tf.constant(mask, tf.bool)


def token_presence(ids, weights, vocab_size: int) -> tf.Tensor:
    """[B, V] bool: True where some position of row b with a True ``weights`` [B, L] holds token v."""
    b = tf.shape(ids)[0]
    ids = tf.clip_by_value(ids, 0, vocab_size - 1)
    flat = tf.reshape(ids + tf.range(b)[:, None] * vocab_size, [-1, 1])  # (B*L, 1)
    marks = tf.tensor_scatter_nd_max(tf.zeros([b * vocab_size], tf.int32), flat,
                                     tf.reshape(tf.cast(weights, tf.int32), [-1]))
    return tf.reshape(marks, [b, vocab_size]) > 0


def _tail(state: DecodeState, n: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """The last ``n`` written tokens of each row [B, n] (oldest first) and whether each is real."""
    pos = state.cur_len - n + tf.range(n)  # (n,)
    inside = pos >= 0
    pos = tf.maximum(pos, 0)
    ids = tf.gather(state.input_ids, pos, axis=1)
    ok = tf.gather(state.valid, pos, axis=1) & inside[None, :]
    return ids, ok


def kth_largest(scores, k: int) -> tf.Tensor:
    """The k-th largest score of each row [B, 1] (ties counted: HF's top-k threshold)."""
    # the min of the top k, not a slice of them: XLA on CPU turns a sliced top_k into a full sort
    return tf.reduce_min(tf.math.top_k(scores, k=k, sorted=False).values, axis=-1, keepdims=True)


def _unsort(sorted_mask, order) -> tf.Tensor:
    """Scatter a [B, V] mask given in ``order`` (per-row permutation) back to vocabulary order."""
    b, v = tf.shape(order)[0], tf.shape(order)[1]
    rows = tf.broadcast_to(tf.range(b)[:, None], [b, v])
    index = tf.stack([rows, order], axis=-1)  # (B, V, 2)
    return tf.scatter_nd(index, tf.cast(sorted_mask, tf.int32), [b, v]) > 0


def _check_min_tokens(min_tokens_to_keep) -> int:
    if isinstance(min_tokens_to_keep, bool) or not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
        raise ValueError(f"min_tokens_to_keep must be a positive integer, got {min_tokens_to_keep!r}")
    return min_tokens_to_keep


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value, name: str, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")
    return value


def _unit_float(value, name: str, low_open=True, high_open=True) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a float, got {value!r}") from None
    ok = (f > 0 if low_open else f >= 0) and (f < 1 if high_open else f <= 1)
    if not ok or math.isnan(f):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}0, 1{hi}, got {value!r}")
    return f


# --- processors -----------------------------------------------------------------------------------------

def freeze(value):
    """A hashable stand-in for ``value``: containers by content, other unhashable objects by identity.

    Processors and stopping criteria compare by the values they were built from, so that a decode
    program compiled for one list is reused for an equal list (the program cache key).
    """
    if isinstance(value, dict):
        return ("dict",) + tuple(sorted((repr(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


class ValueKeyed:
    """Equality and hash from the type and the public attributes (see ``freeze``)."""

    def cache_key(self) -> tuple:
        return (type(self),) + tuple((k, freeze(v)) for k, v in sorted(vars(self).items())
                                     if not k.startswith("_"))

    def __eq__(self, other):
        return type(other) is type(self) and other.cache_key() == self.cache_key()

    def __hash__(self):
        return hash(self.cache_key())


class LogitsProcessor(ValueKeyed):
    """Base of tfgpt's processors: ``__call__(state: DecodeState, scores [B, V]) -> scores [B, V]``.

    Processors compare equal when built from equal arguments (user callables by identity), so a list
    of them keys the compiled decode program.
    """

    def __call__(self, state: DecodeState, scores: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(state, scores)")

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class CallableProcessor(LogitsProcessor):
    """A user processor with HF's TF protocol ``fn(input_ids, scores, cur_len) -> scores``."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"a logits processor must be callable, got {type(fn).__name__}")
        self.fn = fn

    def cache_key(self) -> tuple:
        return (type(self), ("id", id(self.fn)))

    def __call__(self, state, scores):
        out = self.fn(state.input_ids, scores, state.cur_len)
        out = tf.convert_to_tensor(out)
        if out.shape.rank != 2:
            raise ValueError(f"logits processor {self.fn!r} returned shape {out.shape}, expected [batch, vocab]")
        return tf.cast(out, scores.dtype)


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Divide positive (multiply negative) scores of tokens already in the row by ``penalty`` (CTRL)."""

    def __init__(self, penalty: float):
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
            raise ValueError(f"repetition_penalty must be a strictly positive float, got {penalty!r}")
        self.penalty = float(penalty)

    def __call__(self, state, scores):
        seen = token_presence(state.input_ids, state.written_valid(), _vocab_size(scores))
        penalized = tf.where(scores < 0, scores * self.penalty, scores / self.penalty)
        return tf.where(seen, penalized, scores)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Ban tokens that would repeat an n-gram of size ``ngram_size`` already in the row (prompt included)."""

    def __init__(self, ngram_size: int):
        self.ngram_size = _positive_int(ngram_size, "no_repeat_ngram_size")

    def __call__(self, state, scores):
        n = self.ngram_size
        length = state.input_ids.shape[1]
        if length is not None and length < n:
            return scores
        # start positions of n-grams in the buffer (a tensor when the buffer length is not static)
        count = length - n + 1 if length is not None else tf.maximum(tf.shape(state.input_ids)[1] - n + 1, 0)
        valid = state.written_valid()
        ids = state.input_ids
        tail, tail_ok = _tail(state, n - 1)  # (B, n-1): the n-gram prefix the next token would complete
        match = tf.reduce_all(tail_ok, axis=1, keepdims=True)  # (B, 1)
        match = tf.broadcast_to(match, [tf.shape(ids)[0], count])  # (B, count)
        for k in range(n):
            match &= valid[:, k:k + count]
            if k < n - 1:
                match &= tf.equal(ids[:, k:k + count], tail[:, k:k + 1])
        banned = token_presence(ids[:, n - 1:n - 1 + count], match, _vocab_size(scores))
        return tf.where(banned, tf.constant(FILTER_VALUE, scores.dtype), scores)


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Add a bias to the last token of a sequence when the row already ends with the rest of it.

    ``sequence_bias``: ``{(ids...): bias}`` or HF's ``[[ids, bias], ...]``. Single tokens are always
    biased; longer sequences only when their prefix ends the row and the row is at least as long.
    """

    def __init__(self, sequence_bias):
        if isinstance(sequence_bias, list):
            if not sequence_bias or any(not isinstance(p, (list, tuple)) or len(p) != 2
                                        or not isinstance(p[0], (list, tuple)) for p in sequence_bias):
                raise ValueError(f"sequence_bias must be a non-empty list of [ids, bias] pairs, got {sequence_bias!r}")
            sequence_bias = {tuple(p[0]): p[1] for p in sequence_bias}
        if not isinstance(sequence_bias, dict) or not sequence_bias:
            raise ValueError(f"sequence_bias must be a non-empty dict or list of [ids, bias], got {sequence_bias!r}")
        clean = {}
        for seq, bias in sequence_bias.items():
            if not isinstance(seq, tuple) or not seq:
                raise ValueError(f"sequence_bias keys must be non-empty tuples of token ids, got {seq!r}")
            ids = tuple(_as_id_list(list(seq), "sequence_bias"))
            if isinstance(bias, bool) or not isinstance(bias, (int, float)):
                raise ValueError(f"sequence_bias values must be floats, got {bias!r} for {seq}")
            clean[ids] = float(bias)
        self.sequence_bias = clean

    def __call__(self, state, scores):
        v = _vocab_size(scores)
        _check_ids_in_vocab([t for seq in self.sequence_bias for t in seq], v, "sequence_bias")
        single = [0.0] * v
        for seq, bias in self.sequence_bias.items():
            if len(seq) == 1:
                single[seq[0]] = bias
        out = scores + tf.constant(single, scores.dtype)[None, :]
        longer = [(seq, bias) for seq, bias in self.sequence_bias.items() if len(seq) > 1]
        if not longer:
            return out
        m = max(len(seq) for seq, _ in longer) - 1  # longest prefix
        prefixes, used = [], []
        for seq, _ in longer:  # right-aligned prefixes [W, M]
            pre = list(seq[:-1])
            prefixes.append([0] * (m - len(pre)) + pre)
            used.append([False] * (m - len(pre)) + [True] * len(pre))
        prefixes = tf.constant(prefixes, tf.int32)
        used = tf.constant(used, tf.bool)
        need = tf.constant([len(seq) for seq, _ in longer], tf.int32)
        last = tf.constant([seq[-1] for seq, _ in longer], tf.int32)
        bias = tf.constant([b for _, b in longer], scores.dtype)
        tail, tail_ok = _tail(state, m)  # (B, M)
        same = tf.equal(tail[:, None, :], prefixes[None]) & tail_ok[:, None, :]  # (B, W, M)
        match = tf.reduce_all(same | ~used[None], axis=-1)  # (B, W)
        match &= state.lengths()[:, None] >= need[None, :]
        b, w = tf.shape(scores)[0], len(longer)
        rows = tf.broadcast_to(tf.range(b)[:, None], [b, w])
        index = tf.stack([rows, tf.broadcast_to(last[None, :], [b, w])], axis=-1)  # (B, W, 2)
        add = tf.where(match, bias[None, :], tf.zeros([], scores.dtype))
        return out + tf.tensor_scatter_nd_add(tf.zeros_like(scores), index, add)


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """Never complete one of ``bad_words_ids`` (a -inf sequence bias); lone eos ids are not banned (HF)."""

    def __init__(self, bad_words_ids, eos_token_id=None):
        if not isinstance(bad_words_ids, list) or not bad_words_ids:
            raise ValueError(f"bad_words_ids must be a non-empty list of lists, got {bad_words_ids!r}")
        if any(not isinstance(w, list) for w in bad_words_ids):
            raise ValueError(f"bad_words_ids must be a list of lists, got {bad_words_ids!r}")
        words = [_as_id_list(w, "bad_words_ids") for w in bad_words_ids]
        eos = _as_id_list(eos_token_id, "eos_token_id") if eos_token_id is not None else []
        words = [w for w in words if not (len(w) == 1 and w[0] in eos)]
        self.bad_words_ids = words
        super().__init__({tuple(w): FILTER_VALUE for w in words})


class MinLengthLogitsProcessor(LogitsProcessor):
    """Ban eos while a row (prompt included) is shorter than ``min_length``."""

    def __init__(self, min_length: int, eos_token_id):
        self.min_length = _positive_int(min_length, "min_length", allow_zero=True)
        self.eos_token_id = _as_id_list(eos_token_id, "eos_token_id")

    def __call__(self, state, scores):
        eos = _vocab_mask(self.eos_token_id, _vocab_size(scores), "eos_token_id")
        short = state.lengths() < self.min_length  # (B,)
        return tf.where(short[:, None] & eos[None, :], tf.constant(FILTER_VALUE, scores.dtype), scores)


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """Ban eos until a row has generated ``min_new_tokens`` tokens."""

    def __init__(self, min_new_tokens: int, eos_token_id):
        self.min_new_tokens = _positive_int(min_new_tokens, "min_new_tokens", allow_zero=True)
        self.eos_token_id = _as_id_list(eos_token_id, "eos_token_id")

    def __call__(self, state, scores):
        eos = _vocab_mask(self.eos_token_id, _vocab_size(scores), "eos_token_id")
        early = state.new_tokens() < self.min_new_tokens
        return tf.where(early[:, None] & eos[None, :], tf.constant(FILTER_VALUE, scores.dtype), scores)


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """Force ``bos_token_id`` as the next token of rows holding a single token."""

    def __init__(self, bos_token_id: int):
        self.bos_token_id = _as_id_list(bos_token_id, "forced_bos_token_id")[0]

    def __call__(self, state, scores):
        forced = _vocab_mask([self.bos_token_id], _vocab_size(scores), "forced_bos_token_id")
        only = tf.where(forced, tf.zeros([], scores.dtype), tf.constant(FILTER_VALUE, scores.dtype))
        return tf.where((state.lengths() == 1)[:, None], only[None, :], scores)


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """Force an eos id as the last token: at the step that generates token number ``max_new_tokens``.

    HF states this as ``cur_len == max_length - 1``; counted in new tokens it holds per row.
    """

    def __init__(self, max_new_tokens: int, eos_token_id):
        self.max_new_tokens = _positive_int(max_new_tokens, "max_new_tokens")
        self.eos_token_id = _as_id_list(eos_token_id, "forced_eos_token_id")

    def __call__(self, state, scores):
        forced = _vocab_mask(self.eos_token_id, _vocab_size(scores), "forced_eos_token_id")
        only = tf.where(forced, tf.zeros([], scores.dtype), tf.constant(FILTER_VALUE, scores.dtype))
        last = state.new_tokens() == self.max_new_tokens - 1
        return tf.where(last[:, None], only[None, :], scores)


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """Replace nan by 0 and +-inf by the dtype's largest / smallest finite value."""

    def __call__(self, state, scores):
        big = tf.constant(scores.dtype.max, scores.dtype)
        out = tf.where(tf.math.is_nan(scores), tf.zeros_like(scores), scores)
        out = tf.where(tf.equal(scores, float("inf")), big, out)
        return tf.where(tf.equal(scores, FILTER_VALUE), -big, out)


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """After ``start_index`` new tokens, raise the eos scores by ``|score| * (decay_factor ** n - 1)``.

    ``n`` counts the new tokens past ``start_index`` (HF: the length past prompt + start_index).
    """

    def __init__(self, exponential_decay_length_penalty, eos_token_id):
        pair = exponential_decay_length_penalty
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not _is_int(pair[0]) or \
                isinstance(pair[1], bool) or not isinstance(pair[1], (int, float)):
            raise ValueError(f"exponential_decay_length_penalty must be (start_index: int, decay_factor: float), "
                             f"got {pair!r}")
        self.start_index, self.decay_factor = int(pair[0]), float(pair[1])
        self.eos_token_id = _as_id_list(eos_token_id, "eos_token_id")

    def __call__(self, state, scores):
        eos = _vocab_mask(self.eos_token_id, _vocab_size(scores), "eos_token_id")
        past = tf.cast(state.new_tokens() - self.start_index, scores.dtype)[:, None]  # (B, 1)
        boost = tf.abs(scores) * (tf.pow(tf.constant(self.decay_factor, scores.dtype), past) - 1.0)
        return tf.where(eos[None, :] & (past > 0), scores + boost, scores)


class SuppressTokensLogitsProcessor(LogitsProcessor):
    """Never generate ``suppress_tokens``."""

    def __init__(self, suppress_tokens):
        self.suppress_tokens = _as_id_list(suppress_tokens, "suppress_tokens")

    def __call__(self, state, scores):
        mask = _vocab_mask(self.suppress_tokens, _vocab_size(scores), "suppress_tokens")
        return tf.where(mask[None, :], tf.constant(FILTER_VALUE, scores.dtype), scores)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """Suppress ``begin_suppress_tokens`` at the first generated token.

    With ``after_forced_bos`` (HF: a forced bos on a one-token prompt) rows whose prompt is a single
    token are suppressed one step later, after the forced token.
    """

    def __init__(self, begin_suppress_tokens, after_forced_bos: bool = False):
        self.begin_suppress_tokens = _as_id_list(begin_suppress_tokens, "begin_suppress_tokens")
        self.after_forced_bos = bool(after_forced_bos)

    def __call__(self, state, scores):
        mask = _vocab_mask(self.begin_suppress_tokens, _vocab_size(scores), "begin_suppress_tokens")
        begin = tf.zeros_like(state.prompt_len)
        if self.after_forced_bos:
            begin = tf.cast(state.prompt_len == 1, tf.int32)
        at = state.new_tokens() == begin
        return tf.where(at[:, None] & mask[None, :], tf.constant(FILTER_VALUE, scores.dtype), scores)


class LogitNormalization(LogitsProcessor):
    """Log-softmax the scores (HF's ``renormalize_logits``)."""

    def __call__(self, state, scores):
        return tf.nn.log_softmax(scores, axis=-1)


# --- warpers (sampling) ---------------------------------------------------------------------------------

class TemperatureLogitsWarper(LogitsProcessor):
    """Divide the scores by ``temperature`` (> 0)."""

    def __init__(self, temperature: float):
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            hint = " (for greedy decoding set do_sample=False)" if temperature == 0 else ""
            raise ValueError(f"temperature must be a strictly positive float, got {temperature!r}{hint}")
        self.temperature = float(temperature)

    def __call__(self, state, scores):
        return scores / self.temperature


class TopKLogitsWarper(LogitsProcessor):
    """Keep the ``top_k`` highest scores (ties with the k-th kept), -inf elsewhere."""

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1, filter_value: float = FILTER_VALUE):
        _positive_int(top_k, "top_k")
        self.top_k = max(top_k, _check_min_tokens(min_tokens_to_keep))
        self.filter_value = filter_value

    def __call__(self, state, scores):
        k = min(self.top_k, _vocab_size(scores))
        drop = scores < kth_largest(scores, k)
        return tf.where(drop, tf.constant(self.filter_value, scores.dtype), scores)


class TopPLogitsWarper(LogitsProcessor):
    """Nucleus: keep the smallest set of most likely tokens whose probabilities reach ``top_p``."""

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1, filter_value: float = FILTER_VALUE,
                 candidates: Optional[int] = None):
        self.top_p = _unit_float(top_p, "top_p", low_open=False, high_open=False)
        self.min_tokens_to_keep = _check_min_tokens(min_tokens_to_keep)
        self.filter_value = filter_value
        # the top_k of a top-k warper run just before (generate sets it): sort only its candidates
        self.candidates = None if candidates is None else _positive_int(candidates, "candidates")

    def __call__(self, state, scores):
        k = self.candidates
        if (k is not None and k < _vocab_size(scores) and self.min_tokens_to_keep <= k
                and self.filter_value == -math.inf):
            return top_p_among_top_k(scores, self.top_p, k, self.min_tokens_to_keep)
        drop = top_p_drop_mask(scores, self.top_p, self.min_tokens_to_keep)
        return tf.where(drop, tf.constant(self.filter_value, scores.dtype), scores)


def top_p_drop_mask(scores, top_p, min_tokens_to_keep: int = 1) -> tf.Tensor:
    """HF's nucleus rule on [B, V] scores: True where a token falls outside the smallest set of most
    likely tokens whose probabilities reach ``top_p`` (a float or a tensor); the best
    ``min_tokens_to_keep`` always stay. Ties are ordered as HF's stable ascending sort orders them."""
    v = _vocab_size(scores)
    order = tf.argsort(scores, axis=-1, direction="ASCENDING", stable=True)  # (B, V)
    ascending = tf.gather(scores, order, batch_dims=1)
    cumulative = tf.cumsum(tf.nn.softmax(ascending, axis=-1), axis=-1)
    drop = cumulative <= 1.0 - tf.cast(top_p, cumulative.dtype)
    drop &= (tf.range(v) < v - min_tokens_to_keep)[None, :]  # keep the most likely ones
    return _unsort(drop, order)


def top_p_among_top_k(scores, top_p, k: int, keep: int = 1):
    """HF's top-p warper on [B, V] scores that top-k (``k``, static) already cut to -inf elsewhere:
    the rule runs on the k candidates only (a sort of k entries per row, not of the vocabulary).

    Rows where ties with the k-th score kept more than k tokens (or fewer than k are finite) take the
    whole-vocabulary rule instead, so the result is HF's in every case.
    """
    finite_kept = tf.reduce_sum(tf.cast(scores > -math.inf, tf.int32), axis=-1)  # (B,)

    def among_candidates():
        values, index = tf.math.top_k(scores, k=k, sorted=False)  # (B, k)
        by_index = tf.argsort(index, axis=-1)  # ties in HF's stable sort go by vocabulary order
        index = tf.gather(index, by_index, batch_dims=1)
        values = tf.gather(values, by_index, batch_dims=1)
        order = tf.argsort(values, axis=-1, direction="ASCENDING", stable=True)  # (B, k)
        index = tf.gather(index, order, batch_dims=1)
        ascending = tf.gather(values, order, batch_dims=1)
        cumulative = tf.cumsum(tf.nn.softmax(ascending, axis=-1), axis=-1)
        drop = cumulative <= 1.0 - tf.cast(top_p, cumulative.dtype)
        drop &= (tf.range(k) < k - keep)[None, :]
        kept = tf.where(drop, tf.constant(-math.inf, scores.dtype), ascending)
        b = tf.shape(scores)[0]
        rows = tf.broadcast_to(tf.range(b)[:, None], [b, k])
        return tf.tensor_scatter_nd_update(tf.fill(tf.shape(scores), tf.constant(-math.inf, scores.dtype)),
                                           tf.stack([rows, index], axis=-1), kept)

    def whole_vocabulary():
        return tf.where(top_p_drop_mask(scores, top_p, keep), tf.constant(-math.inf, scores.dtype), scores)

    return tf.cond(tf.reduce_all(tf.equal(finite_kept, k)), among_candidates, whole_vocabulary)


class MinPLogitsWarper(LogitsProcessor):
    """Drop tokens whose probability is below ``min_p`` times the most likely token's."""

    def __init__(self, min_p: float, min_tokens_to_keep: int = 1, filter_value: float = FILTER_VALUE):
        self.min_p = _unit_float(min_p, "min_p", low_open=False, high_open=False)
        self.min_tokens_to_keep = _check_min_tokens(min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, state, scores):
        probs = tf.nn.softmax(scores, axis=-1)
        drop = probs < self.min_p * tf.reduce_max(probs, axis=-1, keepdims=True)
        k = min(self.min_tokens_to_keep, _vocab_size(scores))
        drop &= scores < kth_largest(scores, k)  # the k best stay (ties with the k-th too)
        return tf.where(drop, tf.constant(self.filter_value, scores.dtype), scores)


class TypicalLogitsWarper(LogitsProcessor):
    """Typical decoding: keep tokens whose surprisal is closest to the entropy, up to ``mass``."""

    def __init__(self, mass: float = 0.9, min_tokens_to_keep: int = 1, filter_value: float = FILTER_VALUE):
        self.mass = _unit_float(mass, "typical_p")
        self.min_tokens_to_keep = _check_min_tokens(min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, state, scores):
        v = _vocab_size(scores)
        logp = tf.nn.log_softmax(scores, axis=-1)
        p = tf.exp(logp)
        entropy = -tf.reduce_sum(tf.where(p > 0, logp * p, tf.zeros_like(p)), axis=-1, keepdims=True)
        shifted = tf.abs(-logp - entropy)  # (B, V); inf for -inf scores
        order = tf.argsort(shifted, axis=-1, direction="ASCENDING", stable=True)
        sorted_shifted = tf.gather(shifted, order, batch_dims=1)
        cumulative = tf.cumsum(tf.nn.softmax(tf.gather(scores, order, batch_dims=1), axis=-1), axis=-1)
        last = tf.minimum(tf.reduce_sum(tf.cast(cumulative < self.mass, tf.int32), axis=1), v - 1)  # (B,)
        threshold = tf.gather(sorted_shifted, last[:, None], batch_dims=1)  # (B, 1)
        drop = sorted_shifted > threshold
        drop &= (tf.range(v) >= self.min_tokens_to_keep)[None, :]
        return tf.where(_unsort(drop, order), tf.constant(self.filter_value, scores.dtype), scores)


class EpsilonLogitsWarper(LogitsProcessor):
    """Drop tokens with probability below ``epsilon`` (keeping the ``min_tokens_to_keep`` best)."""

    def __init__(self, epsilon: float, min_tokens_to_keep: int = 1, filter_value: float = FILTER_VALUE):
        self.epsilon = _unit_float(epsilon, "epsilon_cutoff")
        self.min_tokens_to_keep = _check_min_tokens(min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, state, scores):
        probs = tf.nn.softmax(scores, axis=-1)
        k = min(self.min_tokens_to_keep, _vocab_size(scores))
        drop = (probs < self.epsilon) & (scores < kth_largest(scores, k))
        return tf.where(drop, tf.constant(self.filter_value, scores.dtype), scores)


class EtaLogitsWarper(LogitsProcessor):
    """Eta sampling: drop tokens below ``min(epsilon, sqrt(epsilon) * exp(-entropy))``."""

    def __init__(self, epsilon: float, min_tokens_to_keep: int = 1, filter_value: float = FILTER_VALUE):
        self.epsilon = _unit_float(epsilon, "eta_cutoff")
        self.min_tokens_to_keep = _check_min_tokens(min_tokens_to_keep)
        self.filter_value = filter_value

    def __call__(self, state, scores):
        logp = tf.nn.log_softmax(scores, axis=-1)
        probs = tf.exp(logp)
        entropy = -tf.reduce_sum(tf.where(probs > 0, logp * probs, tf.zeros_like(probs)), axis=-1, keepdims=True)
        eps = tf.constant(self.epsilon, scores.dtype)
        eta = tf.minimum(eps, tf.sqrt(eps) * tf.exp(-entropy))
        k = min(self.min_tokens_to_keep, _vocab_size(scores))
        drop = (probs < eta) & (scores < kth_largest(scores, k))
        return tf.where(drop, tf.constant(self.filter_value, scores.dtype), scores)


# --- the list and its builder ---------------------------------------------------------------------------

class LogitsProcessorList(list):
    """Processors applied in order; plain callables are called with HF's TF protocol."""

    def __call__(self, state: DecodeState, scores: tf.Tensor) -> tf.Tensor:
        for p in self:
            if isinstance(p, LogitsProcessor):
                scores = p(state, scores)
            else:
                scores = CallableProcessor(p)(state, scores)
        return scores


# GenerationConfig fields that change the scores but that tfgpt does not implement, with the value that
# means "off" (HF's default). A config setting one of them is refused by build_processors.
UNSUPPORTED_SCORE_OPTIONS = {
    "diversity_penalty": 0.0,
    "num_beam_groups": 1,
    "encoder_repetition_penalty": 1.0,
    "encoder_no_repeat_ngram_size": 0,
    "constraints": None,
    "force_words_ids": None,
    "forced_decoder_ids": None,
    "guidance_scale": None,
    "watermarking_config": None,
    "dola_layers": None,
    "token_healing": False,
    "top_h": None,
}


def _eos_list(eos) -> Optional[List[int]]:
    return None if eos is None else _as_id_list(eos, "eos_token_id")


def build_processors(generation_config, input_length: Optional[int] = None,
                     logits_processor: Optional[Sequence] = None) -> LogitsProcessorList:
    """The processors for ``generation_config``, in HF's order (``_get_logits_processor``).

    ``input_length`` is the prompt width; it is needed only to turn ``max_length`` into a number of new
    tokens for ``forced_eos_token_id`` when ``max_new_tokens`` is unset. ``logits_processor`` holds
    user processors (tfgpt processors or TF callables ``(input_ids, scores, cur_len)``), applied after
    tfgpt's own and before the sampling warpers; one of the same class as a built one is refused, as HF.
    Options tfgpt does not implement raise a ValueError naming them.
    """
    gc = generation_config
    unsupported = [name for name, off in UNSUPPORTED_SCORE_OPTIONS.items()
                   if getattr(gc, name, off) is not None and getattr(gc, name, off) != off]
    if unsupported:
        raise ValueError(f"generation options not supported by tfgpt: {', '.join(sorted(unsupported))}")
    eos = _eos_list(gc.eos_token_id)
    out = LogitsProcessorList()
    if gc.sequence_bias is not None:
        out.append(SequenceBiasLogitsProcessor(gc.sequence_bias))
    if gc.repetition_penalty is not None and gc.repetition_penalty != 1.0:
        out.append(RepetitionPenaltyLogitsProcessor(gc.repetition_penalty))
    if gc.no_repeat_ngram_size is not None and gc.no_repeat_ngram_size > 0:
        out.append(NoRepeatNGramLogitsProcessor(gc.no_repeat_ngram_size))
    if gc.bad_words_ids is not None:
        out.append(NoBadWordsLogitsProcessor(gc.bad_words_ids, eos))
    # HF turns min_new_tokens into min_length = min_new_tokens + prompt length: per row, the same test
    if eos is not None and gc.min_new_tokens is None and gc.min_length is not None and gc.min_length > 0:
        out.append(MinLengthLogitsProcessor(gc.min_length, eos))
    if eos is not None and gc.min_new_tokens is not None and gc.min_new_tokens > 0:
        out.append(MinNewTokensLengthLogitsProcessor(gc.min_new_tokens, eos))
    if gc.forced_bos_token_id is not None:
        out.append(ForcedBOSTokenLogitsProcessor(gc.forced_bos_token_id))
    if gc.forced_eos_token_id is not None:
        if gc.max_new_tokens is not None:
            max_new = gc.max_new_tokens
        elif input_length is not None and gc.max_length is not None:
            max_new = gc.max_length - int(input_length)
        else:
            raise ValueError("forced_eos_token_id needs max_new_tokens, or max_length and the input length")
        if max_new < 1:
            raise ValueError(f"forced_eos_token_id: max_length={gc.max_length} leaves no new token after "
                             f"the {input_length}-token prompt")
        out.append(ForcedEOSTokenLogitsProcessor(max_new, gc.forced_eos_token_id))
    if gc.remove_invalid_values is True:
        out.append(InfNanRemoveLogitsProcessor())
    if gc.exponential_decay_length_penalty is not None:
        if eos is None:
            raise ValueError("exponential_decay_length_penalty needs eos_token_id")
        out.append(ExponentialDecayLengthPenalty(gc.exponential_decay_length_penalty, eos))
    if gc.suppress_tokens is not None:
        out.append(SuppressTokensLogitsProcessor(gc.suppress_tokens))
    if gc.begin_suppress_tokens is not None:
        out.append(SuppressTokensAtBeginLogitsProcessor(gc.begin_suppress_tokens,
                                                        after_forced_bos=gc.forced_bos_token_id is not None))
    for custom in logits_processor or ():
        for built in out:
            if type(custom) is type(built):
                raise ValueError(f"a custom {type(custom).__name__} was passed, but generate already builds "
                                 f"one from the generation options ({built!r}); set the option instead")
        out.append(custom if isinstance(custom, LogitsProcessor) else CallableProcessor(custom))
    if gc.do_sample:
        keep = 1
        if gc.num_beams is not None and gc.num_beams > 1:  # beams need a non-eos token to continue
            keep = len(eos) + 1 if eos else 2
        if gc.temperature is not None and gc.temperature != 1.0:
            out.append(TemperatureLogitsWarper(gc.temperature))
        top_k = None
        if gc.top_k is not None and gc.top_k != 0:
            out.append(TopKLogitsWarper(gc.top_k, min_tokens_to_keep=keep))
            top_k = out[-1].top_k
        if gc.top_p is not None and gc.top_p < 1.0:
            out.append(TopPLogitsWarper(gc.top_p, min_tokens_to_keep=keep, candidates=top_k))
        if gc.min_p is not None:
            out.append(MinPLogitsWarper(gc.min_p, min_tokens_to_keep=keep))
        if gc.typical_p is not None and gc.typical_p < 1.0:
            out.append(TypicalLogitsWarper(gc.typical_p, min_tokens_to_keep=keep))
        if gc.epsilon_cutoff is not None and 0.0 < gc.epsilon_cutoff < 1.0:
            out.append(EpsilonLogitsWarper(gc.epsilon_cutoff, min_tokens_to_keep=keep))
        if gc.eta_cutoff is not None and 0.0 < gc.eta_cutoff < 1.0:
            out.append(EtaLogitsWarper(gc.eta_cutoff, min_tokens_to_keep=keep))
    if gc.renormalize_logits:
        out.append(LogitNormalization())
    return out
