"""In-graph GPT-1 tokenizer: a Keras layer built from TensorFlow and tf-text ops only.

``TFOpenAIGPTTokenizer`` gives the same ids as :class:`tfgpt.OpenAIGPTTokenizer` (BasicTokenizer path)
and runs inside ``tf.data.Dataset.map``, ``tf.function`` and exported SavedModels (the lookup tables
are tracked resources; loading needs only ``tensorflow`` and ``tensorflow_text``).

How the graph matches the Python tokenizer exactly:

* Character data (per-character lowercase, control / whitespace / mark / punctuation / CJK classes)
  comes from the running Python's ``unicodedata`` and is stored in two-level lookup tables, so ICU's
  or RE2's Unicode version never decides a class. The only ICU operation is NFD
  (``tf_text.normalize_utf8``), which agrees with Python on every assigned character (characters
  Python does not know are dropped before NFD, as controls).
* Added / special tokens are found with RE2 alternations built in the same order as the Python
  regexes (leftmost match, longest token first), and only for rows that contain a token's first
  character.
* Words are looked up in a word -> ids table (the vocabulary's whole words, BPE-encoded by the Python
  tokenizer); the rest go through an in-graph merge loop that reproduces the Python BPE exactly:
  each iteration merges, inside every independent segment of a word, all occurrences of the
  segment's lowest-ranked pair (left to right), plus every pair that provably merges next anyway.
  A boundary between two symbols is independent ("frozen") when no merge ``(X, Z)`` has ``X`` ending
  with the left symbol and ``Z`` starting with the right one: nothing can ever join across it, so the
  two sides evolve separately. A pair is merged early only when no lower-ranked merge can take either
  of its symbols (checked against every merge whose left part ends with the left neighbour, or whose
  right part starts with the right neighbour) and the merge list is monotone (each merge only uses
  symbols created by lower-ranked merges). Both rules keep the result identical and keep the number
  of iterations small even for a 10,000-character word.

Limits: the graph implements the BasicTokenizer pre-tokenization only (not spaCy + ftfy); an added
token that contains NUL never matches in the graph; the character tables are those of the Python
that built the layer (an exported SavedModel keeps them).
"""

from __future__ import annotations

import functools
import os
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import keras
import tensorflow as tf
import tensorflow_text as tf_text

from tfgpt.tokenizers.bpe import END_OF_WORD, bpe_merge, load_merges, load_vocab, merges_in_rank_order, word_symbols
from tfgpt.tokenizers.normalization import is_cjk_codepoint, is_control, is_punctuation, is_whitespace
from tfgpt.tokenizers.tokenization import CLEAN_UP_REPLACEMENTS, OpenAIGPTTokenizer

# Character classes stored in the class table.
NORMAL, DROP, SPACE, ISO, MARK = 0, 1, 2, 3, 4
_NFD_FROM = 0xC0  # no code point below U+00C0 changes under NFD
_MARKER = 0xF0000  # added token k travels through pre-tokenization as the private-use code point U+F0000 + k
_INF = np.int64(1) << 40
_MAX_CODEPOINT = 0x110000


# ----------------------------------------------------------------------------------------------------
# Character tables (from Python's unicodedata)
# ----------------------------------------------------------------------------------------------------

def _char_class(char: str) -> int:
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or is_control(char):
        return DROP
    if is_whitespace(char) or char.isspace():
        return SPACE
    if unicodedata.category(char) == "Mn":
        return MARK
    if is_punctuation(char) or is_cjk_codepoint(cp):
        return ISO
    return NORMAL


@functools.lru_cache(maxsize=None)
def char_tables() -> Tuple[np.ndarray, np.ndarray]:
    """Per-code-point class (int8) and lowercase delta (int32) for all of Unicode.

    Planes 4-13 and 15-16 are unassigned or private use (class DROP, no case); that is checked on a
    sample, and everything else is computed character by character.
    """
    cls = np.full(_MAX_CODEPOINT, DROP, np.int8)
    delta = np.zeros(_MAX_CODEPOINT, np.int32)
    skipped = list(range(0x40000, 0xE0000, 4099)) + list(range(0xF0000, _MAX_CODEPOINT, 4099))
    full = any(unicodedata.category(chr(cp)) not in ("Cn", "Co") for cp in skipped)
    ranges = [range(0, _MAX_CODEPOINT)] if full else [range(0, 0x40000), range(0xE0000, 0xF0000)]
    category = unicodedata.category
    for rng in ranges:
        for cp in rng:
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            cat = category(c)
            if cat == "Cn" or cat == "Co":
                continue
            cls[cp] = _char_class(c)
            low = c.lower()
            if low != c:
                delta[cp] = ord(low[0]) - cp  # only U+0130 lowercases to two characters (i + U+0307)
    return cls, delta


@functools.lru_cache(maxsize=None)
def _two_level_tables() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cls, delta = char_tables()
    return (*_two_level(cls.astype(np.int32)), *_two_level(delta))


def _two_level(table: np.ndarray, block: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """Compress a per-code-point table into (block index per page, unique blocks)."""
    pages = table.reshape(-1, block)
    seen: Dict[bytes, int] = {}
    index = np.empty(len(pages), np.int32)
    blocks = []
    for i, page in enumerate(pages):
        key = page.tobytes()
        j = seen.get(key)
        if j is None:
            j = seen[key] = len(blocks)
            blocks.append(page)
        index[i] = j
    return index, np.concatenate(blocks)


def _python_whitespace() -> str:
    return "".join(chr(cp) for cp in range(0x3100) if chr(cp).isspace())


def _re2_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append("\\x{%x}" % ord(ch))
    return "".join(out)


def _re2_alternation(tokens: Sequence[str]) -> str:
    return "(?:" + "|".join(_re2_escape(t) for t in tokens) + ")"


# ----------------------------------------------------------------------------------------------------
# BPE tables
# ----------------------------------------------------------------------------------------------------

_TABLES_MEMO: Dict[tuple, dict] = {}


def _vocab_tables(tok: OpenAIGPTTokenizer, cache_words: Sequence[str]) -> dict:
    """Merge tables and the word cache for a vocabulary, memoized per (vocabulary, merges, words)."""
    unk_id = tok.unk_token_id
    key = (tuple(tok.encoder.items()), tuple(sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])),
           tuple(cache_words), unk_id)
    found = _TABLES_MEMO.get(key)
    if found is not None:
        return found
    tables = _merge_tables(tok)
    enc = tok.encoder
    words = {t[: -len(END_OF_WORD)] for t in enc if t.endswith(END_OF_WORD) and len(t) > len(END_OF_WORD)}
    words.update(cache_words)
    keys, values, lengths = [], [], []
    for w in sorted(words):
        if not w or any(c.isspace() for c in w):
            continue
        ids = [enc.get(p, unk_id) for p in bpe_merge(word_symbols(w), tok.bpe_ranks)]
        if None in ids:
            continue
        keys.append(w)
        values.extend(ids)
        lengths.append(len(ids))
    tables["cache_keys"] = keys
    tables["cache_values"] = np.asarray(values, np.int64)
    tables["cache_splits"] = np.concatenate([[0], np.cumsum(np.asarray(lengths, np.int64))]).astype(np.int64)
    if len(_TABLES_MEMO) >= 4:
        _TABLES_MEMO.pop(next(iter(_TABLES_MEMO)))
    _TABLES_MEMO[key] = tables
    return tables


def _merge_tables(tok: OpenAIGPTTokenizer):
    """Integer tables for the in-graph merge loop (keys are ``left_id * M + right_id``)."""
    enc = tok.encoder
    merges = sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1])
    unk_sym = max(enc.values()) + 1
    m = unk_sym + 1
    pair_keys, pair_ranks, results = [], [], {}
    produced_max: Dict[str, int] = {}
    for (a, b), r in merges:
        pair_keys.append(enc[a] * m + enc[b])
        pair_ranks.append(r)
        results[r] = enc[a + b]
        produced_max[a + b] = r
    max_rank = max(results) if results else 0
    result_ids = np.zeros(max_rank + 1, np.int64)
    for r, idx in results.items():
        result_ids[r] = idx
    monotone = all(produced_max.get(a, -1) < r and produced_max.get(b, -1) < r for (a, b), r in merges)
    cross = set()
    left_steal: Dict[int, int] = {}
    right_steal: Dict[int, int] = {}
    get = enc.get
    for (x, z), r in merges:
        xi, zi = enc[x], enc[z]
        suffixes = [i for i in (get(x[k:]) for k in range(len(x))) if i is not None]
        prefixes = [i for i in (get(z[:k]) for k in range(1, len(z) + 1)) if i is not None]
        for s in suffixes:
            key = s * m + zi
            if key not in left_steal:  # merges are visited in rank order: the first is the lowest
                left_steal[key] = r
            sm = s * m
            cross.update([sm + p for p in prefixes])
        xm = xi * m
        for p in prefixes:
            key = xm + p
            if key not in right_steal:
                right_steal[key] = r
    return {
        "unk_sym": unk_sym,
        "m": m,
        "pair_keys": np.asarray(pair_keys, np.int64),
        "pair_ranks": np.asarray(pair_ranks, np.int64),
        "result_ids": result_ids,
        "monotone": monotone,
        "cross": np.fromiter(cross, np.int64, len(cross)),
        "left_steal": (np.fromiter(left_steal.keys(), np.int64, len(left_steal)),
                       np.fromiter(left_steal.values(), np.int64, len(left_steal))),
        "right_steal": (np.fromiter(right_steal.keys(), np.int64, len(right_steal)),
                        np.fromiter(right_steal.values(), np.int64, len(right_steal))),
    }


def _int_table(keys: np.ndarray, values: np.ndarray, default: int) -> tf.lookup.StaticHashTable:
    if len(keys) == 0:  # StaticHashTable needs at least one entry
        keys, values = np.asarray([-1], np.int64), np.asarray([default], np.int64)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int64), tf.constant(values, tf.int64)),
        default_value=tf.constant(default, tf.int64),
    )


def _str_table(keys: Sequence[str], values: Sequence[int], default: int = -1) -> tf.lookup.StaticHashTable:
    if not keys:
        keys, values = ["\x00\x00"], [default]
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant([k.encode("utf-8") for k in keys], tf.string),
                                            tf.constant(values, tf.int64)),
        default_value=tf.constant(default, tf.int64),
    )


def _regex_split(strings: tf.Tensor, pattern: str) -> tf.RaggedTensor:
    """Split ``[B]`` strings around the matches of ``pattern``, keeping the matches: ragged ``[B, None]``."""
    try:  # the kernel itself (the public wrapper adds validation ops for offsets this code does not use)
        from tensorflow_text.python.ops.regex_split_ops import gen_regex_split_ops

        group = "(" + pattern + ")"  # the kernel splits on the first capture group
        tokens, _, _, splits = gen_regex_split_ops.regex_split_with_offsets(strings, group, group)
        return tf.RaggedTensor.from_row_splits(tokens, splits, validate=False)
    except ImportError:  # pragma: no cover - other tf-text layouts
        return tf_text.regex_split_with_offsets(strings, pattern, pattern)[0]


def _indices(mask: tf.Tensor) -> tf.Tensor:
    """Positions of the True values of a 1-D mask (int64)."""
    return tf.reshape(tf.where(mask), [-1])


def _segment_alternate(mask: tf.Tensor) -> tf.Tensor:
    """Within each run of consecutive True values keep the 1st, 3rd, 5th, ... (non-overlapping pairs)."""
    mi = tf.cast(mask, tf.int32)
    count = tf.cumsum(mi)
    prev = tf.concat([[False], mask[:-1]], axis=0)
    start = mask & ~prev
    run_id = tf.cumsum(tf.cast(start, tf.int32)) - 1
    base = tf.concat([[0], tf.gather(count - 1, _indices(start))], axis=0)
    offset = count - 1 - tf.gather(base, run_id + 1)
    return mask & tf.equal(offset % 2, 0)


def _interleave_rows(mask: tf.Tensor, rows_true: tf.RaggedTensor, rows_false: tf.RaggedTensor) -> tf.RaggedTensor:
    """Row i from rows_true (in order) where mask[i], else from rows_false."""
    n_true = rows_true.nrows(out_type=tf.int64)
    idx_true = tf.cumsum(tf.cast(mask, tf.int64)) - 1
    idx_false = tf.cumsum(tf.cast(~mask, tf.int64)) - 1
    both = tf.concat([rows_true, rows_false], axis=0)
    return tf.gather(both, tf.where(mask, idx_true, n_true + idx_false))


def _clean_text(value, where: str):
    """One Python text for the graph: str (lone surrogates dropped, as the Python tokenizer drops them) or bytes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join(c for c in value if not 0xD800 <= ord(c) <= 0xDFFF)
        return value
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value)
    raise TypeError(f"inputs{where} must be a string, got {type(value).__name__} {value!r:.40}")


def _clean_nested(value, where: str = "", depth: int = 0):
    if isinstance(value, (list, tuple)):
        if depth >= 2:
            raise ValueError(f"inputs{where}: the tokenizer takes a scalar, a vector or a matrix of strings")
        return [_clean_nested(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    return _clean_text(value, where)


def string_tensor(inputs) -> tf.Tensor:
    """``inputs`` as a tf.string tensor; None, numbers, mixed lists and non-string tensors raise naming them."""
    if isinstance(inputs, (tf.Tensor, tf.Variable)) or tf.is_symbolic_tensor(inputs):
        if inputs.dtype != tf.string:
            raise TypeError(f"inputs must be strings, got a tensor of dtype {inputs.dtype.name}")
        return inputs
    if isinstance(inputs, tf.RaggedTensor):
        raise TypeError("inputs must be a dense tensor (or list) of strings, got a RaggedTensor")
    if isinstance(inputs, np.ndarray):
        if inputs.dtype.kind not in "USO":
            raise TypeError(f"inputs must be strings, got a numpy array of dtype {inputs.dtype}")
        inputs = inputs.tolist()
    if inputs is None:
        raise TypeError("inputs must be a string or a list of strings, got None")
    return tf.constant(_clean_nested(inputs), dtype=tf.string)


# ----------------------------------------------------------------------------------------------------
# The layer
# ----------------------------------------------------------------------------------------------------

@dataclass
class _LayerState:
    """The layer's configuration, its Python tokenizer and its traced functions.

    Kept in one plain object so that Keras does not wrap and walk the 40k-entry vocabulary and merges.
    """

    vocabulary: Dict[str, int]
    merges: List[str]
    special_tokens: Dict[str, object]
    added_tokens: List[Dict[str, object]]
    cache_words: Optional[List[str]]
    tok: Optional[OpenAIGPTTokenizer] = None
    tokenize_fn: Optional[Callable] = None  # eager calls go through one traced function
    detokenize_fns: Dict[Tuple[bool, bool], Callable] = field(default_factory=dict)


@keras.saving.register_keras_serializable(package="tfgpt")
class TFOpenAIGPTTokenizer(keras.layers.Layer):
    """GPT-1 tokenizer / detokenizer as a Keras layer (pure TF graph, tf-text ops).

    ``layer(tf.constant(["text", ...]))`` -> ``tf.RaggedTensor`` int32 ``[B, None]``;
    a scalar string gives a 1-D int32 tensor. ``layer.detokenize(ids)`` -> ``tf.string`` ``[B]``
    (or a scalar for 1-D ids). Ids equal :class:`~tfgpt.OpenAIGPTTokenizer`'s (BasicTokenizer
    pre-tokenization).

    Args:
        vocabulary: token -> id ``dict`` or a path to ``vocab.json`` / ``encoder_bpe_40000.json``.
        merges: list of ``"left right"`` strings (or pairs) or a path to ``merges.txt``.
        unk_token: the unknown token.
        special_tokens: ``{"pad_token": "<pad>", ..., "additional_special_tokens": [...]}``.
        added_tokens: ``[{"id": 40478, "content": "_start_", "special": True, "normalized": False}, ...]``.
        clean_up_tokenization_spaces: default of ``detokenize``'s clean-up.
        cache_words: extra words whose BPE is precomputed (the vocabulary's whole words always are).

    The configuration embeds the vocabulary, so ``get_config``/``from_config`` and ``.keras`` files
    are self-contained.
    """

    def __init__(
        self,
        vocabulary,
        merges,
        unk_token: Optional[str] = "<unk>",
        special_tokens: Optional[Dict[str, object]] = None,
        added_tokens: Optional[List[Dict[str, object]]] = None,
        clean_up_tokenization_spaces: bool = False,
        cache_words: Optional[Iterable[str]] = None,
        **kwargs,
    ):
        dtype, trainable = kwargs.pop("dtype", None), kwargs.pop("trainable", None)
        if dtype not in (None, "int32", tf.int32):
            raise ValueError(f"dtype={dtype!r}: the tokenizer outputs int32 ids")
        if trainable not in (None, False):
            raise ValueError(f"trainable={trainable!r}: the tokenizer has no trainable weights")
        super().__init__(dtype="int32", trainable=False, **kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True

        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocab(os.fspath(vocabulary))
        if isinstance(merges, (str, os.PathLike)):
            merges = load_merges(os.fspath(merges))
        merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in merges]
        special_tokens = dict(special_tokens or {})
        added_tokens = [dict(t) for t in (added_tokens or [])]
        self._data = _LayerState(
            vocabulary=dict(vocabulary),
            merges=[f"{a} {b}" for a, b in merges],
            special_tokens=special_tokens,
            added_tokens=added_tokens,
            cache_words=list(cache_words) if cache_words is not None else None,
        )
        self.unk_token = unk_token
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)

        tok = OpenAIGPTTokenizer(
            vocab=self._data.vocabulary, merges=merges, unk_token=unk_token, pretokenizer="basic",
            added_tokens_decoder={int(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added_tokens},
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **{k: v for k, v in special_tokens.items() if v is not None},
        )
        self._data.tok = tok
        with tf.init_scope():
            self._build_tables(tok)

    vocabulary = property(lambda self: self._data.vocabulary)
    merges = property(lambda self: self._data.merges)
    special_tokens = property(lambda self: self._data.special_tokens)
    added_tokens = property(lambda self: self._data.added_tokens)
    cache_words = property(lambda self: self._data.cache_words)
    _tok = property(lambda self: self._data.tok)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_tokenizer(cls, tokenizer: OpenAIGPTTokenizer, **kwargs) -> "TFOpenAIGPTTokenizer":
        """Build from a Python tokenizer, with its added and special tokens."""
        if tokenizer.nlp is not None:
            import warnings

            warnings.warn("the Python tokenizer uses spaCy + ftfy; the graph tokenizer implements the "
                          "BasicTokenizer pre-tokenization, so ids can differ", stacklevel=2)
        special = {k: v for k, v in tokenizer.special_tokens_map.items() if k != "unk_token"}
        added = [{"id": i, **t.to_dict()} for i, t in sorted(tokenizer.added_tokens_decoder.items())]
        merges = [f"{a} {b}" for a, b in merges_in_rank_order(tokenizer.bpe_ranks)]
        kwargs.setdefault("clean_up_tokenization_spaces", tokenizer.clean_up_tokenization_spaces)
        return cls(vocabulary=tokenizer.encoder, merges=merges, unk_token=tokenizer.unk_token,
                   special_tokens=special, added_tokens=added, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "TFOpenAIGPTTokenizer":
        """Load the vocabulary (and saved special tokens) from a folder or a hub id."""
        layer_keys = {"name", "cache_words", "clean_up_tokenization_spaces"}
        layer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in layer_keys}
        tok = OpenAIGPTTokenizer.from_pretrained(pretrained_model_name_or_path, pretokenizer="basic", **kwargs)
        return cls.from_tokenizer(tok, **layer_kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("dtype", None)
        config.pop("trainable", None)
        config.update({
            "vocabulary": self.vocabulary,
            "merges": self.merges,
            "unk_token": self.unk_token,
            "special_tokens": self.special_tokens,
            "added_tokens": self.added_tokens,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "cache_words": self.cache_words,
        })
        return config

    @property
    def python_tokenizer(self) -> OpenAIGPTTokenizer:
        """The Python tokenizer with the same vocabulary and tokens."""
        return self._tok

    def vocabulary_size(self) -> int:
        return len(self._tok)

    # ------------------------------------------------------------------ tables
    def _build_tables(self, tok: OpenAIGPTTokenizer) -> None:
        ci, cb, di, db = _two_level_tables()
        self._class_index = tf.constant(ci)
        self._class_blocks = tf.constant(cb)
        self._lower_index = tf.constant(di)
        self._lower_blocks = tf.constant(db)

        enc = tok.encoder
        tables = _vocab_tables(tok, tuple(self.cache_words or ()))
        self._unk_sym = int(tables["unk_sym"])
        self._key_m = int(tables["m"])
        self._monotone = bool(tables["monotone"])
        self._unk_id = tok.unk_token_id
        self.rank_table = _int_table(tables["pair_keys"], tables["pair_ranks"], int(_INF))
        self._result_ids = tf.constant(tables["result_ids"])
        self.cross_table = _int_table(tables["cross"], np.ones(len(tables["cross"]), np.int64), 0)
        self.left_steal_table = _int_table(*tables["left_steal"], int(_INF))
        self.right_steal_table = _int_table(*tables["right_steal"], int(_INF))
        chars = [(t, i) for t, i in enc.items() if len(t) == 1]
        final_chars = [(t[: -len(END_OF_WORD)], i) for t, i in enc.items()
                       if t.endswith(END_OF_WORD) and len(t) == len(END_OF_WORD) + 1]
        self.char_table = _int_table(np.asarray([ord(c) for c, _ in chars], np.int64),
                                     np.asarray([i for _, i in chars], np.int64), self._unk_sym)
        self.final_char_table = _int_table(np.asarray([ord(c) for c, _ in final_chars], np.int64),
                                           np.asarray([i for _, i in final_chars], np.int64), self._unk_sym)

        # word -> ids cache: whole words of the vocabulary plus the user's words
        split_tokens = tok.split_tokens
        added = tok.added_tokens_encoder
        markers = [chr(_MARKER + k) for k in range(len(split_tokens))]
        cache_keys = tables["cache_keys"] + markers
        values = np.concatenate([tables["cache_values"],
                                 np.asarray([added[t] for t in split_tokens], np.int64)])
        splits = np.concatenate([tables["cache_splits"], tables["cache_splits"][-1] + 1 + np.arange(len(markers))])
        self.cache_table = _str_table(cache_keys, list(range(len(cache_keys))))
        self._cache_values = tf.constant(values.astype(np.int64))
        self._cache_splits = tf.constant(splits.astype(np.int64))

        # added / special tokens
        self._added_tokens_list = split_tokens
        if len(self._added_tokens_list) > 0xFFFD:
            raise ValueError("the graph tokenizer supports at most 65533 added tokens")
        self.added_table = _str_table(self._added_tokens_list, list(range(len(self._added_tokens_list))))
        self._split_pattern = _re2_alternation(self._added_tokens_list) if self._added_tokens_list else None
        self._split_first_chars = sorted({ord(t[0]) for t in self._added_tokens_list})
        protect = tok.lowercase_protected_tokens
        self._protect_pattern = _re2_alternation(protect) if protect else None
        self._protect_first_chars = sorted({ord(t[0]) for t in protect})
        self.protect_table = _str_table(protect, list(range(len(protect))))
        # RE2 stops at NUL, so NUL travels as another dropped control character that no token contains
        # (a token that itself contains NUL therefore never matches in the graph).
        used = set("".join(self._added_tokens_list) + "".join(protect))
        self._nul_substitute = next((cp for cp in list(range(1, 9)) + list(range(14, 32)) + [127]
                                     if chr(cp) not in used), 1)

        # detokenizer tables: id -> token string, skip (special) and legacy flags
        added_decoder = tok.added_tokens_decoder
        size = max(list(enc.values()) + list(added_decoder)) + 1
        unk_text = tok.unk_token if tok.unk_token is not None else ""
        strings = [unk_text] * size
        for t, i in enc.items():
            strings[i] = t
        for i, t in added_decoder.items():
            strings[i] = t.content
        specials = set(tok.all_special_tokens)
        special_ids = set(i for i in tok.all_special_ids if i is not None)
        legacy = tok.legacy_added_tokens
        self._id_strings = tf.constant([s.encode("utf-8") for s in strings + [unk_text]])
        self._id_skip = tf.constant([i in special_ids or s in specials for i, s in enumerate(strings)]
                                    + [unk_text in specials])
        self._id_legacy = tf.constant([s in legacy for s in strings] + [unk_text in legacy])
        self._any_legacy = bool(legacy)
        self._id_table_size = size
        ws = _python_whitespace()
        ws_class = "[" + "".join("\\x{%x}" % ord(c) for c in ws) + "]"
        self._strip_pattern = f"^{ws_class}+|{ws_class}+$"

    # ------------------------------------------------------------------ character steps
    def _lookup_class(self, cps: tf.Tensor) -> tf.Tensor:
        def general():
            return tf.gather(self._class_blocks, tf.gather(self._class_index, cps // 256) * 256 + cps % 256)

        # ASCII text needs only the first block of the table
        return tf.cond(tf.reduce_max(cps) < 256, lambda: tf.gather(self._class_blocks, cps), general)

    def _lower_codepoints(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        """Per-character lowercase; U+0130 becomes two code points (i + U+0307), as in Python."""
        vals = cps.flat_values

        def general():
            return self._lower_general(cps)

        def ascii():
            return cps.with_flat_values(vals + tf.where((vals >= 65) & (vals <= 90), 32, 0))

        return tf.cond(tf.reduce_max(vals) < 128, ascii, general)

    def _lower_general(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        vals = cps.flat_values
        delta = tf.gather(self._lower_blocks, tf.gather(self._lower_index, vals // 256) * 256 + vals % 256)
        lowered = cps.with_flat_values(vals + delta)
        dotted = tf.equal(vals, 0x130)

        def expand():
            counts = 1 + tf.cast(dotted, tf.int64)
            new_vals = tf.repeat(lowered.flat_values, counts)
            starts = tf.cumsum(counts) - counts
            second = tf.boolean_mask(starts + 1, dotted)
            new_vals = tf.tensor_scatter_nd_update(
                new_vals, second[:, None], tf.fill(tf.shape(second), tf.constant(0x307, new_vals.dtype)))
            lengths = tf.math.unsorted_segment_sum(counts, lowered.value_rowids(), lowered.nrows())
            return tf.RaggedTensor.from_row_lengths(new_vals, lengths, validate=False)

        return tf.cond(tf.reduce_any(dotted), expand, lambda: lowered)

    def _any_of(self, cps: tf.RaggedTensor, first_chars: List[int]) -> tf.Tensor:
        """Whether any row contains one of ``first_chars`` (a possible token match)."""
        vals = cps.flat_values
        if len(first_chars) <= 8:
            hit = tf.zeros_like(vals, tf.bool)
            for c in first_chars:
                hit |= tf.equal(vals, c)
        else:
            table = tf.constant(first_chars, vals.dtype)
            idx = tf.searchsorted(table, vals)
            hit = tf.equal(tf.gather(table, tf.minimum(idx, len(first_chars) - 1)), vals)
        return tf.reduce_any(hit)

    def _without_nul(self, cps: tf.RaggedTensor) -> tf.RaggedTensor:
        """RE2 ops stop at NUL: replace it by another dropped control character that no token uses."""
        return cps.with_flat_values(tf.where(tf.equal(cps.flat_values, 0), self._nul_substitute, cps.flat_values))

    def _lowercase(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Code points of the per-character lowercased text, special tokens left as they are."""
        cps = tf.strings.unicode_decode(strings, "UTF-8", errors="replace", replacement_char=0xFFFD)
        if self._protect_pattern is None:
            return self._lower_codepoints(cps)

        def protected():
            valid = tf.strings.unicode_encode(self._without_nul(cps), "UTF-8")
            pieces = _regex_split(valid, self._protect_pattern)
            flat = pieces.flat_values
            keep = self.protect_table.lookup(flat) >= 0
            piece_cps = tf.strings.unicode_decode(flat, "UTF-8")
            lowered = self._lower_codepoints(piece_cps)
            mixed = _interleave_rows(keep, tf.ragged.boolean_mask(piece_cps, keep),
                                     tf.ragged.boolean_mask(lowered, ~keep))
            per_row = tf.RaggedTensor.from_row_splits(mixed, pieces.row_splits, validate=False)
            return per_row.merge_dims(1, 2)

        candidates = self._any_of(cps, self._protect_first_chars)
        return tf.cond(candidates, protected, lambda: self._lower_codepoints(cps))

    def _split_added(self, cps: tf.RaggedTensor):
        """Split rows on added tokens: pieces ``[P, C]``, the row of each piece, and which are tokens.

        An added-token piece becomes one private-use code point (``U+F0000 + index``) that the word
        cache maps to the token's id; in text pieces such code points are dropped like any ``Co``.
        """
        nrows = cps.nrows(out_type=tf.int64)
        plain = (cps, tf.range(nrows), tf.zeros([nrows], tf.bool))
        if self._split_pattern is None:
            return plain

        def split():
            text = tf.strings.unicode_encode(self._without_nul(cps), "UTF-8")
            pieces = _regex_split(text, self._split_pattern)
            flat = pieces.flat_values
            index = self.added_table.lookup(flat)
            is_added = index >= 0
            marker = tf.strings.unicode_encode(tf.cast(_MARKER + index[:, None], tf.int32), "UTF-8")
            flat = tf.where(is_added, marker, flat)
            return tf.strings.unicode_decode(flat, "UTF-8"), pieces.value_rowids(), is_added

        return tf.cond(self._any_of(cps, self._split_first_chars), split, lambda: plain)

    def _words(self, cps: tf.RaggedTensor, is_added: tf.Tensor):
        """Pre-tokenized words (flat tf.string ``[W]``) and the piece index of each word."""
        vals = cps.flat_values
        rowids = cps.value_rowids()

        def classes(vals, rowids):
            cls = self._lookup_class(vals)
            if self._split_pattern is None:
                return cls
            return tf.cond(tf.reduce_any(is_added), lambda: tf.where(tf.gather(is_added, rowids), ISO, cls),
                           lambda: cls)

        cls = classes(vals, rowids)

        def nfd():
            keep = _indices(tf.not_equal(cls, DROP))
            kept = tf.gather(tf.where(tf.equal(cls, SPACE), 32, vals), keep)
            rag = tf.RaggedTensor.from_value_rowids(kept, tf.gather(rowids, keep), nrows=cps.nrows(), validate=False)
            nfd_text = tf_text.normalize_utf8(tf.strings.unicode_encode(rag, "UTF-8"), "NFD")
            out = tf.strings.unicode_decode(nfd_text, "UTF-8")
            return out.flat_values, out.value_rowids(), classes(out.flat_values, out.value_rowids())

        vals, rowids, cls = tf.cond(tf.reduce_any(vals >= _NFD_FROM), nfd, lambda: (vals, rowids, cls))
        # Marks and dropped characters vanish without splitting a word.
        removed = tf.equal(cls, DROP) | tf.equal(cls, MARK)

        def remove():
            keep = _indices(~removed)
            return tf.gather(vals, keep), tf.gather(rowids, keep), tf.gather(cls, keep)

        vals, rowids, cls = tf.cond(tf.reduce_any(removed), remove, lambda: (vals, rowids, cls))
        normal = tf.equal(cls, NORMAL)
        iso = tf.equal(cls, ISO)
        breaks = tf.concat([[True], ~normal[:-1] | tf.not_equal(rowids[1:], rowids[:-1])], axis=0)
        keep = _indices(normal | iso)
        starts = _indices(tf.gather(iso | (normal & breaks), keep))
        chars = tf.gather(vals, keep)
        splits = tf.concat([starts, tf.size(chars, out_type=tf.int64)[None]], axis=0)
        words = tf.strings.unicode_encode(tf.RaggedTensor.from_row_splits(chars, splits, validate=False), "UTF-8")
        return words, tf.gather(rowids, tf.gather(keep, starts))

    # ------------------------------------------------------------------ BPE
    def _bpe(self, words: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Ids of (non-empty) words by the in-graph merge loop: flat int64 ids and ids per word."""
        cps = tf.strings.unicode_decode(words, "UTF-8")
        vals = tf.cast(cps.flat_values, tf.int64)
        splits = cps.row_splits
        rowids = cps.value_rowids()
        pos = tf.range(tf.size(vals, out_type=tf.int64))
        is_last = tf.equal(pos + 1, tf.gather(splits[1:], rowids))
        wstart = tf.equal(pos, tf.gather(splits[:-1], rowids))
        sym = tf.where(is_last, self.final_char_table.lookup(vals), self.char_table.lookup(vals))
        m = tf.constant(self._key_m, tf.int64)
        inf = tf.constant(int(_INF), tf.int64)
        monotone = self._monotone

        def body(sym, wstart, _):
            a, b = sym[:-1], sym[1:]                      # pair i joins symbols i and i + 1
            same = ~wstart[1:]                            # both in the same word
            key = a * m + b
            rank = tf.where(same, self.rank_table.lookup(key), inf)
            # A frozen boundary can never be merged across: it separates independent segments.
            frozen = ~same | tf.equal(self.cross_table.lookup(key), 0)
            seg = tf.cumsum(tf.cast(frozen, tf.int32), exclusive=True)
            seg_min = tf.math.unsorted_segment_min(rank, seg, tf.size(rank) + 1)
            take = _segment_alternate((rank < inf) & tf.equal(rank, tf.gather(seg_min, seg)))
            if monotone:
                # Pairs that no lower-ranked merge can ever take a symbol from merge now.
                left = tf.concat([tf.zeros([1], tf.int64), a[:-1]], axis=0)
                has_left = tf.concat([[False], same[:-1]], axis=0)
                right = tf.concat([b[1:], tf.zeros([1], tf.int64)], axis=0)
                has_right = tf.concat([same[1:], [False]], axis=0)
                ls = tf.where(has_left, self.left_steal_table.lookup(left * m + a), inf)
                rs = tf.where(has_right, self.right_steal_table.lookup(b * m + right), inf)
                take |= (rank < inf) & (rank < ls) & (rank < rs)
            merged = tf.gather(self._result_ids, tf.where(take, rank, 0))
            new_sym = tf.concat([tf.where(take, merged, a), sym[-1:]], axis=0)
            keep = _indices(tf.concat([[True], ~take], axis=0))
            return tf.gather(new_sym, keep), tf.gather(wstart, keep), tf.reduce_any(take)

        def cond(sym, wstart, changed):
            return changed

        sym, wstart, _ = tf.while_loop(
            cond, body, (sym, wstart, tf.size(sym) > 1),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
        )
        unknown = tf.equal(sym, self._unk_sym)
        if self._unk_id is None:
            check = tf.debugging.assert_equal(
                tf.reduce_any(unknown), False,
                message="a BPE piece is not in the vocabulary and the tokenizer has no unknown token")
            with tf.control_dependencies([check]):
                ids = tf.identity(sym)
        else:
            ids = tf.where(unknown, tf.constant(self._unk_id, tf.int64), sym)
        word_of = tf.cumsum(tf.cast(wstart, tf.int64)) - 1
        return ids, tf.math.unsorted_segment_sum(tf.ones_like(word_of), word_of, tf.size(words, out_type=tf.int64))

    def _word_ids(self, words: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """Ids of the words (flat, in order) and how many each word has.

        Unique words are looked up in the cache; the rest go through the merge loop. Every word then
        reads its ids as a slice of (cache ids ++ new ids).
        """
        uniq, inverse = tf.unique(words, out_idx=tf.int64)
        idx = self.cache_table.lookup(uniq)
        safe = tf.maximum(idx, 0)
        start = tf.gather(self._cache_splits, safe)
        length = tf.gather(self._cache_splits, safe + 1) - start
        missing = _indices(idx < 0)
        new_ids, new_lengths = tf.cond(
            tf.size(missing) > 0,
            lambda: self._bpe(tf.gather(uniq, missing)),
            lambda: (tf.zeros([0], tf.int64), tf.zeros([0], tf.int64)),
        )
        new_start = tf.size(self._cache_values, out_type=tf.int64) + tf.cumsum(new_lengths, exclusive=True)
        start = tf.tensor_scatter_nd_update(start, missing[:, None], new_start)
        length = tf.tensor_scatter_nd_update(length, missing[:, None], new_lengths)
        word_start, word_length = tf.gather(start, inverse), tf.gather(length, inverse)
        positions = tf.ragged.range(word_start, word_start + word_length).flat_values
        return tf.gather(tf.concat([self._cache_values, new_ids], axis=0), positions), word_length

    # ------------------------------------------------------------------ public API
    @tf.autograph.experimental.do_not_convert
    def call(self, inputs):
        return self.tokenize(inputs)

    @tf.autograph.experimental.do_not_convert
    def tokenize(self, inputs) -> tf.RaggedTensor:
        """Token ids: ``[B]`` strings -> ragged int32 ``[B, None]``; a scalar string -> int32 ``[None]``."""
        x = string_tensor(inputs)
        rank = x.shape.rank
        if rank is None:
            raise ValueError("the tokenizer needs inputs of known rank (a scalar or a vector of strings)")
        if rank == 0:
            return self.tokenize(x[None])[0]
        if rank == 2:
            flat = self.tokenize(tf.reshape(x, [-1]))
            return tf.RaggedTensor.from_uniform_row_length(flat, tf.shape(x, out_type=tf.int64)[-1])
        if rank > 2:
            raise ValueError(f"the tokenizer takes a scalar, a vector or a matrix of strings, got rank {rank}")
        if tf.executing_eagerly():
            if self._data.tokenize_fn is None:
                self._data.tokenize_fn = tf.function(self._tokenize_batch, autograph=False,
                                                     input_signature=[tf.TensorSpec([None], tf.string)])
            return self._data.tokenize_fn(x)
        return self._tokenize_batch(x)

    @tf.autograph.experimental.do_not_convert
    def _tokenize_batch(self, x: tf.Tensor) -> tf.RaggedTensor:
        piece_cps, piece_row, is_added = self._split_added(self._lowercase(x))
        words, word_piece = self._words(piece_cps, is_added)
        ids, per_word = self._word_ids(words)
        word_row = tf.gather(piece_row, word_piece)
        per_row = tf.math.unsorted_segment_sum(per_word, word_row, tf.size(x, out_type=tf.int64))
        return tf.RaggedTensor.from_row_lengths(tf.cast(ids, tf.int32), per_row, validate=False)

    @tf.autograph.experimental.do_not_convert
    def detokenize(self, ids, skip_special_tokens: bool = False,
                   clean_up_tokenization_spaces: Optional[bool] = None) -> tf.Tensor:
        """Text of token ids (ragged or dense ``[B, T]`` -> ``[B]``; ``[T]`` -> scalar), as ``decode``."""
        if isinstance(ids, tf.RaggedTensor):
            rag = ids
            scalar = False
        else:
            dense = tf.convert_to_tensor(ids)
            scalar = dense.shape.rank == 1
            if scalar:
                dense = dense[None]
            if dense.shape.rank != 2:
                raise ValueError(f"detokenize expects ids of rank 1 or 2, got shape {dense.shape}")
            rag = tf.RaggedTensor.from_tensor(dense)
        if rag.ragged_rank > 1:
            rag = rag.merge_dims(1, -1)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        flat = tf.cast(rag.flat_values, tf.int64)
        splits = tf.cast(rag.row_splits, tf.int64)
        if tf.executing_eagerly():
            key = (bool(skip_special_tokens), bool(clean_up_tokenization_spaces))
            fns = self._data.detokenize_fns
            if key not in fns:
                fns[key] = tf.function(
                    lambda v, s: self._detokenize_flat(v, s, *key), autograph=False,
                    input_signature=[tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.int64)])
            text = fns[key](flat, splits)
        else:
            text = self._detokenize_flat(flat, splits, skip_special_tokens, clean_up_tokenization_spaces)
        return text[0] if scalar else text

    def _detokenize_flat(self, flat, splits, skip_special_tokens, clean_up_tokenization_spaces):
        rag = tf.RaggedTensor.from_row_splits(flat, splits, validate=False)
        rowids = rag.value_rowids()
        nrows = rag.nrows(out_type=tf.int64)
        size = self._id_table_size
        idx = tf.where((flat >= 0) & (flat < size), flat, size)
        if skip_special_tokens:
            keep = ~tf.gather(self._id_skip, idx)
            idx, rowids = tf.boolean_mask(idx, keep), tf.boolean_mask(rowids, keep)
        tokens = tf.gather(self._id_strings, idx)
        if not self._any_legacy:
            joined = tf.strings.reduce_join(tf.RaggedTensor.from_value_rowids(tokens, rowids, nrows=nrows), axis=1)
            text = self._to_string(joined)
        else:
            text = self._join_with_added(tokens, rowids, tf.gather(self._id_legacy, idx), nrows)
        if clean_up_tokenization_spaces:
            for old, new in CLEAN_UP_REPLACEMENTS:
                text = tf.strings.regex_replace(text, _re2_escape(old), new.replace("\\", "\\\\"))
        return text

    def _to_string(self, joined: tf.Tensor) -> tf.Tensor:
        text = tf.strings.regex_replace(joined, "</w>", " ")
        return tf.strings.regex_replace(text, self._strip_pattern, "")

    def _join_with_added(self, tokens, rowids, legacy, nrows):
        """HF's decode with added tokens: they stand apart, the runs between them are joined."""
        n = tf.size(tokens, out_type=tf.int64)
        row_start = tf.concat([[True], tf.not_equal(rowids[1:], rowids[:-1])], axis=0)[:n]
        prev_legacy = tf.concat([[False], legacy[:-1]], axis=0)[:n]
        new_group = row_start | legacy | prev_legacy
        gid = tf.cumsum(tf.cast(new_group, tf.int64)) - 1
        n_groups = tf.reduce_sum(tf.cast(new_group, tf.int64))
        joined = tf.strings.unsorted_segment_join(tokens, gid, n_groups)
        group_legacy = tf.boolean_mask(legacy, new_group)
        group_row = tf.boolean_mask(rowids, new_group)
        text = tf.where(group_legacy, joined, self._to_string(joined))
        last_in_row = tf.concat([tf.not_equal(group_row[1:], group_row[:-1]), [True]], axis=0)[:n_groups]
        keep = group_legacy | tf.not_equal(text, "") | last_in_row
        rows = tf.RaggedTensor.from_value_rowids(tf.boolean_mask(text, keep), tf.boolean_mask(group_row, keep),
                                                 nrows=nrows, validate=False)
        return tf.strings.reduce_join(rows, axis=1, separator=" ")

    def __repr__(self) -> str:
        return f"TFOpenAIGPTTokenizer(vocab_size={len(self.vocabulary)}, len={len(self._tok)})"
