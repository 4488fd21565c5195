"""OpenAI GPT (GPT-1) BPE tokenizer in Python, identical to Hugging Face's ``OpenAIGPTTokenizer``.

Pipeline (the same as transformers 4.57):

1. ``tokenize`` lowercases the text one character at a time (``str.lower`` per character, so there is
   no final-sigma context), except where a special token (or a normalized added token) occurs verbatim.
2. The lowered text is split on added/special tokens (longest match at the earliest position); those
   pieces map straight to their ids.
3. Every other piece is pre-tokenized. With ``ftfy`` and ``spaCy`` both importable (and
   ``pretokenizer="auto"``), as OpenAI did: ``spaCy(text_standardize(ftfy.fix_text(piece)))``, tokens
   lowercased. Otherwise BERT's ``BasicTokenizer(do_lower_case=True)``: drop NUL, U+FFFD and every
   ``C*`` character except tab/CR/LF, map whitespace (tab, CR, LF, space, ``Zs``) to a space, put
   spaces around CJK ideographs, split on whitespace (``str.split``, which also splits on U+2028 and
   U+2029), lowercase, NFD, drop ``Mn`` marks, split off punctuation (``P*`` categories and all ASCII
   symbols). HF 4.57 computes an NFC copy of the text but tokenizes the un-normalized text; since NFD
   follows, the result is the same either way (checked for every code point).
4. Each word is BPE-encoded with the merge ranks (``word[-1] + "</w>"`` marks the word end; the
   lowest-ranked pair present is merged everywhere, left to right, until no ranked pair is left).
   Results are cached. Words longer than 64 characters use an equivalent heap-based merge so that a
   very long word costs O(n log n) instead of O(n^2).

Policies (where HF has no error or an unhelpful one):

* Unknown pieces map to ``unk_token``'s id. A ``unk_token`` missing from the vocabulary is added
  after it (as HF adds every special token); with ``unk_token=None``, encoding a text that needs it
  raises ``ValueError``.
* ``decode`` maps ids outside the vocabulary to ``unk_token`` (HF's behaviour), so they read ``<unk>``
  (and are dropped with ``skip_special_tokens=True``); without an unknown token they read as "".
* Bytes input is decoded as UTF-8 with ``errors="replace"``; the U+FFFD characters this produces are
  dropped by the pre-tokenizer, like any U+FFFD in the text.
* Vocabulary files that are missing, not UTF-8, not valid JSON, map tokens to non-integer or
  duplicate ids, or merges lines that do not hold exactly two symbols, or merges whose symbols or
  result are not in the vocabulary: ``FileNotFoundError`` / ``ValueError`` naming the file and line.
* merges.txt: a first line starting with ``#`` is a header and skipped, empty lines are ignored, and
  a duplicated merge keeps its last rank (as HF does).
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
OPENAI_VOCAB_FILES = ("encoder_bpe_40000.json", "vocab_40000.bpe")
SPECIAL_TOKENS_ATTRIBUTES = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)
END_OF_WORD = "</w>"
_LONG_WORD = 64          # words longer than this use the heap-based BPE
_CACHE_MAX_WORD = 128    # longer words are not cached
_CACHE_MAX_SIZE = 1_000_000


# ----------------------------------------------------------------------------------------------------
# Character classes (BERT BasicTokenizer semantics)
# ----------------------------------------------------------------------------------------------------

def is_control(char: str) -> bool:
    """Tab, CR and LF count as whitespace; every other ``C*`` character is a control."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def is_whitespace(char: str) -> bool:
    """Space, tab, CR, LF and the ``Zs`` category."""
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) == "Zs"


def is_punctuation(char: str) -> bool:
    """All non-alphanumeric ASCII plus the Unicode ``P*`` categories."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk_codepoint(cp: int) -> bool:
    """The CJK ideograph blocks that BERT surrounds with spaces."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


@functools.lru_cache(maxsize=1 << 16)
def _clean_char(char: str) -> str:
    """One character after BERT's clean-up and CJK spacing: "", " ", " c " or the character."""
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or is_control(char):
        return ""
    if is_whitespace(char):
        return " "
    if is_cjk_codepoint(cp):
        return " " + char + " "
    return char


@functools.lru_cache(maxsize=1 << 16)
def _is_mark(char: str) -> bool:
    return unicodedata.category(char) == "Mn"


_is_punct_cached = functools.lru_cache(maxsize=1 << 16)(is_punctuation)

# ASCII fast path: control characters are deleted, the rest is split into runs of letters/digits and
# single punctuation characters.
_ASCII_CONTROL_DELETE = {cp: None for cp in list(range(0, 9)) + [11, 12] + list(range(14, 32)) + [127]}
_ASCII_WORD_RE = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


def lower_per_character(text: str) -> str:
    """``str.lower`` applied to each character on its own (no final-sigma context), as HF does."""
    if "\u03a3" in text:
        text = text.replace("\u03a3", "\u03c3")
    return text.lower()


def basic_tokenize(text: str) -> List[str]:
    """BERT ``BasicTokenizer(do_lower_case=True).tokenize`` (HF 4.57 semantics), with an ASCII fast path."""
    if text.isascii():
        return _ASCII_WORD_RE.findall(text.translate(_ASCII_CONTROL_DELETE).lower())
    cleaned = "".join(map(_clean_char, text))
    split_tokens: List[str] = []
    for token in cleaned.split():
        token = token.lower()
        token = unicodedata.normalize("NFD", token)
        if not token.isascii():
            token = "".join(c for c in token if not _is_mark(c))
        # split off punctuation
        start = 0
        for i, c in enumerate(token):
            if _is_punct_cached(c):
                if start < i:
                    split_tokens.append(token[start:i])
                split_tokens.append(c)
                start = i + 1
        if start < len(token):
            split_tokens.append(token[start:])
    if any(not t.isascii() for t in split_tokens):
        return " ".join(split_tokens).split()
    return split_tokens


def text_standardize(text: str) -> str:
    """OpenAI's clean-up before spaCy: dashes, ellipsis, spacing around symbols, whitespace."""
    text = text.replace("\u2014", "-").replace("\u2013", "-").replace("\u2015", "-")
    text = text.replace("\u2026", "...").replace("\u00b4", "'")
    text = re.sub(r"""(-+|~+|!+|"+|;+|\?+|\++|,+|\)+|\(+|\\+|\/+|\*+|\[+|\]+|}+|{+|\|+|_+)""", r" \1 ", text)
    text = re.sub(r"\s*\n\s*", " \n ", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    return text.strip()


def _load_spacy_ftfy():
    """(spaCy English tokenizer, ftfy.fix_text) when both are importable, else None."""
    try:
        import ftfy  # type: ignore
        from spacy.lang.en import English  # type: ignore
    except ImportError:
        return None
    return English().tokenizer, ftfy.fix_text


def pretokenize(text: str) -> List[str]:
    """Words of ``text`` exactly as the BasicTokenizer path sees them (per-character lowercase first)."""
    return basic_tokenize(lower_per_character(text))


# ----------------------------------------------------------------------------------------------------
# BPE
# ----------------------------------------------------------------------------------------------------

def merge_pair(symbols: Sequence[str], first: str, second: str, start: int = 0) -> List[str]:
    """``symbols`` with every non-overlapping ``(first, second)`` from ``start`` on merged, left to
    right (the caller knows there is none before ``start``)."""
    out = list(symbols[:start])
    merged = first + second
    i, n = start, len(symbols)
    while i < n:
        if i < n - 1 and symbols[i] == first and symbols[i + 1] == second:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def bpe_merge(word: Tuple[str, ...], ranks: Dict[Tuple[str, str], int]) -> Tuple[str, ...]:
    """HF's merge loop: merge every occurrence of the lowest-ranked pair, left to right, until none."""
    n = len(word)
    if n < 2:
        return tuple(word)
    if n > _LONG_WORD:
        return _bpe_merge_heap(word, ranks)
    get = ranks.get
    symbols = list(word)
    while True:
        best, best_rank = -1, None
        for i in range(len(symbols) - 1):
            r = get((symbols[i], symbols[i + 1]))
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best < 0:
            break
        symbols = merge_pair(symbols, symbols[best], symbols[best + 1], start=best)
        if len(symbols) == 1:
            break
    return tuple(symbols)


def _bpe_merge_heap(word: Sequence[str], ranks: Dict[Tuple[str, str], int]) -> Tuple[str, ...]:
    """Same result as :func:`bpe_merge` in O(n log n): rounds of one rank, occurrences left to right.

    A round pops every queued occurrence of the lowest rank, skips stale ones (a symbol already merged
    or changed) and merges the rest in position order, which is HF's left-to-right, non-overlapping
    scan. Pairs created by a merge can never be the pair of the current round, so they wait for a
    later round, exactly as in HF's loop.
    """
    sym = list(word)
    n = len(sym)
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    alive = [True] * n
    heap = []
    for i in range(n - 1):
        r = ranks.get((sym[i], sym[i + 1]))
        if r is not None:
            heap.append((r, i))
    heapq.heapify(heap)
    while heap:
        rank = heap[0][0]
        batch = []
        while heap and heap[0][0] == rank:
            batch.append(heapq.heappop(heap)[1])
        batch.sort()
        for p in batch:
            if not alive[p]:
                continue
            q = nxt[p]
            if q >= n or ranks.get((sym[p], sym[q])) != rank:
                continue
            sym[p] = sym[p] + sym[q]
            alive[q] = False
            nq = nxt[q]
            nxt[p] = nq
            if nq < n:
                prv[nq] = p
                r = ranks.get((sym[p], sym[nq]))
                if r is not None:
                    heapq.heappush(heap, (r, p))
            pp = prv[p]
            if pp >= 0:
                r = ranks.get((sym[pp], sym[p]))
                if r is not None:
                    heapq.heappush(heap, (r, pp))
    return tuple(s for s, a in zip(sym, alive) if a)


# ----------------------------------------------------------------------------------------------------
# Vocabulary files
# ----------------------------------------------------------------------------------------------------

def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"vocabulary file not found: {path}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid UTF-8 (byte {e.start}: {data[e.start:e.start + 4]!r})") from None


def load_vocab(path: str) -> Dict[str, int]:
    """Read a JSON token -> id map and check it: a JSON object of string keys and unique int ids >= 0."""
    text = _read_text(path)
    try:
        vocab = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{path} must hold a non-empty JSON object mapping tokens to ids")
    seen: Dict[int, str] = {}
    for token, idx in vocab.items():
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{path}: token {token!r} has id {idx!r}; ids must be integers >= 0")
        if idx in seen:
            raise ValueError(f"{path}: id {idx} is given to both {seen[idx]!r} and {token!r}")
        seen[idx] = token
    return vocab


def parse_merges(text: str, source: str = "merges") -> List[Tuple[str, str]]:
    """Parse merges text: optional ``#`` header line, then one ``left right`` pair per line."""
    lines = text.split("\n")
    merges = []
    for lineno, line in enumerate(lines, start=1):
        if lineno == 1 and line.startswith("#"):
            continue
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{source}, line {lineno}: expected two symbols separated by a space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def load_merges(path: str) -> List[Tuple[str, str]]:
    return parse_merges(_read_text(path), path)


def check_merges(merges: Sequence[Tuple[str, str]], vocab: Dict[str, int], source: str = "merges") -> None:
    """Every merge's two symbols and its result must be vocabulary tokens."""
    bad = [(i, a, b) for i, (a, b) in enumerate(merges) if a not in vocab or b not in vocab or a + b not in vocab]
    if bad:
        shown = ", ".join(f"rank {i}: {a!r} + {b!r}" for i, a, b in bad[:5])
        raise ValueError(
            f"{source}: {len(bad)} merge(s) use symbols or produce tokens that are not in the vocabulary "
            f"({shown}{', ...' if len(bad) > 5 else ''})"
        )


def find_vocab_files(directory: str) -> Tuple[str, str]:
    """(vocab path, merges path) in a folder: HF names first, then OpenAI's release names."""
    candidates = [VOCAB_FILES_NAMES["vocab_file"], OPENAI_VOCAB_FILES[0]]
    merges_candidates = [VOCAB_FILES_NAMES["merges_file"], OPENAI_VOCAB_FILES[1]]
    try:
        names = set(os.listdir(directory))
    except FileNotFoundError:
        raise FileNotFoundError(f"no such folder: {directory!r}") from None
    vocab = next((c for c in candidates if c in names), None)
    if vocab is None:
        vocab = next((n for n in sorted(names) if re.fullmatch(r"encoder_bpe_\d+\.json", n)), None)
    merges = next((c for c in merges_candidates if c in names), None)
    if merges is None:
        merges = next((n for n in sorted(names) if re.fullmatch(r"vocab_\d+\.bpe", n)), None)
    missing = [what for what, f in (("vocab.json (or encoder_bpe_40000.json)", vocab),
                                     ("merges.txt (or vocab_40000.bpe)", merges)) if f is None]
    if missing:
        raise FileNotFoundError(f"{directory!r} has no {' and no '.join(missing)}; found: {sorted(names)}")
    return os.path.join(directory, vocab), os.path.join(directory, merges)


def _atomic_write(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------

@dataclass
class AddedToken:
    """A token added after the vocabulary (or a special token), as HF stores it."""

    content: str
    special: bool = False
    normalized: bool = True
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False

    def __str__(self) -> str:
        return self.content

    def to_dict(self) -> dict:
        return {"content": self.content, "lstrip": self.lstrip, "normalized": self.normalized,
                "rstrip": self.rstrip, "single_word": self.single_word, "special": self.special}


class BatchEncoding(dict):
    """``dict`` of model inputs that also allows attribute access (``enc.input_ids``)."""

    def __getattr__(self, item):
        try:
            return self[item]
        except KeyError:
            raise AttributeError(item) from None

    def __getstate__(self):
        return dict(self)

    def __setstate__(self, state):
        self.update(state)


def _regex_alternation(tokens: Iterable[str]) -> str:
    return "|".join(re.escape(t) for t in tokens)


class OpenAIGPTTokenizer:
    """GPT-1 BPE tokenizer with Hugging Face's API and ids.

    Args:
        vocab_file, merges_file: paths (HF ``vocab.json``/``merges.txt`` or OpenAI's files).
        vocab, merges: the same data in memory (``dict`` token -> id, list of ``(left, right)``),
            instead of files.
        unk_token: the unknown token (``"<unk>"``, id 0 in GPT-1).
        pretokenizer: ``"auto"`` (spaCy + ftfy when both are importable, as HF), ``"basic"`` (always
            BERT's BasicTokenizer) or ``"spacy"`` (require spaCy + ftfy).
        padding_side, truncation_side: ``"right"`` or ``"left"``.
        model_max_length: used by ``truncation=True`` / ``padding="max_length"`` without ``max_length``.
        clean_up_tokenization_spaces: default of ``decode``'s clean-up (``False``, as HF's openai-gpt).
        added_tokens_decoder: ``{id: AddedToken or dict}`` restored from a saved tokenizer.
        **kwargs: other special tokens (``bos_token``, ``pad_token``, ``cls_token``, ...,
            ``additional_special_tokens``).
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: Optional[str] = None,
        merges_file: Optional[str] = None,
        unk_token: str = "<unk>",
        *,
        vocab: Optional[Dict[str, int]] = None,
        merges: Optional[Sequence[Tuple[str, str]]] = None,
        pretokenizer: str = "auto",
        padding_side: str = "right",
        truncation_side: str = "right",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = False,
        added_tokens_decoder: Optional[Dict[int, Union[AddedToken, dict, str]]] = None,
        **kwargs,
    ):
        if vocab is None:
            if vocab_file is None:
                raise ValueError("pass vocab_file (a vocab.json path) or vocab (a token -> id dict)")
            vocab = load_vocab(vocab_file)
        else:
            vocab = dict(vocab)
        if merges is None:
            if merges_file is None:
                raise ValueError("pass merges_file (a merges.txt path) or merges (a list of pairs)")
            merges = load_merges(merges_file)
        else:
            merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in merges]
            for i, m in enumerate(merges):
                if len(m) != 2 or not all(isinstance(x, str) and x and len(x.split()) == 1 and x.split()[0] == x
                                          for x in m):
                    raise ValueError(f"merge {i} must be two non-empty symbols without whitespace, got {m!r}")
        check_merges(merges, vocab, merges_file or "merges")
        self.encoder: Dict[str, int] = vocab
        self.decoder: Dict[int, str] = {v: k for k, v in vocab.items()}
        self.bpe_ranks: Dict[Tuple[str, str], int] = {}
        for rank, pair in enumerate(merges):
            if pair in self.bpe_ranks:
                logger.warning("merge %r appears more than once; its last rank (%d) is used", pair, rank)
            self.bpe_ranks[pair] = rank
        self.cache: Dict[str, str] = {}
        self._word_cache: Dict[str, Tuple[int, ...]] = {}

        if pretokenizer not in ("auto", "basic", "spacy"):
            raise ValueError(f"pretokenizer must be 'auto', 'basic' or 'spacy', got {pretokenizer!r}")
        self.pretokenizer = pretokenizer
        loaded = None if pretokenizer == "basic" else _load_spacy_ftfy()
        if loaded is None and pretokenizer == "spacy":
            raise ImportError("pretokenizer='spacy' needs both spacy and ftfy installed")
        if loaded is None:
            self.nlp, self.fix_text = None, None
        else:
            self.nlp, self.fix_text = loaded

        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.model_max_length = model_max_length
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.init_kwargs = {"unk_token": unk_token, **kwargs}

        self._special_tokens_map: Dict[str, Union[str, List[str], None]] = {a: None for a in SPECIAL_TOKENS_ATTRIBUTES}
        self._special_tokens_map["additional_special_tokens"] = []
        self._added_tokens_decoder: Dict[int, AddedToken] = {}
        self._added_tokens_encoder: Dict[str, int] = {}
        if added_tokens_decoder:
            for idx, tok in sorted(((int(k), v) for k, v in added_tokens_decoder.items()), key=lambda kv: kv[0]):
                if isinstance(tok, dict):
                    tok = AddedToken(**{k: v for k, v in tok.items() if k in AddedToken.__dataclass_fields__})
                elif isinstance(tok, str):
                    tok = AddedToken(tok, special=True, normalized=False)
                self._added_tokens_decoder[idx] = tok
                self._added_tokens_encoder[tok.content] = idx
        self._special_tokens_map["unk_token"] = str(unk_token) if unk_token is not None else None
        for attr in SPECIAL_TOKENS_ATTRIBUTES:
            if attr in kwargs and kwargs[attr] is not None:
                self._special_tokens_map[attr] = str(kwargs.pop(attr))
        extra = kwargs.pop("additional_special_tokens", None) or []
        self._special_tokens_map["additional_special_tokens"] = [str(t) for t in extra]
        for key in list(kwargs):
            if key in ("tokenizer_class", "name_or_path", "errors", "do_lower_case", "model_input_names",
                       "split_special_tokens", "extra_special_tokens", "auto_map", "processor_class"):
                kwargs.pop(key)
        if kwargs:
            logger.info("ignoring tokenizer arguments %s", sorted(kwargs))
        # Register special tokens as added tokens (those already in the vocabulary keep their id).
        self._add_tokens([t for t in self.all_special_tokens if t not in self._added_tokens_encoder],
                         special_tokens=True)
        self._refresh()

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs) -> "OpenAIGPTTokenizer":
        """Load from a folder or a Hugging Face hub id (``"openai-community/openai-gpt"``).

        The folder holds ``vocab.json`` + ``merges.txt`` or OpenAI's ``encoder_bpe_40000.json`` +
        ``vocab_40000.bpe``; ``tokenizer_config.json`` / ``special_tokens_map.json`` /
        ``added_tokens.json`` are read when present. Keyword arguments override saved settings.
        """
        from tfgpt.hub import resolve_dir

        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        directory = resolve_dir(
            pretrained_model_name_or_path,
            allow_patterns=["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                            "added_tokens.json", "encoder_bpe_*.json", "vocab_*.bpe"],
            **hub_kwargs,
        )
        vocab_path, merges_path = find_vocab_files(directory)
        init: Dict[str, object] = {}
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.exists(config_path):
            config = _load_json(config_path)
            for key in ("unk_token", "padding_side", "truncation_side", "model_max_length",
                        "clean_up_tokenization_spaces", "additional_special_tokens", *SPECIAL_TOKENS_ATTRIBUTES):
                if key in config and config[key] is not None:
                    init[key] = _token_content(config[key])
            if isinstance(config.get("added_tokens_decoder"), dict):
                init["added_tokens_decoder"] = {int(k): v for k, v in config["added_tokens_decoder"].items()}
            if isinstance(init.get("model_max_length"), (int, float)) and init["model_max_length"] > 1e12:
                init["model_max_length"] = 512
        special_path = os.path.join(directory, "special_tokens_map.json")
        if os.path.exists(special_path):
            for key, value in _load_json(special_path).items():
                if key in SPECIAL_TOKENS_ATTRIBUTES or key == "additional_special_tokens":
                    init.setdefault(key, _token_content(value))
        added_path = os.path.join(directory, "added_tokens.json")
        if os.path.exists(added_path) and "added_tokens_decoder" not in init:
            added = _load_json(added_path)
            init["added_tokens_decoder"] = {int(i): AddedToken(t, special=False, normalized=True)
                                            for t, i in added.items()}
        init.update(kwargs)
        return cls(vocab_path, merges_path, **init)

    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs) -> List[str]:
        """Write ``vocab.json``, ``merges.txt``, ``tokenizer_config.json`` and ``special_tokens_map.json``.

        Files are written atomically (temporary file + ``os.replace``) in HF's layout, so HF's
        ``OpenAIGPTTokenizer.from_pretrained`` reads them too. Returns the written paths.
        """
        save_directory = os.fspath(save_directory)
        os.makedirs(save_directory, exist_ok=True)
        paths = []
        vocab_path = os.path.join(save_directory, VOCAB_FILES_NAMES["vocab_file"])
        _atomic_write(vocab_path, json.dumps(self.encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        paths.append(vocab_path)
        merges_path = os.path.join(save_directory, VOCAB_FILES_NAMES["merges_file"])
        lines = ["#version: 0.2"] + [f"{a} {b}" for (a, b), _ in sorted(self.bpe_ranks.items(), key=lambda kv: kv[1])]
        _atomic_write(merges_path, "\n".join(lines) + "\n")
        paths.append(merges_path)
        special_map = {k: v for k, v in self.special_tokens_map.items()}
        config = {
            "added_tokens_decoder": {str(i): t.to_dict() for i, t in sorted(self._added_tokens_decoder.items())},
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "extra_special_tokens": {},
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "tokenizer_class": "OpenAIGPTTokenizer",
            **special_map,
        }
        config_path = os.path.join(save_directory, "tokenizer_config.json")
        _atomic_write(config_path, json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        paths.append(config_path)
        special_path = os.path.join(save_directory, "special_tokens_map.json")
        _atomic_write(special_path, json.dumps(special_map, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        paths.append(special_path)
        return paths

    # ------------------------------------------------------------------ vocabulary
    @property
    def do_lower_case(self) -> bool:
        return True

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return len(self.encoder)

    def __len__(self) -> int:
        """Size of the full vocabulary, added tokens included."""
        return len(self.get_vocab())

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.encoder, **self._added_tokens_encoder)

    @property
    def added_tokens_encoder(self) -> Dict[str, int]:
        return {t.content: i for i, t in sorted(self._added_tokens_decoder.items())}

    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    def get_added_vocab(self) -> Dict[str, int]:
        return dict(self._added_tokens_encoder)

    @property
    def special_tokens_map(self) -> Dict[str, Union[str, List[str]]]:
        out = {}
        for attr in SPECIAL_TOKENS_ATTRIBUTES + ("additional_special_tokens",):
            value = self._special_tokens_map.get(attr)
            if value:
                out[attr] = list(value) if isinstance(value, list) else value
        return out

    @property
    def all_special_tokens(self) -> List[str]:
        out: List[str] = []
        for value in self.special_tokens_map.values():
            for tok in (value if isinstance(value, list) else [value]):
                if tok not in out:
                    out.append(tok)
        return out

    @property
    def all_special_ids(self) -> List[int]:
        return [self.convert_tokens_to_ids(t) for t in self.all_special_tokens]

    @property
    def additional_special_tokens(self) -> List[str]:
        return list(self._special_tokens_map["additional_special_tokens"])

    def _special_getter(attr):  # noqa: N805 - property factory
        def get(self):
            return self._special_tokens_map.get(attr)

        def set_(self, value):
            self._special_tokens_map[attr] = None if value is None else str(value)
            self._refresh()

        return property(get, set_)

    def _special_id_getter(attr):  # noqa: N805 - property factory
        def get(self):
            token = self._special_tokens_map.get(attr)
            return None if token is None else self.convert_tokens_to_ids(token)

        def set_(self, value):
            self._special_tokens_map[attr] = None if value is None else self.convert_ids_to_tokens(int(value))
            self._refresh()

        return property(get, set_)

    bos_token = _special_getter("bos_token")
    eos_token = _special_getter("eos_token")
    unk_token = _special_getter("unk_token")
    sep_token = _special_getter("sep_token")
    pad_token = _special_getter("pad_token")
    cls_token = _special_getter("cls_token")
    mask_token = _special_getter("mask_token")
    bos_token_id = _special_id_getter("bos_token")
    eos_token_id = _special_id_getter("eos_token")
    unk_token_id = _special_id_getter("unk_token")
    sep_token_id = _special_id_getter("sep_token")
    pad_token_id = _special_id_getter("pad_token")
    cls_token_id = _special_id_getter("cls_token")
    mask_token_id = _special_id_getter("mask_token")
    del _special_getter, _special_id_getter

    def add_tokens(self, new_tokens: Union[str, AddedToken, Sequence[Union[str, AddedToken]]],
                   special_tokens: bool = False) -> int:
        """Add tokens after the vocabulary; returns how many new ids were created.

        Non-special tokens are lowercased (the tokenizer lowercases its input) and matched
        case-insensitively; tokens already in the vocabulary keep their id but are never split again.
        """
        if isinstance(new_tokens, (str, AddedToken)):
            new_tokens = [new_tokens]
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def add_special_tokens(self, special_tokens_dict: Dict[str, Union[str, AddedToken, Sequence[str]]],
                           replace_additional_special_tokens: bool = True) -> int:
        """Set special tokens (``cls_token``, ``pad_token``, ..., ``additional_special_tokens``).

        Tokens not in the vocabulary get the next free ids (GPT-1 fine-tuning added ``_start_``,
        ``_delimiter_`` and ``_classify_`` this way: 40478, 40479, 40480). Returns how many were added.
        """
        to_add: List[Union[str, AddedToken]] = []
        for key, value in special_tokens_dict.items():
            if key == "additional_special_tokens":
                values = [value] if isinstance(value, (str, AddedToken)) else list(value)
                names = [str(v) for v in values]
                if replace_additional_special_tokens:
                    self._special_tokens_map["additional_special_tokens"] = names
                else:
                    current = self._special_tokens_map["additional_special_tokens"]
                    current.extend(n for n in names if n not in current)
                to_add.extend(values)
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                if not isinstance(value, (str, AddedToken)):
                    raise TypeError(f"{key} must be a string, got {type(value).__name__}")
                self._special_tokens_map[key] = str(value)
                to_add.append(value)
            else:
                raise ValueError(f"unknown special token key {key!r}; use one of "
                                 f"{list(SPECIAL_TOKENS_ATTRIBUTES) + ['additional_special_tokens']}")
        return self._add_tokens(to_add, special_tokens=True)

    def _add_tokens(self, new_tokens: List[Union[str, AddedToken]], special_tokens: bool = False) -> int:
        added = 0
        vocab = self.get_vocab()
        next_id = max(vocab.values()) + 1 if vocab else 0
        next_id = max(next_id, len(vocab))
        specials = set(self.all_special_tokens)
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise TypeError(f"token {token!r} is not a string but a {type(token).__name__}")
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                is_special = token in specials or special_tokens
                token = AddedToken(token, special=is_special, normalized=not is_special)
            else:
                token = AddedToken(**token.to_dict())
                if special_tokens:
                    token.special = True
            if any(t == token for t in self._added_tokens_decoder.values()):
                continue
            if not token.special and token.normalized:
                token.content = token.content.lower()
            if token.content in vocab:
                idx = vocab[token.content]
            else:
                idx = next_id
                next_id += 1
                vocab[token.content] = idx
                added += 1
            if token.special and token.content not in self.all_special_tokens:
                self._special_tokens_map["additional_special_tokens"].append(token.content)
            self._added_tokens_decoder[idx] = token
            self._added_tokens_encoder[token.content] = idx
        self._refresh()
        return added

    def _refresh(self) -> None:
        """Rebuild the regexes that find special/added tokens."""
        specials = self.all_special_tokens
        protected = list(specials) + [t.content for t in self._added_tokens_decoder.values()
                                      if not t.special and t.normalized and t.content not in specials]
        self._protected_tokens = protected
        # Lowercasing only needs protection for tokens that per-character lowercasing would change.
        needs = any(lower_per_character(t) != t for t in protected)
        self._protect_re = re.compile(_regex_alternation(protected), re.DOTALL) if (needs and protected) else None
        # Like HF's trie: only tokens registered as added tokens (special ones included) are split off.
        split_tokens = sorted(self._added_tokens_encoder, key=lambda t: (-len(t), t))
        self._split_tokens = split_tokens
        self._split_re = re.compile(_regex_alternation(split_tokens)) if split_tokens else None
        unk = self._special_tokens_map.get("unk_token")
        self._unk_id = self.encoder.get(unk) if unk is not None else None
        if self._unk_id is None and unk is not None:
            self._unk_id = self._added_tokens_encoder.get(unk)

    def convert_tokens_to_ids(self, tokens: Union[str, Sequence[str], None]):
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str) -> Optional[int]:
        idx = self._added_tokens_encoder.get(token)
        if idx is not None:
            return idx
        return self.encoder.get(token, self._unk_id)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int) or (hasattr(ids, "ndim") and getattr(ids, "ndim", 1) == 0):
            return self._id_to_token(int(ids))
        special_ids = set(self.all_special_ids) if skip_special_tokens else ()
        out = []
        for idx in _to_id_list(ids):
            if skip_special_tokens and idx in special_ids:
                continue
            out.append(self._id_to_token(idx))
        return out

    def _id_to_token(self, idx: int) -> str:
        tok = self._added_tokens_decoder.get(idx)
        if tok is not None:
            return tok.content
        found = self.decoder.get(idx)
        if found is not None:
            return found
        return self.unk_token if self.unk_token is not None else ""

    # ------------------------------------------------------------------ tokenization
    def bpe(self, token: str) -> str:
        """BPE of one word as HF returns it: pieces joined by spaces, the last ending in ``</w>``."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        word = tuple(token[:-1]) + (token[-1] + END_OF_WORD,)
        if len(word) == 1:
            return token + END_OF_WORD
        out = " ".join(bpe_merge(word, self.bpe_ranks))
        if out == "\n  </w>":
            out = "\n</w>"
        if len(self.cache) < _CACHE_MAX_SIZE:
            self.cache[token] = out
        return out

    def _lower(self, text: str) -> str:
        """HF's per-character lowercasing, leaving special (and normalized added) tokens as they are."""
        if self._protect_re is None:
            return lower_per_character(text)
        out, pos = [], 0
        for m in self._protect_re.finditer(text):
            out.append(lower_per_character(text[pos:m.start()]))
            out.append(m.group(0))
            pos = m.end()
        out.append(lower_per_character(text[pos:]))
        return "".join(out)

    def _split_added(self, text: str) -> List[Tuple[str, bool]]:
        """Split on added/special tokens: ``[(piece, is_added_token), ...]``."""
        if self._split_re is None:
            return [(text, False)]
        out, pos = [], 0
        for m in self._split_re.finditer(text):
            if m.start() > pos:
                out.append((text[pos:m.start()], False))
            out.append((m.group(0), True))
            pos = m.end()
        if pos < len(text):
            out.append((text[pos:], False))
        return out

    def _words(self, piece: str) -> List[str]:
        """Pre-tokenized words of a piece of (already lowered) text."""
        if self.nlp is None:
            return basic_tokenize(piece)
        return [t.text.lower() for t in self.nlp(text_standardize(self.fix_text(piece)))]

    def _pieces_for_words(self, words: List[str]) -> List[str]:
        if self.nlp is None:
            out = []
            for w in words:
                out.extend(self.bpe(w).split(" "))
            return out
        out = []
        for w in words:
            if w:
                out.extend(self.bpe(w).split(" "))
        return out

    def tokenize(self, text: Union[str, bytes], **kwargs) -> List[str]:
        """BPE tokens (strings) of one text; added/special tokens come out whole."""
        text = _as_text(text)
        tokens: List[str] = []
        for piece, is_added in self._split_added(self._lower(text)):
            if is_added:
                tokens.append(piece)
            else:
                tokens.extend(self._pieces_for_words(self._words(piece)))
        return tokens

    def _word_ids(self, word: str) -> Tuple[int, ...]:
        ids = self._word_cache.get(word)
        if ids is not None:
            return ids
        if self.nlp is None:
            pieces = bpe_merge(tuple(word[:-1]) + (word[-1] + END_OF_WORD,), self.bpe_ranks)
        else:
            pieces = self.bpe(word).split(" ") if word else []
        encoder, unk = self.encoder, self._unk_id
        out = []
        for p in pieces:
            idx = encoder.get(p, unk)
            if idx is None:
                raise ValueError(f"BPE piece {p!r} is not in the vocabulary and the tokenizer has no "
                                 f"unknown token (unk_token=None)")
            out.append(idx)
        ids = tuple(out)
        if len(word) <= _CACHE_MAX_WORD:
            if len(self._word_cache) >= _CACHE_MAX_SIZE:
                self._word_cache.clear()
            self._word_cache[word] = ids
        return ids

    def _encode_one(self, text: Union[str, bytes]) -> List[int]:
        text = _as_text(text)
        ids: List[int] = []
        word_ids = self._word_ids
        cache = self._word_cache
        for piece, is_added in self._split_added(self._lower(text)):
            if is_added:
                ids.append(self._added_tokens_encoder[piece])
                continue
            for word in self._words(piece):
                cached = cache.get(word)
                ids.extend(cached if cached is not None else word_ids(word))
        return ids

    def encode(self, text: Union[str, bytes], text_pair: Optional[Union[str, bytes]] = None,
               add_special_tokens: bool = True, truncation: Union[bool, str] = False,
               max_length: Optional[int] = None, return_tensors: Optional[str] = None, **kwargs):
        """Token ids of one text (GPT-1 adds no special tokens around a sequence)."""
        ids = self._encode_one(text)
        pair = self._encode_one(text_pair) if text_pair is not None else None
        ids = self._truncate(ids, pair, truncation, max_length)
        if return_tensors is not None:
            return _as_tensor([ids], return_tensors)
        return ids

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return "".join(tokens).replace(END_OF_WORD, " ").strip()

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: Optional[bool] = None,
               spaces_between_special_tokens: bool = True, **kwargs) -> str:
        """Text of ids: ``</w>`` becomes a space, the ends are stripped (HF's rules, added tokens included)."""
        ids = [int(token_ids)] if isinstance(token_ids, int) else _to_id_list(token_ids)
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        specials = set(self.all_special_tokens)
        legacy = (set(self._added_tokens_encoder) - specials) | {
            t for t in self.additional_special_tokens
            if (self.convert_tokens_to_ids(t) or 0) >= self.vocab_size
        }
        sub_texts: List[str] = []
        current: List[str] = []
        for token in tokens:
            if skip_special_tokens and token in specials:
                continue
            if token in legacy:
                if current:
                    string = self.convert_tokens_to_string(current)
                    if string:
                        sub_texts.append(string)
                    current = []
                sub_texts.append(token)
            else:
                current.append(token)
        if current:
            sub_texts.append(self.convert_tokens_to_string(current))
        text = (" " if spaces_between_special_tokens else "").join(sub_texts)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def batch_decode(self, sequences, **kwargs) -> List[str]:
        if hasattr(sequences, "to_list"):
            sequences = sequences.to_list()
        elif hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(seq, **kwargs) for seq in sequences]

    @staticmethod
    def clean_up_tokenization(out_string: str) -> str:
        """HF's optional clean-up of spaces before punctuation and English contractions."""
        return (
            out_string.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
            .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
            .replace(" 've", "'ve").replace(" 're", "'re")
        )

    # ------------------------------------------------------------------ batches
    def _truncate(self, ids: List[int], pair: Optional[List[int]], truncation, max_length: Optional[int]) -> List[int]:
        if truncation in (False, None, "do_not_truncate"):
            return ids + pair if pair is not None else ids
        if max_length is None:
            max_length = self.model_max_length
        if truncation is True:
            truncation = "longest_first"
        if truncation not in ("longest_first", "only_first", "only_second"):
            raise ValueError("truncation must be True, False, 'longest_first', 'only_first' or 'only_second', "
                             f"got {truncation!r}")
        right = self.truncation_side == "right"

        def cut(seq, n):
            if n <= 0:
                return seq
            return seq[:len(seq) - n] if right else seq[n:]

        if pair is None:
            if truncation == "only_second":
                raise ValueError("truncation='only_second' needs a text pair")
            return cut(ids, len(ids) - max_length)
        excess = len(ids) + len(pair) - max_length
        if excess > 0:
            if truncation == "only_first":
                if excess > len(ids):
                    raise ValueError("the first sequence is too short to truncate to max_length")
                ids = cut(ids, excess)
            elif truncation == "only_second":
                if excess > len(pair):
                    raise ValueError("the second sequence is too short to truncate to max_length")
                pair = cut(pair, excess)
            else:
                a, b = len(ids), len(pair)
                for _ in range(excess):
                    if a > b:
                        a -= 1
                    else:
                        b -= 1
                ids, pair = cut(ids, len(ids) - a), cut(pair, len(pair) - b)
        return ids + pair

    def __call__(
        self,
        text: Union[str, bytes, Sequence[Union[str, bytes]]],
        text_pair: Optional[Union[str, Sequence[str]]] = None,
        add_special_tokens: bool = True,
        padding: Union[bool, str] = False,
        truncation: Union[bool, str, None] = None,
        max_length: Optional[int] = None,
        pad_to_multiple_of: Optional[int] = None,
        padding_side: Optional[str] = None,
        return_tensors: Optional[str] = None,
        return_attention_mask: Optional[bool] = None,
        return_length: bool = False,
        **kwargs,
    ) -> BatchEncoding:
        """Encode one text or a batch: ``input_ids`` and ``attention_mask`` (lists, numpy or tf).

        ``padding``: ``False``/``"do_not_pad"``, ``True``/``"longest"`` or ``"max_length"`` (needs a
        pad token: GPT-1 has none, set ``tok.pad_token`` or add one with ``add_special_tokens``).
        ``padding_side``: ``"right"`` (default, the ``padding_side`` attribute) or ``"left"``.
        ``return_tensors``: ``None``, ``"np"`` (int64) or ``"tf"`` (int32); tensors need equal lengths.
        """
        single = isinstance(text, (str, bytes))
        if not single and (text is None or not hasattr(text, "__iter__")):
            raise TypeError(f"text must be a str (or UTF-8 bytes) or a list of them, got {type(text).__name__}")
        texts = [text] if single else list(text)
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, (str, bytes)) else list(text_pair)
            if len(pairs) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(pairs)} text pairs")
        else:
            pairs = [None] * len(texts)
        if truncation is None:
            truncation = max_length is not None and padding != "max_length"
        batch = [self._truncate(self._encode_one(t), self._encode_one(p) if p is not None else None,
                                truncation, max_length) for t, p in zip(texts, pairs)]
        if padding is True:
            padding = "longest"
        if padding in (False, None):
            padding = "do_not_pad"
        if padding not in ("longest", "max_length", "do_not_pad"):
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', got {padding!r}")
        side = padding_side or self.padding_side
        if side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
        if padding == "longest":
            target = max((len(x) for x in batch), default=0)
        elif padding == "max_length":
            target = max_length if max_length is not None else self.model_max_length
        else:
            target = None
        if target is not None and pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        masks = [[1] * len(x) for x in batch]
        if target is not None and any(len(x) < target for x in batch):
            pad_id = self.pad_token_id
            if pad_id is None:
                raise ValueError(
                    "asking to pad but the tokenizer has no padding token (GPT-1 defines none). Set one, "
                    "e.g. `tok.pad_token = tok.unk_token` or `tok.add_special_tokens({'pad_token': '<pad>'})`."
                )
            for i, ids in enumerate(batch):
                n = target - len(ids)
                if n > 0:
                    if side == "right":
                        batch[i] = ids + [pad_id] * n
                        masks[i] = masks[i] + [0] * n
                    else:
                        batch[i] = [pad_id] * n + ids
                        masks[i] = [0] * n + masks[i]
        out = BatchEncoding()
        if return_tensors is not None:
            out["input_ids"] = _as_tensor(batch, return_tensors)
            if return_attention_mask is not False:
                out["attention_mask"] = _as_tensor(masks, return_tensors)
            if return_length:
                out["length"] = _as_tensor([[len(m) - m.count(0)] for m in masks], return_tensors)[:, 0]
            return out
        out["input_ids"] = batch[0] if single else batch
        if return_attention_mask is not False:
            out["attention_mask"] = masks[0] if single else masks
        if return_length:
            lengths = [sum(m) for m in masks]
            out["length"] = lengths[0] if single else lengths
        return out

    def __repr__(self) -> str:
        return (f"OpenAIGPTTokenizer(vocab_size={self.vocab_size}, len={len(self)}, "
                f"pretokenizer={'spacy' if self.nlp is not None else 'basic'}, "
                f"special_tokens={self.special_tokens_map})")


def _as_text(text: Union[str, bytes]) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "replace")
    if hasattr(text, "numpy"):
        value = text.numpy()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    raise TypeError(f"text must be a str (or UTF-8 bytes) or a list of them, got {type(text).__name__}")


def _to_id_list(ids) -> List[int]:
    if hasattr(ids, "numpy"):
        ids = ids.numpy()
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int):
        return [ids]
    if ids is None or isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"token_ids must be an int or a sequence of ints, got {type(ids).__name__}")
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise TypeError(f"token_ids must hold ints, got {list(ids)[:8]!r}") from None


def _as_tensor(rows: List[List[int]], kind: str):
    if any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("sequences have different lengths; pass padding=True (and a pad token) "
                         "or truncation to get a tensor")
    if kind == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)
    if kind == "tf":
        import tensorflow as tf

        return tf.reshape(tf.constant(rows, dtype=tf.int32), [len(rows), -1])
    raise ValueError(f"return_tensors must be None, 'np' or 'tf', got {kind!r}")


def _load_json(path: str):
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None


def _token_content(value):
    if isinstance(value, dict):
        return value.get("content")
    if isinstance(value, list):
        return [_token_content(v) for v in value]
    return value
