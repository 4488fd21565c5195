"""Speculative decoding: prompt lookup and assisted generation give plain greedy's tokens exactly and
keep the sampling distribution; the n-gram lookup follows HF's PromptLookupCandidateGenerator."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model
from tfgpt.generation.speculative import (
    SpeculativeOptions,
    leading_true,
    prompt_lookup_drafts,
    run_speculative,
    speculative_options,
)


@pytest.fixture(scope="module")
def target():
    # Weights at scale 1.0: peaked, varied next-token distributions (scale 0.02 repeats one token).
    return tiny_model(seed=0, n_positions=96, initializer_range=1.0)


@pytest.fixture(scope="module")
def draft():
    return tiny_model(seed=1, n_positions=96, n_layer=1, initializer_range=1.0)


def grounded(seed=0, period=7, repeats=3):
    """A prompt that repeats a random passage: the continuation can copy from it."""
    return np.tile(np.random.default_rng(seed).integers(0, 99, period), repeats)


def hf_prompt_lookup(ids, num_output_tokens, max_matching_ngram_size):
    """HF's PromptLookupCandidateGenerator.get_candidates on one row (numpy port, no max_length)."""
    ids = np.asarray(ids)
    n_in = len(ids)
    for n in range(min(max_matching_ngram_size, n_in - 1), 0, -1):
        windows = np.lib.stride_tricks.sliding_window_view(ids, n)
        matches = np.all(windows == ids[-n:], axis=1)
        for idx in np.nonzero(matches)[0]:
            start, end = idx + n, min(idx + n + num_output_tokens, n_in)
            if start < end:
                return list(ids[start:end])
    return []


def test_prompt_lookup_drafts_match_hf():
    rng = np.random.default_rng(3)
    for trial in range(40):
        K, ngram = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        rows = [list(rng.integers(0, 4, int(rng.integers(1, 14)))) for _ in range(3)]
        width = 20
        length = max(len(r) for r in rows)
        seq = np.full((3, width), 7, np.int32)  # 7 never occurs in the rows: padding and the tail
        start = np.zeros(3, np.int32)
        for b, r in enumerate(rows):  # left-padded to `length`, then unfilled columns
            seq[b, length - len(r):length] = r
            start[b] = length - len(r)
        drafts, counts = prompt_lookup_drafts(tf.constant(seq), tf.constant(start), tf.constant(length), K, ngram)
        for b, r in enumerate(rows):
            want = hf_prompt_lookup(r, K, ngram)
            got = list(drafts.numpy()[b, : int(counts[b])])
            assert got == want, (trial, r, K, ngram)
            assert np.all(drafts.numpy()[b, int(counts[b]):] == 0)


def test_prompt_lookup_drafts_take_the_first_match_and_longest_ngram():
    #            0  1  2  3  4  5  6  7  8  9
    seq = tf.constant([[1, 2, 3, 9, 2, 3, 8, 5, 1, 2, 3]], tf.int32)
    drafts, counts = prompt_lookup_drafts(seq, tf.constant([0]), tf.constant(11), 3, 3)
    assert counts.numpy().tolist() == [3] and drafts.numpy().tolist() == [[9, 2, 3]]  # 3-gram "1 2 3" at 0
    drafts, counts = prompt_lookup_drafts(seq, tf.constant([0]), tf.constant(11), 3, 2)
    assert drafts.numpy().tolist() == [[9, 2, 3]]  # 2-gram "2 3": first at column 1
    seq = tf.constant([[4, 4, 1, 2, 5, 6]], tf.int32)  # "6" never occurred before: no draft
    _, counts = prompt_lookup_drafts(seq, tf.constant([0]), tf.constant(6), 3, 2)
    assert counts.numpy().tolist() == [0]


def test_leading_true():
    x = tf.constant([[True, True, False, True], [False, True, True, True], [True] * 4])
    assert leading_true(x).numpy().tolist() == [2, 0, 4]


@pytest.mark.parametrize("k,ngram,new", [(4, 2, 21), (10, 3, 9)])
def test_prompt_lookup_greedy_is_plain_greedy(target, k, ngram, new):
    ids = grounded()[None]
    plain = target.generate(ids, max_new_tokens=new).numpy()
    fast = target.generate(ids, max_new_tokens=new, prompt_lookup_num_tokens=k,
                           max_matching_ngram_size=ngram).numpy()
    np.testing.assert_array_equal(fast, plain)
    stats = target.last_speculative_stats
    assert stats.new_tokens == new and stats.accepted > 0 and stats.passes < new - 1


def test_prompt_lookup_batched_left_padded_rows_are_plain_greedy(target):
    rows = [list(grounded(0)), list(grounded(1, period=5))[:12], list(grounded(2, period=4, repeats=2)),
            list(np.random.default_rng(9).integers(0, 99, 6))]
    plain = target.generate(rows, max_new_tokens=19).numpy()
    fast = target.generate(rows, max_new_tokens=19, prompt_lookup_num_tokens=5).numpy()
    np.testing.assert_array_equal(fast, plain)
    width = max(len(r) for r in rows)
    for b, r in enumerate(rows):  # the batch continues every row as it continues alone
        alone = target.generate([r], max_new_tokens=19).numpy()[0, len(r):]
        np.testing.assert_array_equal(fast[b, width:], alone)


def test_eos_in_the_middle_is_plain_greedy(target):
    ids = [list(grounded(0)), list(grounded(4, period=6))]
    free = target.generate(ids, max_new_tokens=24).numpy()[:, 21:]
    eos = int(free[0, 6])  # a token row 0 emits mid-way
    plain = target.generate(ids, max_new_tokens=24, eos_token_id=eos, pad_token_id=0).numpy()
    assert plain.shape[1] < 21 + 24 or (plain[:, 21:] == 0).any()  # rows stopped
    for kwargs in (dict(prompt_lookup_num_tokens=4), dict(assistant_model=tiny_model(seed=1, n_positions=96,
                                                                                     n_layer=1,
                                                                                     initializer_range=1.0),
                                                          num_assistant_tokens=3)):
        fast = target.generate(ids, max_new_tokens=24, eos_token_id=eos, pad_token_id=0, **kwargs).numpy()
        np.testing.assert_array_equal(fast, plain)


@pytest.mark.parametrize("schedule", ["constant", "heuristic_transient"])
def test_assisted_greedy_is_plain_greedy(target, draft, schedule):
    rows = [list(grounded(0)), list(grounded(5, period=3))[:10]]
    plain = target.generate(rows, max_new_tokens=27).numpy()
    fast = target.generate(rows, max_new_tokens=27, assistant_model=draft, num_assistant_tokens=4,
                           num_assistant_tokens_schedule=schedule).numpy()
    np.testing.assert_array_equal(fast, plain)
    stats = target.last_speculative_stats
    assert 0 < stats.drafted and stats.accepted <= stats.drafted


def test_assistant_equal_to_the_target_accepts_every_draft(target):
    ids = grounded(1)[None]
    plain = target.generate(ids, max_new_tokens=33).numpy()
    fast = target.generate(ids, max_new_tokens=33, assistant_model=target, num_assistant_tokens=5).numpy()
    np.testing.assert_array_equal(fast, plain)
    stats = target.last_speculative_stats
    assert stats.accepted == stats.drafted > 0
    assert stats.passes == 6  # 32 tokens after the prefill's: five passes of 6, then the last 2


def test_heuristic_schedule_follows_hf(target):
    """HF: +2 after a pass that accepted every draft, -1 otherwise; "heuristic" keeps the count."""
    ids = grounded(1)[None]
    same = tiny_model(seed=0, n_positions=96, initializer_range=1.0)  # the target's weights: all accepted
    target.generate(ids, max_new_tokens=12, assistant_model=same, num_assistant_tokens=2,
                    num_assistant_tokens_schedule="heuristic")
    # 11 tokens after the first: passes draft 2 (+1), 4 (+1), then the last 4 capped by what is left.
    assert target.last_speculative_stats.passes == 3
    assert same.num_assistant_tokens == 4  # capped at the verification width 2 * 2
    other = tiny_model(seed=7, n_positions=96, n_layer=1, initializer_range=1.0)
    target.generate(ids, max_new_tokens=12, assistant_model=other, num_assistant_tokens=3,
                    num_assistant_tokens_schedule="heuristic")
    assert 1 <= other.num_assistant_tokens <= 6


def exact_marginals(model, prompt, temperature):
    """The exact distributions of new tokens 0 and 1 under sampling at ``temperature`` [V], [V]."""
    V = model.config.vocab_size
    logits = model(np.asarray(prompt)[None]).logits.numpy()[0, -1] / temperature
    p0 = np.exp(logits - logits.max())
    p0 /= p0.sum()
    seqs = np.concatenate([np.tile(prompt, (V, 1)), np.arange(V)[:, None]], axis=1)
    logits = model(seqs).logits.numpy()[:, -1] / temperature  # (V, V): next-token logits after each x0
    p1 = np.exp(logits - logits.max(-1, keepdims=True))
    p1 /= p1.sum(-1, keepdims=True)
    return p0, p0 @ p1


def total_variation(samples, p):
    counts = np.bincount(samples, minlength=len(p)) / len(samples)
    return 0.5 * np.abs(counts - p).sum()


@pytest.mark.parametrize("source", ["prompt_lookup", "assistant"])
def test_speculative_sampling_keeps_the_distribution(target, draft, source):
    """Histogram of new tokens 0 and 1 over 3,000 samples (fixed seeds) against the exact marginals."""
    prompt = grounded(2, period=3, repeats=3)
    temperature = 0.7
    p0, p1 = exact_marginals(target, prompt, temperature)
    kwargs = dict(prompt_lookup_num_tokens=3) if source == "prompt_lookup" else dict(
        assistant_model=draft, num_assistant_tokens=3)
    samples, accepted, drafted = [], 0, 0
    for seed in range(10):
        out = target.generate(prompt[None], max_new_tokens=4, do_sample=True, temperature=temperature,
                              num_return_sequences=300, seed=seed, **kwargs).numpy()
        samples.append(out[:, len(prompt):len(prompt) + 2])
        accepted += target.last_speculative_stats.accepted
        drafted += target.last_speculative_stats.drafted
    samples = np.concatenate(samples)
    assert 0 < accepted < drafted  # both the accepted and the rejected branch ran
    plain = target.generate(np.tile(prompt, (3000, 1)), max_new_tokens=2, do_sample=True,
                            temperature=temperature, seed=0).numpy()[:, len(prompt):]
    for i, p in enumerate((p0, p1)):
        # Sampling noise of 3,000 draws over these distributions is about 0.03 here.
        assert total_variation(plain[:, i], p) < 0.07
        assert total_variation(samples[:, i], p) < 0.07, i
    # The bound can fail: always taking the draft (no rejection) is far from p1.
    greedy_like = np.argmax(p1) * np.ones(3000, np.int64)
    assert total_variation(greedy_like, p1) > 0.2


def test_arguments_are_validated(target, draft):
    ids = grounded()[None]
    with pytest.raises(ValueError, match="not both"):
        target.generate(ids, max_new_tokens=4, prompt_lookup_num_tokens=3, assistant_model=draft)
    with pytest.raises(ValueError, match="max_matching_ngram_size needs"):
        target.generate(ids, max_new_tokens=4, max_matching_ngram_size=2)
    with pytest.raises(ValueError, match="num_assistant_tokens needs assistant_model"):
        target.generate(ids, max_new_tokens=4, num_assistant_tokens=3)
    with pytest.raises(ValueError, match="prompt_lookup_num_tokens must be >= 1"):
        target.generate(ids, max_new_tokens=4, prompt_lookup_num_tokens=0)
    with pytest.raises(TypeError, match="prompt_lookup_num_tokens must be an int"):
        target.generate(ids, max_new_tokens=4, prompt_lookup_num_tokens=2.5)
    with pytest.raises(ValueError, match="num_assistant_tokens_schedule"):
        target.generate(ids, max_new_tokens=4, assistant_model=draft, num_assistant_tokens_schedule="fast")
    with pytest.raises(ValueError, match="vocab"):
        target.generate(ids, max_new_tokens=4, assistant_model=tiny_model(vocab_size=50))
    with pytest.raises(ValueError, match="num_beams=1"):
        target.generate(ids, max_new_tokens=4, prompt_lookup_num_tokens=3, num_beams=2)
    with pytest.raises(TypeError, match="assistant_model"):
        target.generate(ids, max_new_tokens=4, assistant_model="gpt")
    with pytest.raises(ValueError, match="num_assistant_tokens_schedule"):
        SpeculativeOptions("assistant", 3, schedule="sometimes")
    assert speculative_options(target) is None


def test_programs_are_reused(target):
    from tfgpt.generation import trace_count

    ids = grounded()[None]
    target.generate(ids, max_new_tokens=10, prompt_lookup_num_tokens=3)
    before = trace_count()
    target.generate(grounded(3)[None], max_new_tokens=12, prompt_lookup_num_tokens=3)
    assert trace_count() == before
    # the same program, called with a prepared request: tokens, steps and the pass count
    from tfgpt.generation import prepare_request

    plain = target.generate(ids, max_new_tokens=10).numpy()[:, ids.shape[1]:]
    before = trace_count()
    tokens, steps, stats = run_speculative(target, prepare_request(target, ids, max_new_tokens=10),
                                           SpeculativeOptions("prompt_lookup", 3))
    assert trace_count() == before
    np.testing.assert_array_equal(tokens.numpy()[:, : int(steps)], plain)
    assert stats.new_tokens == 10 and stats.passes < 9


def test_repetition_penalty_scores_each_drafted_position(target):
    """The processors see the drafts before each verified position, as plain greedy's steps do."""
    ids = grounded(6)[None]
    plain = target.generate(ids, max_new_tokens=20, repetition_penalty=1.3).numpy()
    fast = target.generate(ids, max_new_tokens=20, repetition_penalty=1.3, prompt_lookup_num_tokens=4).numpy()
    np.testing.assert_array_equal(fast, plain)
    assert not np.array_equal(plain, target.generate(ids, max_new_tokens=20).numpy())  # the penalty acts


def test_saved_model_lookup_text_matches_generate_text(gpt_tokenizer_session, tmp_path):
    """The exported ``lookup_text`` signature (and ``generate_text(..., prompt_lookup_num_tokens=)``)
    returns generate_text's texts; out-of-range draft counts are refused."""
    from tfgpt import export

    tok = gpt_tokenizer_session
    lm = tiny_model(seed=3, vocab_size=len(tok), n_positions=64, initializer_range=0.1)
    loaded = tf.saved_model.load(export.export_saved_model(lm, tmp_path / "gpt" / "1", tokenizer=tok))
    assert "lookup_text" in loaded.signatures
    prompts = tf.constant(["the king is dead , the king is dead , long live the king", "hello world hello"])
    want = loaded.signatures["generate_text"](prompts=prompts, max_new_tokens=tf.constant(12))
    for k in (1, 4, 10):
        got = loaded.signatures["lookup_text"](prompts=prompts, max_new_tokens=tf.constant(12),
                                               prompt_lookup_num_tokens=tf.constant(k))
        assert got["texts"].numpy().tolist() == want["texts"].numpy().tolist()
        assert got["completions"].numpy().tolist() == want["completions"].numpy().tolist()
    got = loaded.generate_text(prompts, tf.constant(12), prompt_lookup_num_tokens=tf.constant(3))
    assert got["texts"].numpy().tolist() == want["texts"].numpy().tolist()
    assert loaded.generate_text(prompts, tf.constant(12))["texts"].numpy().tolist() == want["texts"].numpy().tolist()
    # what the in-process model generates, with or without prompt lookup
    rows = [tok.encode(p.decode()) for p in prompts.numpy()]
    ref = lm.generate(rows, max_new_tokens=12, prompt_lookup_num_tokens=4).numpy()
    width = max(len(r) for r in rows)
    assert [tok.decode(row[width:].tolist()) for row in ref] == [c.decode() for c in want["completions"].numpy()]
    for bad in (0, 11):
        with pytest.raises(tf.errors.InvalidArgumentError, match="prompt_lookup_num_tokens"):
            loaded.signatures["lookup_text"](prompts=prompts, max_new_tokens=tf.constant(4),
                                             prompt_lookup_num_tokens=tf.constant(bad))
