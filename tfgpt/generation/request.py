"""Request preparation: validate and normalise ``generate``'s arguments once (Python, eager).

``prepare_request`` turns the HF-style arguments into a frozen ``GenerationRequest``: left-aligned
int64 prompts and their mask, the lengths and their buckets, the program's compile-time
``DecodeOptions`` and run-time ``DecodeParams``; ``left_pad_ragged`` is the in-graph counterpart
for a ragged batch of ids. ``resolve_special_ids`` is the one place where eos and pad ids are taken
from the arguments or the config (the exported text signatures use it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfgpt import validation
from tfgpt.generation.buckets import cache_lengths
from tfgpt.generation.program import SEED_MODULUS, DecodeOptions, DecodeParams

DEFAULT_MAX_LENGTH = 20  # HF's GenerationConfig default, used when neither length is given


class SpecialIds(NamedTuple):
    """The eos and pad ids of a call."""

    eos_token_ids: Tuple[int, ...]     # a row stops at any of these (empty: never early)
    pad_token_id: int                  # what finished rows emit
    known_pad_token_id: Optional[int]  # the pad id given or configured (None: pad_token_id was inferred)


def _as_id_list(value, name) -> list:
    if value is None:
        return []
    if isinstance(value, (tf.Tensor, np.ndarray)):
        value = np.asarray(value).ravel().tolist()
    if isinstance(value, (int, np.integer)) or np.ndim(value) == 0:
        return [validation.as_int(value, name)]
    out = [validation.as_int(v, name) for v in value]
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def resolve_special_ids(config, eos_token_id=None, pad_token_id=None) -> SpecialIds:
    """eos ids: ``eos_token_id`` (an id or a list), else the config's; pad: ``pad_token_id``, else the
    config's, else the first eos id, else 0 (HF's fallbacks). Ids outside the vocabulary raise."""
    if eos_token_id is None and getattr(config, "eos_token_id", None) is not None:
        eos = _as_id_list(config.eos_token_id, "config.eos_token_id")
    else:
        eos = _as_id_list(eos_token_id, "eos_token_id")
    for t in eos:
        if not 0 <= t < config.vocab_size:
            raise ValueError(f"eos_token_id {t} outside [0, vocab_size={config.vocab_size})")
    if pad_token_id is not None:
        known = validation.check_token_id(pad_token_id, config.vocab_size, "pad_token_id")
    elif config.pad_token_id is not None:
        known = validation.check_token_id(config.pad_token_id, config.vocab_size, "config.pad_token_id")
    else:
        known = None
    pad = known if known is not None else (eos[0] if eos else 0)
    return SpecialIds(tuple(eos), pad, known)


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
    if arr.dtype.kind in "USO" and any(isinstance(v, (str, bytes)) for v in np.ravel(arr)):
        raise TypeError(f"{name} must be token ids, got strings; tokenize them first")
    if arr.dtype == object and any(v is None for v in np.ravel(arr)):
        raise TypeError(f"{name} holds None where a token id is expected")
    if arr.dtype == object:
        raise ValueError(f"{name} must be a rectangular array of token ids (pad and pass an attention_mask)")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def left_align(ids, mask):
    """Move each row's real tokens (mask 1) to the right end, keeping their order.

    Left-padded rows are returned unchanged; right-padded rows (or masks with holes) become
    left-padded, which is what the decode programs expect. ids, mask [B, W].
    """
    order = np.argsort(mask == 1, axis=1, kind="stable")  # pads first, real tokens after, in order
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(mask, order, axis=1)


def left_pad_ragged(ids, width):
    """In-graph left padding: (ids, mask) [B, width] int32 from a ragged int32 batch [B, (n)].

    Row b's token j lands in column ``width - n_b + j``; ``width`` (a scalar int32 tensor or an int:
    the bucketed prompt length) must be at least the longest row.
    """
    lengths = tf.cast(ids.row_lengths(), tf.int32)  # (B,)
    batch = tf.shape(lengths)[0]
    right = ids.to_tensor(default_value=0, shape=tf.stack([batch, width]))  # (B, width), right-padded
    src = tf.range(width)[None, :] - (width - lengths)[:, None]  # (B, width): source column, < 0 pad
    real = src >= 0
    dense = tf.where(real, tf.gather(right, tf.maximum(src, 0), batch_dims=1), 0)
    return dense, tf.cast(real, tf.int32)


@dataclass(frozen=True, eq=False)
class GenerationRequest:
    """The validated, normalised arguments of one ``generate`` call."""

    ids: np.ndarray                 # [B, W] int64 left-aligned prompts (repeated per returned sample)
    mask: np.ndarray                # [B, W] int64, 1 on real tokens
    lead_shape: Optional[Tuple[int, int]]  # (batch, choices) of a [B, C, S] input, else None
    prompt_len: int                 # the longest real prompt (all-padding columns do not count)
    max_new_tokens: int
    prompt_bucket: int              # P >= prompt_len
    new_bucket: int                 # N >= max_new_tokens, P + N <= n_positions
    num_return_sequences: int
    options: DecodeOptions          # compile-time: which program
    params: DecodeParams            # run-time values (Python numbers)

    @property
    def batch(self) -> int:
        return self.ids.shape[0]

    @property
    def width(self) -> int:
        return self.ids.shape[1]

    def bucketed_prompts(self):
        """(ids, mask) [B, P] int32: the last P columns, left-padded with masked zeros when narrower."""
        P, width = self.prompt_bucket, self.width
        ids = np.zeros((self.batch, P), np.int32)
        mask = np.zeros((self.batch, P), np.int32)
        keep = min(P, width)
        ids[:, P - keep:] = self.ids[:, width - keep:]
        mask[:, P - keep:] = self.mask[:, width - keep:]
        return ids, mask


def prepare_request(model, input_ids, attention_mask=None, max_new_tokens=None, max_length=None,
                    do_sample=False, temperature=1.0, top_k=0, top_p=1.0, num_beams=1,
                    repetition_penalty=1.0, eos_token_id=None, pad_token_id=None, seed=None,
                    length_penalty=1.0, early_stopping=False, num_return_sequences=1,
                    penalty_alpha=None) -> GenerationRequest:
    """Validate ``generate``'s arguments (clear ValueError / TypeError naming the argument) and
    normalise them into a ``GenerationRequest``."""
    cfg = model.config
    rows = _ragged_rows(input_ids) if attention_mask is None else None
    if rows is not None:  # prompts of different lengths: left-pad them here
        width = max(len(row) for row in rows)
        fill = pad_token_id if pad_token_id is not None else (cfg.pad_token_id or 0)
        input_ids = [[fill] * (width - len(row)) + row for row in rows]
        attention_mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    ids = _to_numpy_ids(input_ids, "input_ids")
    lead_shape = None
    if ids.ndim == 1:
        ids = ids[None, :]
    elif ids.ndim == 3:  # double heads [B, C, S]: every choice is a prompt
        lead_shape = tuple(ids.shape[:2])
        ids = ids.reshape(-1, ids.shape[-1])
    elif ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, length] (or [batch, choices, length]), got shape {ids.shape}")
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"input_ids must hold at least one token per row, got shape {ids.shape}")
    if ids.min() < 0 or ids.max() >= cfg.vocab_size:
        bad = ids[(ids < 0) | (ids >= cfg.vocab_size)].ravel()[0]
        raise ValueError(f"input_ids holds {bad}, outside [0, vocab_size={cfg.vocab_size})")

    special = resolve_special_ids(cfg, eos_token_id, pad_token_id)
    if attention_mask is None:
        # HF: a known pad token in the prompt (that is not also an eos token) marks padding.
        known = special.known_pad_token_id
        if known is not None and known not in special.eos_token_ids and np.any(ids == known):
            mask = (ids != known).astype(np.int64)
        else:
            mask = np.ones_like(ids)
    else:
        mask = _to_numpy_ids(attention_mask, "attention_mask")
        if lead_shape is not None and mask.ndim == 3:
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
    ids, mask = left_align(ids, mask)
    width = ids.shape[1]
    prompt_len = int(real.max())  # leading all-padding columns are dropped by the bucketing

    if max_new_tokens is None:  # max_new_tokens wins when both are given (HF)
        if max_length is None:
            max_length = DEFAULT_MAX_LENGTH
        max_new_tokens = validation.as_int(max_length, "max_length") - width
        if max_new_tokens <= 0:
            raise ValueError(f"max_length={max_length} leaves no room after the {width}-token prompt; "
                             f"pass max_new_tokens")
    max_new_tokens = validation.as_int(max_new_tokens, "max_new_tokens")
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    if prompt_len + max_new_tokens > cfg.n_positions:
        raise ValueError(f"prompt of {prompt_len} tokens + max_new_tokens={max_new_tokens} = "
                         f"{prompt_len + max_new_tokens} exceeds n_positions={cfg.n_positions}")
    P, N = cache_lengths(prompt_len, max_new_tokens, cfg.n_positions)

    num_beams = validation.as_int(num_beams, "num_beams")
    num_return_sequences = validation.as_int(num_return_sequences, "num_return_sequences")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if num_return_sequences < 1:
        raise ValueError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
    if num_beams > 1 and num_return_sequences > num_beams:
        raise ValueError(f"num_return_sequences={num_return_sequences} must be <= num_beams={num_beams}")
    if num_beams == 1 and not do_sample and num_return_sequences > 1:
        raise ValueError("greedy search returns one sequence per prompt; use do_sample=True or "
                         "num_beams >= num_return_sequences")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    temperature = validation.as_float(temperature, "temperature")
    top_k = validation.as_int(top_k or 0, "top_k")
    top_p = validation.as_float(1.0 if top_p is None else top_p, "top_p")
    repetition_penalty = validation.as_float(repetition_penalty, "repetition_penalty")
    length_penalty = validation.as_float(length_penalty, "length_penalty")
    if not isinstance(do_sample, (bool, np.bool_)):
        raise TypeError(f"do_sample must be True or False, got {do_sample!r}")
    if do_sample:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0, got {repetition_penalty}")

    penalty_alpha = 0.0 if penalty_alpha is None else float(penalty_alpha)
    if not 0.0 <= penalty_alpha <= 1.0:
        raise ValueError(f"penalty_alpha must be in [0, 1], got {penalty_alpha}")
    contrastive = penalty_alpha > 0
    if contrastive and (do_sample or num_beams > 1 or top_k < 2):
        raise ValueError(f"penalty_alpha={penalty_alpha} selects contrastive search, which needs top_k > 1 "
                         f"(got {top_k}), do_sample=False (got {do_sample}) and num_beams=1 (got {num_beams})")

    mode = "beam" if num_beams > 1 else ("sample" if do_sample else ("contrastive" if contrastive else "greedy"))
    sampling = bool(do_sample)  # sampling or beam sampling
    options = DecodeOptions(
        mode=mode, top_k=min(top_k, cfg.vocab_size) if (sampling or contrastive) else 0,
        use_top_p=sampling and top_p < 1.0, use_repetition_penalty=repetition_penalty != 1.0,
        n_eos=len(special.eos_token_ids), num_beams=num_beams,
        early_stopping=early_stopping if mode == "beam" else False, do_sample=sampling and mode == "beam")
    if seed is None:
        seed = int(np.random.default_rng().integers(0, SEED_MODULUS))
    seed = validation.as_int(seed, "seed")
    params = DecodeParams(temperature=temperature, top_p=top_p, repetition_penalty=repetition_penalty,
                          length_penalty=length_penalty, eos_token_ids=special.eos_token_ids,
                          pad_token_id=special.pad_token_id, seed=int(seed) % SEED_MODULUS,
                          penalty_alpha=penalty_alpha)
    if mode == "sample" and num_return_sequences > 1:  # HF: each prompt repeated, rows sampled apart
        ids = np.repeat(ids, num_return_sequences, axis=0)
        mask = np.repeat(mask, num_return_sequences, axis=0)
    return GenerationRequest(ids=ids, mask=mask, lead_shape=lead_shape, prompt_len=prompt_len,
                             max_new_tokens=max_new_tokens, prompt_bucket=P, new_bucket=N,
                             num_return_sequences=num_return_sequences, options=options, params=params)
