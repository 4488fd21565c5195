"""``model.generate`` with HF's arguments: every HF PyTorch case on the lm fixture (sequences, first-step
scores, beam scores), the generation config of a checkpoint, processors and stopping criteria inside the
compiled programs (against the slow reference loop of test_processors), dict outputs, argument errors."""

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import GENERATE_FIXTURES, HF_FIXTURES, left_pad, tiny_model
from test_processors import _greedy
import tfgpt
from tfgpt import generation
from tfgpt.generation import processors as P
from tfgpt.generation.config import GenerationConfig
from tfgpt.generation.stopping import StopStringCriteria

DATA = json.loads((GENERATE_FIXTURES / "cases.json").read_text())
EOF_ID = DATA["eos"]
CASES = {c["name"]: c for c in DATA["cases"]}
SEQUENCE_CASES = [n for n in CASES if not n.startswith("warp_") and n != "generation_config_json"]
SCORE_CASES = [n for n, c in CASES.items() if c.get("first_step_finite") is not None]


@pytest.fixture(scope="module")
def lm():
    return tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(HF_FIXTURES / "lm"))


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("lm")


def _inputs(case):
    ids = np.array(case["input_ids"], np.int32)
    mask = None if case["attention_mask"] is None else np.array(case["attention_mask"], np.int32)
    return ids, mask


def _until_eos(row, eos):
    out = []
    for t in row:
        out.append(int(t))
        if t in eos:
            break
    return out


def _same_generation(got, want, width, eos, pad):
    """Rows equal up to the first generated eos; a longer row only adds padding."""
    assert len(got) == len(want)
    for g, w in zip(np.asarray(got).tolist(), want):
        assert g[:width] == w[:width]
        a, b = _until_eos(g[width:], eos), _until_eos(w[width:], eos)
        n = min(len(a), len(b))
        assert a[:n] == b[:n]
        assert all(t == pad for t in a[n:] + b[n:])


@pytest.mark.parametrize("name", SEQUENCE_CASES)
def test_sequences_match_hf(lm, name):
    case = CASES[name]
    ids, mask = _inputs(case)
    out = lm.generate(ids, attention_mask=mask, pad_token_id=case["pad_token_id"], **case["kwargs"])
    if case["kwargs"].get("return_dict_in_generate"):
        out = out.sequences
    eos = set(np.ravel(case["kwargs"].get("eos_token_id", EOF_ID)).tolist()) | {EOF_ID}
    _same_generation(out, case["sequences"], ids.shape[1], eos, case["pad_token_id"])


@pytest.mark.parametrize("name", SCORE_CASES)
def test_first_step_scores_match_hf(lm, name):
    case = CASES[name]
    ids, mask = _inputs(case)
    out = lm.generate(ids, attention_mask=mask, pad_token_id=case["pad_token_id"], seed=0, **case["kwargs"])
    assert isinstance(out, (tfgpt.models.outputs.GenerateDecoderOnlyOutput,
                            tfgpt.models.outputs.GenerateBeamDecoderOnlyOutput))
    first = np.asarray(out.scores[0][0])
    finite = np.flatnonzero(np.isfinite(first))
    assert finite.tolist() == case["first_step_finite"]
    np.testing.assert_allclose(first[finite], case["first_step_values"], atol=1e-4, rtol=0)
    assert len(out.scores) == out.sequences.shape[1] - ids.shape[1]
    if case.get("sequences_scores") is not None:
        np.testing.assert_allclose(out.sequences_scores.numpy(), case["sequences_scores"], atol=1e-4, rtol=0)
        assert out.beam_indices.shape == (1, out.sequences.shape[1] - ids.shape[1])
        assert out.beam_indices.numpy().min() >= 0


def test_generation_config_json_is_the_default(lm):
    case = CASES["generation_config_json"]
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(GENERATE_FIXTURES / "cfgdir"))
    assert model.generation_config.no_repeat_ngram_size == 2
    ids, _ = _inputs(case)
    assert model.generate(ids).numpy().tolist() == case["sequences"]
    # the same options passed explicitly to a model without the file
    explicit = lm.generate(ids, generation_config=GenerationConfig.from_pretrained(GENERATE_FIXTURES / "cfgdir"))
    assert explicit.numpy().tolist() == case["sequences"]


# --- the same properties on another model: the tiny one against the slow reference loop ------------------

PROCESSOR_SETS = [
    dict(no_repeat_ngram_size=2),
    dict(bad_words_ids=[[5], [7, 8]], repetition_penalty=1.4),
    dict(min_new_tokens=4, eos_token_id=3, sequence_bias={(9,): 3.0}),
    dict(suppress_tokens=[1, 2], begin_suppress_tokens=[4], forced_eos_token_id=6),
]


@pytest.mark.parametrize("kwargs", PROCESSOR_SETS, ids=[",".join(k) for k in PROCESSOR_SETS])
def test_processors_in_the_program_match_the_reference_loop(tiny, kwargs):
    ids, mask = left_pad([[11, 12, 13, 11, 12], [40, 41], [7]], pad=0)
    gc = GenerationConfig(max_new_tokens=7, **kwargs)
    eos = list(gc.eos_ids())
    want = _greedy(tiny, ids, mask, P.build_processors(gc, input_length=ids.shape[1]), 7, eos, pad=0)
    got = tiny.generate(ids, attention_mask=mask, max_new_tokens=7, pad_token_id=0, **kwargs).numpy()
    _same_generation(got, want.tolist(), ids.shape[1], set(eos), 0)
    for row in range(len(ids)):  # a left-padded row continues as the row alone
        real = ids[row][mask[row] == 1][None]
        alone = tiny.generate(real, max_new_tokens=7, pad_token_id=0, **kwargs).numpy()[0]
        w = real.shape[1]
        a, b = _until_eos(alone[w:], eos), _until_eos(got[row, ids.shape[1]:], eos)
        assert a == b[:len(a)]


def test_same_bucket_call_with_processors_does_not_retrace(tiny):
    kwargs = dict(max_new_tokens=5, no_repeat_ngram_size=2, min_new_tokens=2, eos_token_id=3)
    tiny.generate([[5, 6, 7]], **kwargs)
    before = generation.trace_count()
    tiny.generate([[9, 8, 7, 6]], **kwargs)
    tiny.generate([[1, 2]], **{**kwargs, "max_new_tokens": 6})
    assert generation.trace_count() == before


def test_basic_options_keep_the_basic_program(tiny):
    greedy = generation.plan_generation(tiny, [[5, 6]], max_new_tokens=3).request.options
    assert greedy == generation.DecodeOptions(mode="greedy")  # the program the benchmarks time
    plan = generation.plan_generation(tiny, [[5, 6]], max_new_tokens=3, do_sample=True, temperature=0.7,
                                      top_p=0.9, repetition_penalty=1.2)
    o = plan.request.options
    assert o.processors is None and o.stopping is None and (o.top_k, o.use_top_p) == (50, True)
    full = generation.plan_generation(tiny, [[5, 6]], max_new_tokens=3, do_sample=True, temperature=0.7,
                                      min_p=0.1)
    names = [type(p).__name__ for p in full.request.options.processors]
    assert names == ["TemperatureLogitsWarper", "TopKLogitsWarper", "MinPLogitsWarper"]
    assert (full.request.options.top_k, full.request.params.temperature) == (0, 1.0)


def test_user_logits_processor_and_stopping_criteria_run_under_xla(tiny):
    ban = lambda input_ids, scores, cur_len: tf.tensor_scatter_nd_update(  # noqa: E731
        scores, [[r, 20] for r in range(2)], [-np.inf] * 2)
    plain = tiny.generate([[5, 6, 7], [8, 9, 10]], max_new_tokens=8).numpy()
    assert tf.config.functions_run_eagerly() is False
    got = tiny.generate([[5, 6, 7], [8, 9, 10]], max_new_tokens=8, logits_processor=[ban]).numpy()
    assert 20 not in got[:, 3:]
    want = _greedy(tiny, [[5, 6, 7], [8, 9, 10]], np.ones((2, 3), np.int32),
                   P.LogitsProcessorList([P.CallableProcessor(ban)]), 8, [])
    assert got.tolist() == want.tolist()

    stop_token = int(plain[0, 5])  # row 0 stops once it emits its third new token
    stop = lambda input_ids, scores, cur_len: tf.gather(input_ids, cur_len - 1, axis=1) == stop_token  # noqa: E731
    out = tiny.generate([[5, 6, 7], [8, 9, 10]], max_new_tokens=8, stopping_criteria=[stop], pad_token_id=0).numpy()
    first = list(plain[0, 3:]).index(stop_token)
    assert out[0, 3:4 + first].tolist() == plain[0, 3:4 + first].tolist()
    assert set(out[0, 4 + first:].tolist()) <= {0}


def test_stop_strings_need_the_tokenizer_and_stop_in_the_program(lm, gpt_tokenizer):
    case = CASES["greedy_30"]
    ids, _ = _inputs(case)
    with pytest.raises(ValueError, match="tokenizer"):
        lm.generate(ids, max_new_tokens=5, stop_strings="x")
    plain = lm.generate(ids, max_new_tokens=12).numpy()[0]
    new = plain[ids.shape[1]:]
    text = gpt_tokenizer.decode(new[2:4].tolist())
    stop = text.strip().split()[-1][-2:]
    out = lm.generate(ids, max_new_tokens=12, stop_strings=stop, tokenizer=gpt_tokenizer, pad_token_id=0).numpy()[0]
    got = out[ids.shape[1]:]
    reference = StopStringCriteria(gpt_tokenizer, stop)
    for n in range(1, len(new) + 1):  # the first prefix the criterion stops on
        buf = tf.constant(new[None, :n].astype(np.int32))
        if bool(reference(buf, None, n)[0]):
            break
    assert got[:n].tolist() == new[:n].tolist() and set(got[n:].tolist()) <= {0}
    assert n < len(new)
    before = generation.trace_count()  # the same stop strings and tokenizer reuse the program
    again = lm.generate(ids, max_new_tokens=12, stop_strings=[stop], tokenizer=gpt_tokenizer, pad_token_id=0)
    assert again.numpy()[0].tolist() == out.tolist() and generation.trace_count() == before


def test_beam_search_stops_on_a_criterion_as_on_eos(tiny):
    """HF's beam search checks the stopping criteria on every candidate and finishes those that meet them
    as those that end with eos: "the newest token is t" searches as eos_token_id=t does."""
    prompts = [[5, 6, 7], [8, 9, 10]]
    plain = tiny.generate(prompts, max_new_tokens=8, num_beams=2).numpy()
    t = int(plain[0, 5])  # the third new token of the first row's best hypothesis
    hit = lambda input_ids, scores, cur_len: tf.gather(input_ids, cur_len - 1, axis=1) == t  # noqa: E731
    got = tiny.generate(prompts, max_new_tokens=8, num_beams=2, stopping_criteria=[hit], pad_token_id=0).numpy()
    want = tiny.generate(prompts, max_new_tokens=8, num_beams=2, eos_token_id=t, pad_token_id=0).numpy()
    assert got.tolist() == want.tolist()
    assert got.tolist() != plain.tolist()


def test_dict_outputs(tiny):
    ids = [[5, 6, 7]]
    out = tiny.generate(ids, max_new_tokens=4, return_dict_in_generate=True, output_scores=True,
                        output_logits=True)
    assert isinstance(out, tfgpt.models.outputs.GenerateDecoderOnlyOutput)
    assert len(out.scores) == len(out.logits) == 4
    np.testing.assert_array_equal(out.sequences.numpy(), tiny.generate(ids, max_new_tokens=4).numpy())
    raw = tiny(np.array(ids), training=False)["logits"][:, -1, :].numpy()
    np.testing.assert_allclose(out.logits[0].numpy(), raw, atol=1e-5)
    assert int(np.argmax(out.scores[1][0])) == int(out.sequences[0, 4])
    beams = tiny.generate(ids, max_new_tokens=4, num_beams=3, num_return_sequences=2, return_dict_in_generate=True,
                          output_scores=True)
    assert isinstance(beams, tfgpt.models.outputs.GenerateBeamDecoderOnlyOutput)
    assert beams.sequences.shape[0] == 2 and beams.sequences_scores.shape == (2,)
    assert beams.scores[0].shape == (3, 99) and beams.beam_indices.shape[0] == 2
    only_ids = tiny.generate(ids, max_new_tokens=4, return_dict_in_generate=True)
    assert list(only_ids.keys()) == ["sequences"]
    attn = tiny.generate(ids, max_new_tokens=2, return_dict_in_generate=True, output_attentions=True)
    assert list(attn.keys()) == ["sequences", "attentions"] and len(attn.attentions) == 2
    with pytest.raises(ValueError, match="output_attentions"):  # not in contrastive search
        tiny.generate(ids, max_new_tokens=2, return_dict_in_generate=True, output_attentions=True,
                      penalty_alpha=0.6, top_k=4)


def test_hf_defaults_and_arguments(tiny):
    with pytest.raises(ValueError, match=r"model_kwargs.*\['frobnicate'\]"):
        tiny.generate([[5, 6]], max_new_tokens=2, frobnicate=3)
    with pytest.raises(ValueError, match="bos_token_id"):
        tiny.generate(max_new_tokens=2)
    assert tiny.generate(max_new_tokens=2, bos_token_id=4).numpy()[0, 0] == 4
    with pytest.raises(ValueError, match="num_return_sequences"):
        tiny.generate([[5, 6]], max_new_tokens=2, num_return_sequences=2)
    with pytest.raises(ValueError, match="max_time.*beam"):  # chunked decoding runs greedy / sampling
        tiny.generate([[5, 6]], max_new_tokens=2, max_time=1.0, num_beams=2)
    plan = generation.plan_generation(tiny, [[5, 6]], max_new_tokens=2, do_sample=True)
    assert plan.request.options.top_k == 50  # HF's default top_k applies when sampling
    sampled = tiny.generate([[5, 6]], max_new_tokens=3, do_sample=True, num_return_sequences=3, seed=1)
    assert sampled.shape == (3, 5)


def test_streamer_protocol(tiny):
    calls = []

    class Recorder:
        def put(self, value):
            calls.append(np.asarray(value).tolist())

        def end(self):
            calls.append("end")

    out = tiny.generate([[5, 6, 7]], max_new_tokens=3, streamer=Recorder()).numpy()
    assert calls == [[[5, 6, 7]]] + [[int(t)] for t in out[0, 3:]] + ["end"]


def test_processors_in_contrastive_search_and_beam_sampling(tiny):
    ids = [[5, 6, 7, 5, 6]]
    plain = tiny.generate(ids, max_new_tokens=6, penalty_alpha=0.5, top_k=4).numpy()[0, 5:]
    banned = sorted(set(plain.tolist()))[:2]
    out = tiny.generate(ids, max_new_tokens=6, penalty_alpha=0.5, top_k=4, suppress_tokens=banned,
                        return_dict_in_generate=True, output_scores=True)
    new = out.sequences.numpy()[0, 5:]
    assert not set(new.tolist()) & set(banned)
    assert len(out.scores) == 6 and np.all(np.isneginf(out.scores[0].numpy()[0, banned]))
    beams = [tiny.generate([[5, 6, 7, 8, 9]], max_new_tokens=5, num_beams=3, do_sample=True, min_p=0.05, seed=4,
                           no_repeat_ngram_size=2).numpy() for _ in range(2)]
    np.testing.assert_array_equal(beams[0], beams[1])
    row = beams[0][0].tolist()
    grams = [tuple(row[i:i + 2]) for i in range(len(row) - 1)]
    assert len(grams) == len(set(grams))  # no bigram twice, prompt included
