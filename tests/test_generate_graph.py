"""generate inside tf.function: HF's XLA pattern and calls from any traced function give eager
generate's ids (padded after eos to S + max_new_tokens), one trace per shape, clear errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from conftest import left_pad, tiny_config
from tfgpt import generation
from tfgpt.models.outputs import GenerateBeamDecoderOnlyOutput


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    return tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(n_positions=64, initializer_range=0.2))


ROWS = [[5, 17, 3, 42, 8], [11, 2, 60], [7, 7, 90, 1]]


def test_xla_generate_equals_eager_and_traces_once_per_shape(model):
    ids, mask = left_pad(ROWS)
    want = model.generate(ids, attention_mask=mask, max_new_tokens=12).numpy()
    xla_generate = tf.function(model.generate, jit_compile=True)
    got = xla_generate(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), max_new_tokens=12)
    assert got.dtype == tf.int32 and got.shape == (3, 5 + 12)
    np.testing.assert_array_equal(got.numpy(), want)
    traces = generation.trace_count()
    other_ids, other_mask = left_pad([[1, 2, 3, 4, 5], [9, 9], [4, 3, 2]])
    again = xla_generate(input_ids=tf.constant(other_ids), attention_mask=tf.constant(other_mask),
                         max_new_tokens=12)
    assert generation.trace_count() == traces and xla_generate.experimental_get_tracing_count() == 1
    np.testing.assert_array_equal(again.numpy(),
                                  model.generate(other_ids, attention_mask=other_mask, max_new_tokens=12).numpy())


def test_sampling_inside_a_tf_function_equals_eager_with_a_tensor_seed(model):
    ids, mask = left_pad(ROWS)
    kw = dict(max_new_tokens=10, do_sample=True, top_k=20, top_p=0.9)

    @tf.function
    def sample(ids, mask, seed):
        return model.generate(ids, attention_mask=mask, seed=seed, **kw)

    for seed in (3, 4):
        want = model.generate(ids, attention_mask=mask, seed=seed, **kw).numpy()
        np.testing.assert_array_equal(sample(tf.constant(ids), tf.constant(mask), tf.constant(seed)).numpy(), want)
    assert sample.experimental_get_tracing_count() == 1  # the seed is a run-time input


def test_symbolic_generate_pads_rows_after_eos(model):
    ids, mask = left_pad(ROWS)
    free = model.generate(ids, attention_mask=mask, max_new_tokens=12).numpy()[:, 5:]
    eos = [int(free[0, 1]), int(free[1, 2]), int(free[2, 3])]  # every row stops by step 3
    kw = dict(max_new_tokens=12, eos_token_id=eos, pad_token_id=0)
    want = model.generate(ids, attention_mask=mask, **kw).numpy()
    assert want.shape[1] < 5 + 12  # eager trims to the last step any row needed
    got = tf.function(lambda i, m: model.generate(i, attention_mask=m, **kw), jit_compile=True)(
        tf.constant(ids), tf.constant(mask)).numpy()
    assert got.shape == (3, 5 + 12)
    np.testing.assert_array_equal(got[:, :want.shape[1]], want)
    assert not got[:, want.shape[1]:].any()  # pad_token_id after


def test_beam_search_inside_a_tf_function_equals_eager(model):
    ids = np.array([[5, 17, 3], [11, 2, 60]])
    kw = dict(max_new_tokens=8, num_beams=3, num_return_sequences=2)
    want = model.generate(ids, **kw).numpy()
    got = tf.function(lambda i: model.generate(i, **kw), jit_compile=True)(tf.constant(ids)).numpy()
    np.testing.assert_array_equal(got, want)


def test_symbolic_generate_errors_name_the_argument(model):
    ids = tf.constant([[3, 4, 5]])
    with pytest.raises(TypeError, match="max_new_tokens"):
        tf.function(lambda i, n: model.generate(i, max_new_tokens=n))(ids, tf.constant(4))
    with pytest.raises(ValueError, match="unknown length.*max_new_tokens"):
        tf.function(lambda i: model.generate(i),
                    input_signature=[tf.TensorSpec([None, None], tf.int32)]).get_concrete_function()
    with pytest.raises(ValueError, match="known rank"):
        tf.function(lambda i: model.generate(i, max_new_tokens=4),
                    input_signature=[tf.TensorSpec(None, tf.int32)]).get_concrete_function()
    with pytest.raises(ValueError, match="output_scores"):
        tf.function(lambda i: model.generate(i, max_new_tokens=4, return_dict_in_generate=True,
                                             output_scores=True))(ids)
    with pytest.raises(ValueError, match="streamer"):
        tf.function(lambda i: model.generate(i, max_new_tokens=4, streamer=object()))(ids)
    with pytest.raises(ValueError, match="n_positions"):
        tf.function(lambda i: model.generate(i, max_new_tokens=64))(ids)


def test_processors_and_bos_start_inside_a_tf_function(model):
    ids, mask = left_pad(ROWS)
    kw = dict(max_new_tokens=10, no_repeat_ngram_size=2, repetition_penalty=1.5)
    want = model.generate(ids, attention_mask=mask, **kw).numpy()
    got = tf.function(lambda i, m: model.generate(i, attention_mask=m, **kw), jit_compile=True)(
        tf.constant(ids), tf.constant(mask)).numpy()
    np.testing.assert_array_equal(got, want)
    start = tf.function(lambda: model.generate(max_new_tokens=6, bos_token_id=4))().numpy()
    np.testing.assert_array_equal(start, model.generate(max_new_tokens=6, bos_token_id=4).numpy())


def padded(rows, width):
    """``left_pad`` to ``width`` columns."""
    ids, mask = left_pad(rows)
    extra = [[0, 0], [width - ids.shape[1], 0]]
    return np.pad(ids, extra), np.pad(mask, extra)


DYNAMIC = {"batch": [None, 5], "length": [3, None], "both": [None, None]}


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "plain"])
@pytest.mark.parametrize("dims", list(DYNAMIC))
def test_dynamic_batch_and_length_equal_eager(model, dims, jit):
    ids, mask = left_pad(ROWS)
    spec = [tf.TensorSpec(DYNAMIC[dims], tf.int32)] * 2
    greedy, sample = dict(max_new_tokens=7), dict(max_new_tokens=7, do_sample=True, top_k=20, seed=5)
    for kw in (greedy, sample):
        want = model.generate(ids, attention_mask=mask, **kw).numpy()
        run = tf.function(lambda i, m: model.generate(i, attention_mask=m, **kw), input_signature=spec,
                          jit_compile=jit)
        got = run(tf.constant(ids, tf.int32), tf.constant(mask, tf.int32))
        assert got.dtype == tf.int32
        np.testing.assert_array_equal(got.numpy(), want)
    if dims != "length":  # the same trace serves another batch size
        run = tf.function(lambda i, m: model.generate(i, attention_mask=m, **greedy), input_signature=spec,
                          jit_compile=jit)
        for rows in (ROWS[:1], ROWS):
            ids, mask = padded(rows, 5)
            np.testing.assert_array_equal(run(tf.constant(ids, tf.int32), tf.constant(mask, tf.int32)).numpy(),
                                          model.generate(ids, attention_mask=mask, **greedy).numpy())
        assert run.experimental_get_tracing_count() == 1


def test_dynamic_length_beam_search_and_return_dict(model):
    ids, mask = left_pad(ROWS)
    kw = dict(max_new_tokens=6, num_beams=3, num_return_sequences=2)
    want = model.generate(ids, attention_mask=mask, return_dict_in_generate=True, **kw)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2, jit_compile=True)
    def run(i, m):
        out = model.generate(i, attention_mask=m, return_dict_in_generate=True, **kw)
        assert isinstance(out, GenerateBeamDecoderOnlyOutput) and list(out) == ["sequences"]
        return out["sequences"]

    np.testing.assert_array_equal(run(tf.constant(ids, tf.int32), tf.constant(mask, tf.int32)).numpy(),
                                  want.sequences.numpy())
    for width in (6, 9):  # other run-time lengths, the same trace
        ids, mask = padded(ROWS, width)
        np.testing.assert_array_equal(run(tf.constant(ids, tf.int32), tf.constant(mask, tf.int32)).numpy(),
                                      model.generate(ids, attention_mask=mask, **kw).numpy())
    assert run.experimental_get_tracing_count() == 1
