"""Chunked decoding: streamers get the prompt and then every step's tokens, the ids equal one
uninterrupted run (greedy, seeded sampling, eos), max_time stops between chunks with a prefix."""

import keras
import numpy as np
import pytest

import tfgpt
from conftest import left_pad, tiny_config
from tfgpt import generation
from tfgpt.generation.streamers import TextIteratorStreamer


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    return tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(n_positions=64, initializer_range=0.2))


class Recorder:
    """A streamer that keeps what it is given."""

    def __init__(self):
        self.puts, self.ends = [], 0

    def put(self, value):
        assert self.ends == 0, "put after end"
        self.puts.append(np.asarray(value))

    def end(self):
        self.ends += 1


ROWS = [[5, 17, 3, 42, 8], [11, 2, 60], [7, 7, 90, 1]]


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_streamed_greedy_equals_one_run(model, chunk):
    ids, mask = left_pad(ROWS)
    want = model.generate(ids, attention_mask=mask, max_new_tokens=19).numpy()
    rec = Recorder()
    got = model.generate(ids, attention_mask=mask, max_new_tokens=19, streamer=rec,
                         stream_chunk_size=chunk).numpy()
    np.testing.assert_array_equal(got, want)
    assert rec.ends == 1 and len(rec.puts) == 1 + 19
    np.testing.assert_array_equal(rec.puts[0], ids)  # the prompt first, [B, S]
    assert all(p.shape == (3,) and p.dtype == np.int32 for p in rec.puts[1:])  # then [B] per step
    np.testing.assert_array_equal(np.stack(rec.puts[1:], axis=1), want[:, ids.shape[1]:])


def test_streamed_sampling_with_a_seed_equals_one_run(model):
    ids, mask = left_pad(ROWS)
    kw = dict(attention_mask=mask, max_new_tokens=21, do_sample=True, top_k=20, temperature=1.3, seed=11)
    want = model.generate(ids, **kw).numpy()
    for chunk in (2, 5):
        rec = Recorder()
        got = model.generate(ids, streamer=rec, stream_chunk_size=chunk, **kw).numpy()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.stack(rec.puts[1:], axis=1), want[:, ids.shape[1]:])
    other = model.generate(ids, streamer=Recorder(), **dict(kw, seed=12)).numpy()
    assert not np.array_equal(other, want)


def test_streamed_eos_pads_finished_rows_and_stops(model):
    ids, mask = left_pad(ROWS)
    free = model.generate(ids, attention_mask=mask, max_new_tokens=12).numpy()[:, 5:]
    eos = [int(free[0, 1]), int(free[1, 3])]  # row 0 stops by step 1, row 1 by step 3
    kw = dict(attention_mask=mask, max_new_tokens=12, eos_token_id=eos, pad_token_id=0)
    want = model.generate(ids, **kw).numpy()
    rec = Recorder()
    got = model.generate(ids, streamer=rec, stream_chunk_size=2, **kw).numpy()
    np.testing.assert_array_equal(got, want)
    streamed = np.stack(rec.puts[1:], axis=1)
    np.testing.assert_array_equal(streamed, want[:, 5:])  # as many steps as the result has columns
    assert streamed[0, 2:].tolist() == [0] * (streamed.shape[1] - 2)  # pad after row 0's eos


def test_text_iterator_streamer_gets_the_decoded_continuation(model, gpt_tokenizer):
    ids = np.array([[5, 17, 3, 42]])
    streamer = TextIteratorStreamer(gpt_tokenizer, skip_prompt=True)
    out = model.generate(ids, max_new_tokens=10, streamer=streamer, stream_chunk_size=4).numpy()
    assert "".join(streamer) == gpt_tokenizer.decode(out[0, 4:].tolist())


def test_streaming_reuses_its_compiled_program(model):
    ids = np.array([[3, 4, 5]])
    model.generate(ids, max_new_tokens=9, streamer=Recorder(), stream_chunk_size=4)
    traces = generation.trace_count()
    model.generate(np.array([[8, 1, 2, 9]]), max_new_tokens=11, streamer=Recorder(), stream_chunk_size=3)
    assert generation.trace_count() == traces  # same buckets: no new trace, whatever the chunk size


def test_max_time_returns_a_prefix_of_the_unbounded_result(model):
    ids, mask = left_pad(ROWS)
    full = model.generate(ids, attention_mask=mask, max_new_tokens=40).numpy()
    short = model.generate(ids, attention_mask=mask, max_new_tokens=40, max_time=1e-9,
                           stream_chunk_size=2).numpy()
    assert ids.shape[1] < short.shape[1] < full.shape[1]  # at least the first token, not all 40
    np.testing.assert_array_equal(short, full[:, :short.shape[1]])
    roomy = model.generate(ids, attention_mask=mask, max_new_tokens=40, max_time=3600.0).numpy()
    np.testing.assert_array_equal(roomy, full)


def test_streaming_argument_errors(model):
    ids = np.array([[3, 4, 5]])
    with pytest.raises(ValueError, match="num_beams"):
        model.generate(ids, max_new_tokens=4, num_beams=2, streamer=Recorder())
    with pytest.raises(ValueError, match="max_time.*beam"):
        model.generate(ids, max_new_tokens=4, num_beams=2, max_time=1.0)
    with pytest.raises(TypeError, match="streamer"):
        model.generate(ids, max_new_tokens=4, streamer=print)
    with pytest.raises(ValueError, match="stream_chunk_size"):
        model.generate(ids, max_new_tokens=4, streamer=Recorder(), stream_chunk_size=0)
    with pytest.raises(ValueError, match="max_time"):
        model.generate(ids, max_new_tokens=4, max_time=0)
    with pytest.raises(ValueError, match="max_time.*contrastive"):
        model.generate(ids, max_new_tokens=4, penalty_alpha=0.5, top_k=3, max_time=1.0)


def test_streaming_with_processors_and_scores_equals_one_run(model):
    ids, mask = left_pad(ROWS)
    kw = dict(attention_mask=mask, max_new_tokens=9, no_repeat_ngram_size=2, min_new_tokens=3,
              return_dict_in_generate=True, output_scores=True)
    want = model.generate(ids, **kw)
    rec = Recorder()
    got = model.generate(ids, streamer=rec, stream_chunk_size=4, **kw)
    np.testing.assert_array_equal(got.sequences.numpy(), want.sequences.numpy())
    assert len(got.scores) == len(want.scores) == 9
    for a, b in zip(got.scores, want.scores):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(np.stack(rec.puts[1:], axis=1), want.sequences.numpy()[:, 5:])


def test_max_time_criteria_in_stopping_criteria(model):
    from tfgpt.generation.stopping import MaxTimeCriteria

    ids = np.array([[5, 17, 3]])
    full = model.generate(ids, max_new_tokens=30).numpy()
    short = model.generate(ids, max_new_tokens=30, stopping_criteria=[MaxTimeCriteria(1e-9)]).numpy()
    assert 3 < short.shape[1] < full.shape[1]
    np.testing.assert_array_equal(short, full[:, :short.shape[1]])
