"""model.prepare_tf_dataset: HF datasets-style columns to (features, labels) batches that fit() takes."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from tfgpt.data import DataCollatorWithPadding, default_data_collator
from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

# HF's tokenizer test vocabulary, plus a pad token (id 21)
VOCAB = ["l", "o", "w", "e", "r", "s", "t", "i", "d", "n", "w</w>", "r</w>", "t</w>", "lo", "low", "er</w>",
         "low</w>", "lowest</w>", "newer</w>", "wider</w>", "<unk>"]
MERGES = ["#version: 0.2", "l o", "lo w", "e r</w>", ""]
PAD = 21


class FakeDataset:
    """The part of datasets.Dataset that prepare_tf_dataset uses (column_names, features, len, indexing
    by a list of rows giving a dict of columns), over a dict of columns, as Dataset.from_dict builds it."""

    def __init__(self, columns):
        self._columns = {k: [np.asarray(v).tolist() for v in vals] for k, vals in columns.items()}

    @property
    def column_names(self):
        return list(self._columns)

    @property
    def features(self):
        return {k: "feature" for k in self._columns}

    def __len__(self):
        return len(next(iter(self._columns.values())))

    def __getitem__(self, key):
        if isinstance(key, list):
            return {k: [v[i] for i in key] for k, v in self._columns.items()}
        return {k: v[key] for k, v in self._columns.items()}


@pytest.fixture
def tok(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps(dict(zip(VOCAB, range(len(VOCAB))))), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("\n".join(MERGES), encoding="utf-8")
    tokenizer = OpenAIGPTTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    tokenizer.add_special_tokens({"pad_token": "<pad>"})
    assert tokenizer.pad_token_id == PAD
    return tokenizer


def _ids(seed, rows=6, width=5, vocab=99):
    return np.random.default_rng(seed).integers(0, vocab, (rows, width)).astype(np.int64)


@pytest.mark.parametrize("head", ["base", "lm", "seqcls", "double-heads"])
def test_dataset_conversion(head):
    """HF's test_dataset_conversion: an unwanted column is dropped, no row is lost, and with labels
    the batches are (features, labels) that train_on_batch takes."""
    model = tiny_model(head, pad_token_id=98)  # HF's model tester sets a pad id
    shape = (6, 2, 5) if head == "double-heads" else (6, 5)
    ids = np.random.default_rng(0).integers(0, 98, shape).astype(np.int64)
    columns = {"input_ids": ids, "attention_mask": np.ones_like(ids), "extra_unwanted_column": ids}
    ds = model.prepare_tf_dataset(FakeDataset(columns), batch_size=6, drop_remainder=False, shuffle=False)
    batch = next(iter(ds))
    assert isinstance(batch, dict) and sorted(batch) == ["attention_mask", "input_ids"]
    for value in batch.values():
        assert isinstance(value, tf.Tensor) and len(value) == 6
    np.testing.assert_array_equal(batch["input_ids"].numpy(), ids)
    model(batch, training=False)
    if head == "base":
        return
    labelled = dict(columns)
    if head == "seqcls":
        labelled["labels"] = np.arange(6) % 2
    elif head == "double-heads":
        labelled["labels"] = ids
        labelled["mc_labels"] = np.arange(6) % 2
    else:
        labelled["labels"] = ids
    ds = model.prepare_tf_dataset(FakeDataset(labelled), batch_size=6, drop_remainder=False, shuffle=False)
    features, labels = next(iter(ds))
    n_labels = len(labels) if isinstance(labels, dict) else 1
    assert len(features) + n_labels == len(labelled) - 1
    assert "extra_unwanted_column" not in features
    if head == "double-heads":
        assert sorted(labels) == ["labels", "mc_labels"]
        np.testing.assert_array_equal(labels["mc_labels"].numpy(), np.arange(6) % 2)
    else:
        assert isinstance(labels, tf.Tensor)
        np.testing.assert_array_equal(labels.numpy(), labelled["labels"])
    model.compile(optimizer="sgd", run_eagerly=True)
    loss = model.train_on_batch(features, labels)
    assert np.isfinite(loss)


def test_one_feature_column_comes_as_a_tensor():
    """One model input: the batches are the tensor itself (HF's single-column rule); no labels, no tuple."""
    model = tiny_model("lm")
    ids = _ids(1)
    batches = list(model.prepare_tf_dataset({"input_ids": ids, "text": ["x"] * 6}, batch_size=4, shuffle=False))
    assert [b.shape.as_list() for b in batches] == [[4, 5], [2, 5]]
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in batches]), ids)
    assert batches[0].dtype == tf.int64


def test_fit_lowers_the_lm_loss():
    """Rows of equal length with a labels column: fit() on the prepared dataset lowers the LM loss."""
    model = tiny_model("lm")
    rows = np.tile(np.arange(12, dtype=np.int64) % 7 + 3, (16, 1))  # one repeated pattern: learnable
    ds = model.prepare_tf_dataset([{"input_ids": r, "labels": r} for r in rows], batch_size=4)
    spec = ds.element_spec
    assert spec[0].shape.as_list() == [4, None] and spec[1].shape.as_list() == [4, None]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(ds, verbose=0)
    history = model.fit(ds, epochs=3, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 3
    after = model.evaluate(ds, verbose=0)
    assert after < 0.5 * before, (before, after)


def test_tokenizer_pads_as_data_collator_with_padding(tok):
    """With a tokenizer: each batch is padded to its longest row with the pad id, mask 0 there;
    'label' becomes the labels; a text column is dropped."""
    model = tiny_model("seqcls", pad_token_id=PAD)
    texts = ["low", "newer", "slow", "lower"]
    enc = [tok(t) for t in texts]
    data = {"text": texts, "input_ids": [e["input_ids"] for e in enc],
            "attention_mask": [e["attention_mask"] for e in enc], "label": [0, 1, 1, 0]}
    assert data["input_ids"] == [[13, 10], [9, 3, 2, 15], [5, 13, 10], [14, 15]]
    ds = model.prepare_tf_dataset(data, batch_size=2, shuffle=False, tokenizer=tok)
    (f1, l1), (f2, l2) = list(ds)
    assert sorted(f1) == ["attention_mask", "input_ids"]
    np.testing.assert_array_equal(f1["input_ids"], [[13, 10, PAD, PAD], [9, 3, 2, 15]])
    np.testing.assert_array_equal(f1["attention_mask"], [[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(f2["input_ids"], [[5, 13, 10], [14, 15, PAD]])
    np.testing.assert_array_equal(f2["attention_mask"], [[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(l1, [0, 1])
    np.testing.assert_array_equal(l2, [1, 0])
    assert l1.dtype == tf.int64
    # the padded batch scores each row as the row alone
    alone = model(np.array([[13, 10]])).logits.numpy()
    np.testing.assert_allclose(model(f1).logits.numpy()[0], alone[0], atol=1e-5)


def test_fit_lowers_the_classification_loss(tok):
    model = tiny_model("seqcls", pad_token_id=PAD)
    texts = ["low low", "lower", "slow low", "low"] * 4 + ["newer wider", "wider", "newer", "wider newer"] * 4
    labels = [0] * 16 + [1] * 16
    data = [dict(tok(t), label=y) for t, y in zip(texts, labels)]
    ds = model.prepare_tf_dataset(data, batch_size=8, tokenizer=tok)
    assert ds.element_spec[0]["input_ids"].shape.as_list() == [8, None]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(ds, verbose=0)
    model.fit(ds, epochs=4, shuffle=False, verbose=0)
    after = model.evaluate(ds, verbose=0)
    assert after < 0.5 * before, (before, after)


def test_shuffle_drop_remainder_and_prefetch():
    model = tiny_model("lm")
    ids = np.arange(10, dtype=np.int64)[:, None] + np.zeros((1, 3), np.int64)  # row i is [i, i, i]
    ds = model.prepare_tf_dataset({"input_ids": ids}, batch_size=4)  # shuffle, so drop_remainder
    epochs = [np.concatenate([b.numpy()[:, 0] for b in ds]) for _ in range(3)]
    assert all(len(e) == 8 and len(set(e)) == 8 for e in epochs)
    assert any(not np.array_equal(epochs[0], e) for e in epochs[1:])  # a new order each epoch
    kept = model.prepare_tf_dataset({"input_ids": ids}, batch_size=4, shuffle=True, drop_remainder=False,
                                    prefetch=False)
    assert sorted(np.concatenate([b.numpy()[:, 0] for b in kept]).tolist()) == list(range(10))
    assert not isinstance(kept, type(ds))  # no prefetch stage


def test_collate_fn_and_its_args(tok):
    """A collate_fn replaces the tokenizer's padding; collate_fn_args go to it."""
    model = tiny_model("lm")
    calls = []

    def lm_collate(rows, pad_to):
        calls.append(len(rows))
        batch = tok.pad(rows, padding="max_length", max_length=pad_to, return_tensors="np")
        labels = np.where(batch["attention_mask"] == 1, batch["input_ids"], -100)
        return dict(batch, labels=labels)

    data = [{"input_ids": [3, 4]}, {"input_ids": [5, 6, 7]}]
    ds = model.prepare_tf_dataset(data, batch_size=2, shuffle=False, tokenizer=tok, collate_fn=lm_collate,
                                  collate_fn_args={"pad_to": 4})
    features, labels = next(iter(ds))
    np.testing.assert_array_equal(features["input_ids"], [[3, 4, PAD, PAD], [5, 6, 7, PAD]])
    np.testing.assert_array_equal(labels, [[3, 4, -100, -100], [5, 6, 7, -100]])
    assert calls and set(calls) == {2}
    model.compile(optimizer="sgd")
    assert np.isfinite(model.evaluate(ds, verbose=0))


def test_default_collator_and_padding_collator_directly(tok):
    batch = default_data_collator([{"input_ids": [1, 2], "label": 1, "text": "a"},
                                   {"input_ids": [3, 4], "label": 0, "text": "b"}])
    assert sorted(batch) == ["input_ids", "labels"]
    assert batch["labels"].dtype == np.int64
    np.testing.assert_array_equal(batch["input_ids"], [[1, 2], [3, 4]])
    floats = default_data_collator([{"input_ids": [1], "label": 0.5}])
    assert floats["labels"].dtype == np.float32
    padded = DataCollatorWithPadding(tok, pad_to_multiple_of=4)([{"input_ids": [1]}, {"input_ids": [2, 3]}])
    np.testing.assert_array_equal(padded["input_ids"], [[1, PAD, PAD, PAD], [2, 3, PAD, PAD]])
    np.testing.assert_array_equal(padded["attention_mask"], [[1, 0, 0, 0], [1, 1, 0, 0]])


def test_bad_datasets_and_columns_raise_naming_them():
    model = tiny_model("seqcls")
    ids = _ids(2, rows=4)
    with pytest.raises(TypeError, match="column 'label' holds str values"):
        model.prepare_tf_dataset({"input_ids": ids, "label": ["pos", "neg", "pos", "neg"]}, batch_size=2)
    with pytest.raises(TypeError, match="column 'input_ids' holds str values"):
        model.prepare_tf_dataset({"input_ids": [["a", "b"]] * 4}, batch_size=2)
    with pytest.raises(ValueError, match="column 'input_ids' holds rows of different lengths"):
        model.prepare_tf_dataset({"input_ids": [[1], [1, 2]]}, batch_size=2)
    with pytest.raises(TypeError, match="not a tf.data.Dataset"):
        model.prepare_tf_dataset(tf.data.Dataset.range(3))
    with pytest.raises(TypeError, match="got int"):
        model.prepare_tf_dataset(3)
    with pytest.raises(ValueError, match="columns differ in length"):
        model.prepare_tf_dataset({"input_ids": ids, "label": [0, 1]})
    with pytest.raises(ValueError, match="no column the model takes"):
        model.prepare_tf_dataset({"text": ["a", "b"]}, batch_size=2)
    with pytest.raises(ValueError, match="fewer than batch_size=8"):
        model.prepare_tf_dataset({"input_ids": ids})
    with pytest.raises(ValueError, match="batch_size"):
        model.prepare_tf_dataset({"input_ids": ids}, batch_size=0)
    with pytest.raises(TypeError, match="collate_fn must be callable"):
        model.prepare_tf_dataset({"input_ids": ids}, batch_size=2, collate_fn=3)


def test_float_labels_keep_their_values_through_the_tokenizer(tok):
    """Regression targets (num_labels=1) pass tok.pad as floats, as HF's BatchEncoding keeps them."""
    model = tiny_model("seqcls", pad_token_id=PAD, num_labels=1)
    data = {"input_ids": [[13, 10], [9, 3, 2]], "label": [0.25, -1.5]}
    features, labels = next(iter(model.prepare_tf_dataset(data, batch_size=2, shuffle=False, tokenizer=tok)))
    assert labels.dtype == tf.float32
    np.testing.assert_array_equal(labels.numpy(), [0.25, -1.5])
    np.testing.assert_array_equal(features["input_ids"], [[13, 10, PAD], [9, 3, 2]])
    with pytest.raises(TypeError, match="column 'label' holds str values"):
        model.prepare_tf_dataset({"input_ids": [[1], [2, 3]], "label": ["a", "b"]}, batch_size=2, tokenizer=tok)
