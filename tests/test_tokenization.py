"""OpenAIGPTTokenizer: parity with HF transformers 4.57 (fixture + a step-by-step reference), API, errors."""

import json
import os
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.text_strategies import HARD_TEXT
from tfgpt.tokenizers import normalization
from tfgpt.tokenizers.bpe import bpe_merge, bpe_merge_heap, parse_merges
from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GPT_DIR = SHARED / "data" / "openai-gpt"
FIXTURE = SHARED / "fixtures" / "tokenizer" / "shakespeare.jsonl"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    return OpenAIGPTTokenizer.from_pretrained(GPT_DIR)


@pytest.fixture(scope="module")
def fixture_rows():
    with open(FIXTURE, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# ---------------------------------------------------------------------------------------------------
# A literal, slow transcription of HF's steps, used as the reference for generated text.
# ---------------------------------------------------------------------------------------------------

def _ref_is_control(ch):
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _ref_is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _ref_is_punct(ch):
    cp = ord(ch)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
        unicodedata.category(ch).startswith("P")


def _ref_is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                             (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                             (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)])


def ref_basic_tokenize(text, nfc=False):
    text = "".join(" " if _ref_is_whitespace(c) else c for c in text
                   if not (ord(c) in (0, 0xFFFD) or _ref_is_control(c)))
    text = "".join(f" {c} " if _ref_is_cjk(ord(c)) else c for c in text)
    if nfc:
        text = unicodedata.normalize("NFC", text)
    split = []
    for token in text.strip().split():
        token = token.lower()
        token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
        groups, new = [], True
        for c in token:
            if _ref_is_punct(c):
                groups.append([c])
                new = True
            else:
                if new:
                    groups.append([])
                new = False
                groups[-1].append(c)
        split.extend("".join(g) for g in groups)
    return " ".join(split).strip().split()


def ref_bpe(token, ranks):
    word = tuple(token[:-1]) + (token[-1] + "</w>",)
    pairs = set(zip(word, word[1:]))
    if not pairs:
        return [token + "</w>"]
    while True:
        bigram = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        new, i = [], 0
        while i < len(word):
            try:
                j = word.index(first, i)
            except ValueError:
                new.extend(word[i:])
                break
            new.extend(word[i:j])
            i = j
            if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                new.append(first + second)
                i += 2
            else:
                new.append(word[i])
                i += 1
        word = tuple(new)
        if len(word) == 1:
            break
        pairs = set(zip(word, word[1:]))
    return list(word)


def ref_tokenize(text, tokenizer):
    specials = tokenizer.all_special_tokens
    pattern = "(" + "|".join(re.escape(t) for t in specials) + r")|(.+?)"
    text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
    added = sorted(tokenizer.get_added_vocab(), key=len, reverse=True)
    parts = re.split("(" + "|".join(re.escape(t) for t in added) + ")", text) if added else [text]
    tokens = []
    for i, part in enumerate(parts):
        if i % 2 == 1:
            tokens.append(part)
        elif part:
            for word in ref_basic_tokenize(part):
                tokens.extend(ref_bpe(word, tokenizer.bpe_ranks))
    return tokens


# ---------------------------------------------------------------------------------------------------
# Parity
# ---------------------------------------------------------------------------------------------------

def test_fixture_ids_tokens_and_decoded_match_hf(tok, fixture_rows):
    assert len(fixture_rows) == 1507
    for row in fixture_rows:
        assert tok.encode(row["text"]) == row["ids"], row["text"]
        assert tok.tokenize(row["text"]) == row["tokens"], row["text"]
        assert tok.decode(row["ids"]) == row["decoded"], row["text"]
    batch = tok([r["text"] for r in fixture_rows])
    assert batch["input_ids"] == [r["ids"] for r in fixture_rows]
    assert tok.batch_decode(batch.input_ids) == [r["decoded"] for r in fixture_rows]


def test_reference_ids_from_openai_release(tok):
    assert tok.encode("Hello world!") == [3570, 1276, 267]
    assert tok.encode("The quick brown fox jumps over the lazy dog.") == [481, 2279, 2507, 8573, 11670, 715, 481,
                                                                           8447, 2585, 239]
    assert tok.encode("Supercalifragilistic tokenizers aren't 42% cheaper.") == [
        3599, 5139, 8419, 28452, 571, 2987, 4712, 650, 489, 503, 256, 241, 18905, 297, 24111, 239]
    assert tok.tokenize("effectual")[-2:] == ["effec", "tual</w>"]
    assert len(tok) == tok.vocab_size == 40478
    assert tok.unk_token == "<unk>" and tok.unk_token_id == 0
    assert tok.pad_token is None and tok.pad_token_id is None


TEXT = HARD_TEXT


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(text=TEXT)
def test_generated_text_matches_step_by_step_reference(tok, text):
    assert tok.tokenize(text) == ref_tokenize(text, tok)
    ids = tok.encode(text)
    assert ids == [tok.encoder.get(t, tok.added_tokens_encoder.get(t, 0)) for t in ref_tokenize(text, tok)]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(text=TEXT)
def test_nfc_does_not_change_the_basic_tokenizer(text):
    # HF 4.57 computes an NFC copy but tokenizes the original; NFD afterwards makes both equal.
    lowered = normalization.lower_per_character(text)
    assert ref_basic_tokenize(lowered, nfc=True) == ref_basic_tokenize(lowered) == normalization.basic_tokenize(lowered)


def _random_merges(rng, alphabet, n):
    symbols = list(alphabet) + [c + "</w>" for c in alphabet]
    merges = []
    for _ in range(n):
        a, b = rng.choice(symbols[: len(symbols)]), rng.choice(symbols)
        if a.endswith("</w>"):
            continue
        if (a, b) not in merges:
            merges.append((a, b))
            symbols.append(a + b)
    rng.shuffle(merges)  # non-monotone on purpose
    return {m: i for i, m in enumerate(merges)}


def test_heap_bpe_matches_hf_loop_on_random_merge_lists():
    rng = random.Random(0)
    for trial in range(40):
        alphabet = "abcd"[: rng.randint(1, 4)]
        ranks = _random_merges(rng, alphabet, rng.randint(1, 40))
        for _ in range(25):
            word = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 150)))
            expected = ref_bpe(word, ranks)
            symbols = tuple(word[:-1]) + (word[-1] + "</w>",)
            assert list(bpe_merge_heap(symbols, ranks)) == expected
            assert list(bpe_merge(symbols, ranks)) == expected


class _CountingRanks(dict):
    """Merge ranks that count their look-ups (the work BPE does, independent of the machine's speed)."""

    calls = 0

    def get(self, key, default=None):
        self.calls += 1
        return super().get(key, default)


def test_long_words_are_exact_and_not_quadratic(tok):
    rng = random.Random(1)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1500))
    assert tok.tokenize(word) == ref_bpe(word, tok.bpe_ranks)
    long_word = "".join(rng.choice("etaoinshrdlu") for _ in range(20000))
    ranks = _CountingRanks(tok.bpe_ranks)
    symbols = tuple(long_word[:-1]) + (long_word[-1] + "</w>",)
    pieces = bpe_merge(symbols, ranks)
    # n - 1 initial pairs, then at most two new pairs and one check per merge: linear in the length
    # (HF's loop makes about n^2 / 2 = 2e8 look-ups for this word)
    assert ranks.calls < 4 * len(long_word)
    assert "".join(pieces) == long_word + "</w>"
    ids = tok.encode(long_word)
    assert tok.decode(ids) == long_word


# ---------------------------------------------------------------------------------------------------
# Files, hub, saving
# ---------------------------------------------------------------------------------------------------

def test_save_pretrained_writes_hf_layout_atomically(tok, tmp_path):
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    t.add_special_tokens({"additional_special_tokens": ["_start_", "_delimiter_", "_classify_"]})
    t.pad_token = "<unk>"
    paths = t.save_pretrained(tmp_path / "out")
    names = sorted(os.path.basename(p) for p in paths)
    assert names == ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    assert all(os.path.isfile(p) for p in paths)
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".tmp")]
    merges = (tmp_path / "out" / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert merges[0] == "#version: 0.2" and len(merges[1:-1]) == 40000 and merges[-1] == ""
    assert json.loads((tmp_path / "out" / "vocab.json").read_text(encoding="utf-8")) == tok.encoder
    config = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["added_tokens_decoder"]["40478"]["content"] == "_start_"
    assert config["tokenizer_class"] == "OpenAIGPTTokenizer"
    again = OpenAIGPTTokenizer.from_pretrained(tmp_path / "out")
    assert len(again) == 40481 and again.pad_token_id == 0
    assert again.encode("_start_ hi _classify_") == [40478] + tok.encode("hi") + [40480]
    assert again.additional_special_tokens == ["_start_", "_delimiter_", "_classify_"]
    # saving over an existing folder replaces the files
    t.save_pretrained(tmp_path / "out")
    assert OpenAIGPTTokenizer.from_pretrained(tmp_path / "out").bpe_ranks == tok.bpe_ranks


def _fake_hub_cache(root: Path) -> Path:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / "models--openai-community--openai-gpt"
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (snap / "vocab.json").write_bytes((GPT_DIR / "encoder_bpe_40000.json").read_bytes())
    (snap / "merges.txt").write_bytes((GPT_DIR / "vocab_40000.bpe").read_bytes())
    return root


def test_hub_id_resolves_from_the_cache_offline(tmp_path):
    cache = _fake_hub_cache(tmp_path / "hub")
    t = OpenAIGPTTokenizer.from_pretrained("openai-community/openai-gpt", cache_dir=str(cache),
                                           local_files_only=True)
    assert t.encode("Hello world!") == [3570, 1276, 267]
    env = dict(os.environ, HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    code = ("from tfgpt import OpenAIGPTTokenizer as T; import sys; "
            "print(T.from_pretrained('openai-community/openai-gpt').encode('Hello world!'), "
            "'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[3570, 1276, 267] False"


def test_missing_hub_id_offline_gives_a_clear_error(tmp_path):
    from tfgpt.hub import HubError

    with pytest.raises(HubError, match="not a local folder"):
        OpenAIGPTTokenizer.from_pretrained("someone/not-cached", cache_dir=str(tmp_path), local_files_only=True)


# ---------------------------------------------------------------------------------------------------
# Added and special tokens
# ---------------------------------------------------------------------------------------------------

def test_gpt1_fine_tuning_tokens_get_ids_after_the_vocabulary():
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    assert t.add_special_tokens({"additional_special_tokens": ["_start_", "_delimiter_", "_classify_"]}) == 3
    assert t.convert_tokens_to_ids(["_start_", "_delimiter_", "_classify_"]) == [40478, 40479, 40480]
    assert len(t) == 40481 and t.vocab_size == 40478
    assert t.add_special_tokens({"cls_token": "[CLS]"}) == 1 and t.cls_token_id == 40481
    assert t.add_special_tokens({"cls_token": "[CLS]"}) == 0
    text = "_start_ The story.[CLS] _delimiter_ Ending _classify_"
    assert t.tokenize(text) == ["_start_", "the</w>", "story</w>", ".</w>", "[CLS]", "_delimiter_", "ending</w>",
                                "_classify_"]
    ids = t.encode(text)
    assert ids[0] == 40478 and ids[4] == 40481 and ids[-1] == 40480
    # HF's decode: additional special tokens stand apart, [CLS] is glued, <unk> glues too
    assert t.decode(ids) == "_start_ the story . [CLS] _delimiter_ ending _classify_"
    assert t.decode(ids, skip_special_tokens=True) == "the story . ending"
    assert t.decode([0, 3570, 0]) == "<unk>hello <unk>"
    # lowercasing leaves special tokens alone, but "<UNK>" lowers to "<unk>" first
    assert t.encode("[cls] <UNK>") == t.encode("[cls]") + [0]
    assert t.all_special_tokens == ["<unk>", "[CLS]", "_start_", "_delimiter_", "_classify_"]
    assert set(t.all_special_ids) == {0, 40478, 40479, 40480, 40481}


def test_add_tokens_are_lowercased_and_never_split():
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    assert t.add_tokens(["TfGpt", "tfgpt"]) == 1
    assert t.add_tokens("tfgpt") == 0
    idx = t.convert_tokens_to_ids("tfgpt")
    assert idx == 40478
    assert t.encode("TFGPT rocks, tfgpt!") == [idx] + t.encode("rocks,") + [idx, 267]
    assert t.decode([idx, 3570, idx]) == "tfgpt hello tfgpt"
    assert t.convert_ids_to_tokens([idx, 3570, 99999, -1]) == ["tfgpt", "hello</w>", "<unk>", "<unk>"]


def test_pad_token_can_be_set(tok):
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    t.pad_token = t.unk_token
    assert t.pad_token_id == 0
    t.add_special_tokens({"pad_token": "<pad>"})
    assert t.pad_token_id == 40478 and len(t) == 40479
    t.pad_token_id = 0
    assert t.pad_token == "<unk>"


# ---------------------------------------------------------------------------------------------------
# __call__
# ---------------------------------------------------------------------------------------------------

def test_call_padding_truncation_and_tensors():
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    texts = ["Hello world!", "The quick brown fox jumps over the lazy dog."]
    plain = t(texts)
    assert plain.input_ids == [t.encode(x) for x in texts]
    assert plain["attention_mask"] == [[1] * 3, [1] * 10]
    single = t("Hello world!")
    assert single.input_ids == [3570, 1276, 267] and single.attention_mask == [1, 1, 1]
    with pytest.raises(ValueError, match="does not have a padding token"):
        t(texts, padding=True)
    with pytest.raises(ValueError, match="padding=True"):
        t(texts, return_tensors="np")
    t.add_special_tokens({"pad_token": "<pad>"})
    pad = t.pad_token_id
    right = t(texts, padding=True, return_tensors="np")
    assert right["input_ids"].dtype == np.int64 and right["input_ids"].shape == (2, 10)
    assert right["input_ids"][0].tolist() == [3570, 1276, 267] + [pad] * 7
    assert right["attention_mask"][0].tolist() == [1, 1, 1] + [0] * 7
    left = t(texts, padding="longest", padding_side="left", return_tensors="tf")
    assert left["input_ids"].dtype.name == "int32"
    assert left["input_ids"].numpy()[0].tolist() == [pad] * 7 + [3570, 1276, 267]
    assert left.attention_mask.numpy()[0].tolist() == [0] * 7 + [1, 1, 1]
    t.padding_side = "left"
    assert t(texts, padding=True)["input_ids"][0][:7] == [pad] * 7
    t.padding_side = "right"
    fixed = t(texts, padding="max_length", truncation=True, max_length=5)
    assert fixed.input_ids == [[3570, 1276, 267, pad, pad], t.encode(texts[1])[:5]]
    assert fixed.attention_mask == [[1, 1, 1, 0, 0], [1] * 5]
    assert t(texts, max_length=4).input_ids[1] == t.encode(texts[1])[:4]  # truncation implied, as HF
    assert "attention_mask" not in t(texts, return_attention_mask=False)
    assert t(texts, padding=True, pad_to_multiple_of=8).input_ids[0][-1] == pad
    assert len(t(texts, padding=True, pad_to_multiple_of=8).input_ids[0]) == 16
    pair = t("Hello", text_pair="world!")
    assert pair.input_ids == t.encode("Hello") + t.encode("world!")
    assert t.encode("The quick brown fox", truncation=True, max_length=2) == [481, 2279]


# ---------------------------------------------------------------------------------------------------
# Errors and replacement policies
# ---------------------------------------------------------------------------------------------------

def _write_vocab(tmp_path, vocab, merges_text):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text(merges_text, encoding="utf-8")
    return tmp_path


def test_missing_and_malformed_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        OpenAIGPTTokenizer.from_pretrained(tmp_path)
    good = {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "b</w>": 4, "ab</w>": 5}
    d = _write_vocab(tmp_path / "ok", good, "#version: 0.2\na b</w>\n")
    assert OpenAIGPTTokenizer.from_pretrained(d).tokenize("ab") == ["ab</w>"]
    (tmp_path / "bad_json").mkdir()
    (tmp_path / "bad_json" / "vocab.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "bad_json" / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        OpenAIGPTTokenizer.from_pretrained(tmp_path / "bad_json")
    with pytest.raises(ValueError, match="JSON object"):
        OpenAIGPTTokenizer.from_pretrained(_write_vocab(tmp_path / "list", [], "#version: 0.2\n"))
    with pytest.raises(ValueError, match="ids must be integers"):
        OpenAIGPTTokenizer.from_pretrained(_write_vocab(tmp_path / "str_id", {"a": "1"}, "#version: 0.2\n"))
    with pytest.raises(ValueError, match="id 1 is given to both"):
        OpenAIGPTTokenizer.from_pretrained(_write_vocab(tmp_path / "dup", {"a": 1, "b": 1}, "#version: 0.2\n"))
    with pytest.raises(ValueError, match="line 2: expected two symbols"):
        OpenAIGPTTokenizer.from_pretrained(_write_vocab(tmp_path / "three", good, "#version: 0.2\na b c\n"))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        OpenAIGPTTokenizer.from_pretrained(_write_vocab(tmp_path / "unknown", good, "#version: 0.2\nx y\n"))
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "vocab.json").write_bytes(b'{"caf\xe9": 0}')
    (tmp_path / "latin1" / "merges.txt").write_bytes(b"#version: 0.2\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        OpenAIGPTTokenizer.from_pretrained(tmp_path / "latin1")
    with pytest.raises(NotADirectoryError):
        OpenAIGPTTokenizer.from_pretrained(tmp_path / "ok" / "vocab.json")


def test_merges_parsing_policy():
    assert parse_merges("#version: 0.2\na b\n\nc d\r\n") == [("a", "b"), ("c", "d")]
    assert parse_merges("a b\nc d") == [("a", "b"), ("c", "d")]  # no header, no final newline
    vocab = {"<unk>": 0, "a": 1, "b": 2, "ab": 3}
    t = OpenAIGPTTokenizer(vocab=vocab, merges=[("a", "b"), ("a", "b")], pretokenizer="basic")
    assert t.bpe_ranks == {("a", "b"): 1}  # a repeated merge keeps its last rank, as HF


def test_decode_and_input_replacement_policies(tok):
    # ids outside the vocabulary read as the unknown token (HF's behaviour)
    assert tok.decode([3570, 10 ** 6, -3, 1276]) == "hello <unk><unk>world"
    assert tok.decode([3570, 10 ** 6, 1276], skip_special_tokens=True) == "hello world"
    assert tok.decode(np.array([3570, 1276])) == "hello world"
    assert tok.decode(3570) == "hello"
    # invalid UTF-8 bytes become U+FFFD, which the pre-tokenizer drops
    assert tok.encode(b"caf\xe9 ok") == tok.encode("caf ok") == tok.encode("caf\ufffd ok")
    assert tok.encode("a\ud800b") == tok.encode("ab")  # lone surrogates are dropped like controls
    with pytest.raises(ValueError, match="Input 42 is not valid"):  # HF's error
        tok.encode(42)
    assert tok.decode(tok.encode("Don't stop."), clean_up_tokenization_spaces=True) == "don't stop."


def test_unknown_token_policies():
    vocab = {"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4}
    t = OpenAIGPTTokenizer(vocab=vocab, merges=[("a", "b</w>")], pretokenizer="basic")
    assert t.unk_token_id == 5 and len(t) == 6  # the missing "<unk>" is added after the vocabulary, as HF
    assert t.encode("ab a c") == [4, 2, 5]
    none = OpenAIGPTTokenizer(vocab=vocab, merges=[("a", "b</w>")], unk_token=None, pretokenizer="basic")
    assert none.encode("ab a") == [4, 2]
    with pytest.raises(ValueError, match="no unknown token"):
        none.encode("abc")
    assert none.decode([4, 99]) == "ab"


def test_spacy_ftfy_path_is_used_when_importable(monkeypatch):
    class Token:
        def __init__(self, text):
            self.text = text

    seen = {}

    def fake_nlp(text):
        seen["nlp"] = text
        return [Token(t) for t in re.findall(r"\n |\w+|[^\w\s]", text)]

    def fake_fix(text):
        seen["fix"] = text
        return text

    monkeypatch.setattr(normalization, "load_spacy_ftfy", lambda: (fake_nlp, fake_fix))
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    assert t.nlp is fake_nlp
    assert t.tokenize("Hello—world\nOK") == ["hello</w>", "-</w>", "world</w>", "\n</w>", "ok</w>"]
    assert seen["fix"] == "hello—world\nok"          # HF lowercases per character first
    assert seen["nlp"] == "hello - world \n ok"      # then text_standardize
    assert t.encode("a\nb")[1] == 40477              # "\n  </w>" becomes "\n</w>"
    basic = OpenAIGPTTokenizer.from_pretrained(GPT_DIR, pretokenizer="basic")
    assert basic.nlp is None and basic.encode("Hello—world") == [3570, 0, 1276]
    monkeypatch.setattr(normalization, "load_spacy_ftfy", lambda: None)
    with pytest.raises(ImportError):
        OpenAIGPTTokenizer.from_pretrained(GPT_DIR, pretokenizer="spacy")
    with pytest.raises(ValueError):
        OpenAIGPTTokenizer.from_pretrained(GPT_DIR, pretokenizer="icu")


def test_text_standardize_matches_openai_rules():
    assert normalization.text_standardize("a—b–c―d… e´s (x)!!  \n\n y") == "a - b - c - d... e's ( x ) !! \n y"
