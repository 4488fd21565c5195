"""Learning a GPT-1-style BPE vocabulary: speed, determinism, file layout, both tokenizers load it."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfgpt.tokenizers.trainer import build_vocab, count_words, learn_merges, train_bpe, train_bpe_to_dir
from tfgpt.tokenizers.normalization import pretokenize
from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "data" / "corpus" / "tinyshakespeare.txt"


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    out = tmp_path_factory.mktemp("vocab")
    tok = train_bpe(CORPUS, num_merges=8000, output_dir=out)
    return tok, out


@pytest.mark.slow
def test_8000_merges_on_tinyshakespeare(learned):
    tok, out = learned  # the learning time is measured by benchmarks/bench_tokenizer.py
    assert len(tok.bpe_ranks) == 8000
    assert tok.encoder["<unk>"] == 0 and tok.unk_token_id == 0
    assert sorted(p.name for p in out.iterdir()) == ["merges.txt", "special_tokens_map.json",
                                                     "tokenizer_config.json", "vocab.json"]
    lines = (out / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "#version: 0.2" and len(lines) == 8002 and lines[-1] == ""
    vocab = json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    assert sorted(vocab.values()) == list(range(len(vocab)))
    # GPT-1 style: </w> marks word ends, frequent words become single tokens
    assert tok.tokenize("First Citizen: the king!") == ["first</w>", "citizen</w>", ":</w>", "the</w>", "king</w>",
                                                         "!</w>"]


def test_learning_is_deterministic(learned, tmp_path):
    tok, out = learned
    lines = CORPUS.read_text(encoding="utf-8").splitlines(keepends=True)
    again = train_bpe(texts=lines, num_merges=8000)
    assert again.bpe_ranks == tok.bpe_ranks and again.encoder == tok.encoder
    paths = train_bpe_to_dir(CORPUS, tmp_path / "again", num_merges=8000)
    for path in paths:
        assert Path(path).read_bytes() == (out / Path(path).name).read_bytes()


def test_both_tokenizers_load_the_result(learned):
    from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer
    import tensorflow as tf

    tok, out = learned
    loaded = OpenAIGPTTokenizer.from_pretrained(out)
    assert loaded.encoder == tok.encoder and loaded.bpe_ranks == tok.bpe_ranks
    layer = TFOpenAIGPTTokenizer.from_pretrained(out)
    texts = CORPUS.read_text(encoding="utf-8").split("\n")[:400] + ["Unseen wörds: zyzzyva, 12345, 中文!", ""]
    assert layer(tf.constant(texts)).to_list() == [loaded.encode(t) for t in texts]
    ids = layer(tf.constant(texts[:50]))
    assert [t.decode() for t in layer.detokenize(ids).numpy()] == [loaded.decode(i) for i in ids.to_list()]


def _naive_merges(counts, num_merges, min_frequency):
    """Recount every pair after every merge (slow, obviously right)."""
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): c for w, c in counts.items()}
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for word, c in words.items():
            for p in zip(word, word[1:]):
                pairs[p] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < max(1, min_frequency):
            break
        merges.append(best)
        new = {}
        for word, c in words.items():
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.dictionaries(st.text(alphabet="abcab", min_size=1, max_size=12), st.integers(1, 6), max_size=25),
       st.integers(0, 40), st.integers(1, 3))
def test_incremental_counts_match_naive_recount(counts, num_merges, min_frequency):
    assert learn_merges(counts, num_merges, min_frequency) == _naive_merges(counts, num_merges, min_frequency)


def test_small_corpus_by_hand():
    counts = count_words(["low low low lower", "newest newest widest"])
    assert counts == Counter({"low": 3, "lower": 1, "newest": 2, "widest": 1})
    merges = learn_merges(counts, 4, min_frequency=2)
    # ("l", "o") occurs 4 times; then four pairs occur 3 times and the smallest wins each time
    assert merges == [("l", "o"), ("e", "s"), ("es", "t</w>"), ("lo", "w</w>")]
    vocab = build_vocab(counts, merges)
    # unk, the alphabet by frequency (plain, then with </w>), then the merge results in merge order
    assert vocab == {"<unk>": 0, "w": 1, "e": 2, "l": 3, "o": 4, "s": 5, "t": 6, "n": 7, "d": 8, "i": 9, "r": 10,
                     "w</w>": 11, "e</w>": 12, "l</w>": 13, "o</w>": 14, "s</w>": 15, "t</w>": 16, "n</w>": 17,
                     "d</w>": 18, "i</w>": 19, "r</w>": 20, "lo": 21, "es": 22, "est</w>": 23, "low</w>": 24}
    tok = train_bpe(texts=["low low low lower", "newest newest widest"], num_merges=4)
    assert tok.tokenize("low lowest") == ["low</w>", "lo", "w", "est</w>"]
    assert train_bpe(texts=["aaa"], num_merges=5, min_frequency=2).bpe_ranks == {}  # every pair occurs once


def test_special_tokens_limits_and_errors(tmp_path):
    tok = train_bpe(texts=["hello world, hello <unk> _start_ there"], num_merges=10, min_frequency=1,
                    special_tokens=["_start_", "_delimiter_", "_classify_"])
    ids = tok.convert_tokens_to_ids(["_start_", "_delimiter_", "_classify_"])
    assert ids == [tok.vocab_size - 3, tok.vocab_size - 2, tok.vocab_size - 1]
    assert tok.encode("_start_ hello")[0] == ids[0]
    assert tok.additional_special_tokens == ["_start_", "_delimiter_", "_classify_"]
    assert "<" not in tok.encoder  # the special tokens in the text were not learned from
    small = train_bpe(texts=["abcabc abd xyz"], num_merges=2, limit_alphabet=3, min_frequency=1)
    assert small.bpe_ranks == {("a", "b"): 0, ("ab", "c"): 1}
    assert "x" not in small.encoder and small.encode("xyz") == [0, 0, 0]
    assert small.tokenize("abca") == ["abc", "a</w>"]
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9 caf\xe9 ok\n")
    latin1 = train_bpe(bad, num_merges=3, min_frequency=1)  # undecodable bytes become U+FFFD, then dropped
    assert latin1.bpe_ranks == {("a", "f</w>"): 0, ("c", "af</w>"): 1, ("o", "k</w>"): 2}
    assert latin1.tokenize("caf ok") == ["caf</w>", "ok</w>"]
    with pytest.raises(FileNotFoundError):
        train_bpe(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="no words"):
        train_bpe(texts=["  \n\t"])
    with pytest.raises(ValueError, match="pass files"):
        train_bpe()


def test_random_corpora_round_trip(tmp_path):
    rng = random.Random(0)
    texts = [" ".join("".join(rng.choice("abcdeé.,!") for _ in range(rng.randint(1, 9))) for _ in range(20))
             for _ in range(50)]
    tok = train_bpe(texts=texts, num_merges=60, min_frequency=2, output_dir=tmp_path / "v")
    for text in texts:
        assert tok.decode(tok.encode(text)) == " ".join(pretokenize(text))
    assert OpenAIGPTTokenizer.from_pretrained(tmp_path / "v").encode(texts[0]) == tok.encode(texts[0])


def test_learn_bpe_command(tmp_path):
    from tfgpt.cli import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat. the cat ate.\n" * 20, encoding="utf-8")
    assert main(["learn-bpe", str(corpus), "--out", str(tmp_path / "v"), "--merges", "5"]) == 0
    tok = OpenAIGPTTokenizer.from_pretrained(tmp_path / "v")
    assert len(tok.bpe_ranks) == 5
    assert tok.decode(tok.encode("the cat sat")) == "the cat sat"
