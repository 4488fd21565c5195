"""Logits processors: HF PyTorch's first-step scores and greedy sequences on the lm fixture, XLA, left padding."""

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import GENERATE_FIXTURES, HF_FIXTURES
from tfgpt.generation.config import GenerationConfig
from tfgpt.generation import processors as P

CASES = json.loads((GENERATE_FIXTURES / "cases.json").read_text())["cases"]
BY_NAME = {c["name"]: c for c in CASES}
SCORE_CASES = [c["name"] for c in CASES if c.get("first_step_finite") is not None]
# greedy cases (no beams, no sampling) whose sequences the processors alone decide
GREEDY_CASES = ["greedy_30", "no_repeat_ngram_2", "repetition_penalty_1.3", "eos_stops_early",
                "min_new_tokens_10", "bad_words", "left_padded_batch_no_repeat_2"]


@pytest.fixture(scope="module")
def lm():
    import tfgpt

    return tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(HF_FIXTURES / "lm"))


def _config(case, **extra):
    kwargs = {k: v for k, v in case["kwargs"].items()}
    kwargs.update(extra)
    return GenerationConfig(**kwargs)


def _last_logits(model, ids, mask):
    out = model(tf.constant(ids), attention_mask=tf.constant(mask), training=False)["logits"]
    return out[:, -1, :]  # left-padded rows: the last column is each row's last real token


def _greedy(model, ids, mask, procs, max_new, eos, pad=0):
    """Greedy decoding through ``procs`` on a static buffer (full forward pass per step)."""
    ids = np.asarray(ids, np.int32)
    mask = np.asarray(mask, np.int32)
    batch, width = ids.shape
    buf = np.concatenate([ids, np.zeros((batch, max_new), np.int32)], 1)
    valid = np.concatenate([mask, np.zeros((batch, max_new), np.int32)], 1).astype(bool)
    done = np.zeros(batch, bool)
    prompt_len = mask.sum(1).astype(np.int32)
    for step in range(max_new):
        cur = width + step
        logits = _last_logits(model, buf[:, :cur], valid[:, :cur].astype(np.int32))
        state = P.DecodeState(tf.constant(buf), tf.constant(valid), tf.constant(cur, tf.int32),
                              tf.constant(prompt_len))
        nxt = np.argmax(procs(state, logits).numpy(), axis=-1).astype(np.int32)
        nxt = np.where(done, pad, nxt)
        buf[:, cur] = nxt
        valid[:, cur] = True
        done |= np.isin(nxt, eos)
        if done.all():
            return buf[:, :cur + 1]
    return buf


def _until_eos(row, eos):
    row = list(row)
    for i, t in enumerate(row):
        if t in eos:
            return row[:i + 1]
    return row


# --- HF's numbers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCORE_CASES)
def test_first_step_scores_match_hf(lm, name):
    case = BY_NAME[name]
    ids = np.array(case["input_ids"], np.int32)
    gc = _config(case)
    procs = P.build_processors(gc, input_length=ids.shape[1])
    scores = _last_logits(lm, ids, np.ones_like(ids))
    if gc.num_beams > 1:  # HF's beam search processes log-probabilities
        scores = tf.nn.log_softmax(scores, axis=-1)
    state = P.DecodeState.from_prompt(ids)
    compiled = tf.function(lambda st, sc: procs(st, sc), jit_compile=True)
    for out in (procs(state, scores).numpy()[0], compiled(state, scores).numpy()[0]):
        finite = np.flatnonzero(np.isfinite(out))
        assert finite.tolist() == case["first_step_finite"]
        np.testing.assert_allclose(out[finite], case["first_step_values"], atol=1e-4, rtol=0)
        assert np.all(out[~np.isfinite(out)] == -np.inf)


def test_builder_order_and_kinds():
    gc = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9, min_p=0.1, typical_p=0.9,
                          epsilon_cutoff=0.01, eta_cutoff=0.01, repetition_penalty=1.1, no_repeat_ngram_size=3,
                          bad_words_ids=[[5]], min_length=4, eos_token_id=[2, 3], forced_bos_token_id=1,
                          forced_eos_token_id=2, max_new_tokens=7, suppress_tokens=[9],
                          begin_suppress_tokens=[8], renormalize_logits=True, remove_invalid_values=True,
                          exponential_decay_length_penalty=(3, 1.1))
    user = lambda ids, scores, cur_len: scores  # noqa: E731
    names = [type(p).__name__ for p in P.build_processors(gc, logits_processor=[user])]
    assert names == ["RepetitionPenaltyLogitsProcessor", "NoRepeatNGramLogitsProcessor",
                     "NoBadWordsLogitsProcessor", "MinLengthLogitsProcessor", "ForcedBOSTokenLogitsProcessor",
                     "ForcedEOSTokenLogitsProcessor", "InfNanRemoveLogitsProcessor",
                     "ExponentialDecayLengthPenalty", "SuppressTokensLogitsProcessor",
                     "SuppressTokensAtBeginLogitsProcessor", "CallableProcessor", "TemperatureLogitsWarper",
                     "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper", "TypicalLogitsWarper",
                     "EpsilonLogitsWarper", "EtaLogitsWarper", "LogitNormalization"]
    beams = P.build_processors(GenerationConfig(do_sample=True, num_beams=3, eos_token_id=[2, 3]))
    assert [(type(p).__name__, p.top_k) for p in beams] == [("TopKLogitsWarper", 50)]
    assert P.build_processors(GenerationConfig(do_sample=True, num_beams=3, top_k=1))[0].top_k == 2
    assert P.build_processors(GenerationConfig()) == []
    # HF replaces min_length by min_new_tokens + prompt length: per row that is the min_new_tokens test
    both = P.build_processors(GenerationConfig(min_length=30, min_new_tokens=3, eos_token_id=2))
    assert [(type(p).__name__, p.min_new_tokens) for p in both] == [("MinNewTokensLengthLogitsProcessor", 3)]
    assert P.build_processors(GenerationConfig(min_length=30)) == []  # no eos: nothing to hold back
    forced = P.build_processors(GenerationConfig(max_length=12, forced_eos_token_id=[2, 3]), input_length=5)
    assert (forced[0].max_new_tokens, forced[0].eos_token_id) == (7, [2, 3])
    begin = P.build_processors(GenerationConfig(forced_bos_token_id=1, begin_suppress_tokens=[4]))
    assert begin[1].after_forced_bos is True


def test_builder_refuses_unsupported_and_duplicates():
    with pytest.raises(ValueError, match="diversity_penalty"):
        P.build_processors(GenerationConfig(num_beams=4, num_beam_groups=2, diversity_penalty=0.5))
    with pytest.raises(ValueError, match="encoder_repetition_penalty"):
        P.build_processors(GenerationConfig(encoder_repetition_penalty=1.2))
    with pytest.raises(ValueError, match="RepetitionPenaltyLogitsProcessor"):
        P.build_processors(GenerationConfig(repetition_penalty=1.2),
                           logits_processor=[P.RepetitionPenaltyLogitsProcessor(1.5)])
    with pytest.raises(ValueError, match="forced_eos_token_id"):
        P.build_processors(GenerationConfig(forced_eos_token_id=3))


@pytest.mark.parametrize("name", GREEDY_CASES)
def test_greedy_sequences_match_hf(lm, name):
    case = BY_NAME[name]
    ids = np.array(case["input_ids"], np.int32)
    mask = np.ones_like(ids) if case["attention_mask"] is None else np.array(case["attention_mask"], np.int32)
    gc = _config(case)
    eos = list(gc.eos_ids())
    out = _greedy(lm, ids, mask, P.build_processors(gc, input_length=ids.shape[1]),
                  gc.max_new_tokens, eos, pad=case["pad_token_id"])
    for row, want in zip(out.tolist(), case["sequences"]):
        w = ids.shape[1]
        assert _until_eos(row[w:], eos) == _until_eos(want[w:], eos)


def test_generation_config_json_sequence(lm):
    case = BY_NAME["generation_config_json"]
    gc = GenerationConfig.from_pretrained(GENERATE_FIXTURES / "cfgdir")
    ids = np.array(case["input_ids"], np.int32)
    out = _greedy(lm, ids, np.ones_like(ids), P.build_processors(gc), gc.max_new_tokens, [])
    assert out.tolist() == case["sequences"]


# --- each processor: values, XLA, left padding ----------------------------------------------------------

V = 16
PROMPT = [7, 8, 3, 7]
GENERATED = [8, 3]


def _processors():
    return {
        "repetition": P.RepetitionPenaltyLogitsProcessor(1.3),
        "ngram2": P.NoRepeatNGramLogitsProcessor(2),
        "ngram3": P.NoRepeatNGramLogitsProcessor(3),
        "ngram7": P.NoRepeatNGramLogitsProcessor(7),
        "bad_words": P.NoBadWordsLogitsProcessor([[5], [3, 6], [8, 3, 2], [7, 8, 3, 4], [1, 8, 3, 10]]),
        "bias": P.SequenceBiasLogitsProcessor([[[3, 11], 2.5], [[4], -1.0], [[7, 8, 3, 12], 1.5]]),
        "min_length": P.MinLengthLogitsProcessor(7, [9]),
        "min_new": P.MinNewTokensLengthLogitsProcessor(3, [9, 10]),
        "forced_bos": P.ForcedBOSTokenLogitsProcessor(4),
        "forced_eos": P.ForcedEOSTokenLogitsProcessor(3, [9]),
        "suppress": P.SuppressTokensLogitsProcessor([1, 2]),
        "inf_nan": P.InfNanRemoveLogitsProcessor(),
        "decay": P.ExponentialDecayLengthPenalty((1, 1.5), [9, 10]),
        "begin_suppress": P.SuppressTokensAtBeginLogitsProcessor([3]),
        "temperature": P.TemperatureLogitsWarper(0.7),
        "top_k": P.TopKLogitsWarper(5),
        "top_p": P.TopPLogitsWarper(0.8),
        "min_p": P.MinPLogitsWarper(0.3),
        "typical": P.TypicalLogitsWarper(0.8),
        "epsilon": P.EpsilonLogitsWarper(0.05),
        "eta": P.EtaLogitsWarper(0.05),
        "normalize": P.LogitNormalization(),
        "callable": P.CallableProcessor(
            lambda ids, scores, cur_len: scores + tf.cast(cur_len, tf.float32) * 0.5),
    }


def _scores(batch=1):
    rng = np.random.default_rng(0)
    return rng.normal(size=(batch, V)).astype(np.float32) * 2.0


def _state(rows, width, extra=3):
    """Buffer of ``rows`` (prompt, generated) left-padded to a prompt ``width``, ``extra`` unwritten slots."""
    n_gen = len(rows[0][1])
    ids = np.zeros((len(rows), width + n_gen + extra), np.int32)
    valid = np.zeros_like(ids, bool)
    for i, (prompt, gen) in enumerate(rows):
        ids[i, width - len(prompt):width] = prompt
        ids[i, width:width + n_gen] = gen
        valid[i, width - len(prompt):width + n_gen] = True
    ids[:, width + n_gen:] = 13  # unwritten slots hold junk that must not count
    return P.DecodeState(tf.constant(ids), tf.constant(valid), tf.constant(width + n_gen, tf.int32),
                         tf.constant([len(p) for p, _ in rows], tf.int32))


def _banned(out):
    return sorted(np.flatnonzero(np.isneginf(out)).tolist())


def test_processor_values():
    procs = _processors()
    s = _scores()
    state = _state([(PROMPT, GENERATED)], width=len(PROMPT))
    run = lambda k, st=state, sc=s: procs[k](st, tf.constant(sc)).numpy()[0]  # noqa: E731
    rep = run("repetition")
    seen = {7, 8, 3}
    for v in range(V):
        want = s[0, v] if v not in seen else (s[0, v] * 1.3 if s[0, v] < 0 else s[0, v] / 1.3)
        assert rep[v] == pytest.approx(want, abs=1e-6)
    assert _banned(run("ngram2")) == [7]  # "3 7" already occurred after the last token 3
    assert _banned(run("ngram3")) == [7]  # "8 3 7"
    assert _banned(run("ngram7")) == []  # the row is shorter than a 7-gram
    assert _banned(run("bad_words")) == [2, 4, 5, 6]
    bias = run("bias") - s[0]
    assert bias[11] == pytest.approx(2.5) and bias[4] == pytest.approx(-1.0) and bias[12] == pytest.approx(1.5)
    assert np.count_nonzero(np.abs(bias) > 1e-6) == 3
    assert _banned(run("min_length")) == [9]  # 6 tokens < 7
    assert _banned(run("min_new")) == [9, 10]  # 2 new tokens < 3
    forced = run("forced_eos")  # the 3rd new token is the last one
    assert _banned(forced) == [v for v in range(V) if v != 9] and forced[9] == 0.0
    assert _banned(run("forced_bos")) == []
    assert _banned(run("suppress")) == [1, 2]
    decay = run("decay")  # 2 new tokens, 1 past start_index: eos scores + |score| * (1.5 - 1)
    np.testing.assert_allclose(decay[[9, 10]], s[0, [9, 10]] + np.abs(s[0, [9, 10]]) * 0.5, rtol=1e-6)
    assert np.array_equal(np.delete(decay, [9, 10]), np.delete(s[0], [9, 10]))
    assert np.array_equal(run("decay", _state([(PROMPT, [8])], width=4)), s[0])  # not past start_index yet
    odd = np.array([[np.nan, np.inf, -np.inf, 1.5]], np.float32)
    np.testing.assert_array_equal(procs["inf_nan"](state, tf.constant(odd)).numpy(),
                                  [[0.0, np.finfo(np.float32).max, np.finfo(np.float32).min, 1.5]])
    assert _banned(run("begin_suppress")) == []  # tokens were already generated
    np.testing.assert_allclose(run("temperature"), s[0] / 0.7, rtol=1e-6)
    top = run("top_k")
    assert sorted(np.flatnonzero(np.isfinite(top)).tolist()) == sorted(np.argsort(-s[0])[:5].tolist())
    np.testing.assert_allclose(run("normalize"), tf.nn.log_softmax(s[0]).numpy(), atol=1e-6)
    np.testing.assert_allclose(run("callable"), s[0] + 3.0, atol=1e-6)  # cur_len = 6

    probs = np.exp(s[0] - s[0].max()) / np.exp(s[0] - s[0].max()).sum()
    order = np.argsort(-probs)
    cum = np.cumsum(probs[order])
    nucleus = order[:int(np.searchsorted(cum, 0.8) + 1)]
    assert sorted(np.flatnonzero(np.isfinite(run("top_p"))).tolist()) == sorted(nucleus.tolist())
    assert sorted(np.flatnonzero(np.isfinite(run("min_p"))).tolist()) == \
        np.flatnonzero(probs >= 0.3 * probs.max()).tolist()
    assert np.flatnonzero(np.isfinite(run("epsilon"))).tolist() == np.flatnonzero(probs >= 0.05).tolist()
    entropy = -(probs * np.log(probs)).sum()
    eta = min(0.05, np.sqrt(0.05) * np.exp(-entropy))
    assert np.flatnonzero(np.isfinite(run("eta"))).tolist() == np.flatnonzero(probs >= eta).tolist()

    first = _state([(PROMPT, [])], width=len(PROMPT))  # before the first generated token
    assert _banned(run("begin_suppress", first)) == [3]
    single = _state([([5], [])], width=1)
    bos = run("forced_bos", single)
    assert _banned(bos) == [v for v in range(V) if v != 4] and bos[4] == 0.0


@pytest.mark.parametrize("name", sorted(_processors()))
def test_processor_under_xla_matches_eager(name):
    proc = _processors()[name]
    state = _state([(PROMPT, GENERATED), ([2, 9, 8], [3, 7])], width=5)
    scores = tf.constant(_scores(batch=2))
    eager = proc(state, scores).numpy()
    traces = []

    def fn(st, sc):
        traces.append(1)
        return proc(st, sc)

    compiled = tf.function(fn, jit_compile=True)
    np.testing.assert_allclose(compiled(state, scores).numpy(), eager, atol=1e-5)
    # a different cur_len reuses the trace and is not a Python constant inside it
    later = state._replace(cur_len=state.cur_len + 1, valid=tf.concat(
        [state.valid[:, :7], tf.ones([2, 1], tf.bool), state.valid[:, 8:]], axis=1))
    np.testing.assert_allclose(compiled(later, scores).numpy(), proc(later, scores).numpy(), atol=1e-5)
    assert len(traces) == 1


def test_buffer_of_unknown_length():
    """Inside a SavedModel signature the buffer length may be unknown when tracing."""
    procs = P.LogitsProcessorList([P.NoRepeatNGramLogitsProcessor(2), P.NoBadWordsLogitsProcessor([[8, 3, 2]]),
                                   P.RepetitionPenaltyLogitsProcessor(1.3)])
    fn = tf.function(lambda ids, valid, cur, plen, sc: procs(P.DecodeState(ids, valid, cur, plen), sc),
                     input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.bool),
                                      tf.TensorSpec([], tf.int32), tf.TensorSpec([None], tf.int32),
                                      tf.TensorSpec([None, V], tf.float32)])
    state = _state([(PROMPT, GENERATED)], width=4)
    s = tf.constant(_scores())
    np.testing.assert_allclose(fn(*state, s).numpy(), procs(state, s).numpy(), atol=1e-6)
    short = _state([([3], [])], width=1, extra=0)  # shorter than any n-gram
    np.testing.assert_allclose(fn(*short, s).numpy(), procs(short, s).numpy(), atol=1e-6)


@pytest.mark.parametrize("name", sorted(_processors()))
def test_left_padded_row_matches_row_alone(name):
    proc = _processors()[name]
    s = _scores(batch=2)
    alone = proc(_state([(PROMPT, GENERATED)], width=len(PROMPT)), tf.constant(s[:1])).numpy()[0]
    batch = proc(_state([([1, 2, 9, 5, 11, 12], [4, 4]), (PROMPT, GENERATED)], width=6),
                 tf.constant(np.stack([s[1], s[0]]))).numpy()[1]
    if name == "callable":  # user processors see the raw buffer: cur_len counts the padding
        np.testing.assert_allclose(batch - alone, 1.0, atol=1e-5)
    else:
        np.testing.assert_allclose(batch, alone, atol=1e-6)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="repetition_penalty"):
        P.RepetitionPenaltyLogitsProcessor(0.0)
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        P.NoRepeatNGramLogitsProcessor(0)
    with pytest.raises(ValueError, match="bad_words_ids"):
        P.NoBadWordsLogitsProcessor([5])
    with pytest.raises(ValueError, match="bad_words_ids"):
        P.NoBadWordsLogitsProcessor([[-1]])
    with pytest.raises(ValueError, match="temperature"):
        P.TemperatureLogitsWarper(0.0)
    with pytest.raises(ValueError, match="top_p"):
        P.TopPLogitsWarper(1.5)
    with pytest.raises(ValueError, match="typical_p"):
        P.TypicalLogitsWarper(1.0)
    with pytest.raises(ValueError, match="top_k"):
        P.TopKLogitsWarper(0)
    with pytest.raises(ValueError, match="suppress_tokens"):
        P.SuppressTokensLogitsProcessor([99])(_state([(PROMPT, GENERATED)], 4), tf.constant(_scores()))
    with pytest.raises(TypeError, match="callable"):
        P.CallableProcessor(3)
    # HF drops a lone eos from bad words; nothing left to ban is an error, as in HF
    assert P.NoBadWordsLogitsProcessor([[9], [9, 9]], eos_token_id=9).bad_words_ids == [[9, 9]]
    with pytest.raises(ValueError, match="sequence_bias"):
        P.NoBadWordsLogitsProcessor([[9]], eos_token_id=9)
