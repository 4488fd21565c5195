"""Stopping criteria: when a row (or the whole batch) is done, as in-graph TensorFlow ops.

Protocol (HF's, TF flavour): ``criteria(input_ids [B, L] int32, scores [B, V], cur_len) -> [B] bool``,
True for rows that are done. ``input_ids`` is the static-length decode buffer; positions >= ``cur_len``
are not yet written. tfgpt's criteria also take ``valid=`` [B, L] bool (False on left padding) so that
a left-padded row is judged exactly as the row alone; user callables are called with the three
arguments only.

Everything runs in ``tf.function(jit_compile=True)`` and in an exported SavedModel, except
:class:`MaxTimeCriteria`: XLA has no clock, so the time limit is checked on the host, between compiled
chunks of decode steps (``StoppingCriteriaList.host_done()``), and stops the whole batch.

:class:`StopStringCriteria` matches stop strings on the decoded text in-graph with HF's method: for
every vocabulary token it precomputes where the token's text can sit inside each stop string (and how
much of the string's end it can cover when it is the newest token); at run time the newest tokens are
looked up in that table and their lengths accumulated, which tells whether they spell the stop string.
"""

from __future__ import annotations

import functools
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from tfgpt.generation.processors import ValueKeyed
from tfgpt.validation import stop_string_list


def _id_list(value, name: str) -> List[int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a list of ints, got {value!r}")
    ids = [value] if isinstance(value, int) else list(value)
    if not ids or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0 for t in ids):
        raise ValueError(f"{name} must be a non-negative id or a non-empty list of them, got {value!r}")
    return [int(t) for t in ids]


def _batch(input_ids) -> tf.Tensor:
    return tf.shape(input_ids)[0]


class StoppingCriteria(ValueKeyed):
    """Base of tfgpt's criteria: ``__call__(input_ids, scores, cur_len, valid=None) -> [B] bool``.

    ``host_side`` criteria cannot run in a compiled program; they are checked with :meth:`expired`.
    Criteria built from equal arguments compare equal (they key the compiled decode program).
    """

    host_side = False

    def __call__(self, input_ids, scores, cur_len, valid=None) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class MaxLengthCriteria(StoppingCriteria):
    """Done once the buffer holds ``max_length`` tokens (HF counts the prompt, padding included)."""

    def __init__(self, max_length: int):
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        self.max_length = max_length

    def __call__(self, input_ids, scores, cur_len, valid=None):
        return tf.fill([_batch(input_ids)], tf.convert_to_tensor(cur_len) >= self.max_length)


class EosTokenCriteria(StoppingCriteria):
    """Done when the newest token is one of ``eos_token_id`` (one id or several)."""

    def __init__(self, eos_token_id: Union[int, Sequence[int]]):
        self.eos_token_id = _id_list(eos_token_id, "eos_token_id")

    def __call__(self, input_ids, scores, cur_len, valid=None):
        last = tf.gather(input_ids, tf.maximum(tf.convert_to_tensor(cur_len) - 1, 0), axis=1)  # (B,)
        eos = tf.constant(self.eos_token_id, input_ids.dtype)
        return tf.reduce_any(tf.equal(last[:, None], eos[None, :]), axis=-1)


class MaxTimeCriteria(StoppingCriteria):
    """Done for every row once ``max_time`` seconds have passed since ``initial_timestamp`` (default: now).

    Host-side: a compiled loop cannot read a clock, so ``generate`` decodes in compiled chunks and calls
    :meth:`expired` between them (the limit is honoured to within one chunk). Called eagerly it answers
    for the batch; inside a traced function it raises instead of freezing the trace-time answer.
    """

    host_side = True

    def __init__(self, max_time: float, initial_timestamp: Optional[float] = None):
        if isinstance(max_time, bool) or not isinstance(max_time, (int, float)) or not max_time > 0:
            raise ValueError(f"max_time must be a positive number of seconds, got {max_time!r}")
        self.max_time = float(max_time)
        self.initial_timestamp = time.time() if initial_timestamp is None else float(initial_timestamp)

    def expired(self) -> bool:
        return time.time() - self.initial_timestamp > self.max_time

    def __call__(self, input_ids, scores, cur_len, valid=None):
        if not tf.executing_eagerly():
            raise ValueError("max_time is checked on the host between compiled decode chunks; "
                             "MaxTimeCriteria cannot run inside a tf.function (use StoppingCriteriaList.host_done)")
        return tf.fill([_batch(input_ids)], self.expired())


class StopStringCriteria(StoppingCriteria):
    """Done when the decoded text of a row ends a stop string inside its newest token (HF's rule).

    The text of a token is what the tokenizer decodes it to after other text (for GPT-1, a word-final
    token ``cat</w>`` reads " cat"). Only tokens that are real (``valid``) and written take part.
    """

    def __init__(self, tokenizer, stop_strings: Union[str, Sequence[str]]):
        self.stop_strings = stop_strings = stop_string_list(stop_strings)
        tokens, indices = token_strings(tokenizer)
        table, self._max_positions, self._max_ends = _cached_table(tokens, indices, stop_strings)
        self._np_table = table  # the cached table: one object per vocabulary and stop strings
        self._table = tf.constant(table, tf.int32)  # (V + 1, S * (P + E) + 1); the last row: unknown id
        self._unknown = table.shape[0] - 1
        self._window = max(len(s) for s in stop_strings)  # tokens to look back: each holds >= 1 char
        self._target = tf.constant([len(s) for s in stop_strings], tf.int32)

    def cache_key(self) -> tuple:
        return (type(self), self.stop_strings, ("id", id(self._np_table)))

    def __call__(self, input_ids, scores, cur_len, valid=None):
        s, p, e, m = len(self.stop_strings), self._max_positions, self._max_ends, self._window
        pos = tf.convert_to_tensor(cur_len) - 1 - tf.range(m)  # (M,): newest first
        inside = pos >= 0
        pos = tf.maximum(pos, 0)
        ids = tf.gather(tf.cast(input_ids, tf.int32), pos, axis=1)  # (B, M)
        ok = tf.broadcast_to(inside[None, :], tf.shape(ids))
        if valid is not None:
            ok &= tf.gather(tf.cast(valid, tf.bool), pos, axis=1)
        ok &= (ids >= 0) & (ids < self._unknown)
        ids = tf.where(ok, ids, self._unknown)
        emb = tf.gather(self._table, ids)  # (B, M, S*(P+E)+1)
        b = tf.shape(ids)[0]
        positions = tf.reshape(emb[:, 1:, :s * p], [b, m - 1, s, p])  # where older tokens may sit
        ends = tf.reshape(emb[:, :1, s * p:-1], [b, 1, s, e])  # how much of the end the newest covers
        lengths = tf.broadcast_to(emb[:, 1:, None, -1:], [b, m - 1, s, e])
        covered = tf.cumsum(tf.concat([ends, lengths], axis=1), axis=1)  # (B, M, S, E): chars so far
        first = ends > 0
        later = tf.reduce_any(tf.equal(covered[:, :-1, :, None, :], positions[:, :, :, :, None]), axis=3)
        match = tf.concat([first, later], axis=1)  # (B, M, S, E)
        chain = tf.equal(tf.cumsum(tf.cast(~match, tf.int32), axis=1), 0)  # every newer token matched
        reach = tf.reduce_max(covered * tf.cast(chain, tf.int32), axis=[1, 3])  # (B, S)
        return tf.reduce_any(reach >= self._target[None, :], axis=-1)


def token_strings(tokenizer) -> Tuple[Tuple[str, ...], Tuple[int, ...]]:
    """Each vocabulary token's text as it reads after other text (HF's ``clean_tokenizer_vocab``).

    A fixed prefix is decoded together with the token and cut off again, so word-boundary markers
    (GPT-1's ``</w>``) become the spaces they stand for.
    """
    prefix = "abcdef"
    base = tokenizer.convert_ids_to_tokens(tokenizer.encode(prefix, add_special_tokens=False))
    tokens, indices = [], []
    for token, index in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string(list(base) + [token])
        at = text.find(prefix)
        tokens.append(text[at + len(prefix):] if at >= 0 else text)
        indices.append(int(index))
    return tuple(tokens), tuple(indices)


def _placements(tokens, indices, stop_strings):
    """Per stop string: {token id: positions (chars from the string's end) the token may end at},
    and {token id: lengths of the string's end the token may cover as the newest token}."""
    positions: Dict[str, Dict[int, List[int]]] = {}
    ends: Dict[str, Dict[int, List[int]]] = {}
    for stop in stop_strings:
        rstop = stop[::-1]
        positions[stop], ends[stop] = {}, {}
        for token, index in zip(tokens, indices):
            rtok = token[::-1]
            at, cover = [], []
            for i in range(1 - len(token), len(stop)):
                piece = rtok[-i:] if i < 0 else rtok  # i < 0: the token runs past the string's end
                i = max(i, 0)
                part = rstop[i:i + len(piece)]
                if piece.startswith(part):
                    if i == 0:
                        cover.append(min(len(piece), len(part)))
                    else:
                        at.append(i)
            if at:
                positions[stop][index] = at
            if cover:
                ends[stop][index] = cover
    return positions, ends


def stop_string_table(tokens: Sequence[str], indices: Sequence[int], stop_strings: Sequence[str]):
    """The lookup table of :class:`StopStringCriteria`: int32 [max id + 2, S * (P + E) + 1], P and E.

    Row t: for each stop string, the P positions token t may end at, then for each stop string the E
    end lengths it may cover as the newest token (-1 = none), then the token's length. The last row
    (-1 everywhere) stands for ids outside the vocabulary and padding.
    """
    positions, ends = _placements(tokens, indices, stop_strings)
    p = max([len(v) for d in positions.values() for v in d.values()] or [1])
    e_lens = [len(v) for d in ends.values() for v in d.values()]
    if not e_lens:
        raise ValueError(f"no token of the vocabulary can end the stop strings {list(stop_strings)!r}")
    e = max(e_lens)
    s = len(stop_strings)
    table = np.full((max(indices) + 2, s * (p + e) + 1), -1, np.int32)
    for k, stop in enumerate(stop_strings):
        for index, at in positions[stop].items():
            table[index, p * k:p * k + len(at)] = at
        for index, cover in ends[stop].items():
            table[index, p * s + e * k:p * s + e * k + len(cover)] = cover
    for token, index in zip(tokens, indices):
        table[index, -1] = len(token)
    return table, p, e


@functools.lru_cache(maxsize=8)  # a generate call builds the criteria anew; the table takes seconds
def _cached_table(tokens: Tuple[str, ...], indices: Tuple[int, ...], stop_strings: Tuple[str, ...]):
    table, p, e = stop_string_table(tokens, indices, stop_strings)
    table.setflags(write=False)
    return table, p, e


class StoppingCriteriaList(list):
    """Criteria OR-ed per row; host-side ones (``max_time``) are left to :meth:`host_done`."""

    def __call__(self, input_ids, scores, cur_len, valid=None) -> tf.Tensor:
        done = tf.zeros([_batch(input_ids)], tf.bool)
        for c in self:
            if isinstance(c, StoppingCriteria):
                if c.host_side:
                    continue
                done |= c(input_ids, scores, cur_len, valid=valid)
            else:
                done |= tf.cast(tf.reshape(c(input_ids, scores, cur_len), [-1]), tf.bool)
        return done

    def host_done(self) -> bool:
        """Whether a host-side criterion (a time limit) ends the whole batch now."""
        return any(c.expired() for c in self if isinstance(c, StoppingCriteria) and c.host_side)

    @property
    def max_length(self) -> Optional[int]:
        for c in self:
            if isinstance(c, MaxLengthCriteria):
                return c.max_length
        return None


def build_stopping_criteria(generation_config, tokenizer=None, stopping_criteria=None,
                            max_length: Optional[int] = None) -> StoppingCriteriaList:
    """HF's ``_get_stopping_criteria``: max length, max time, stop strings, eos, then the user's.

    ``max_length`` (the buffer length at which to stop) overrides ``generation_config.max_length``.
    Stop strings need the ``tokenizer``; a user criterion of a class already built is refused (HF).
    """
    gc = generation_config
    out = StoppingCriteriaList()
    length = max_length if max_length is not None else gc.max_length
    if length is not None:
        out.append(MaxLengthCriteria(length))
    if gc.max_time is not None:
        out.append(MaxTimeCriteria(gc.max_time))
    if gc.stop_strings is not None:
        if tokenizer is None:
            raise ValueError("stop_strings needs the model's tokenizer: pass tokenizer= to generate")
        out.append(StopStringCriteria(tokenizer, gc.stop_strings))
    if gc.eos_token_id is not None:
        out.append(EosTokenCriteria(gc.eos_token_id))
    for custom in stopping_criteria or ():
        for built in out:
            if type(custom) is type(built):
                raise ValueError(f"a custom {type(custom).__name__} was passed, but generate already builds "
                                 f"one from the generation options ({built!r}); set the option instead")
        if not callable(custom):
            raise TypeError(f"a stopping criterion must be callable, got {type(custom).__name__}")
        out.append(custom)
    return out
