"""tf.data pipelines for ``model.fit``: language modelling, sequence classification, multiple choice.

Every pipeline tokenizes inside the graph (``TFOpenAIGPTTokenizer``), so it runs in tf.data's worker
threads and streams: nothing is loaded whole. Elements are ``(features, labels)`` pairs that the
models' own losses read (``compile(optimizer=...)`` without a loss):

- LM: ``({"input_ids": [B, S]}, labels [B, S])``: documents joined with a separator token and packed
  into full windows (no padding).
- Classification: ``({"input_ids", "attention_mask"}: [B, S], labels [B])``.
- Multiple choice (DoubleHeads): ``({"input_ids", "attention_mask"}: [B, C, S], "mc_token_ids": [B, C]},
  {"mc_labels": [B], "labels": [B, C, S]})``; each choice is ``_start_ context _delimiter_ choice
  _classify_`` (GPT-1's input transformation), and ``labels`` drive the auxiliary LM loss.
"""

from __future__ import annotations

import os
import weakref
import xml.etree.ElementTree as ET
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfgpt.io import keras_cache_dir
from tfgpt.models.modeling import IGNORE_INDEX

AUTOTUNE = tf.data.AUTOTUNE

# The tiny-shakespeare corpus (karpathy/char-rnn), the default LM corpus of ``tfgpt train``.
TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINY_SHAKESPEARE_NAME = "tinyshakespeare.txt"
DATASETS_SUBDIR = os.path.join("datasets", "tfgpt")

# GPT-1's task tokens (the paper's start, delimiter and extract tokens; names as in HF's examples).
GPT1_SPECIAL_TOKENS = ("_start_", "_delimiter_", "_classify_")
# The GPT-1 vocabulary's newline token: what separates documents in a packed LM stream.
NEWLINE_TOKEN = "\n</w>"


class CorpusUnavailableError(FileNotFoundError):
    """The default corpus is neither cached nor downloadable."""


# --- tokenizers --------------------------------------------------------------------------------------

# id(Python tokenizer) -> (weak reference to it, its length, its in-graph twin): building the twin's
# tables takes seconds, and the train and validation pipelines of a run share one tokenizer.
_GRAPH_TOKENIZERS: Dict[int, tuple] = {}


def as_graph_tokenizer(tokenizer):
    """A callable: tf.string [N] -> int32 RaggedTensor [N, None], usable inside ``tf.data.map``.

    Accepts a ``TFOpenAIGPTTokenizer`` (or any such callable), a Python ``OpenAIGPTTokenizer`` (its
    in-graph twin is built from it once and reused), or a folder / hub id holding tokenizer files.
    """
    if isinstance(tokenizer, (str, os.PathLike)):
        from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

        return TFOpenAIGPTTokenizer.from_pretrained(os.fspath(tokenizer))
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "save_pretrained") and not callable(
        getattr(tokenizer, "detokenize", None)
    ):
        from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

        key = id(tokenizer)
        hit = _GRAPH_TOKENIZERS.get(key)
        if hit is not None and hit[0]() is tokenizer and hit[1] == len(tokenizer):
            return hit[2]
        graph = TFOpenAIGPTTokenizer.from_tokenizer(tokenizer)
        try:
            ref = weakref.ref(tokenizer, lambda _, k=key: _GRAPH_TOKENIZERS.pop(k, None))
        except TypeError:  # not weak-referenceable: do not cache
            return graph
        _GRAPH_TOKENIZERS[key] = (ref, len(tokenizer), graph)
        return graph
    if not callable(tokenizer):
        raise TypeError(f"expected a tokenizer, got {type(tokenizer).__name__}")
    return tokenizer


def _tokenize(tokenizer, texts):
    ids = tokenizer(texts)
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.RaggedTensor.from_tensor(ids)
    return tf.cast(ids, tf.int32)


def token_id(tokenizer, token: str) -> Optional[int]:
    """The id of ``token`` in a Python tokenizer's vocabulary, or None when it has none."""
    if tokenizer is None or not hasattr(tokenizer, "convert_tokens_to_ids"):
        return None
    idx = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if idx is None or (unk is not None and idx == unk and token != getattr(tokenizer, "unk_token", None)):
        return None
    return int(idx)


def add_gpt1_special_tokens(tokenizer, model=None, tokens: Sequence[str] = GPT1_SPECIAL_TOKENS,
                            pad_token: Optional[str] = None) -> Dict[str, int]:
    """Add GPT-1's task tokens (and optionally a pad token) to ``tokenizer``; grow ``model``'s token
    table to match (new rows ~ N(0, initializer_range)). Returns ``{token: id}`` (pad under "pad").
    Tokens already in the vocabulary keep their ids, so this is safe to call on a fine-tuned model."""
    missing = [t for t in tokens if token_id(tokenizer, t) is None]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing},
                                     replace_additional_special_tokens=False)
    if pad_token is not None and token_id(tokenizer, pad_token) is None:
        tokenizer.add_special_tokens({"pad_token": pad_token})
    ids = {t: token_id(tokenizer, t) for t in tokens}
    if pad_token is not None:
        ids["pad"] = token_id(tokenizer, pad_token)
    if model is not None:
        if len(tokenizer) > model.config.vocab_size:
            model.resize_token_embeddings(len(tokenizer))
        if pad_token is not None:
            model.config.pad_token_id = ids["pad"]
    return ids


# --- the default corpus ------------------------------------------------------------------------------

def default_corpus_path(cache_dir: Optional[str] = None) -> str:
    """The cached tiny-shakespeare path: ``{KERAS_HOME or ~/.keras}/datasets/tfgpt/tinyshakespeare.txt``."""
    return os.path.join(keras_cache_dir(cache_dir), DATASETS_SUBDIR, TINY_SHAKESPEARE_NAME)


def get_tiny_shakespeare(cache_dir: Optional[str] = None, offline: Optional[bool] = None) -> str:
    """Path to tiny-shakespeare, downloaded once with ``keras.utils.get_file`` into the Keras cache.

    ``offline`` (default: ``TFGPT_OFFLINE=1`` in the environment) never touches the network. When the
    file is neither cached nor downloadable, raises CorpusUnavailableError saying how to pass a file.
    """
    import keras

    path = default_corpus_path(cache_dir)
    if os.path.isfile(path):
        return path
    if offline is None:
        offline = os.environ.get("TFGPT_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    how = (f"Pass your own text file(s) with --train-file PATH (Python: lm_datasets([path], ...)), or "
           f"put a copy of tiny-shakespeare at {path}.")
    if offline:
        raise CorpusUnavailableError(f"tiny-shakespeare is not in the Keras cache and offline mode is "
                                     f"on (TFGPT_OFFLINE). {how}")
    try:
        return keras.utils.get_file(TINY_SHAKESPEARE_NAME, origin=TINY_SHAKESPEARE_URL,
                                    cache_dir=keras_cache_dir(cache_dir), cache_subdir=DATASETS_SUBDIR)
    except Exception as e:  # urllib raises several unrelated types when offline
        raise CorpusUnavailableError(
            f"could not download tiny-shakespeare from {TINY_SHAKESPEARE_URL} "
            f"({type(e).__name__}: {e}). {how}") from e


# --- language modelling ------------------------------------------------------------------------------

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
        ids = _tokenize(tok, lines)  # (lines, None)
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
               lines_per_chunk: int = 256) -> tf.data.Dataset:
    """Language-modelling batches ``({"input_ids": [B, S]}, labels [B, S])`` from text files.

    The corpus streams: lines are read and tokenized in the graph, documents (files, or lines with
    ``document_per_line``) are joined with ``separator_id`` ("auto": the GPT-1 newline token when the
    tokenizer has it) and packed into windows of ``seq_len`` tokens with no padding. ``split``
    "train" / "validation" take the head / the last ``validation_fraction`` of every file.

    Training defaults (split="train"): repeat forever, shuffle windows (a ``shuffle_buffer`` of them),
    and shift the window boundaries by a random offset each pass so that every pass sees new windows.
    Evaluation defaults: one pass, in order, the last batch may be short. ``cache=True`` keeps the
    tokenized stream in memory after the first pass, a path caches it on disk.
    """
    train = split == "train"
    shuffle = train if shuffle is None else shuffle
    repeat = train if repeat is None else repeat
    random_offset = (train and repeat) if random_offset is None else random_offset
    drop_remainder = repeat if drop_remainder is None else drop_remainder
    if seq_len < 2:
        raise ValueError(f"seq_len must be at least 2, got {seq_len}")
    if separator_id == "auto":
        separator_id = token_id(tokenizer, NEWLINE_TOKEN)
    chunks = token_chunks(files, tokenizer, split, validation_fraction, separator_id,
                          document_per_line, lines_per_chunk)
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
    return windows.map(_lm_pair, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def lm_datasets(files, tokenizer, seq_len: int = 128, batch_size: int = 8,
                validation_fraction: float = 0.1, seed: int = 0, **kwargs):
    """``(train, validation)`` LM pipelines over the same files (see :func:`lm_dataset`)."""
    train = lm_dataset(files, tokenizer, seq_len, batch_size, "train", validation_fraction, seed=seed,
                       **kwargs)
    val_kwargs = {k: v for k, v in kwargs.items() if k in ("separator_id", "document_per_line",
                                                           "lines_per_chunk")}
    val = lm_dataset(files, tokenizer, seq_len, batch_size, "validation", validation_fraction,
                     seed=seed, **val_kwargs)
    return train, val


def count_batches(dataset: tf.data.Dataset) -> int:
    """Number of elements of a finite dataset (one pass over it, streamed)."""
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


# --- sequence classification -------------------------------------------------------------------------

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


def _pad_ragged(ids: tf.RaggedTensor, pad_id, length=None):
    """Dense [N, S] ids and mask from ragged rows; S = ``length`` or the longest row."""
    lengths = ids.row_lengths()
    if length is None:
        dense = ids.to_tensor(default_value=pad_id)
        length = tf.shape(dense)[1]
    else:
        dense = ids.to_tensor(default_value=pad_id, shape=[None, length])
    mask = tf.sequence_mask(lengths, length, dtype=tf.int32)
    return dense, mask


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
        ids = _tokenize(tok, text)[:, :room]
        n = tf.shape(text)[0]
        parts = []
        if start_id is not None:
            parts.append(tf.RaggedTensor.from_tensor(tf.fill([n, 1], tf.constant(start_id, tf.int32))))
        parts.append(ids)
        if classify_id is not None:
            parts.append(tf.RaggedTensor.from_tensor(tf.fill([n, 1], tf.constant(classify_id, tf.int32))))
        ids = tf.concat(parts, axis=1) if len(parts) > 1 else ids
        dense, mask = _pad_ragged(ids, pad_id, max_length if padding == "max_length" else None)
        return {"input_ids": dense, "attention_mask": mask}, label

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(texts), tf.string), labels))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(encode, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


# --- multiple choice ---------------------------------------------------------------------------------

def read_copa(path, ids: Optional[Iterable[int]] = None) -> List[dict]:
    """COPA / Balanced-COPA items: ``{"id", "premise", "choices": [a1, a2], "label": 0|1, "asks_for"}``.

    ``ids`` keeps only those item ids (e.g. ``range(1, 401)``), in file order.
    """
    keep = None if ids is None else set(int(i) for i in ids)
    items = []
    for node in ET.parse(path).getroot().iter("item"):
        idx = int(node.get("id"))
        if keep is not None and idx not in keep:
            continue
        items.append({
            "id": idx,
            "premise": node.findtext("p").strip(),
            "choices": [node.findtext("a1").strip(), node.findtext("a2").strip()],
            "label": int(node.get("most-plausible-alternative")) - 1,
            "asks_for": node.get("asks-for"),
        })
    if not items:
        raise ValueError(f"no COPA items{' with the requested ids' if keep else ''} in {path}")
    return items


def copa_examples(items: Sequence[dict]):
    """(contexts, choices, labels) for :func:`multiple_choice_dataset`: the context is the premise with
    the question as a connective ("... because" for a cause, "... so" for an effect)."""
    contexts, choices, labels = [], [], []
    for it in items:
        premise = it["premise"].rstrip(".")
        contexts.append(f"{premise} {'because' if it['asks_for'] == 'cause' else 'so'}")
        choices.append(list(it["choices"]))
        labels.append(int(it["label"]))
    return contexts, choices, labels


def parse_id_ranges(spec: str) -> List[int]:
    """"1-400,1001-1400" -> [1, ..., 400, 1001, ..., 1400]."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += list(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def multiple_choice_dataset(contexts: Sequence[str], choices: Sequence[Sequence[str]], labels,
                            tokenizer, start_id: int, delimiter_id: int, classify_id: int,
                            batch_size: int = 8, max_length: int = 64, pad_id: int = 0,
                            lm_labels: bool = True, shuffle: bool = False, repeat: bool = False,
                            seed: int = 0, drop_remainder: bool = False) -> tf.data.Dataset:
    """DoubleHeads batches: each choice as ``_start_ context _delimiter_ choice _classify_``.

    Features: ``input_ids`` and ``attention_mask`` [B, C, max_length] (right padded with ``pad_id``),
    ``mc_token_ids`` [B, C] (the classify token). Labels: ``{"mc_labels": [B], "labels": [B, C, S]}``,
    the latter the inputs with padding set to -100 (GPT-1's auxiliary LM loss; ``lm_labels=False``
    leaves only ``mc_labels``). Contexts are cut from the front and choices from the end when a
    sequence would exceed ``max_length``.
    """
    num_choices = {len(c) for c in choices}
    if len(num_choices) != 1:
        raise ValueError(f"every example needs the same number of choices, got {sorted(num_choices)}")
    c = num_choices.pop()
    if not (len(contexts) == len(choices) == len(labels)):
        raise ValueError("contexts, choices and labels must have the same length")
    if max_length < 5:
        raise ValueError(f"max_length={max_length} is too short for start, delimiter and classify tokens")
    tok = as_graph_tokenizer(tokenizer)
    room = max_length - 3

    def column(n, value):
        return tf.RaggedTensor.from_tensor(tf.fill([n, 1], tf.constant(value, tf.int32)))

    def encode(context, choice, label):
        b = tf.shape(context)[0]
        ctx = _tokenize(tok, context)  # (B, None)
        ch = _tokenize(tok, tf.reshape(choice, [-1]))[:, : (room + 1) // 2 if room > 1 else 1]  # (B*C, None)
        ctx = tf.gather(ctx, tf.repeat(tf.range(b), c))  # (B*C, None)
        budget = room - ch.row_lengths()  # context tokens that fit, per sequence
        ctx_len = ctx.row_lengths()
        positions = tf.ragged.range(ctx_len)
        ctx = tf.ragged.boolean_mask(ctx, positions >= (ctx_len - budget)[:, None])  # keep the end
        n = b * c
        ids = tf.concat([column(n, start_id), ctx, column(n, delimiter_id), ch, column(n, classify_id)],
                        axis=1)
        dense, mask = _pad_ragged(ids, pad_id, max_length)
        shape = tf.stack([b, c, max_length])
        features = {
            "input_ids": tf.reshape(dense, shape),
            "attention_mask": tf.reshape(mask, shape),
            "mc_token_ids": tf.reshape(tf.cast(ids.row_lengths() - 1, tf.int32), tf.stack([b, c])),
        }
        targets = {"mc_labels": label}
        if lm_labels:
            targets["labels"] = tf.where(features["attention_mask"] > 0, features["input_ids"],
                                         IGNORE_INDEX)
        return features, targets

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(contexts), tf.string),
                                             tf.constant([list(x) for x in choices], tf.string),
                                             np.asarray(labels, np.int32)))
    if shuffle:
        ds = ds.shuffle(len(contexts), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(encode, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
