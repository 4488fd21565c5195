"""tfgpt.data: LM packing and splits, classification and multiple-choice batches, COPA, the default
corpus in the Keras cache."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import GPT_VOCAB, SHARED, tiny_config
from tfgpt import data

SHAKESPEARE = SHARED / "data" / "corpus" / "tinyshakespeare.txt"
COPA = SHARED / "data" / "labelled" / "copa" / "balanced-copa-dev-all.xml"
POLARITY = SHARED / "data" / "labelled" / "sentence_polarity"


@pytest.fixture(scope="module")
def tok():
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    return OpenAIGPTTokenizer.from_pretrained(str(GPT_VOCAB))


@pytest.fixture(scope="module")
def ttok(tok):
    from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

    return TFOpenAIGPTTokenizer.from_tokenizer(tok)


@pytest.fixture
def corpus(tmp_path):
    """Two small documents cut from tiny-shakespeare."""
    lines = SHAKESPEARE.read_text(encoding="utf-8").splitlines()
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n".join(lines[:120]) + "\n", encoding="utf-8")
    b.write_text("\n".join(lines[120:200]) + "\n", encoding="utf-8")
    return [str(a), str(b)]


def _flat(chunks):
    return np.concatenate([c.numpy() for c in chunks])


def _windows(ds):
    out = [x["input_ids"].numpy() for x, _ in ds]
    return np.concatenate(out) if out else np.zeros((0, 0), np.int32)


def test_lm_stream_is_the_tokenized_files_with_separators(corpus, tok, ttok):
    sep = tok.convert_tokens_to_ids(data.NEWLINE_TOKEN)
    assert sep == 40477
    stream = _flat(data.token_chunks(corpus, ttok, "all", separator_id=sep, lines_per_chunk=16))
    expected = []
    for f in corpus:
        expected += tok.encode(open(f, encoding="utf-8").read()) + [sep]
    np.testing.assert_array_equal(stream, expected)


def test_lm_split_is_the_tail_of_every_file_and_windows_are_packed(corpus, tok, ttok):
    sep = 40477
    train = _flat(data.token_chunks(corpus, ttok, "train", 0.25, separator_id=sep))
    val = _flat(data.token_chunks(corpus, ttok, "validation", 0.25, separator_id=sep))
    expected_train, expected_val = [], []
    for f in corpus:
        text = open(f, encoding="utf-8").read()
        cut = int(len(text.encode()) * 0.75)
        lines, start, head, tail = text.splitlines(keepends=True), 0, [], []
        for line in lines:
            (head if start < cut else tail).append(line)
            start += len(line.encode())
        expected_train += tok.encode("".join(head)) + [sep]
        expected_val += tok.encode("".join(tail)) + [sep]
    np.testing.assert_array_equal(train, expected_train)
    np.testing.assert_array_equal(val, expected_val)
    assert 0.15 < len(val) / (len(train) + len(val)) < 0.35

    # Evaluation pipeline: consecutive full windows, in order, no padding, labels = inputs.
    ds = data.lm_dataset(corpus, tok, seq_len=16, batch_size=3, split="validation",
                         validation_fraction=0.25)
    x, y = next(iter(ds))
    assert set(x) == {"input_ids"} and x["input_ids"].dtype == tf.int32
    np.testing.assert_array_equal(x["input_ids"], y)
    windows = _windows(ds)
    assert windows.shape == (len(val) // 16, 16)
    np.testing.assert_array_equal(windows.ravel(), val[: windows.size])


def test_lm_training_pipeline_repeats_shuffles_and_shifts(corpus, tok):
    stream = _flat(data.token_chunks(corpus, tok, "train", 0.1, separator_id=40477))
    ds = data.lm_dataset(corpus, tok, seq_len=32, batch_size=4, split="train", seed=3, cache=True)
    n_windows = len(stream) // 32
    batches = [x["input_ids"].numpy() for x, _ in ds.take(3 * n_windows // 4 + 2)]
    assert all(b.shape == (4, 32) for b in batches)  # static, full batches, more than one pass
    windows = np.concatenate(batches)
    where = {tuple(stream[i:i + 32]): i for i in range(len(stream) - 31)}
    starts = [where.get(tuple(w)) for w in windows]
    assert None not in starts  # every window is a contiguous piece of the token stream
    assert len({s % 32 for s in starts}) > 1  # the window grid moves between passes
    assert starts[:8] != sorted(starts[:8])  # shuffled


def test_lm_document_per_line_and_streams_from_disk(tmp_path, tok):
    f = tmp_path / "docs.txt"
    f.write_text("first document .\nsecond one !\n", encoding="utf-8")
    stream = _flat(data.token_chunks([str(f)], tok, "all", separator_id=7, document_per_line=True))
    np.testing.assert_array_equal(stream, tok.encode("first document .") + [7] + tok.encode("second one !") + [7])
    with pytest.raises(FileNotFoundError):
        data.token_chunks([str(tmp_path / "missing.txt")], tok)


def test_classification_batches(tok):
    texts = ["a good film .", "bad , boring and far too long for what it is", "ok"]
    ds = data.classification_dataset(texts, [1, 0, 1], tok, batch_size=2, max_length=8, pad_id=99,
                                     start_id=40478, classify_id=40479)
    x, y = next(iter(ds))
    ids, mask = x["input_ids"].numpy(), x["attention_mask"].numpy()
    assert ids.shape == (2, 8) and mask.shape == (2, 8)
    np.testing.assert_array_equal(y, [1, 0])
    first = [40478] + tok.encode(texts[0]) + [40479]
    np.testing.assert_array_equal(ids[0, : len(first)], first)
    assert (ids[0, len(first):] == 99).all() and mask[0].sum() == len(first)
    np.testing.assert_array_equal(ids[1], [40478] + tok.encode(texts[1])[:6] + [40479])  # truncated
    assert mask[1].all()
    longest = data.classification_dataset(texts, [1, 0, 1], tok, batch_size=2, max_length=8, pad_id=0,
                                          padding="longest")
    last = list(longest)[-1][0]["input_ids"]
    assert last.shape == (1, len(tok.encode("ok")))


def test_holdout_every_counts_within_each_class():
    items = list(range(40))
    labels = [0] * 20 + [1] * 20
    train, held = data.holdout_every(items, 10, per_group=labels)
    assert held == [9, 19, 29, 39] and len(train) == 36


def test_polarity_files():
    texts, labels = data.read_class_files([POLARITY / "rt-polarity.neg", POLARITY / "rt-polarity.pos"])
    assert len(texts) == 10662 and labels.count(0) == labels.count(1) == 5331


def test_copa_reader():
    items = data.read_copa(COPA)
    assert len(items) == 1000
    dev = [it for it in items if it["id"] <= 500]
    assert sum(it["label"] == 0 for it in dev) == 243 and sum(it["label"] == 1 for it in dev) == 257
    first = data.read_copa(COPA, ids=[1])[0]
    assert first["asks_for"] in ("cause", "effect") and len(first["choices"]) == 2
    contexts, choices, labels = data.copa_examples(data.read_copa(COPA, data.parse_id_ranges("1-3")))
    assert len(contexts) == 3 and contexts[0].endswith((" because", " so"))
    assert data.parse_id_ranges("1-3,7,10-11") == [1, 2, 3, 7, 10, 11]


def test_multiple_choice_batches(tok):
    contexts = ["the man broke his toe . what was the cause ?", "it rained"]
    choices = [["he dropped a hammer on his foot .", "he got a hole in his sock ."], ["so", "sun"]]
    start, delim, cls = 40478, 40479, 40480
    ds = data.multiple_choice_dataset(contexts, choices, [0, 1], tok, start, delim, cls, batch_size=2,
                                      max_length=12, pad_id=5)
    x, y = next(iter(ds))
    ids, mask, mc = x["input_ids"].numpy(), x["attention_mask"].numpy(), x["mc_token_ids"].numpy()
    y = {k: v.numpy() for k, v in y.items()}
    assert ids.shape == (2, 2, 12) and mask.shape == (2, 2, 12) and mc.shape == (2, 2)
    np.testing.assert_array_equal(y["mc_labels"], [0, 1])
    for b in range(2):
        for c in range(2):
            n = mask[b, c].sum()
            row = ids[b, c]
            assert row[0] == start and row[mc[b, c]] == cls and mc[b, c] == n - 1
            assert (row[n:] == 5).all() and list(row).count(delim) == 1
            d = list(row).index(delim)
            np.testing.assert_array_equal(row[d + 1: n - 1], tok.encode(choices[b][c])[: n - 2 - d])
            np.testing.assert_array_equal(y["labels"][b, c][:n], row[:n])
            assert (y["labels"][b, c][n:] == -100).all()
    # a short context fits whole
    np.testing.assert_array_equal(ids[1, 1, : mc[1, 1] + 1],
                                  [start] + tok.encode("it rained") + [delim] + tok.encode("sun") + [cls])
    # a long context keeps its end
    row = ids[0, 0]
    ctx = tok.encode(contexts[0])
    d = list(row).index(delim)
    np.testing.assert_array_equal(row[1:d], ctx[len(ctx) - (d - 1):])


def test_add_gpt1_special_tokens_grows_the_model(tok):
    import copy

    import tfgpt

    t = copy.deepcopy(tok)
    model = tfgpt.TFOpenAIGPTDoubleHeadsModel(tiny_config(vocab_size=len(t), num_labels=1))
    ids = data.add_gpt1_special_tokens(t, model, pad_token="<pad>")
    assert [ids[k] for k in data.GPT1_SPECIAL_TOKENS] == [40478, 40479, 40480] and ids["pad"] == 40481
    assert len(t) == 40482 and model.config.vocab_size == 40482 and model.config.pad_token_id == 40481
    assert t.encode("_start_ hello _classify_") == [40478, 3570, 40480]
    again = data.add_gpt1_special_tokens(t, model, pad_token="<pad>")  # idempotent
    assert again == ids and len(t) == 40482


def test_default_corpus_comes_from_the_keras_cache(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    cached = home / "datasets" / "tfgpt" / "tinyshakespeare.txt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(SHAKESPEARE.read_bytes())
    monkeypatch.setenv("KERAS_HOME", str(home))
    assert data.default_corpus_path() == str(cached)
    assert data.get_tiny_shakespeare() == str(cached)

    # Not cached and the URL unreachable (loopback discard port): a clear error, no download.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    from tfgpt.data import corpus

    monkeypatch.setattr(corpus, "TINY_SHAKESPEARE_URL", "http://127.0.0.1:9/input.txt")
    with pytest.raises(data.CorpusUnavailableError, match=r"127\.0\.0\.1:9.*Pass your own text file"):
        data.get_tiny_shakespeare()
    monkeypatch.setenv("TFGPT_OFFLINE", "1")
    with pytest.raises(data.CorpusUnavailableError, match="offline"):
        data.get_tiny_shakespeare()
    assert not (tmp_path / "empty" / "datasets" / "tfgpt" / "tinyshakespeare.txt").exists()
