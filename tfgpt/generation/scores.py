"""Transition scores: the score ``generate`` gave each token it chose, from its dict output.

``scores`` is a tuple of one [rows, V] tensor per step (beam search: one row per beam, ``beam_indices``
[B', steps] names the beam each returned token came from, -1 after a hypothesis ended). The result
[B', steps] holds, for each returned sequence and step, the score of the token it took at that step
(0 after its end); with ``normalize_logits`` the scores are log-softmaxed first (HF's option, meant for
raw logits).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def compute_transition_scores(sequences, scores, vocab_size: int, beam_indices=None,
                              normalize_logits: bool = False) -> tf.Tensor:
    """HF's ``compute_transition_scores`` as float32 [B', steps] (see the module docstring)."""
    if not isinstance(scores, (tuple, list)) or not scores:
        raise ValueError("scores must be the non-empty tuple of per-step scores that generate returns with "
                         "return_dict_in_generate=True, output_scores=True")
    steps = [np.asarray(s, np.float32) for s in scores]
    if any(s.ndim != 2 or s.shape != steps[0].shape for s in steps):
        raise ValueError(f"scores must all be [rows, vocab]; got shapes {[s.shape for s in steps]}")
    rows, vocab = steps[0].shape
    if vocab != vocab_size:
        raise ValueError(f"scores have {vocab} columns, the model's vocab_size is {vocab_size}")
    table = np.stack(steps, axis=1)  # (rows, T, V)
    if normalize_logits:
        table = table - table.max(-1, keepdims=True)
        table = table - np.log(np.exp(table).sum(-1, keepdims=True))
    seq = np.asarray(sequences)
    if seq.ndim != 2:
        raise ValueError(f"sequences must be [batch, length], got shape {seq.shape}")
    T = table.shape[1]
    if beam_indices is None:
        if seq.shape[0] != rows:
            raise ValueError(f"sequences has {seq.shape[0]} rows, scores {rows}: pass beam_indices for beams")
        beams = np.broadcast_to(np.arange(rows)[:, None], (rows, T))
    else:
        beams = np.asarray(beam_indices).astype(np.int64)
        if beams.ndim != 2 or beams.shape[0] != seq.shape[0]:
            raise ValueError(f"beam_indices must be [{seq.shape[0]}, steps], got shape {beams.shape}")
        if beams.size and (beams.max() >= rows or beams.min() < -1):
            raise ValueError(f"beam_indices must be in [-1, {rows}), got values {beams.min()}..{beams.max()}")
    ended = beams < 0
    length = int((~ended).sum(-1).max()) if beams.size else 0  # the longest returned hypothesis
    if length > T or length > seq.shape[1]:
        raise ValueError(f"beam_indices cover {length} steps, scores only {T} and sequences {seq.shape[1]}")
    beams, ended = beams[:, :length], ended[:, :length]
    tokens = seq[:, seq.shape[1] - length:]  # (B', length): the generated tokens
    picked = table[np.where(ended, 0, beams), np.arange(length)[None, :], tokens]
    return tf.constant(np.where(ended, 0.0, picked), tf.float32)
