"""Language-modelling pipelines: text files streamed, tokenized in the graph and packed into windows.

Elements are ``({"input_ids": [B, S]}, labels [B, S])``: documents joined with a separator token and
packed into full windows (no padding); the models' own loss shifts the labels.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import tensorflow as tf

from tfgpt.data.tokens import NEWLINE_TOKEN, as_graph_tokenizer, token_id, tokenize_batch

AUTOTUNE = tf.data.AUTOTUNE

SPLITS = ("train", "validation", "all")


def _file_size(path: str) -> int:
    return int(tf.io.gfile.stat(path).length)


def _split_lines(path, size, split: str, validation_fraction: float, lines_per_chunk: int):
    """Batches of lines of one file, streamed; the last ``validation_fraction`` of its bytes (whole
    lines, by where each line starts) is the validation split, the rest train."""
    lines = tf.data.TextLineDataset(path).batch(lines_per_chunk)
    if split == "all" or validation_fraction <= 0:
        return lines
    cut = tf.cast(tf.cast(size, tf.float64) * (1.0 - validation_fraction), tf.int64)

    def offsets(start, batch):
        ends = start + tf.cumsum(tf.cast(tf.strings.length(batch, unit="BYTE"), tf.int64) + 1)
        starts = tf.concat([[start], ends[:-1]], axis=0)  # byte offset where each line starts
        return ends[-1], (starts, batch)

    lines = lines.scan(tf.constant(0, tf.int64), offsets)
    if split == "train":
        lines = lines.take_while(lambda starts, batch: starts[0] < cut)
        return lines.map(lambda starts, batch: tf.boolean_mask(batch, starts < cut))
    lines = lines.filter(lambda starts, batch: starts[-1] >= cut)
    return lines.map(lambda starts, batch: tf.boolean_mask(batch, starts >= cut))


def token_chunks(files: Sequence[str], tokenizer, split: str = "all", validation_fraction: float = 0.1,
                 separator_id: Optional[int] = None, document_per_line: bool = False,
                 lines_per_chunk: int = 256) -> tf.data.Dataset:
    """The token stream of ``files`` as a dataset of 1-D int32 chunks, in file order.

    Files are read line by line and tokenized in batches of ``lines_per_chunk`` lines. Each file is a
    document (each line with ``document_per_line``); ``separator_id`` follows every document.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    files = [os.fspath(f) for f in ([files] if isinstance(files, (str, os.PathLike)) else files)]
    if not files:
        raise ValueError("no corpus files given")
    for f in files:
        if not tf.io.gfile.exists(f):
            raise FileNotFoundError(f"corpus file not found: {f}")
    tok = as_graph_tokenizer(tokenizer)
    sizes = [_file_size(f) for f in files]
    sep = None if separator_id is None else tf.constant([int(separator_id)], tf.int32)

    def tokenize(lines):
        ids = tokenize_batch(tok, lines)  # (lines, None)
        if document_per_line and sep is not None:
            ids = tf.concat([ids, tf.RaggedTensor.from_tensor(
                tf.fill([tf.shape(lines)[0], 1], sep[0]))], axis=1)
        return ids.flat_values

    def one_file(path, size):
        chunks = _split_lines(path, size, split, validation_fraction, lines_per_chunk).map(tokenize)
        if sep is not None and not document_per_line:
            chunks = chunks.concatenate(tf.data.Dataset.from_tensors(sep))
        return chunks

    ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64)))
    ds = ds.flat_map(one_file)
    return ds.filter(lambda c: tf.size(c) > 0)


def pack_windows(chunks: tf.data.Dataset, seq_len: int, offset=0) -> tf.data.Dataset:
    """Pack a stream of token chunks into consecutive full windows of ``seq_len`` tokens (the last
    partial window is dropped), after skipping ``offset`` tokens at the start of the stream."""

    def skip_start(i, chunk):
        return tf.cond(tf.equal(i, 0), lambda: chunk[tf.minimum(tf.cast(offset, tf.int32), tf.size(chunk)):],
                       lambda: chunk)

    if not (isinstance(offset, int) and offset == 0):
        chunks = chunks.enumerate().map(skip_start)
    return chunks.rebatch(seq_len, drop_remainder=True)


def _lm_pair(windows):
    return {"input_ids": windows}, windows


def lm_dataset(files, tokenizer, seq_len: int = 128, batch_size: int = 8, split: str = "train",
               validation_fraction: float = 0.1, shuffle: Optional[bool] = None,
               repeat: Optional[bool] = None, random_offset: Optional[bool] = None, seed: int = 0,
               separator_id="auto", document_per_line: bool = False, cache=False,
               shuffle_buffer: int = 10_000, drop_remainder: Optional[bool] = None,
               lines_per_chunk: int = 256, known_length: Optional[bool] = None) -> tf.data.Dataset:
    """Language-modelling batches ``({"input_ids": [B, S]}, labels [B, S])`` from text files.

    The corpus streams: lines are read and tokenized in the graph, documents (files, or lines with
    ``document_per_line``) are joined with ``separator_id`` ("auto": the GPT-1 newline token when the
    tokenizer has it) and packed into windows of ``seq_len`` tokens with no padding. ``split``
    "train" / "validation" take the head / the last ``validation_fraction`` of every file.

    Training defaults (split="train"): repeat forever, shuffle windows (a ``shuffle_buffer`` of them),
    and shift the window boundaries by a random offset each pass so that every pass sees new windows.
    Evaluation defaults: one pass, in order, the last batch may be short. ``cache=True`` keeps the
    tokenized stream in memory after the first pass, a path caches it on disk.

    ``known_length`` (default: for one-pass pipelines) counts the batches once, streamed, and
    states the count (``assert_cardinality``), so Keras shows a full progress bar and does not warn
    that the input "ran out of data" at the end of a validation pass.
    """
    train = split == "train"
    shuffle = train if shuffle is None else shuffle
    repeat = train if repeat is None else repeat
    random_offset = (train and repeat) if random_offset is None else random_offset
    drop_remainder = repeat if drop_remainder is None else drop_remainder
    if not isinstance(seq_len, int) or seq_len < 2:
        raise ValueError(f"seq_len must be an int of at least 2, got {seq_len!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if separator_id == "auto":
        separator_id = token_id(tokenizer, NEWLINE_TOKEN)
    chunks = token_chunks(files, tokenizer, split, validation_fraction, separator_id,
                          document_per_line, lines_per_chunk)
    if repeat:
        # A repeating pipeline over too little text would look for a window forever: refuse it here.
        need = min_tokens_per_pass(seq_len, random_offset)
        if count_tokens(chunks, limit=need) < need:
            text_only = count_tokens(token_chunks(files, tokenizer, split, validation_fraction, None,
                                                  document_per_line, lines_per_chunk))
            names = ", ".join(os.fspath(f) for f in ([files] if isinstance(files, (str, os.PathLike))
                                                     else files))
            part = "" if split == "all" or validation_fraction <= 0 else f"the {split} split of "
            window = f"one {seq_len}-token window" + (" at any start offset" if random_offset else "")
            raise ValueError(f"{part}{names} holds {text_only} tokens, fewer than the {need} that {window} "
                             f"needs; give more text or a shorter sequence length")
    if cache:
        chunks = chunks.cache("" if cache is True else os.fspath(cache))

    if repeat or random_offset:
        def one_pass(epoch):
            offset = 0
            if random_offset:
                offset = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), epoch]),
                                                     maxval=seq_len, dtype=tf.int32)
            return pack_windows(chunks, seq_len, offset)

        passes = tf.data.Dataset.range(tf.int64.max if repeat else 1)
        windows = passes.flat_map(one_pass)
    else:
        windows = pack_windows(chunks, seq_len)
    if shuffle:
        windows = windows.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    windows = windows.batch(batch_size, drop_remainder=drop_remainder)
    if known_length if known_length is not None else not repeat:
        if repeat:
            raise ValueError("known_length=True needs repeat=False: a repeating pipeline has no end")
        windows = windows.apply(tf.data.experimental.assert_cardinality(count_batches(windows)))
    return windows.map(_lm_pair, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def lm_datasets(files, tokenizer, seq_len: int = 128, batch_size: int = 8,
                validation_fraction: float = 0.1, seed: int = 0, **kwargs):
    """``(train, validation)`` LM pipelines over the same files (see :func:`lm_dataset`)."""
    train = lm_dataset(files, tokenizer, seq_len, batch_size, "train", validation_fraction, seed=seed,
                       **kwargs)
    val_kwargs = {k: v for k, v in kwargs.items() if k in ("separator_id", "document_per_line",
                                                           "lines_per_chunk", "known_length")}
    val = lm_dataset(files, tokenizer, seq_len, batch_size, "validation", validation_fraction,
                     seed=seed, **val_kwargs)
    return train, val


def min_tokens_per_pass(seq_len: int, random_offset: bool = True) -> int:
    """Tokens a stream needs so that every pass yields a full window: ``seq_len``, plus
    ``seq_len - 1`` when each pass starts at a random offset."""
    return seq_len + (seq_len - 1 if random_offset else 0)


def count_tokens(chunks: tf.data.Dataset, limit: Optional[int] = None) -> int:
    """Tokens in a stream of chunks (:func:`token_chunks`), read eagerly; stops once ``limit`` is
    reached, so checking that a large corpus has enough text reads only its start."""
    total = 0
    for chunk in chunks:
        total += int(tf.size(chunk))
        if limit is not None and total >= limit:
            break
    return total


def count_batches(dataset: tf.data.Dataset) -> int:
    """Number of elements of a finite dataset (one pass over it, streamed)."""
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())

