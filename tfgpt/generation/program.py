"""What the compiled decode programs share: their compile-time options, their run-time parameters,
the model's forward pass over the static KV cache, and the per-step score processors.

One decode step is: raw logits [B, V] float32 (``CachedForward.next_logits``), then
``scores = processors(input_ids, logits, cur_len, valid, prompt_lengths)`` (``ScoreProcessors``),
then a sampler or the beam step picks tokens from ``scores``.

Shapes in comments: B batch (rows, beams included), P bucketed prompt length, N bucketed new tokens,
T = P + N the cache length, V vocabulary, L layers, H heads, D head dim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Union

import tensorflow as tf

from tfgpt.generation.processors import DecodeState, LogitsProcessorList
from tfgpt.generation.stopping import StoppingCriteriaList

NEG_INF = -1.0e9  # HF's "impossible" beam score: finite, so sums and comparisons stay well defined
SEED_MODULUS = 2**31 - 1  # sampling seeds are reduced modulo this (they are int32 in the programs)
MODES = ("greedy", "sample", "beam", "contrastive")

# Number of traces of the compiled programs (all models); tests check that same-bucket calls reuse them.
_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times a generation program has been traced in this process."""
    return _TRACES["count"]


def count_trace() -> None:
    """Called by each program while it is traced (Python side effect: once per trace, not per run)."""
    _TRACES["count"] += 1


@dataclass(frozen=True)
class DecodeOptions:
    """The compile-time choices of a decode program: a different value compiles another program.

    ``mode`` is greedy, sample, beam or contrastive; ``top_k`` (0 = off) and ``use_top_p`` shape the
    sampler (in contrastive search ``top_k`` is the number of candidates per step);
    ``use_repetition_penalty`` turns the penalty processor on; ``n_eos`` is the number of eos ids
    (0: rows never stop early); ``num_beams`` and ``early_stopping`` (True, False, "never") drive
    beam search, which samples its candidates when ``do_sample`` (HF's beam sampling).

    ``processors`` (a tuple of ``tfgpt.generation.processors`` processors or TF callables, HF's order)
    is applied to each step's scores; ``generate`` puts the whole list there (penalty and warpers
    included) and the sampler only draws. The built-in run-time ones may be kept around the list
    (the exported text signatures do): ``use_repetition_penalty`` runs before it, the sampler's
    temperature / ``top_k`` / ``use_top_p`` after it, which is HF's order for processors that sit
    between the penalty and the warpers (no-repeat n-grams, bad words, min length). ``stopping`` holds in-graph
    stopping criteria checked after each token besides eos and the length (in beam search on every
    candidate, which then finishes as on eos: HF's).
    ``output_scores`` / ``output_logits`` make the program also return [B, N, V] float32 buffers of
    the processed scores / raw logits of every step. ``output_attentions`` / ``output_hidden_states``
    (not in contrastive search) make it also return the prefill's attentions [L, B, H, P, T] / hidden
    states [L + 1, B, P, E] and every later step's [N, L, B, H, T] / [N, L + 1, B, E].
    """

    mode: str = "greedy"
    top_k: int = 0
    use_top_p: bool = False
    use_repetition_penalty: bool = False
    n_eos: int = 0
    num_beams: int = 1
    early_stopping: Union[bool, str] = False
    do_sample: bool = False
    processors: Optional[tuple] = None
    stopping: Optional[tuple] = None
    output_scores: bool = False
    output_logits: bool = False
    output_attentions: bool = False
    output_hidden_states: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        if self.do_sample and self.mode != "beam":
            raise ValueError(f"do_sample selects beam sampling in mode 'beam'; mode {self.mode!r} has its own")
        if self.mode == "contrastive" and self.top_k < 2:
            raise ValueError(f"contrastive search needs top_k > 1 candidates, got {self.top_k}")
        if (self.output_attentions or self.output_hidden_states) and self.mode == "contrastive":
            names = [n for n in ("output_attentions", "output_hidden_states") if getattr(self, n)]
            raise ValueError(f"{' and '.join(names)} work with greedy search, sampling and beam "
                             f"search, not with {self.mode} decoding")
        if self.processors is not None:
            if not isinstance(self.processors, tuple):
                raise TypeError(f"processors must be a tuple, got {type(self.processors).__name__}")
        if self.stopping is not None and not isinstance(self.stopping, tuple):
            raise TypeError(f"stopping must be a tuple, got {type(self.stopping).__name__}")


class DecodeParams(NamedTuple):
    """The run-time values of a decode program (Python numbers, or the tensors ``as_tensors`` gives).

    Changing them never recompiles. ``eos_token_ids`` is a sequence of ids ([0] stands in when there
    is none: ``DecodeOptions.n_eos`` = 0 then ignores it); finished rows emit ``pad_token_id``;
    ``penalty_alpha`` weighs the degeneration penalty of contrastive search.
    """

    temperature: Union[float, tf.Tensor] = 1.0
    top_p: Union[float, tf.Tensor] = 1.0
    repetition_penalty: Union[float, tf.Tensor] = 1.0
    length_penalty: Union[float, tf.Tensor] = 1.0
    eos_token_ids: Union[Sequence[int], tf.Tensor] = ()
    pad_token_id: Union[int, tf.Tensor] = 0
    seed: Union[int, tf.Tensor] = 0
    penalty_alpha: Union[float, tf.Tensor] = 0.0

    def as_tensors(self) -> "DecodeParams":
        """The same values as float32 / int32 tensors (an int32 [n_eos] tensor of eos ids)."""
        eos = self.eos_token_ids
        if not tf.is_tensor(eos) and len(eos) == 0:
            eos = [0]
        return DecodeParams(
            temperature=tf.cast(self.temperature, tf.float32),
            top_p=tf.cast(self.top_p, tf.float32),
            repetition_penalty=tf.cast(self.repetition_penalty, tf.float32),
            length_penalty=tf.cast(self.length_penalty, tf.float32),
            eos_token_ids=tf.cast(tf.reshape(eos, [-1]), tf.int32),
            pad_token_id=tf.cast(self.pad_token_id, tf.int32),
            seed=tf.cast(self.seed, tf.int32),
            penalty_alpha=tf.cast(self.penalty_alpha, tf.float32),
        )


def static_dim(x, axis: int):
    """``x.shape[axis]`` when known at trace time, else the dynamic size (a scalar int32 tensor)."""
    return x.shape[axis] if x.shape[axis] is not None else tf.shape(x)[axis]


class CachedForward:
    """The model's own forward pass over a static KV cache, returning the last position's logits.

    The cache is a (keys, values) pair of [B, H, T, D] tensors per layer, one [B, 2, H, T, D] tensor
    per layer (``empty_cache`` picks by batch size) or one stacked [L, B, 2, H, T, D] tensor;
    ``next_logits`` writes the keys and values of its tokens at ``index`` and attends over the cache,
    so prefill (the prompt at index 0) and each decode step (one token at P + i - 1) are the same call.
    """

    def __init__(self, model):
        c = model.config
        self.transformer = model.transformer
        self.n_layer, self.n_head, self.head_dim = c.n_layer, c.n_head, c.n_embd // c.n_head
        self.vocab_size = c.vocab_size
        self.dtype = self.transformer.compute_dtype

    def empty_cache(self, batch, length):
        """The zero cache of ``batch`` rows, T = ``length``: per layer a (keys, values) pair of
        [B, H, T, D] tensors where the batch is known and above 1, else one [B, 2, H, T, D] tensor.

        XLA updates either in place; the pair's halves are read by the attention matmuls as they
        are, where the single tensor costs a copy of both halves per step (the whole cache, 94 MB
        at batch 16, GPT-1 size, 80 positions). At batch 1 XLA drops the unit batch dimension
        before the matmuls and would copy each half of a pair twice per step instead.
        """
        if tf.is_tensor(batch) or batch == 1:
            shape = [batch, 2, self.n_head, length, self.head_dim]
            return tuple(tf.zeros(shape, self.dtype) for _ in range(self.n_layer))
        shape = [batch, self.n_head, length, self.head_dim]
        return tuple((tf.zeros(shape, self.dtype), tf.zeros(shape, self.dtype)) for _ in range(self.n_layer))

    def hidden_states(self, ids, mask, cache, index):
        """(last-layer hidden states [B, S, E] of ``ids`` [B, S], the updated cache).

        ``mask`` [B, T] marks the real positions of the whole cache (None: all real).
        """
        out = self.transformer(ids, attention_mask=mask, cache=cache, cache_index=index,
                               return_dict=True, training=False)
        return out.last_hidden_state, out.cache

    def next_outputs(self, ids, mask, cache, index, attentions=False, hidden_states=False):
        """(logits [B, V] float32 of the last of ``ids`` [B, S], the updated cache, L x [B, H, S, T]
        attention probabilities or None, L + 1 x [B, S, E] hidden states (embeddings first) or None)."""
        out = self.transformer(ids, attention_mask=mask, cache=cache, cache_index=index, return_dict=True,
                               output_attentions=attentions, output_hidden_states=hidden_states, training=False)
        return self.logits(out.last_hidden_state[:, -1, :]), out.cache, out.attentions, out.hidden_states

    def logits(self, hidden):
        """The LM head's float32 logits [..., V] of hidden states [..., E] (the tied token table)."""
        return tf.cast(self.transformer.tokens_embed(hidden, reverse=True), tf.float32)

    def next_logits(self, ids, mask, cache, index):
        """(logits [B, V] float32 of the last of ``ids`` [B, S], the updated cache); ``mask`` as above."""
        hidden, cache = self.hidden_states(ids, mask, cache, index)
        return self.logits(hidden[:, -1, :]), cache

    def all_logits(self, ids, mask, cache, index):
        """(logits [B, S, V] float32 of every one of ``ids`` [B, S], the updated cache): the
        verification pass of speculative decoding scores S tokens in one read of the weights."""
        hidden, cache = self.hidden_states(ids, mask, cache, index)
        return self.logits(hidden), cache


# --- score processors: raw logits -> scores, between the forward pass and the token choice ----------

def repetition_penalty(input_ids, scores, valid, penalty):
    """HF's repetition penalty: scores of tokens in the row (where ``valid``) divided by ``penalty``,
    or multiplied when negative. input_ids, valid [B, T]; scores [B, V]."""
    batch, vocab = tf.shape(scores)[0], tf.shape(scores)[1]
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(input_ids))  # (B, T)
    index = tf.reshape(tf.stack([rows, input_ids], axis=-1), [-1, 2])  # (B*T, 2)
    hits = tf.reshape(tf.cast(valid, tf.int32), [-1])
    seen = tf.tensor_scatter_nd_max(tf.zeros([batch, vocab], tf.int32), index, hits) > 0  # (B, V)
    penalized = tf.where(scores < 0, scores * penalty, scores / penalty)
    return tf.where(seen, penalized, scores)


class ScoreProcessors:
    """The processors of one program, applied in HF's order to each step's scores.

    Called as ``processors(input_ids, scores, cur_len, valid, prompt_lengths)``: ``input_ids`` [B, T]
    int32 is the token buffer (the left-padded prompt in columns < P, generated tokens after it),
    ``scores`` [B, V] float32, ``cur_len`` the number of buffer columns filled (the next token goes
    to column ``cur_len``), ``valid`` [B, T] bool the real tokens among them (prompt padding and
    unfilled columns are False), ``prompt_lengths`` [B] the real prompt tokens per row. With no
    processor on it returns ``scores`` unchanged; with ``options.processors`` it applies that list to a
    ``processors.DecodeState`` of the same values.
    """

    def __init__(self, options: DecodeOptions, params: DecodeParams):
        self.penalty = params.repetition_penalty if options.use_repetition_penalty else None
        self.chain = None if options.processors is None else LogitsProcessorList(options.processors)

    def __call__(self, input_ids, scores, cur_len, valid, prompt_lengths):
        if self.penalty is not None:  # first, as HF orders it before the other processors
            scores = repetition_penalty(input_ids, scores, valid, self.penalty)
        if self.chain is not None:
            state = DecodeState(input_ids, valid, tf.convert_to_tensor(cur_len, tf.int32), prompt_lengths)
            return self.chain(state, scores)
        return scores


class StopCheck:
    """The in-graph stopping criteria of one program (``options.stopping``), or none.

    ``stop(input_ids, scores, cur_len, valid) -> [B] bool`` after the token at column ``cur_len - 1``
    was written; ``valid`` [B, T] marks the real written tokens.
    """

    def __init__(self, options: DecodeOptions):
        self.criteria = None if not options.stopping else StoppingCriteriaList(options.stopping)

    def __bool__(self):
        return self.criteria is not None

    def __call__(self, input_ids, scores, cur_len, valid):
        return self.criteria(input_ids, scores, tf.convert_to_tensor(cur_len, tf.int32), valid=valid)


def record(buffer, rows, step, values):
    """``buffer`` [B, N, V] with ``values`` [B, V] written at step ``step`` (the output score logs)."""
    at = tf.stack([rows, tf.fill(tf.shape(rows), tf.convert_to_tensor(step, tf.int32))], axis=1)  # (B, 2)
    return tf.tensor_scatter_nd_update(buffer, at, values)


def put_step(log, step, values):
    """The per-step attention / hidden-state logs ``(prefill, steps [N, ...])`` with one step's
    ``values`` (L x [B, H, 1, T] attentions or (L + 1) x [B, 1, E] hidden states) at slot ``step``;
    ``()`` (not asked for) stays ``()``."""
    if not log:
        return log
    stacked = tf.stack([v[:, :, 0, :] if v.shape.rank == 4 else v[:, 0, :] for v in values])  # (L', B, ...)
    return log[0], tf.tensor_scatter_nd_update(log[1], [[step]], tf.cast(stacked, log[1].dtype)[None])
