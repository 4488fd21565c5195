"""Learn a GPT-1-style BPE vocabulary (vocab.json + merges.txt) from text files.

The corpus goes through the tokenizer's own pre-tokenization (per-character lowercase, BERT's
BasicTokenizer), each word becomes its characters with ``</w>`` on the last one, and the most
frequent adjacent pair is merged, again and again (Sennrich et al.'s algorithm, as OpenAI used for
GPT-1). Everything is deterministic: ties between equally frequent pairs go to the smallest pair
(compared as ``(left, right)`` strings), and vocabulary ids follow a fixed order:

* id 0: the unknown token (``"<unk>"``),
* then every character of the alphabet, plain and with ``</w>``, by decreasing frequency,
* then each merge result in merge order (a result already in the vocabulary keeps its id),
* then the requested special tokens.

Both :class:`tfgpt.OpenAIGPTTokenizer` and :class:`tfgpt.TFOpenAIGPTTokenizer` load the result.

    tok = train_bpe(["corpus.txt"], num_merges=8000, output_dir="my-vocab")
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import time
from collections import Counter
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from tfgpt.tokenizers.bpe import END_OF_WORD, merge_pair, word_symbols
from tfgpt.tokenizers.normalization import pretokenize
from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


def _iter_lines(files: Union[PathLike, Sequence[PathLike]], encoding: str = "utf-8") -> Iterable[str]:
    """Lines of the files; bytes that are not valid UTF-8 become U+FFFD (which pre-tokenization drops)."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    for path in files:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"training file not found: {path!r}")
        with open(path, "r", encoding=encoding, errors="replace", newline="") as f:
            yield from f


def count_words(texts: Iterable[str], special_tokens: Sequence[str] = ()) -> Counter:
    """Word frequencies after the tokenizer's pre-tokenization (special tokens in the text are skipped)."""
    counts: Counter = Counter()
    specials = sorted({t for t in special_tokens if t}, key=len, reverse=True)
    split = re.compile("|".join(re.escape(t) for t in specials)) if specials else None
    for text in texts:
        pieces = split.split(text) if split is not None else [text]
        for piece in pieces:
            counts.update(pretokenize(piece))
    return counts


def learn_merges(word_counts: Mapping[str, int], num_merges: int, min_frequency: int = 2,
                 progress: bool = False) -> List[Tuple[str, str]]:
    """Merges, most frequent pair first, until ``num_merges`` or no pair occurs ``min_frequency`` times."""
    words: List[Tuple[str, ...]] = []
    freqs: List[int] = []
    for w, c in sorted(word_counts.items()):
        if not w or c <= 0:
            continue
        words.append(word_symbols(w))
        freqs.append(int(c))
    pair_counts: Dict[Tuple[str, str], int] = {}
    where: Dict[Tuple[str, str], set] = {}
    for idx, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] = pair_counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(idx)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)
    merges: List[Tuple[str, str]] = []
    start = time.time()
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg:
            continue  # stale entry; the current count was pushed separately
        if count < max(1, min_frequency):
            break
        merges.append(pair)
        first, second = pair
        changed: Dict[Tuple[str, str], int] = {}
        for idx in sorted(where.pop(pair, ())):
            word, freq = words[idx], freqs[idx]
            new = tuple(merge_pair(word, first, second))
            if new == word:
                continue
            for p in zip(word, word[1:]):
                pair_counts[p] -= freq
                changed[p] = pair_counts[p]
            for p in zip(new, new[1:]):
                pair_counts[p] = pair_counts.get(p, 0) + freq
                changed[p] = pair_counts[p]
                where.setdefault(p, set()).add(idx)
            words[idx] = new
        pair_counts.pop(pair, None)
        changed.pop(pair, None)
        for p, c in changed.items():
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_counts.pop(p, None)
        if progress and len(merges) % 1000 == 0:
            logger.info("%d merges (%.1fs)", len(merges), time.time() - start)
    return merges


def build_vocab(word_counts: Mapping[str, int], merges: Sequence[Tuple[str, str]], unk_token: str = "<unk>",
                special_tokens: Sequence[str] = (), limit_alphabet: Optional[int] = None) -> Dict[str, int]:
    """Token -> id: unk, the alphabet (plain and ``</w>`` forms), merge results, special tokens."""
    char_counts: Counter = Counter()
    for w, c in word_counts.items():
        for ch in w:
            char_counts[ch] += c
    alphabet = sorted(char_counts, key=lambda ch: (-char_counts[ch], ch))
    needed = {ch for a, b in merges for part in (a, b) for ch in part.replace(END_OF_WORD, "")}
    if limit_alphabet is not None:
        alphabet = alphabet[:limit_alphabet]
        alphabet += sorted(needed - set(alphabet))
    vocab: Dict[str, int] = {}
    for token in [unk_token] + alphabet + [ch + END_OF_WORD for ch in alphabet]:
        vocab.setdefault(token, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for token in special_tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


def train_bpe(
    files: Union[PathLike, Sequence[PathLike], None] = None,
    num_merges: int = 8000,
    min_frequency: int = 2,
    *,
    texts: Optional[Iterable[str]] = None,
    output_dir: Optional[PathLike] = None,
    unk_token: str = "<unk>",
    special_tokens: Sequence[str] = (),
    limit_alphabet: Optional[int] = None,
    progress: bool = False,
    encoding: str = "utf-8",
) -> OpenAIGPTTokenizer:
    """Learn ``num_merges`` merges from text files (or ``texts``) and return the tokenizer.

    Args:
        files: one path or a list of paths (read as UTF-8; undecodable bytes are replaced).
        num_merges: how many merges to learn (fewer when pairs run out below ``min_frequency``).
        min_frequency: stop when the most frequent pair occurs fewer times than this.
        texts: an iterable of strings to learn from, instead of (or besides) files.
        output_dir: when given, ``vocab.json``, ``merges.txt`` and the tokenizer config are written there.
        unk_token: the unknown token, id 0.
        special_tokens: extra tokens given ids after the merges (e.g. ``["_start_", "_delimiter_",
            "_classify_"]``); they become additional special tokens of the tokenizer.
        limit_alphabet: keep only the most frequent characters (others become ``unk_token``).
    """
    if files is None and texts is None:
        raise ValueError("pass files (paths) or texts (an iterable of strings)")
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0, got {num_merges}")
    start = time.time()
    streams: List[Iterable[str]] = []
    if files is not None:
        streams.append(_iter_lines(files, encoding))
    if texts is not None:
        streams.append([texts] if isinstance(texts, str) else texts)
    skip = [unk_token, *special_tokens]
    counts: Counter = Counter()
    for stream in streams:
        counts.update(count_words(stream, skip))
    if not counts:
        raise ValueError("the training text holds no words")
    merges = learn_merges(counts, num_merges, min_frequency, progress=progress)
    vocab = build_vocab(counts, merges, unk_token, special_tokens, limit_alphabet)
    if progress:
        logger.info("learned %d merges, %d tokens in %.1fs", len(merges), len(vocab), time.time() - start)
    tok = OpenAIGPTTokenizer(vocab=vocab, merges=merges, unk_token=unk_token, pretokenizer="basic")
    if special_tokens:
        tok.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    if output_dir is not None:
        tok.save_pretrained(output_dir)
    return tok


def train_bpe_to_dir(files: Union[PathLike, Sequence[PathLike]], output_dir: PathLike, num_merges: int = 8000,
                     min_frequency: int = 2, **kwargs) -> List[str]:
    """Learn a vocabulary and write it to ``output_dir``; returns the written file paths."""
    tok = train_bpe(files, num_merges, min_frequency, **kwargs)
    return tok.save_pretrained(output_dir)
