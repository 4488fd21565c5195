"""TFOpenAIGPTTokenizer: identical to the Python tokenizer, graph-only (tf.data, tf.function, SavedModel)."""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.text_strategies import HARD_TEXT
from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer
from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
GPT_DIR = SHARED / "data" / "openai-gpt"
FIXTURE = SHARED / "fixtures" / "tokenizer" / "shakespeare.jsonl"
CORPUS = SHARED / "data" / "corpus" / "tinyshakespeare.txt"


@pytest.fixture(scope="module")
def tok():
    return OpenAIGPTTokenizer.from_pretrained(GPT_DIR)


@pytest.fixture(scope="module")
def layer():
    return TFOpenAIGPTTokenizer.from_pretrained(GPT_DIR)


@pytest.fixture(scope="module")
def tok_added():
    t = OpenAIGPTTokenizer.from_pretrained(GPT_DIR)
    t.add_special_tokens({"cls_token": "[CLS]", "pad_token": "<pad>",
                          "additional_special_tokens": ["_start_", "_delimiter_", "_classify_"]})
    t.add_tokens(["NewWord", "hello"])
    return t


@pytest.fixture(scope="module")
def layer_added(tok_added):
    return TFOpenAIGPTTokenizer.from_tokenizer(tok_added)


def _encode_all(layer, texts):
    return layer(tf.constant([t.encode("utf-8", "surrogatepass") for t in texts])).to_list()


def _ragged(rows, dtype=np.int32):
    flat = np.fromiter((i for r in rows for i in r), dtype, sum(len(r) for r in rows))
    return tf.RaggedTensor.from_row_lengths(flat, np.asarray([len(r) for r in rows], np.int64))


def test_fixture_ids_and_detokenize(layer):
    rows = [json.loads(line) for line in open(FIXTURE, encoding="utf-8")]
    ids = layer(tf.constant([r["text"] for r in rows]))
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    assert ids.to_list() == [r["ids"] for r in rows]
    decoded = layer.detokenize(ids).numpy().tolist()
    assert [d.decode("utf-8") for d in decoded] == [r["decoded"] for r in rows]


TEXT = st.one_of(
    HARD_TEXT,
    st.text(alphabet=" \t\n\r\u00a0\u2000\u3000", max_size=10),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=50, max_size=400),
    st.lists(st.sampled_from(["the", "King", "Richard's", "o'er", "well-beloved", "!", "...", " ", "\n",
                              "--", "ROMEO:", "naïve", "coöperate", "Ünïcödé"]), max_size=20).map("".join),
    st.just(""),
)


# 125 batches of at least 80 strings: at least 10,000 generated strings.
@settings(max_examples=125, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(TEXT, min_size=80, max_size=100))
def test_generated_text_matches_python(layer, tok, batch):
    ids = _encode_all(layer, batch)
    assert ids == [tok.encode(t) for t in batch]
    decoded = layer.detokenize(_ragged(ids)).numpy()
    assert [d.decode("utf-8") for d in decoded] == [tok.decode(i) for i in ids]


PIECES = ["[CLS]", "[cls]", "<pad>", "<PAD>", "<unk>", "<UNK>", "_start_", "_START_", "_delimiter_", "_classify_",
          "NewWord", "newword", "NEWWORD", "hello", "Hello", "İ", "Σ", "x", "\x00", " ", "\n", "a", ".", "é", "中",
          "[", "CLS]", "_", "ÅΣ", "<", "unk>"]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), min_size=30, max_size=50))
def test_added_and_special_tokens_match_python(layer_added, tok_added, batch):
    ids = _encode_all(layer_added, batch)
    assert ids == [tok_added.encode(t) for t in batch]
    rag = _ragged(ids)
    for skip in (False, True):
        got = [d.decode() for d in layer_added.detokenize(rag, skip_special_tokens=skip).numpy()]
        assert got == [tok_added.decode(i, skip_special_tokens=skip) for i in ids]


def test_detokenize_any_ids(layer_added, tok_added):
    rng = random.Random(0)
    n = len(tok_added)
    rows = [[rng.choice([rng.randrange(n), rng.randrange(40470, n + 3), -rng.randrange(1, 5), 0, 240, 239])
             for _ in range(rng.randrange(0, 12))] for _ in range(300)]
    rag = _ragged(rows, np.int64)
    for skip in (False, True):
        for clean in (False, True):
            got = layer_added.detokenize(rag, skip_special_tokens=skip, clean_up_tokenization_spaces=clean).numpy()
            want = [tok_added.decode(r, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) for r in rows]
            assert [g.decode() for g in got] == want
    dense = tf.constant([[3570, 1276, 267], [481, 2279, 239]])
    assert layer_added.detokenize(dense).numpy().tolist() == [b"hello world !", b"the quick ."]
    one = layer_added.detokenize(tf.constant([3570, 1276]))
    assert one.shape == () and one.numpy() == b"hello world"


def test_shapes_and_inputs(layer, tok):
    scalar = layer(tf.constant("Hello world!"))
    assert isinstance(scalar, tf.Tensor) and scalar.dtype == tf.int32 and scalar.numpy().tolist() == [3570, 1276, 267]
    assert layer(["Hello world!", ""]).to_list() == [[3570, 1276, 267], []]
    assert layer(tf.constant([], tf.string)).to_list() == []
    matrix = layer(tf.constant([["Hello", "world!"], ["a", "b"]]))
    assert matrix.to_list() == [[[3570], [1276, 267]], [tok.encode("a"), tok.encode("b")]]
    raw = [b"caf\xe9 ok", b"\xff\xfe", b"a\xed\xa0\x80b"]  # invalid UTF-8 -> U+FFFD -> dropped
    assert layer(tf.constant(raw)).to_list() == [tok.encode(r) for r in raw]


def test_tf_data_batched_and_unbatched(layer, tok):
    lines = [line for line in CORPUS.read_text(encoding="utf-8").split("\n")[:300]]
    want = [tok.encode(x) for x in lines]
    batched = tf.data.Dataset.from_tensor_slices(lines).batch(64).map(layer, num_parallel_calls=2)
    got = [row for batch in batched for row in batch.to_list()]
    assert got == want
    unbatched = tf.data.Dataset.from_tensor_slices(lines[:40]).map(layer)
    assert [x.numpy().tolist() for x in unbatched] == want[:40]
    # tf.function around tokenize and detokenize: see the SavedModel test


def test_saved_model_loads_without_tfgpt(layer_added, tok_added, tmp_path):
    class Export(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def tokenize(self, texts):
            ids = self.tokenizer(texts)
            return {"values": ids.flat_values, "row_splits": ids.row_splits}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64)])
        def detokenize(self, values, row_splits):
            return self.tokenizer.detokenize(tf.RaggedTensor.from_row_splits(values, row_splits))

    path = str(tmp_path / "tok_model")
    tf.saved_model.save(Export(layer_added), path)
    texts = ["[CLS] Hello world! _start_ naïve", "", "NEWWORD\x00 <UNK> 中文"]
    code = (
        "import sys, json, tensorflow as tf, tensorflow_text\n"
        f"m = tf.saved_model.load({path!r})\n"
        f"out = m.tokenize(tf.constant({texts!r}))\n"
        "text = m.detokenize(tf.cast(out['values'], tf.int32), out['row_splits'])\n"
        "print(json.dumps([out['values'].numpy().tolist(), out['row_splits'].numpy().tolist(),"
        " [t.decode() for t in text.numpy()], 'tfgpt' in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(tmp_path), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    values, splits, text, imported = json.loads(run.stdout.strip().splitlines()[-1])
    want = [tok_added.encode(t) for t in texts]
    assert [values[a:b] for a, b in zip(splits, splits[1:])] == want
    assert text == [tok_added.decode(w) for w in want]
    assert imported is False


def test_config_round_trip_and_keras_file(layer_added, tok_added, tmp_path):
    config = layer_added.get_config()
    assert json.loads(json.dumps(config))["added_tokens"] == config["added_tokens"]
    texts = ["[CLS] Hello _start_ newword", "plain text."]
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, layer_added(inputs))
    model.save(tmp_path / "tok.keras")
    loaded = keras.models.load_model(tmp_path / "tok.keras")  # rebuilt with from_config
    assert loaded(tf.constant(texts)).to_list() == [tok_added.encode(t) for t in texts]
    again = loaded.layers[-1]
    assert isinstance(again, TFOpenAIGPTTokenizer) and again.get_config()["vocabulary"] == config["vocabulary"]
    assert len(again.python_tokenizer) == len(tok_added) == again.vocabulary_size()


def test_long_words_are_exact(layer, tok):
    # Their cost against ordinary text is measured by benchmarks/bench_tokenizer.py ("10k-char word").
    rng = random.Random(0)
    words = {
        "letters": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10_000)),
        "english": "".join(c for c in CORPUS.read_text(encoding="utf-8")[:14_000].lower() if c.isalpha())[:10_000],
        "repeat": "a" * 10_000,
        "accents": "".join(rng.choice("éèàüabc") for _ in range(10_000)),
    }
    for name, word in words.items():
        assert layer(tf.constant(word)).numpy().tolist() == tok.encode(word), name


def test_learned_and_non_monotone_vocabularies():
    # A merge list where later merges feed earlier ones (so no merge may be applied early).
    vocab = {"<unk>": 0}
    for s in ["a", "b", "c", "a</w>", "b</w>", "c</w>", "ab", "bc", "abc", "bc</w>", "ab</w>", "cab", "ca",
              "abc</w>", "cab</w>", "ca</w>", "bca", "bca</w>"]:
        vocab.setdefault(s, len(vocab))
    merges = [("ab", "c"), ("b", "c"), ("a", "b"), ("c", "a"), ("ca", "b"), ("b", "c</w>"), ("a", "b</w>"),
              ("ab", "c</w>"), ("c", "a</w>"), ("ca", "b</w>"), ("b", "ca"), ("b", "ca</w>")]
    t = OpenAIGPTTokenizer(vocab=vocab, merges=merges, pretokenizer="basic")
    layer = TFOpenAIGPTTokenizer.from_tokenizer(t)
    rng = random.Random(0)
    texts = [" ".join("".join(rng.choice("abcd") for _ in range(rng.randrange(1, 60))) for _ in range(3))
             for _ in range(300)]
    assert layer(tf.constant(texts)).to_list() == [t.encode(x) for x in texts]


def test_no_unknown_token(tok):
    vocab = {"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4}
    t = OpenAIGPTTokenizer(vocab=vocab, merges=[("a", "b</w>")], unk_token=None, pretokenizer="basic")
    layer = TFOpenAIGPTTokenizer.from_tokenizer(t)
    assert layer(tf.constant(["ab a", "b"])).to_list() == [[4, 2], [3]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="no unknown token"):
        layer(tf.constant(["abc"]))
