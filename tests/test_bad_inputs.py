"""Bad inputs across models, generation, tokenizers, checkpoints, export and the CLI: each one raises
a clear error (type and a message naming the problem) in eager, ``tf.function`` and XLA modes, and
nothing returns plausible garbage. Tiny models, built once per module.
"""

import json
import os
import signal
import struct
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

import tfgpt
from tfgpt import validation
from tfgpt.checkpoints.formats import CheckpointError

from conftest import PYTHON, subprocess_env, tiny_model

V, P = 99, 32  # tiny_config's vocab_size and n_positions
HEADS = ("base", "lm", "double-heads", "seqcls")


@pytest.fixture(scope="module")
def models():
    extra = {"seqcls": dict(pad_token_id=0), "double-heads": dict(num_labels=1)}  # HF: one mc logit per choice
    return {head: tiny_model(head, **extra.get(head, {})) for head in HEADS}


def ids_for(head, seq=4):
    shape = (1, 2, seq) if head == "double-heads" else (1, seq)
    return np.ones(shape, np.int32)


# --- model inputs, eager ---------------------------------------------------------------------------------

ID_CASES = [  # (input_ids, error type, message pattern)
    (np.array([[1, 2 ** 32 + 5]], np.int64), ValueError, r"input_ids holds 4294967301, outside \[0, 99\)"),
    (np.array([[1, -(2 ** 40)]], np.int64), ValueError, r"input_ids holds -1099511627776"),
    (np.array([[1.0, 2.5]], np.float32), ValueError, r"input_ids holds 2.5, not a whole number"),
    (np.array([[1.0, np.nan]], np.float32), ValueError, r"input_ids holds nan, not a whole number"),
    (np.array([[1.0, 99.0]], np.float64), ValueError, r"input_ids holds 99, outside"),
    (np.array([[1, 99]], np.int32), ValueError, r"input_ids holds 99, outside \[0, 99\)"),
    (np.array([[1, -1]], np.int32), ValueError, r"input_ids holds -1"),
    (np.array([[1, 2 ** 16]], np.uint32), ValueError, r"input_ids holds 65536"),
    ("hello world", TypeError, r"input_ids must be numeric token ids, got a string"),
    (np.array([["a", "b"]]), TypeError, r"input_ids must be numeric token ids, got strings"),
    ([[1, None]], TypeError, r"input_ids holds None where a token id is expected"),
    ([[1, 2], [3]], TypeError, r"input_ids must be a rectangular array"),
    (np.array([[True, False]]), TypeError, r"input_ids must be integer ids, got dtype bool"),
    (np.array([[1 + 2j]]), TypeError, r"input_ids must be integer ids, got dtype complex"),
    (np.zeros((1, 0), np.int32), ValueError, r"input_ids has an empty sequence dimension"),
    (np.zeros((1, P + 1), np.int32), ValueError, r"sequence length 33 is longer than n_positions=32"),
]


@pytest.mark.parametrize("head", ["base", "lm", "seqcls"])
@pytest.mark.parametrize("ids,error,pattern", ID_CASES, ids=[f"ids{i}" for i in range(len(ID_CASES))])
def test_bad_input_ids(models, head, ids, error, pattern):
    with pytest.raises(error, match=pattern):
        models[head](ids)


OTHER_INPUT_CASES = [  # (keyword arguments next to input_ids [1, 4], error type, pattern)
    (dict(attention_mask=[[1, 1, 2, 1]]), ValueError, r"attention_mask holds 2; it must hold only 0"),
    (dict(attention_mask=[[1, -1, 1, 1]]), ValueError, r"attention_mask holds -1"),
    (dict(attention_mask=[[1.0, 0.5, 1.0, 1.0]]), ValueError, r"attention_mask holds 0.5"),
    (dict(attention_mask=[["a", "b", "c", "d"]]), TypeError, r"attention_mask must be numeric"),
    (dict(attention_mask=[[1, 1, 1]]), ValueError, r"attention_mask has shape \[1, 3\], expected \[1, 4\]"),
    (dict(attention_mask=np.ones((2, 4))), ValueError, r"attention_mask has shape \[2, 4\], expected \[1, 4\]"),
    (dict(token_type_ids=[[0, 1, 2]]), ValueError, r"token_type_ids has shape \[1, 3\], expected \[1, 4\]"),
    (dict(token_type_ids=[[0, 1, 2, 99]]), ValueError, r"token_type_ids holds 99, outside \[0, 99\)"),
    (dict(token_type_ids=[[0, 1, 2, -3]]), ValueError, r"token_type_ids holds -3"),
    (dict(token_type_ids=[[0, 1, 2, 0.5]]), ValueError, r"token_type_ids holds 0.5, not a whole number"),
    (dict(position_ids=[[0, 1, 2]]), ValueError, r"position_ids has shape \[1, 3\], expected \[1, 4\]"),
    (dict(position_ids=[[0, 1, 2, 32]]), ValueError, r"position_ids holds 32, outside \[0, 32\)"),
    (dict(position_ids=[[0, 1, 2, -1]]), ValueError, r"position_ids holds -1"),
    (dict(position_ids=np.array([[0, 1, 2, 2 ** 33]], np.int64)), ValueError, r"position_ids holds 8589934592"),
    (dict(head_mask=np.ones((2, 4, 1))), ValueError, r"head_mask has rank 3"),
    (dict(head_mask=np.ones((3, 4))), ValueError, r"head_mask has shape \[3, 4\], expected \[2, 4\]"),
    (dict(head_mask=np.ones((2, 5))), ValueError, r"head_mask has shape \[2, 5\], expected \[2, 4\]"),
    (dict(head_mask=np.ones((5,))), ValueError, r"head_mask has shape \[5\], expected \[4\]"),
    (dict(head_mask="all"), TypeError, r"head_mask must be numeric"),
    (dict(input_idz=[[1]]), TypeError, r"unexpected keyword argument 'input_idz'"),
]


@pytest.mark.parametrize("head", ["base", "lm", "seqcls"])
@pytest.mark.parametrize("kwargs,error,pattern", OTHER_INPUT_CASES,
                         ids=[f"in{i}" for i in range(len(OTHER_INPUT_CASES))])
def test_bad_side_inputs(models, head, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        models[head](ids_for(head), **kwargs)


def test_broadcast_position_row_is_still_accepted(models):
    ids = np.ones((2, 4), np.int32)
    a = models["lm"](ids, position_ids=[[0, 1, 2, 3]]).logits
    b = models["lm"](ids).logits
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_inputs_embeds_of_the_wrong_width(models):
    with pytest.raises(ValueError, match=r"inputs_embeds last dim is 7, expected n_embd=32"):
        models["base"](inputs_embeds=np.zeros((1, 4, 7), np.float32))


LM_LABEL_CASES = [
    (np.array([[1, 2, 3, 99]]), ValueError, r"labels holds 99, outside \[0, 99\) or -100"),
    (np.array([[1, 2, 3, -5]]), ValueError, r"labels holds -5"),
    (np.array([[1, 2, 3, 2 ** 32 + 1]], np.int64), ValueError, r"labels holds 4294967297"),
    (np.array([[1.0, 2.0, 3.0, 4.5]]), ValueError, r"labels holds 4.5, not a whole number"),
    (np.array([[1, 2, 3]]), ValueError, r"labels has shape \[1, 3\], expected \[1, 4\]"),
    (np.array([[1, 2, 3, 4], [1, 2, 3, 4]]), ValueError, r"labels has shape \[2, 4\]"),
    ("labels", TypeError, r"labels must be numeric token ids"),
]


@pytest.mark.parametrize("labels,error,pattern", LM_LABEL_CASES, ids=[f"lab{i}" for i in range(len(LM_LABEL_CASES))])
def test_bad_lm_labels(models, labels, error, pattern):
    with pytest.raises(error, match=pattern):
        models["lm"](ids_for("lm"), labels=labels)


def test_one_token_lm_labels_have_nothing_to_predict(models):
    with pytest.raises(ValueError, match=r"labels has an empty sequence to predict \(an LM loss needs at least 2"):
        models["lm"](np.ones((1, 1), np.int32), labels=np.ones((1, 1), np.int32))


DH_CASES = [  # kwargs next to input_ids [1, 2, 4]
    (dict(mc_token_ids=[[0, 4]]), ValueError, r"mc_token_ids holds 4, outside \[0, 4\)"),
    (dict(mc_token_ids=[[0, -1]]), ValueError, r"mc_token_ids holds -1"),
    (dict(mc_token_ids=[[0.5, 1]]), ValueError, r"mc_token_ids holds 0.5, not a whole number"),
    (dict(mc_token_ids=[0, 1, 2]), ValueError, r"mc_token_ids has shape \[3\], expected \[1, 2\]"),
    (dict(mc_token_ids=[[0, 1, 2]]), ValueError, r"mc_token_ids has shape \[1, 3\], expected \[1, 2\]"),
    (dict(mc_token_ids=[[3, 3]], mc_labels=[2]), ValueError, r"mc_labels holds 2, outside \[0, 2\) or -100"),
    (dict(mc_token_ids=[[3, 3]], mc_labels=[-2]), ValueError, r"mc_labels holds -2"),
    (dict(mc_token_ids=[[3, 3]], mc_labels=[0, 1]), ValueError, r"mc_labels has shape \[2\], expected \[1\]"),
    (dict(mc_token_ids=[[3, 3]], mc_labels=[0.5]), ValueError, r"mc_labels holds 0.5"),
    (dict(mc_token_ids=[[3, 3]], mc_labels="a"), TypeError, r"mc_labels must be numeric"),
    (dict(labels=np.full((1, 2, 4), 99)), ValueError, r"labels holds 99"),
    (dict(labels=np.ones((1, 2, 3))), ValueError, r"labels has shape \[1, 2, 3\], expected \[1, 2, 4\]"),
    (dict(attention_mask=np.full((1, 2, 4), 3)), ValueError, r"attention_mask holds 3"),
    (dict(token_type_ids=np.ones((1, 3, 4))), ValueError, r"token_type_ids has shape \[1, 3, 4\], expected \[1, 2, 4\]"),
]


@pytest.mark.parametrize("kwargs,error,pattern", DH_CASES, ids=[f"dh{i}" for i in range(len(DH_CASES))])
def test_bad_double_heads_inputs(models, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        models["double-heads"](ids_for("double-heads"), **kwargs)


@pytest.mark.parametrize("ids,error,pattern", ID_CASES[:8], ids=[f"ids{i}" for i in range(8)])
def test_bad_double_heads_ids(models, ids, error, pattern):
    with pytest.raises(error, match=pattern):
        models["double-heads"](ids[None])


SEQCLS_CASES = [  # (num_labels, problem_type, labels for batch 2, pattern)
    (2, None, [0, 2], r"labels holds 2, outside \[0, 2\) or -100"),
    (2, None, [0, -7], r"labels holds -7"),
    (2, None, [0, 1, 1], r"labels has shape \[3\], expected \[2\]"),
    (3, None, np.array([[0], [1], [2]]), r"labels has shape \[3\], expected \[2\]"),
    (1, None, np.ones((2, 3), np.float32), r"labels has shape \[2, 3\], expected \[2, 1\]"),
    (1, None, np.ones((3,), np.float32), r"labels has shape \[3\], expected \[2\]"),
    (3, "regression", np.ones((2,), np.float32), r"labels has shape \[2\], expected \[2, 3\]"),
    (3, "multi_label_classification", np.ones((2, 2), np.float32), r"labels has shape \[2, 2\], expected \[2, 3\]"),
    (2, None, "pos", r"labels must be numeric"),
]


@pytest.fixture(scope="module")
def seqcls_models():
    cache = {}

    def get(num_labels, problem_type):
        key = (num_labels, problem_type)
        if key not in cache:
            cache[key] = tiny_model("seqcls", pad_token_id=0, num_labels=num_labels, problem_type=problem_type)
        return cache[key]
    return get


@pytest.mark.parametrize("num_labels,problem_type,labels,pattern", SEQCLS_CASES,
                         ids=[f"cls{i}" for i in range(len(SEQCLS_CASES))])
def test_bad_classification_labels(seqcls_models, num_labels, problem_type, labels, pattern):
    model = seqcls_models(num_labels, problem_type)
    with pytest.raises((ValueError, TypeError), match=pattern):
        model(np.ones((2, 4), np.int32), labels=labels)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-(2 ** 62), 2 ** 62), min_size=1, max_size=6))
def test_any_out_of_vocabulary_id_is_named(models, values):
    ids = np.array([values], np.int64)
    bad = [v for v in values if not 0 <= v < V]
    if not bad:
        assert models["lm"](ids).logits.shape == (1, len(values), V)
        return
    with pytest.raises(ValueError, match=rf"input_ids holds {bad[0]}, outside \[0, 99\)"):
        models["lm"](ids)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=4, max_size=4))
def test_any_mask_value_other_than_0_or_1_is_named(models, values):
    mask = np.array([values], np.float32)
    if np.all((mask == 0) | (mask == 1)):
        models["lm"](ids_for("lm"), attention_mask=mask)
        return
    with pytest.raises(ValueError, match=r"attention_mask holds .*only 0 \(padding\) and 1"):
        models["lm"](ids_for("lm"), attention_mask=mask)


# --- inside tf.function (graph asserts) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph_lm(models):
    model = models["lm"]
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec, spec, spec])
    def run(ids, mask, types, positions, labels):
        return model(ids, attention_mask=mask, token_type_ids=types, position_ids=positions,
                     labels=labels).loss
    return run


def _graph_args(**override):
    args = dict(ids=np.ones((1, 4), np.int32), mask=np.ones((1, 4), np.int32),
                types=np.zeros((1, 4), np.int32), positions=np.arange(4, dtype=np.int32)[None],
                labels=np.ones((1, 4), np.int32))
    args.update({k: np.asarray(v, np.int32) for k, v in override.items()})
    return list(args.values())


GRAPH_CASES = [
    (dict(ids=[[1, 2, 3, 99]]), r"input_ids outside \[0, 99\)"),
    (dict(ids=[[1, 2, 3, -1]]), r"input_ids outside"),
    (dict(mask=[[1, 2, 1, 1]]), r"attention_mask must hold only 0"),
    (dict(mask=[[1, 1, 1]]), r"attention_mask shape does not match"),
    (dict(types=[[0, 0, 0]]), r"token_type_ids shape does not match"),
    (dict(types=[[0, 0, 0, 99]]), r"token_type_ids outside"),
    (dict(positions=[[0, 1, 2]]), r"position_ids shape does not match"),
    (dict(positions=[[0, 1, 2, 40]]), r"position_ids outside \[0, 32\)"),
    (dict(labels=[[1, 1, 1, 99]]), r"labels outside \[0, 99\)"),
    (dict(labels=[[1, 1, 1]]), r"labels shape does not match"),
    (dict(ids=[[1]], mask=[[1]], types=[[0]], positions=[[0]], labels=[[1]]), r"labels has an empty sequence"),
    (dict(ids=np.ones((1, 33)), mask=np.ones((1, 33)), types=np.zeros((1, 33)),
          positions=np.zeros((1, 33)), labels=np.ones((1, 33))), r"sequence longer than n_positions=32"),
]


@pytest.mark.parametrize("override,pattern", GRAPH_CASES, ids=[f"graph{i}" for i in range(len(GRAPH_CASES))])
def test_bad_inputs_inside_tf_function(graph_lm, override, pattern):
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
        graph_lm(*_graph_args(**override))


def test_good_inputs_inside_tf_function_match_eager(models, graph_lm):
    loss = graph_lm(*_graph_args(ids=[[1, 2, 3, 4]]))
    want = models["lm"](np.array([[1, 2, 3, 4]]), token_type_ids=np.zeros((1, 4), np.int32),
                        labels=np.ones((1, 4), np.int32)).loss
    np.testing.assert_allclose(float(loss), float(want), atol=1e-5)


def test_static_shape_mismatch_is_a_value_error_while_tracing(models):
    model = models["lm"]

    @tf.function(input_signature=[tf.TensorSpec([2, 4], tf.int32), tf.TensorSpec([2, 3], tf.int32)])
    def run(ids, types):
        return model(ids, token_type_ids=types).logits

    with pytest.raises(ValueError, match=r"token_type_ids has shape \[2, 3\], expected \[2, 4\]"):
        run.get_concrete_function()


# --- under XLA ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xla_lm(models):
    model = models["lm"]

    @tf.function(jit_compile=True)
    def run(ids, positions):
        return model(ids, position_ids=positions).logits
    return run


@pytest.mark.parametrize("bad", ["ids_high", "ids_negative", "position_high"])
def test_xla_bad_rows_become_nan_not_clamped(models, xla_lm, bad):
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.int32)
    positions = np.tile(np.arange(4, dtype=np.int32), (2, 1))
    if bad == "ids_high":
        ids[1, 2] = V + 5
    elif bad == "ids_negative":
        ids[1, 0] = -3
    else:
        positions[1, 3] = P + 7
    logits = xla_lm(ids, positions).numpy()
    assert np.isnan(logits[1]).all()
    good = models["lm"](ids[:1]).logits.numpy()
    np.testing.assert_allclose(logits[0], good[0], atol=1e-4)


@pytest.fixture(scope="module")
def xla_fit_model():
    model = tiny_model("lm")
    model.compile(optimizer="adam", jit_compile=True)
    return model


def _dataset(**bad):
    ids = np.ones((4, 8), np.int32)
    x = {"input_ids": ids, "labels": ids.copy(), "attention_mask": np.ones_like(ids)}
    for key, (row, col, value) in bad.items():
        x[key] = x[key].copy()
        x[key][row, col] = value
    return x


XLA_FIT_CASES = [
    (dict(input_ids=(3, 5, V)), r"input_ids outside \[0, 99\)"),
    (dict(input_ids=(0, 0, -1)), r"input_ids outside"),
    (dict(labels=(2, 2, V + 1)), r"labels outside \[0, 99\)"),
    (dict(attention_mask=(1, 1, 2)), r"attention_mask must hold only 0"),
]


@pytest.mark.parametrize("bad,pattern", XLA_FIT_CASES, ids=[f"fit{i}" for i in range(len(XLA_FIT_CASES))])
def test_jit_fit_on_a_dataset_rejects_bad_batches(xla_fit_model, bad, pattern):
    before = [w.copy() for w in xla_fit_model.get_weights()]
    data = tf.data.Dataset.from_tensor_slices(_dataset(**bad)).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
        xla_fit_model.fit(data, epochs=1, verbose=0)
    # the bad batch is the second one at most: nothing trained on it
    assert all(np.isfinite(w).all() for w in xla_fit_model.get_weights())
    assert len(before) == len(xla_fit_model.get_weights())


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_jit_fit_and_evaluate_on_arrays_check_first(xla_fit_model, method):
    with pytest.raises(ValueError, match=r"input_ids holds 99, outside \[0, 99\)"):
        getattr(xla_fit_model, method)(_dataset(input_ids=(0, 0, V)), batch_size=2, verbose=0)


@pytest.mark.parametrize("method", ["train_on_batch", "test_on_batch"])
def test_jit_on_batch_methods_check_first(xla_fit_model, method):
    with pytest.raises(ValueError, match=r"labels holds 120, outside \[0, 99\) or -100"):
        getattr(xla_fit_model, method)(_dataset(labels=(1, 1, 120)))


def test_jit_predict_checks_ids(xla_fit_model):
    with pytest.raises(ValueError, match=r"input_ids holds -4"):
        xla_fit_model.predict(np.array([[1, -4]], np.int32), verbose=0)


def test_jit_fit_on_good_data_trains(xla_fit_model):
    data = tf.data.Dataset.from_tensor_slices(_dataset()).batch(2)
    history = xla_fit_model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# --- generation ------------------------------------------------------------------------------------------

GENERATE_CASES = [  # kwargs of generate(prompt [[1, 2, 3]]) -> (error, pattern)
    (dict(pad_token_id=V), ValueError, r"pad_token_id 99 outside \[0, vocab_size=99\)"),
    (dict(pad_token_id=-1), ValueError, r"pad_token_id -1 outside"),
    (dict(pad_token_id="pad"), TypeError, r"pad_token_id must be an int, got 'pad'"),
    (dict(pad_token_id=1.5), ValueError, r"pad_token_id must be a whole number"),
    (dict(eos_token_id=V + 3), ValueError, r"eos_token_id 102 outside"),
    (dict(eos_token_id=["x"]), TypeError, r"eos_token_id must be an int"),
    (dict(length_penalty=float("nan"), num_beams=2), ValueError, r"length_penalty must be a finite number, got nan"),
    (dict(length_penalty=float("inf"), num_beams=2), ValueError, r"length_penalty must be a finite number, got inf"),
    (dict(length_penalty="long", num_beams=2), TypeError, r"length_penalty must be a number"),
    (dict(seed="abc", do_sample=True), TypeError, r"seed must be an int, got 'abc'"),
    (dict(seed=1.5, do_sample=True), ValueError, r"seed must be a whole number, got 1.5"),
    (dict(seed=[1, 2], do_sample=True), TypeError, r"seed must be an int"),
    (dict(max_new_tokens="ten"), TypeError, r"max_new_tokens must be an int, got 'ten'"),
    (dict(max_new_tokens=0), ValueError, r"max_new_tokens must be positive, got 0"),
    (dict(max_new_tokens=-2), ValueError, r"max_new_tokens must be positive"),
    (dict(max_new_tokens=2.5), ValueError, r"max_new_tokens must be a whole number"),
    (dict(max_new_tokens=40), ValueError, r"exceeds n_positions=32"),
    (dict(max_length="x"), TypeError, r"max_length must be an int"),
    (dict(max_length=2), ValueError, r"max_length=2 leaves no room"),
    (dict(do_sample=True, temperature=float("nan")), ValueError, r"temperature must be a finite number"),
    (dict(do_sample=True, temperature=0), ValueError, r"temperature must be > 0"),
    (dict(do_sample=True, temperature="hot"), TypeError, r"temperature must be a number"),
    (dict(do_sample=True, top_p=float("nan")), ValueError, r"top_p must be a finite number"),
    (dict(do_sample=True, top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(do_sample=True, top_p=1.5), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(do_sample=True, top_k=-1), ValueError, r"top_k must be >= 0"),
    (dict(do_sample=True, top_k="many"), TypeError, r"top_k must be an int"),
    (dict(do_sample="yes"), TypeError, r"do_sample must be True or False"),
    (dict(num_beams=0), ValueError, r"num_beams must be >= 1"),
    (dict(num_beams="2"), TypeError, r"num_beams must be an int"),
    (dict(num_return_sequences=0, do_sample=True), ValueError, r"num_return_sequences must be >= 1"),
    (dict(repetition_penalty=0.0), ValueError, r"repetition_penalty must be > 0"),
    (dict(repetition_penalty=float("nan")), ValueError, r"repetition_penalty must be a finite number"),
    (dict(early_stopping="sometimes", num_beams=2), ValueError, r"early_stopping must be True, False or 'never'"),
    (dict(attention_mask=[[1, 2, 1]]), ValueError, r"attention_mask must hold only 0"),
    (dict(attention_mask=[[1, 1]]), ValueError, r"attention_mask has shape \(1, 2\)"),
    (dict(attention_mask=[[0, 0, 0]]), ValueError, r"row 0 of the prompt has no real token"),
]


@pytest.mark.parametrize("kwargs,error,pattern", GENERATE_CASES, ids=[f"gen{i}" for i in range(len(GENERATE_CASES))])
def test_bad_generate_arguments(models, kwargs, error, pattern):
    kwargs.setdefault("max_new_tokens", 3) if "max_length" not in kwargs else None
    with pytest.raises(error, match=pattern):
        models["lm"].generate(np.array([[1, 2, 3]], np.int32), **kwargs)


GENERATE_PROMPTS = [
    ("hello", TypeError, r"input_ids must be token ids, got strings"),
    ([[1, None, 2]], TypeError, r"input_ids holds None"),
    (np.zeros((1, 0), np.int32), ValueError, r"at least one token per row"),
    (np.array([[1, V]]), ValueError, r"input_ids holds 99, outside \[0, vocab_size=99\)"),
    (np.array([[1, 2 ** 33]], np.int64), ValueError, r"input_ids holds 8589934592"),
    (np.array([[1.0, 2.5]]), TypeError, r"input_ids must hold integer ids"),
    (np.ones((1, 1, 1, 2), np.int32), ValueError, r"input_ids must be \[batch, length\]"),
]


@pytest.mark.parametrize("prompt,error,pattern", GENERATE_PROMPTS, ids=[f"prompt{i}" for i in range(len(GENERATE_PROMPTS))])
def test_bad_generate_prompts(models, prompt, error, pattern):
    with pytest.raises(error, match=pattern):
        models["lm"].generate(prompt, max_new_tokens=2)


def test_pad_token_outside_the_vocabulary_in_the_config():
    model = tiny_model("lm", pad_token_id=5)
    model.config.pad_token_id = 500  # e.g. a config edited by hand
    with pytest.raises(ValueError, match=r"config.pad_token_id 500 outside \[0, vocab_size=99\)"):
        model.generate(np.array([[1, 2]]), max_new_tokens=2)


# --- validation helpers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,error", [("3", TypeError), (None, TypeError), (True, TypeError),
                                         (2.5, ValueError), (float("nan"), ValueError), ([1], TypeError)])
def test_as_int_refuses(value, error):
    with pytest.raises(error, match="count"):
        validation.as_int(value, "count")


@pytest.mark.parametrize("value,error", [("1.0", TypeError), (None, TypeError), (float("-inf"), ValueError)])
def test_as_float_refuses(value, error):
    with pytest.raises(error, match="scale"):
        validation.as_float(value, "scale")


# --- tokenizers ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,error,pattern", [
    (lambda tok: tok(None), ValueError, r"specify either `text` or `text_target`"),
    (lambda tok: tok.decode(None), TypeError, r"token_ids must be an int or a sequence of ints, got NoneType"),
    (lambda tok: tok(12), ValueError, r"text input must be of type `str`.*Got text=12"),
    (lambda tok: tok(["a", None]), TypeError, r"batch_text_or_text_pairs\[1\] is None"),
    (lambda tok: tok.encode(None), TypeError, r"text must be a string.*got None"),
    (lambda tok: tok.decode(["a", "b"]), TypeError, r"token_ids must hold integer ids, got str 'a'"),
    (lambda tok: tok.decode("1 2"), TypeError, r"token_ids must be an int or a sequence of ints, got str"),
])
def test_bad_tokenizer_inputs(gpt_tokenizer, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(gpt_tokenizer)


# --- checkpoints ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_lm(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("saved") / "lm"
    models["lm"].save_pretrained(folder, safe_serialization=True)
    return folder


def _copy_with(saved, dst, edit=None, config=None):
    dst.mkdir(parents=True)
    state = load_file(saved / "model.safetensors")
    if edit:
        edit(state)
    save_file(state, dst / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((saved / "config.json").read_text())
    cfg.update(config or {})
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tensor", ["transformer.h.1.mlp.c_fc.weight", "transformer.tokens_embed.weight"])
def test_nonfinite_weights_are_named(saved_lm, tmp_path, value, tensor):
    def edit(state):
        state[tensor] = state[tensor].copy()
        state[tensor].flat[3] = value
    folder = _copy_with(saved_lm, tmp_path / "bad", edit)
    with pytest.raises(ValueError, match=rf"{tensor} in the .* holds 1 non-finite value\(s\).*allow_nonfinite_weights"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder, allow_nonfinite_weights=True)
    weights = dict(model.hf_weight_map())
    assert not np.isfinite(weights[tensor].numpy()).all()


def test_nonfinite_weights_in_tf_model_h5(models, tmp_path):
    model = tiny_model("lm")
    model.transformer.h[0].ln_1.gamma.assign(np.full(32, np.nan, np.float32))
    model.save_pretrained(tmp_path / "h5")
    with pytest.raises(ValueError, match=r"transformer.h.0.ln_1.weight in the .*tf_model.h5 holds 32 non-finite"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path / "h5")


@pytest.mark.parametrize("kind", ["directory", "dangling", "loop"])
def test_not_a_weights_file(saved_lm, tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    (folder / "config.json").write_text((saved_lm / "config.json").read_text())
    target = folder / "model.safetensors"
    if kind == "directory":
        target.mkdir()
        pattern = "a directory"
    elif kind == "dangling":
        target.symlink_to(folder / "gone.safetensors")
        pattern = "a dangling symlink to"
    else:
        (folder / "other").symlink_to(target)
        target.symlink_to(folder / "other")
        pattern = "a symlink loop"
    with pytest.raises(CheckpointError, match=rf"model.safetensors is {pattern}.*not a weights file"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)


CONFIG_CASES = [
    (dict(n_positions=10 ** 8), r"positions_embed.weight has shape \(32, 32\), the config \(n_positions, n_embd\) asks for \(100000000, 32\)"),
    (dict(vocab_size=10 ** 7), r"tokens_embed.weight has shape \(99, 32\)"),
    (dict(n_embd=4096, n_head=4), r"has shape \(99, 32\), the config \(vocab_size, n_embd\) asks for \(99, 4096\)"),
    (dict(n_layer=7), r"n_layer=7"),
]


@pytest.mark.parametrize("config,pattern", CONFIG_CASES, ids=[f"cfg{i}" for i in range(len(CONFIG_CASES))])
def test_config_compared_with_the_file_before_building(saved_lm, tmp_path, config, pattern):
    folder = _copy_with(saved_lm, tmp_path / "c", config=config)
    with pytest.raises(CheckpointError, match=pattern):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)


def test_integer_weights_are_refused(saved_lm, tmp_path):
    def edit(state):
        state["transformer.h.0.ln_2.bias"] = np.zeros(32, np.int32)
    folder = _copy_with(saved_lm, tmp_path / "int", edit)
    with pytest.raises(CheckpointError, match=r"transformer.h.0.ln_2.bias: .* stores dtype int32, expected floats"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)


_CRAFTED_LOAD = r"""
import json, resource, sys
import tfgpt
from tfgpt.checkpoints.formats import CheckpointError
folder = sys.argv[1]
try:
    tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    print(json.dumps({"error": None}))
except CheckpointError as e:
    print(json.dumps({"error": str(e)}))
model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:  # Linux carries the parent's peak in ru_maxrss over exec; VmHWM is this program's own
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"loaded": int(model.count_params()), "max_rss_mb": peak}))
"""


def _append_huge_unused_tensor(path, n_floats):
    """Rewrite a safetensors file with one more declared F32 tensor of n_floats values whose data is a
    hole in a sparse file (never written, so never read unless the loader reads it)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    header["unused.huge"] = {"dtype": "F32", "shape": [n_floats], "data_offsets": [len(data), len(data) + 4 * n_floats]}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + data)
        f.truncate(8 + len(blob) + len(data) + 4 * n_floats)


def test_crafted_files_cannot_make_the_loader_allocate(saved_lm, tmp_path):
    crafted = _copy_with(saved_lm, tmp_path / "crafted", config={"n_positions": 10 ** 8})
    huge = _copy_with(saved_lm, tmp_path / "huge")
    _append_huge_unused_tensor(huge / "model.safetensors", 2 * 10 ** 9)  # 8 GB declared, unused
    out = subprocess.run([PYTHON, "-c", _CRAFTED_LOAD, str(crafted), str(huge)], capture_output=True, text=True,
                         env=subprocess_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert "n_positions" in lines[0]["error"] and "100000000" in lines[0]["error"]
    assert lines[1]["loaded"] == sum(np.prod(v.shape) for v in load_file(saved_lm / "model.safetensors").values())
    assert lines[1]["max_rss_mb"] < 3000  # 25.6 GB for the config, 8 GB for the unused tensor if read


# --- export --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def serving(models, tmp_path_factory):
    path = tfgpt.export.export_saved_model(models["lm"], tmp_path_factory.mktemp("export") / "gpt" / "1")
    return tf.saved_model.load(path)


SERVING_CASES = [
    ("serving_default", dict(input_ids=[[1, 2, V]]), r"input_ids outside \[0, 99\)"),
    ("serving_default", dict(input_ids=[[1, -2, 3]]), r"input_ids outside"),
    ("serving_default", dict(attention_mask=[[1, 5, 1]]), r"attention_mask must hold only 0"),
    ("serving_default", dict(attention_mask=[[1, 1]]), r"attention_mask shape does not match"),
    ("serving_default", dict(input_ids=np.ones((1, 40)), attention_mask=np.ones((1, 40))), r"n_positions=32"),
    ("serving_int64", dict(input_ids=[[1, 2 ** 32 + 1, 3]]), r"input_ids outside \[0, 99\)"),
    ("serving_int64", dict(input_ids=[[1, 2, 3]], attention_mask=[[1, 1, -1]]), r"attention_mask must hold only 0"),
]


@pytest.mark.parametrize("signature,inputs,pattern", SERVING_CASES, ids=[f"serve{i}" for i in range(len(SERVING_CASES))])
def test_exported_signatures_reject_bad_inputs(serving, signature, inputs, pattern):
    dtype = tf.int64 if signature == "serving_int64" else tf.int32
    args = {"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1, 1]], **inputs}
    fn = serving.signatures[signature]
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
        fn(**{k: tf.constant(np.asarray(v), dtype) for k, v in args.items()})


def test_exported_signature_accepts_good_ids(serving, models):
    out = serving.signatures["serving_default"](input_ids=tf.constant([[1, 2, 3]]), attention_mask=tf.ones((1, 3), tf.int32))
    np.testing.assert_allclose(out["logits"].numpy(), models["lm"](np.array([[1, 2, 3]])).logits.numpy(), atol=1e-4)


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_cli_generate_from_a_checkpoint_with_nan_weights(saved_lm, tmp_path, capsys):
    def edit(state):
        state["transformer.h.0.attn.c_attn.bias"] = np.full_like(state["transformer.h.0.attn.c_attn.bias"], np.nan)
    folder = _copy_with(saved_lm, tmp_path / "nan", edit)
    from tfgpt.cli import main

    code = main(["generate", "--checkpoint", str(folder), "--ids", "1,2,3", "--max-new-tokens", "2"])
    err = capsys.readouterr().err
    assert code != 0
    assert "transformer.h.0.attn.c_attn.bias" in err and "non-finite" in err


@pytest.mark.parametrize("argv,flag", [
    (["generate", "--checkpoint", "x", "--ids", "1,2", "--seed", "abc"], "--seed"),
    (["generate", "--checkpoint", "x", "--ids", "1,2", "--top-p", "nan"], "--top-p"),
    (["generate", "--checkpoint", "x", "--ids", "1,2", "--temperature", "-1"], "--temperature"),
    (["generate", "--checkpoint", "x", "--ids", "1,2", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["generate", "--checkpoint", "x", "--ids", "1,2", "--num-beams", "two"], "--num-beams"),
])
def test_cli_bad_numbers_are_argparse_errors(argv, flag, capsys):
    from tfgpt.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err


def test_cli_generate_ids_outside_the_vocabulary(saved_lm, capsys):
    from tfgpt.cli import main

    code = main(["generate", "--checkpoint", str(saved_lm), "--ids", "1,2,500", "--max-new-tokens", "2"])
    assert code != 0
    assert "input_ids holds 500, outside [0, vocab_size=99)" in capsys.readouterr().err


# --- kill -9 during export --------------------------------------------------------------------------------------

_EXPORT_LOOP = r"""
import sys
import numpy as np, keras
import tfgpt
keras.utils.set_random_seed(0)
cfg = tfgpt.OpenAIGPTConfig(vocab_size=99, n_positions=32, n_embd=32, n_layer=2, n_head=4)
model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
for version in range(1, 1000):
    tfgpt.export.export_saved_model(model, sys.argv[1], version=version)
    print(version, flush=True)
"""


@pytest.mark.slow
def test_kill_during_export_leaves_only_complete_versions(tmp_path):
    base = tmp_path / "gpt"
    proc = subprocess.Popen([PYTHON, "-c", _EXPORT_LOOP, str(base)], stdout=subprocess.PIPE, text=True,
                            env=subprocess_env())
    try:
        proc.stdout.readline()  # the first version is complete
        time.sleep(1.5)  # part-way through a later one
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    versions = sorted(p for p in base.iterdir() if p.name.isdigit())
    assert versions
    for v in versions:  # every visible version loads and answers
        loaded = tf.saved_model.load(str(v))
        out = loaded.signatures["serving_default"](input_ids=tf.constant([[1, 2]]),
                                                   attention_mask=tf.constant([[1, 1]]))
        assert out["logits"].shape == (1, 2, V)
    hidden = [p.name for p in base.iterdir() if not p.name.isdigit()]
    assert all(name.startswith(".tmp-") for name in hidden)  # TF Serving ignores dot folders
