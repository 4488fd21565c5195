"""Beam sampling (num_beams > 1, do_sample=True), HF's ``_beam_search`` with ``do_sample``: the limit
temperature -> 0 is beam search, a seed reproduces a draw, the one-step distribution matches the exact
law of HF's draws without replacement, and num_return_sequences / eos work."""

import itertools

import numpy as np
import pytest

from conftest import HF_FIXTURES, left_pad, tiny_model


@pytest.fixture(scope="module")
def lm():
    import tfgpt

    return tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(HF_FIXTURES / "lm"))


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=1)


ROWS = [[11, 250, 31, 7, 402, 96], [5, 61], [700, 3, 18]]


def test_cold_beam_sampling_is_beam_search(lm):
    ids, mask = left_pad(ROWS)
    for kwargs in (dict(num_beams=3, max_new_tokens=8), dict(num_beams=4, num_return_sequences=2, max_new_tokens=6,
                                                              length_penalty=0.7, eos_token_id=600)):
        beams = lm.generate(ids, attention_mask=mask, **kwargs).numpy()
        for seed in (0, 1, 2):
            cold = lm.generate(ids, attention_mask=mask, do_sample=True, temperature=1e-4, seed=seed, **kwargs)
            np.testing.assert_array_equal(cold.numpy(), beams)


def test_seed_reproduces_and_varies(tiny):
    ids, mask = left_pad([[5, 6, 7, 8], [9, 10]])
    kwargs = dict(attention_mask=mask, max_new_tokens=8, num_beams=3, do_sample=True, num_return_sequences=2)
    a = tiny.generate(ids, seed=7, **kwargs).numpy()
    np.testing.assert_array_equal(tiny.generate(ids, seed=7, **kwargs).numpy(), a)
    draws = {tiny.generate(ids, seed=s, **kwargs).numpy().tobytes() for s in range(6)}
    assert len(draws) > 3  # a warm tiny model spreads its draws
    assert a.shape == (4, 4 + 8)
    np.testing.assert_array_equal(a[:, :4], np.repeat(ids, 2, axis=0))  # prompts, each twice
    assert a[0].tolist() != a[1].tolist() and a[2].tolist() != a[3].tolist()  # two distinct hypotheses


def best_of_two_law(probs):
    """P(the better of two draws without replacement is t) for the distribution ``probs``."""
    law = np.zeros_like(probs)
    support = np.flatnonzero(probs)
    for a, b in itertools.permutations(support, 2):
        p = probs[a] * probs[b] / (1.0 - probs[a])
        law[a if probs[a] >= probs[b] else b] += p
    return law


def test_one_step_law(tiny):
    """num_beams=2, one new token: HF draws 2 * 2 candidates from beam 0 without replacement and
    returns the better of the first two; with top_k=5 and temperature 0.7 the law is exact."""
    prompt = [5, 17, 42, 8]
    logits = tiny(np.array([prompt], np.int32)).logits.numpy()[0, -1].astype(np.float64)
    log_probs = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    warped = log_probs / 0.7
    keep = np.argsort(-warped)[:5]
    probs = np.zeros_like(warped)
    probs[keep] = np.exp(warped[keep] - warped[keep].max())
    probs /= probs.sum()
    law = best_of_two_law(probs)

    n = 4000
    out = tiny.generate(np.array([prompt] * n), max_new_tokens=1, num_beams=2, do_sample=True, top_k=5,
                        temperature=0.7, seed=3).numpy()[:, -1]
    freq = np.bincount(out, minlength=probs.size) / n
    assert set(np.flatnonzero(freq)) <= set(keep.tolist())  # only top-k tokens
    assert 0.5 * np.abs(freq - law).sum() < 0.03  # total variation; its sampling noise is ~0.01


def test_top_p_and_eos(lm):
    ids, mask = left_pad(ROWS)
    out = lm.generate(ids, attention_mask=mask, max_new_tokens=12, num_beams=3, do_sample=True, top_p=0.9,
                      top_k=0, seed=5, eos_token_id=600, pad_token_id=0).numpy()
    assert out.shape[0] == 3 and out.shape[1] <= ids.shape[1] + 12
    for row in out[:, ids.shape[1]:]:
        row = row.tolist()
        if 600 in row:  # after its eos a hypothesis holds the pad id
            assert all(t == 0 for t in row[row.index(600) + 1:])


def test_one_compiled_program_per_bucket(tiny):
    from tfgpt.generation import trace_count

    kwargs = dict(max_new_tokens=5, num_beams=2, do_sample=True)
    tiny.generate(np.array([[5, 6, 7]]), seed=1, **kwargs)
    before = trace_count()
    tiny.generate(np.array([[8, 9, 10, 11]]), seed=2, temperature=0.5, **kwargs)
    assert trace_count() == before


def test_num_return_sequences_bound(tiny):
    with pytest.raises(ValueError, match="num_return_sequences"):
        tiny.generate(np.array([[5, 6]]), max_new_tokens=3, num_beams=2, do_sample=True, num_return_sequences=3)
    with pytest.raises(ValueError, match="temperature"):
        tiny.generate(np.array([[5, 6]]), max_new_tokens=3, num_beams=2, do_sample=True, temperature=0.0)
