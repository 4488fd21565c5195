"""BPE merges and the vocabulary files, shared by the Python tokenizer, the in-graph tokenizer and the learner.

A word is its characters with ``</w>`` joined to the last one (:func:`word_symbols`); BPE merges the
lowest-ranked adjacent pair everywhere, left to right, until no ranked pair is left (:func:`bpe_merge`,
HF's loop; :func:`bpe_merge_heap` gives the same result in O(n log n) for long words).

File policies (where HF has no error or an unhelpful one): vocabulary files that are missing, not
UTF-8, not valid JSON, or map tokens to non-integer or duplicate ids, merges lines that do not hold
exactly two symbols, and merges whose symbols or result are not in the vocabulary raise
``FileNotFoundError`` / ``ValueError`` naming the file and line. In merges.txt a first line starting
with ``#`` is a header and skipped, empty lines are ignored, and a duplicated merge keeps its last rank
(as HF does). ``tokenizer.json`` (the file the hub ships for HF's fast tokenizer) is read for its
``model.vocab`` and ``model.merges``.
"""

from __future__ import annotations

import heapq
import os
import re
from typing import Dict, List, Mapping, Sequence, Tuple

from tfgpt.io import read_json

END_OF_WORD = "</w>"
VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
OPENAI_VOCAB_FILES = ("encoder_bpe_40000.json", "vocab_40000.bpe")
TOKENIZER_JSON = "tokenizer.json"
MERGES_HEADER = "#version: 0.2"
LONG_WORD = 64  # words longer than this use the heap-based merge

Merge = Tuple[str, str]


def word_symbols(word: str) -> Tuple[str, ...]:
    """The starting symbols of a non-empty word: its characters, ``</w>`` joined to the last."""
    return tuple(word[:-1]) + (word[-1] + END_OF_WORD,)


def merges_in_rank_order(ranks: Mapping[Merge, int]) -> List[Merge]:
    """The merges of a ``(left, right) -> rank`` map, lowest rank first."""
    return [pair for pair, _ in sorted(ranks.items(), key=lambda kv: kv[1])]


def merges_text(merges: Sequence[Merge]) -> str:
    """merges.txt as HF writes it: the version header, one ``left right`` pair per line."""
    return "\n".join([MERGES_HEADER] + [f"{a} {b}" for a, b in merges]) + "\n"


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
    if n > LONG_WORD:
        return bpe_merge_heap(word, ranks)
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


def bpe_merge_heap(word: Sequence[str], ranks: Dict[Tuple[str, str], int]) -> Tuple[str, ...]:
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

def read_text(path: str) -> str:
    """A UTF-8 text file; a missing or undecodable file raises an error naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"vocabulary file not found: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"vocabulary file {path!r} is a folder") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid UTF-8 (byte {e.start}: {data[e.start:e.start + 4]!r})") from None


def check_vocab(vocab, source: str = "vocabulary") -> Dict[str, int]:
    """A token -> id map checked: a non-empty mapping of string keys to unique integer ids >= 0."""
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{source} must hold a non-empty JSON object mapping tokens to ids")
    seen: Dict[int, str] = {}
    for token, idx in vocab.items():
        if not isinstance(token, str):
            raise TypeError(f"{source}: token {token!r} is a {type(token).__name__}, not a string")
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{source}: token {token!r} has id {idx!r}; ids must be integers >= 0")
        if idx in seen:
            raise ValueError(f"{source}: id {idx} is given to both {seen[idx]!r} and {token!r}")
        seen[idx] = token
    return vocab


def load_vocab(path: str) -> Dict[str, int]:
    """Read and check a JSON token -> id map (vocab.json or OpenAI's encoder_bpe_40000.json)."""
    return check_vocab(read_json(path, "vocabulary file"), path)


def parse_merges(text: str, source: str = "merges") -> List[Merge]:
    """Parse merges text: optional ``#`` header line, then one ``left right`` pair per line."""
    merges = []
    for lineno, line in enumerate(text.split("\n"), start=1):
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


def load_merges(path: str) -> List[Merge]:
    """Read merges.txt (or OpenAI's vocab_40000.bpe)."""
    return parse_merges(read_text(path), path)


def check_merges(merges: Sequence[Merge], vocab: Mapping[str, int], source: str = "merges") -> None:
    """Every merge's two symbols and its result must be vocabulary tokens."""
    bad = [(i, a, b) for i, (a, b) in enumerate(merges) if a not in vocab or b not in vocab or a + b not in vocab]
    if bad:
        shown = ", ".join(f"rank {i}: {a!r} + {b!r}" for i, a, b in bad[:5])
        raise ValueError(
            f"{source}: {len(bad)} merge(s) use symbols or produce tokens that are not in the vocabulary "
            f"({shown}{', ...' if len(bad) > 5 else ''})"
        )


def load_tokenizer_json(path: str) -> Tuple[Dict[str, int], List[Merge], Dict[int, dict]]:
    """(vocabulary, merges, added tokens) from a fast-tokenizer ``tokenizer.json``.

    The vocabulary and merges are its ``model.vocab`` and ``model.merges`` (``"left right"`` strings in
    tokenizers < 0.20, ``[left, right]`` pairs later); added tokens are ``{id: {"content": ..., ...}}``
    from its ``added_tokens``.
    """
    data = read_json(path, TOKENIZER_JSON)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise ValueError(f"{path}: expected a JSON object with a 'model' object (a tokenizers file)")
    if model.get("type", "BPE") != "BPE":
        raise ValueError(f"{path}: model type is {model.get('type')!r}; GPT-1 needs a BPE model")
    suffix = model.get("end_of_word_suffix")
    if suffix != END_OF_WORD or model.get("continuing_subword_prefix"):
        raise ValueError(f"{path}: model.end_of_word_suffix is {suffix!r} (continuing_subword_prefix "
                         f"{model.get('continuing_subword_prefix')!r}); GPT-1's BPE marks word ends with "
                         f"{END_OF_WORD!r} and has no prefix")
    vocab = check_vocab(model.get("vocab"), f"{path}: model.vocab")
    raw = model.get("merges")
    if not isinstance(raw, list):
        raise ValueError(f"{path}: model.merges must be a list, got {type(raw).__name__}")
    merges: List[Merge] = []
    for i, m in enumerate(raw):
        pair = m.split() if isinstance(m, str) else m
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(s, str) and s for s in pair)):
            raise ValueError(f"{path}: model.merges[{i}] must be 'left right' or [left, right], got {m!r}")
        merges.append((pair[0], pair[1]))
    added_list = data.get("added_tokens") or []
    if not isinstance(added_list, list):
        raise ValueError(f"{path}: added_tokens must be a list, got {type(added_list).__name__}")
    added: Dict[int, dict] = {}
    for i, token in enumerate(added_list):
        idx = token.get("id") if isinstance(token, dict) else None
        if isinstance(idx, bool) or not isinstance(idx, int) or idx < 0:
            raise ValueError(f"{path}: added_tokens[{i}] needs an integer id >= 0, got {token!r:.80}")
        added[idx] = {k: v for k, v in token.items() if k != "id"}
    return vocab, merges, added


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
        raise FileNotFoundError(f"{directory!r} has no {' and no '.join(missing)} (nor a tokenizer.json); "
                                f"found: {sorted(names)}")
    return os.path.join(directory, vocab), os.path.join(directory, merges)
