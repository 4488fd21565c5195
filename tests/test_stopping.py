"""Stopping criteria: eos, lengths, time, and stop strings matched in-graph with the real GPT-1 tokenizer."""

import time

import numpy as np
import pytest
import tensorflow as tf

from tfgpt.generation.config import GenerationConfig
from tfgpt.generation import stopping as S

TEXT = "Hello world. The cat sat on the mat! Then it ran away, quickly; the end?"
STOPS = ["cat sat", ".", "ran a", "mat!", "e en", "ay"]


@pytest.fixture(scope="module")
def criteria(gpt_tokenizer_session):
    return S.StopStringCriteria(gpt_tokenizer_session, STOPS)


def _reference(token_text, ids, stops, window):
    """HF's rule spelled out on strings: a stop string ends inside the newest token's text."""
    recent = ids[-window:]
    text = "".join(token_text[t] for t in recent)
    newest = len(token_text[recent[-1]])
    for stop in stops:
        start = text.find(stop)
        while start >= 0:
            end = start + len(stop)
            if end > len(text) - newest:
                return True
            start = text.find(stop, start + 1)
    return False


def _buffer(rows, width, extra=2):
    ids = np.zeros((len(rows), width + extra), np.int32)
    valid = np.zeros_like(ids, bool)
    for i, r in enumerate(rows):
        ids[i, width - len(r):width] = r
        valid[i, width - len(r):width] = True
    return tf.constant(ids), tf.constant(valid)


def test_token_strings_read_as_decoded(gpt_tokenizer):
    tokens, indices = S.token_strings(gpt_tokenizer)
    text = dict(zip(indices, tokens))
    ids = gpt_tokenizer.encode("the cat sat")
    assert [text[t] for t in ids] == [" the", " cat", " sat"]
    assert len(tokens) == len(gpt_tokenizer.get_vocab())


def test_stop_strings_match_the_reference_on_every_prefix(gpt_tokenizer, criteria):
    tokens, indices = S.token_strings(gpt_tokenizer)
    text = dict(zip(indices, tokens))
    ids = gpt_tokenizer.encode(TEXT)
    got, want = [], []
    for k in range(1, len(ids) + 1):
        buf, valid = _buffer([ids[:k]], width=k)
        got.append(bool(criteria(buf, None, k, valid=valid).numpy()[0]))
        want.append(_reference(text, ids[:k], STOPS, max(len(s) for s in STOPS)))
    assert got == want
    decoded = [gpt_tokenizer.decode(ids[:k]) for k in range(1, len(ids) + 1)]
    hits = [d for d, g in zip(decoded, got) if g]
    assert hits == ["hello world .", "hello world . the cat sat",
                    "hello world . the cat sat on the mat ! then it ran away",  # "ran a" and "ay"
                    "hello world . the cat sat on the mat ! then it ran away , quickly ; the end"]


def test_stop_string_inside_the_newest_token(gpt_tokenizer):
    crit = S.StopStringCriteria(gpt_tokenizer, "quick")
    ids = gpt_tokenizer.encode("run quickly")  # "quick" ends inside " quickly"
    buf, valid = _buffer([ids], len(ids))
    assert crit(buf, None, len(ids), valid=valid).numpy().tolist() == [True]
    assert crit(buf, None, len(ids) - 1, valid=valid).numpy().tolist() == [False]


def test_stop_strings_batched_left_padded_and_compiled(gpt_tokenizer, criteria):
    ids = gpt_tokenizer.encode(TEXT)
    rows = [ids[:6], ids[:3], ids[:9]]  # ends: "cat sat" (yes), "." (yes), "the mat" (no)
    buf, valid = _buffer(rows, width=9)
    eager = criteria(buf, None, 9, valid=valid).numpy().tolist()
    assert eager == [True, True, False]
    compiled = tf.function(lambda b, v, n: criteria(b, None, n, valid=v), jit_compile=True)
    assert compiled(buf, valid, tf.constant(9)).numpy().tolist() == eager
    # the padding before a row never completes a stop string: "." as left padding before "the cat"
    dot = gpt_tokenizer.encode(".")[0]
    padded = np.array([[dot, dot] + gpt_tokenizer.encode("the cat")], np.int32)
    mask = np.array([[False, False, True, True]])
    crit = S.StopStringCriteria(gpt_tokenizer, ". the cat")
    assert crit(tf.constant(padded), None, 4, valid=tf.constant(mask)).numpy().tolist() == [False]
    assert crit(tf.constant(padded), None, 4).numpy().tolist() == [True]


def test_stop_strings_in_a_saved_model(gpt_tokenizer, criteria, tmp_path):
    module = tf.Module()
    module.criteria = criteria
    module.done = tf.function(
        lambda ids, n: criteria(ids, None, n),
        input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.int32)])
    tf.saved_model.save(module, str(tmp_path / "stop"))
    loaded = tf.saved_model.load(str(tmp_path / "stop"))
    ids = gpt_tokenizer.encode(TEXT)
    rows = tf.constant([ids[:7], ids[1:8]], tf.int32)
    assert loaded.done(rows, tf.constant(6)).numpy().tolist() == [True, False]
    assert loaded.done(rows, tf.constant(7)).numpy().tolist() == [False, False]


def test_eos_and_max_length():
    ids = tf.constant([[5, 2, 0, 0], [5, 7, 0, 0], [5, 3, 0, 0]], tf.int32)
    assert S.EosTokenCriteria(2)(ids, None, 2).numpy().tolist() == [True, False, False]
    assert S.EosTokenCriteria([2, 3])(ids, None, 2).numpy().tolist() == [True, False, True]
    assert S.EosTokenCriteria([2, 3])(ids, None, 1).numpy().tolist() == [False, False, False]
    assert S.MaxLengthCriteria(3)(ids, None, 2).numpy().tolist() == [False] * 3
    assert S.MaxLengthCriteria(3)(ids, None, 3).numpy().tolist() == [True] * 3
    compiled = tf.function(lambda x, n: S.EosTokenCriteria([2, 3])(x, None, n), jit_compile=True)
    assert compiled(ids, tf.constant(2)).numpy().tolist() == [True, False, True]
    with pytest.raises(ValueError, match="eos_token_id"):
        S.EosTokenCriteria([])
    with pytest.raises(ValueError, match="max_length"):
        S.MaxLengthCriteria(0)


def test_max_time_is_host_side():
    ids = tf.zeros([2, 3], tf.int32)
    late = S.MaxTimeCriteria(0.5, initial_timestamp=time.time() - 60)
    fresh = S.MaxTimeCriteria(3600)
    assert late.expired() and not fresh.expired()
    assert late(ids, None, 1).numpy().tolist() == [True, True]
    with pytest.raises(ValueError, match="max_time"):
        tf.function(lambda x: late(x, None, 1))(ids)
    crit = S.StoppingCriteriaList([late, S.EosTokenCriteria(9)])
    assert crit.host_done() is True
    assert tf.function(lambda x: crit(x, None, 1))(ids).numpy().tolist() == [False, False]
    with pytest.raises(ValueError, match="max_time"):
        S.MaxTimeCriteria(0)


def test_list_and_builder(gpt_tokenizer):
    gc = GenerationConfig(max_length=5, max_time=10.0, stop_strings=["cat"], eos_token_id=[2, 3])
    user = lambda ids, scores, cur_len: tf.equal(ids[:, 0], 4)  # noqa: E731
    crit = S.build_stopping_criteria(gc, tokenizer=gpt_tokenizer, stopping_criteria=[user])
    assert [type(c).__name__ for c in crit] == ["MaxLengthCriteria", "MaxTimeCriteria", "StopStringCriteria",
                                                "EosTokenCriteria", "function"]
    assert crit.max_length == 5
    cat = gpt_tokenizer.encode("cat")[0]
    ids = tf.constant([[1, 2, 0, 0, 0], [4, 5, 0, 0, 0], [1, cat, 0, 0, 0], [1, 5, 0, 0, 0]], tf.int32)
    assert crit(ids, None, 2).numpy().tolist() == [True, True, True, False]
    assert crit(ids, None, 5).numpy().tolist() == [True] * 4
    with pytest.raises(ValueError, match="tokenizer"):
        S.build_stopping_criteria(GenerationConfig(stop_strings="x"))
    with pytest.raises(ValueError, match="EosTokenCriteria"):
        S.build_stopping_criteria(gc, tokenizer=gpt_tokenizer, stopping_criteria=[S.EosTokenCriteria(1)])
    with pytest.raises(ValueError, match="stop_strings"):
        S.StopStringCriteria(gpt_tokenizer, [""])
