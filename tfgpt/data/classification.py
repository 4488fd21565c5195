"""Sequence-classification data: text files per class or TSV files, and their tf.data pipeline.

Elements are ``({"input_ids", "attention_mask"}: [B, S], labels [B])``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfgpt.data.tokens import as_graph_tokenizer, pad_ragged, tokenize_batch

AUTOTUNE = tf.data.AUTOTUNE


def read_lines(path) -> List[str]:
    """Non-empty lines of a UTF-8 text file (bytes that do not decode are replaced)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def read_class_files(paths: Sequence[str]) -> Tuple[List[str], List[int]]:
    """One text per line; the label of a line is the index of its file in ``paths``."""
    texts, labels = [], []
    for label, path in enumerate(paths):
        lines = read_lines(path)
        texts += lines
        labels += [label] * len(lines)
    return texts, labels


def read_tsv(path, label_column: int = 0, text_column: int = 1, header: bool = False):
    """(texts, labels, label_names) from a tab-separated file; labels are mapped to 0..K-1 in sorted
    order of their names (integers sort numerically)."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            if (header and i == 0) or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) <= max(label_column, text_column):
                raise ValueError(f"{path}:{i + 1}: expected at least {max(label_column, text_column) + 1} "
                                 f"tab-separated columns")
            rows.append((parts[text_column], parts[label_column].strip()))
    names = sorted({r[1] for r in rows}, key=lambda s: (0, int(s), s) if s.lstrip("-").isdigit() else (1, 0, s))
    index = {n: i for i, n in enumerate(names)}
    return [r[0] for r in rows], [index[r[1]] for r in rows], names


def holdout_every(items: Sequence, every: int = 10, per_group: Optional[Sequence] = None):
    """Split ``items`` into (train, held out): every ``every``-th item (the 10th, 20th, ...) is held out.

    With ``per_group`` (e.g. the labels), positions count within each group, so held-out sets of
    one-file-per-class data are "every 10th line of each file".
    """
    if every < 2:
        raise ValueError(f"every must be at least 2, got {every}")
    groups = per_group if per_group is not None else [0] * len(items)
    seen: Dict = {}
    train, held = [], []
    for item, g in zip(items, groups):
        seen[g] = seen.get(g, 0) + 1
        (held if seen[g] % every == 0 else train).append(item)
    return train, held


def classification_dataset(texts: Sequence[str], labels, tokenizer, batch_size: int = 32,
                           max_length: int = 64, pad_id: int = 0, start_id: Optional[int] = None,
                           classify_id: Optional[int] = None, padding: str = "max_length",
                           shuffle: bool = False, repeat: bool = False, seed: int = 0,
                           drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches ``({"input_ids", "attention_mask"}: [B, S], labels [B])`` for sequence classification.

    Texts are tokenized in the graph, truncated to fit ``max_length`` with the optional ``start_id``
    in front and ``classify_id`` at the end (GPT-1's extract token; the classifier reads the last real
    token, so right padding with ``pad_id`` is safe when the model's ``pad_token_id`` is ``pad_id``).
    ``padding="max_length"`` gives static shapes (one XLA program), ``"longest"`` pads per batch.
    """
    if padding not in ("max_length", "longest"):
        raise ValueError(f"padding must be 'max_length' or 'longest', got {padding!r}")
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    tok = as_graph_tokenizer(tokenizer)
    room = max_length - (start_id is not None) - (classify_id is not None)
    if room < 1:
        raise ValueError(f"max_length={max_length} leaves no room for text")

    def encode(text, label):
        ids = tokenize_batch(tok, text)[:, :room]
        n = tf.shape(text)[0]
        parts = []
        if start_id is not None:
            parts.append(tf.RaggedTensor.from_tensor(tf.fill([n, 1], tf.constant(start_id, tf.int32))))
        parts.append(ids)
        if classify_id is not None:
            parts.append(tf.RaggedTensor.from_tensor(tf.fill([n, 1], tf.constant(classify_id, tf.int32))))
        ids = tf.concat(parts, axis=1) if len(parts) > 1 else ids
        dense, mask = pad_ragged(ids, pad_id, max_length if padding == "max_length" else None)
        return {"input_ids": dense, "attention_mask": mask}, label

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), tf.string), labels))
    return batch_and_encode(ds, len(texts), encode, batch_size, shuffle=shuffle, repeat=repeat, seed=seed,
                            drop_remainder=drop_remainder)


def batch_and_encode(ds: tf.data.Dataset, size: int, encode, batch_size: int, shuffle: bool = False,
                     repeat: bool = False, seed: int = 0, drop_remainder: bool = False) -> tf.data.Dataset:
    """The tail of every example pipeline: shuffle all ``size`` raw examples (reshuffled each epoch),
    repeat, batch, then ``encode`` whole batches (tokenizing a batch at once is the fast path)."""
    if shuffle:
        ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(encode, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

