"""Generation: the compiled, cached decode loop against no-cache references that re-run the full
forward pass each step; padding, buckets and retracing, eos, sampling, beam search, heads, precision,
the command line."""

import contextlib
import dataclasses
import io

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from conftest import GPT_VOCAB, HF_FIXTURES, left_pad, tiny_config
from tfgpt import generation
from tfgpt.generation import processors

NEG = -1.0e9


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    return tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(n_positions=64, initializer_range=0.2))


def prompts(lengths, vocab=99, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, n).tolist() for n in lengths]


# --- no-cache references (eager, full forward pass per step) -----------------------------------------

def last_logits(model, ids, mask):
    out = model(tf.constant(ids), attention_mask=tf.constant(mask), training=False, return_dict=True)
    return out["logits"].numpy()[:, -1, :]


def penalize(logits, seen, penalty):
    logits = logits.copy()
    for row, tokens in enumerate(seen):
        idx = np.array(sorted(tokens))
        s = logits[row, idx]
        logits[row, idx] = np.where(s < 0, s * penalty, s / penalty)
    return logits


def ref_greedy(model, ids, mask, new, eos=(), pad=0, penalty=1.0):
    ids, mask = np.array(ids), np.array(mask)
    done = np.zeros(len(ids), bool)
    for _ in range(new):
        logits = last_logits(model, ids, mask)
        if penalty != 1.0:
            logits = penalize(logits, [set(r[m == 1].tolist()) for r, m in zip(ids, mask)], penalty)
        tok = logits.argmax(-1)
        if eos:
            tok = np.where(done, pad, tok)
            done |= np.isin(tok, eos)
        ids = np.concatenate([ids, tok[:, None]], 1)
        mask = np.concatenate([mask, np.ones_like(tok)[:, None]], 1)
        if eos and done.all():
            break
    return ids


def log_softmax(x):
    x = x.astype(np.float32)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def ref_beam(model, prompt, K, new, eos=(), lp=1.0, early=False, pad=0, penalty=1.0):
    """HF 4.57's beam search for one prompt, written over Python lists with no cache."""
    K2 = max(2, 1 + len(eos)) * K
    running = [[] for _ in range(K)]
    run_scores = np.array([0.0] + [NEG] * (K - 1), np.float32)
    fin = [([], NEG, False)] * K  # (tokens, score, finished)
    unsat = True
    for i in range(new):
        ids = np.array([prompt + r for r in running])
        lp_tok = log_softmax(last_logits(model, ids, np.ones_like(ids)))
        if penalty != 1.0:
            lp_tok = penalize(lp_tok, [set(r.tolist()) for r in ids], penalty)
        lp_tok = lp_tok + run_scores[:, None]
        flat = lp_tok.reshape(-1)
        order = np.argsort(-flat, kind="stable")[:K2]
        cands = [(running[j // lp_tok.shape[1]] + [j % lp_tok.shape[1]], flat[j]) for j in order]
        stop = [(c[-1] in eos) or i + 1 >= new for c, _ in cands]
        run = sorted(range(K2), key=lambda j: -(cands[j][1] + (NEG if stop[j] else 0.0)))[:K]
        running = [cands[j][0] for j in run]
        run_scores = np.array([cands[j][1] + (NEG if stop[j] else 0.0) for j in run], np.float32)
        merged = list(fin)
        for rank, ((seq, score), s) in enumerate(zip(cands, stop)):
            norm = np.float32(score) / np.float32((i + 1) ** lp)
            just = s and rank < K
            if early is True and all(f for _, _, f in fin):
                norm += NEG
            if not unsat:
                norm += NEG
            if not just:
                norm += NEG
            merged.append((seq, norm, just))
        fin = sorted(merged, key=lambda t: -t[1])[:K]
        hyp = new if (early == "never" and lp > 0) else i + 1
        best = run_scores[0] / np.float32(hyp ** lp)
        worst = min(s for _, s, _ in fin)
        unsat = unsat and any(best > (worst if f else NEG) for _, _, f in fin)
        going = unsat and not all(stop) and not (early is True and all(f for _, _, f in fin))
        if not going:
            break
    return [seq for seq, _, _ in fin]


def beam_expected(model, rows, K, new, nrs, **kw):
    pad = kw.get("pad", 0)
    out = []
    for r in rows:
        out += ref_beam(model, r, K, new, **kw)[:nrs]
    width = max(len(s) for s in out)
    ids, _ = left_pad(rows)
    ids = np.repeat(ids, nrs, axis=0)
    gen = np.array([s + [pad] * (width - len(s)) for s in out])
    return np.concatenate([ids, gen], 1)


# --- greedy ------------------------------------------------------------------------------------------

def test_greedy_matches_no_cache_reference_and_reuses_the_program(model):
    p = prompts([5, 7], seed=1)
    out = model.generate([p[0]], max_new_tokens=12)
    assert out.dtype == tf.int32 and out.shape == (1, 17)
    np.testing.assert_array_equal(out.numpy(), ref_greedy(model, [p[0]], [[1] * 5], 12))
    traces = generation.trace_count()
    # another prompt length and new-token count in the same buckets (8, 16): nothing is traced
    out = model.generate(tf.constant([p[1]], tf.int64), max_new_tokens=10)
    assert generation.trace_count() == traces
    np.testing.assert_array_equal(out.numpy(), ref_greedy(model, [p[1]], [[1] * 7], 10))
    # the compiled programs live on the model and are forgotten with it
    assert model._generate_cache
    cache = dict(model._generate_cache)
    model._forget_compiled()
    assert not model._generate_cache
    model._generate_cache.update(cache)


@pytest.mark.parametrize("jit", [False, True])
def test_keys_values_pair_cache_equals_the_single_tensor_cache(model, jit):
    """The (keys, values) [B, H, T, D] cache of batches > 1 gives the [B, 2, H, T, D] cache's states."""
    forward = generation.program.CachedForward(model)
    assert isinstance(forward.empty_cache(1, 8)[0], tf.Tensor)  # batch 1 keeps the single tensor
    pairs = forward.empty_cache(3, 8)
    assert len(pairs) == 2 and [tuple(c.shape) for c in pairs[0]] == [(3, 4, 8, 8)] * 2
    single = tuple(tf.stack(kv, axis=1) for kv in pairs)  # (3, 2, 4, 8, 8)
    ids = tf.constant(prompts([5, 5, 5], seed=3))
    step_ids = tf.constant([[4], [50], [98]])
    mask = tf.constant([[0, 1, 1, 1, 1, 1, 1, 1], [1] * 8, [0, 0, 1, 1, 1, 1, 1, 1]])

    def run(cache):
        hidden, cache = forward.hidden_states(ids, mask, cache, 0)
        step, cache = forward.hidden_states(step_ids, mask, cache, 5)
        return hidden, step, cache

    fn = tf.function(run, jit_compile=True) if jit else run
    h_pair, s_pair, c_pair = fn(pairs)
    h_one, s_one, c_one = fn(single)
    np.testing.assert_allclose(h_pair.numpy(), h_one.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s_pair.numpy(), s_one.numpy(), rtol=1e-6, atol=1e-6)
    for (keys, values), both in zip(c_pair, c_one):
        np.testing.assert_allclose(keys.numpy(), both[:, 0].numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(values.numpy(), both[:, 1].numpy(), rtol=1e-6, atol=1e-6)
        assert np.abs(keys.numpy()[:, :, 6:]).max() == 0  # columns past the step stay empty
        assert np.abs(keys.numpy()[:, :, 5]).max() > 0


def test_fixture_greedy_ids_reproduced():
    m = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF_FIXTURES / "lm")
    g = np.load(HF_FIXTURES / "lm" / "golden.npz")
    out = m.generate(g["greedy_prompt"], max_new_tokens=20)
    np.testing.assert_array_equal(out.numpy(), g["greedy_ids"])
    out = m.generate(g["greedy_prompt"], max_length=25)  # HF's max_length counts the prompt
    np.testing.assert_array_equal(out.numpy(), g["greedy_ids"])


def test_left_padded_batch_rows_equal_rows_alone(model):
    rows = prompts([3, 8, 1, 6], seed=2)
    ids, mask = left_pad(rows, pad=0)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=12).numpy()
    assert out.shape == (4, 8 + 12)
    np.testing.assert_array_equal(out, ref_greedy(model, ids, mask, 12))
    for i, r in enumerate(rows):
        alone = model.generate([r], max_new_tokens=12).numpy()[0]
        np.testing.assert_array_equal(out[i, 8 - len(r):], alone)
    # right padding is left-aligned first: the same continuations, the prompt shifted right
    right = np.zeros_like(ids)
    rmask = np.zeros_like(mask)
    for i, r in enumerate(rows):
        right[i, :len(r)] = r
        rmask[i, :len(r)] = 1
    np.testing.assert_array_equal(model.generate(right, attention_mask=rmask, max_new_tokens=12).numpy(), out)
    # a list of prompts of different lengths is left-padded here
    np.testing.assert_array_equal(model.generate(rows, max_new_tokens=12).numpy(), out)


def test_eos_stops_rows_and_pads(model):
    rows = prompts([3, 8, 1, 6], seed=2)
    ids, mask = left_pad(rows)
    free = model.generate(ids, attention_mask=mask, max_new_tokens=12).numpy()[:, 8:]
    eos = [int(free[0, 2]), int(free[2, 0])]  # row 0 stops at step 2, row 2 at once (at the latest)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=12, eos_token_id=eos,
                         pad_token_id=97).numpy()
    ref = ref_greedy(model, ids, mask, 12, eos=eos, pad=97)
    np.testing.assert_array_equal(out, ref)
    gen = out[:, 8:]
    for row in gen:
        hits = np.flatnonzero(np.isin(row, eos))
        if hits.size:
            assert np.all(row[hits[0] + 1:] == 97)
    # when every row has finished, the loop stops early and the result is trimmed
    first = int(free[0, 0])
    out = model.generate([rows[0]], max_new_tokens=12, eos_token_id=first).numpy()
    np.testing.assert_array_equal(out, [rows[0] + [first]])


def test_repetition_penalty_matches_reference(model):
    p = prompts([6], seed=3)
    out = model.generate(p, max_new_tokens=12, repetition_penalty=1.8).numpy()
    np.testing.assert_array_equal(out, ref_greedy(model, p, [[1] * 6], 12, penalty=1.8))
    assert not np.array_equal(out, model.generate(p, max_new_tokens=12).numpy())


# --- sampling ----------------------------------------------------------------------------------------

def test_sampling_is_reproducible_with_a_seed(model):
    p = prompts([6], seed=4)
    a = model.generate(p, max_new_tokens=12, do_sample=True, seed=11).numpy()
    b = model.generate(p, max_new_tokens=12, do_sample=True, seed=11).numpy()
    c = model.generate(p, max_new_tokens=12, do_sample=True, seed=12).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a temperature near zero is greedy search
    cold = model.generate(p, max_new_tokens=12, do_sample=True, temperature=1e-4, seed=5).numpy()
    np.testing.assert_array_equal(cold, model.generate(p, max_new_tokens=12).numpy())
    # num_return_sequences repeats each prompt (rows sampled independently)
    many = model.generate(p, max_new_tokens=12, do_sample=True, seed=11, num_return_sequences=3).numpy()
    assert many.shape == (3, 18)
    np.testing.assert_array_equal(many[:, :6], np.repeat(np.array(p), 3, axis=0))
    assert len({tuple(r) for r in many[:, 6:].tolist()}) > 1


def allowed_tokens(logits, temperature, top_k, top_p):
    """HF's TopK then TopP warpers on one row of logits: the set of tokens left."""
    x = logits.astype(np.float64) / temperature
    kth = np.sort(x)[-top_k]
    x = np.where(x < kth, -np.inf, x)
    order = np.argsort(x, kind="stable")
    probs = np.exp(x[order] - x.max())
    probs /= probs.sum()
    remove = np.cumsum(probs) <= 1 - top_p
    remove[-1] = False
    keep = np.ones_like(x, bool)
    keep[order[remove]] = False
    return set(np.flatnonzero(keep & np.isfinite(x)).tolist())


def test_top_k_top_p_sample_only_allowed_tokens(model):
    p = prompts([5], seed=5)[0]
    seen_tokens = set()
    for seed in range(12):
        out = model.generate([p], max_new_tokens=6, do_sample=True, temperature=0.8, top_k=5, top_p=0.7,
                             seed=seed).numpy()[0]
        for step in range(5, 11):
            prefix = out[None, :step]
            allowed = allowed_tokens(last_logits(model, prefix, np.ones_like(prefix))[0], 0.8, 5, 0.7)
            assert out[step] in allowed, (seed, step)
            seen_tokens.add(int(out[step]))
    assert len(seen_tokens) > 1  # it does sample



def test_sample_categorical_draws_from_the_softmax():
    """Inverse-CDF draws match softmax's probabilities (3 sigma over 4,000 draws per row), never pick
    a token of probability 0 (-inf, also the last one), and repeat for a repeated seed (under XLA,
    where the decode programs run: TF's eager Philox kernel gives other uniforms)."""
    scores = np.full([2, 7], -np.inf, np.float32)
    scores[0, :4] = [0.0, 1.0, 2.0, -1.0]  # -inf at the end of the row
    scores[1, 2:] = [3.0, 0.5, 0.5, 1.0, 2.0]  # -inf at its start
    probs = tf.nn.softmax(scores).numpy()
    draw = tf.function(generation.sample_categorical, jit_compile=True)
    n = 4000
    counts = np.zeros_like(probs)
    for s in range(n):
        seed = tf.constant([s, 3])
        tokens = draw(tf.constant(scores), seed).numpy()
        if s < 20:
            np.testing.assert_array_equal(tokens, draw(tf.constant(scores), seed).numpy())
        counts[[0, 1], tokens] += 1
    assert counts[probs == 0].sum() == 0
    sigma = np.sqrt(n * probs * (1 - probs))
    assert np.all(np.abs(counts - n * probs) <= 3 * sigma + 1), (counts / n, probs)


@pytest.mark.parametrize("case", ["distinct", "ties at the k-th", "fewer finite than k", "ties inside"])
def test_top_p_among_top_k_is_the_whole_vocabulary_rule(case):
    """The sampler's top-p over the top-k candidates equals HF's rule over the whole row (XLA)."""
    rng = np.random.default_rng(7)
    scores = rng.normal(size=[3, 300]).astype(np.float32) * 2
    if case == "ties at the k-th":
        scores[:, :40] = np.sort(scores, axis=-1)[:, -5:-4]  # many tokens equal to the 5th best
    if case == "ties inside":
        scores = np.round(scores)
    if case == "fewer finite than k":
        scores[1, 3:] = -np.inf
    k, top_p = 8, 0.6
    cut = tf.where(scores < processors.kth_largest(tf.constant(scores), k), -np.inf, scores)
    fast = tf.function(lambda s: processors.top_p_among_top_k(s, top_p, k, 1), jit_compile=True)(cut)
    drop = processors.top_p_drop_mask(cut, top_p, 1)
    np.testing.assert_array_equal(fast.numpy(), tf.where(drop, -np.inf, cut).numpy())
    hinted = processors.TopPLogitsWarper(top_p, candidates=k)(None, cut)  # what generate builds after top-k
    np.testing.assert_array_equal(hinted.numpy(), processors.TopPLogitsWarper(top_p)(None, cut).numpy())
    assert np.isfinite(fast.numpy()).sum(axis=-1).min() >= 1

# --- beam search -------------------------------------------------------------------------------------

@pytest.mark.parametrize("early, lp, use_eos, penalty", [
    (False, 1.0, True, 1.0), (True, 0.5, True, 1.0), ("never", 2.0, False, 1.5)])
def test_beam_search_matches_reference(model, early, lp, use_eos, penalty):
    rows = prompts([4, 7], seed=6)
    ids, mask = left_pad(rows)
    kw = dict(num_beams=3, max_new_tokens=7, length_penalty=lp, early_stopping=early,
              num_return_sequences=2, repetition_penalty=penalty)
    eos = []
    if use_eos:  # tokens the beams like early on, so that hypotheses finish at different lengths
        free = model.generate(ids, attention_mask=mask, max_new_tokens=7, num_beams=3).numpy()[:, 7:]
        eos = sorted({int(free[0, 1]), int(free[1, 2])})
        kw["eos_token_id"] = eos
    out = model.generate(ids, attention_mask=mask, **kw).numpy()
    expected = beam_expected(model, rows, 3, 7, 2, eos=eos, lp=lp, early=early, pad=eos[0] if eos else 0,
                             penalty=penalty)
    np.testing.assert_array_equal(out, expected)


def test_beam_search_with_one_beam_is_greedy_and_argument_errors(model):
    p = prompts([5], seed=7)
    np.testing.assert_array_equal(model.generate(p, max_new_tokens=8, num_beams=1).numpy(),
                                  model.generate(p, max_new_tokens=8).numpy())
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(p, max_new_tokens=8, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="early_stopping"):
        model.generate(p, max_new_tokens=8, num_beams=2, early_stopping="sometimes")


# --- lengths, inputs, errors -------------------------------------------------------------------------

def test_lengths_and_errors(model):
    p = prompts([60], seed=8)[0]
    with pytest.raises(ValueError, match="n_positions=64"):
        model.generate([p], max_new_tokens=5)
    out = model.generate([p], max_new_tokens=4)  # exactly n_positions: the buckets are clipped
    np.testing.assert_array_equal(out.numpy(), ref_greedy(model, [p], [[1] * 60], 4))
    # padding columns do not count against n_positions
    ids, mask = left_pad([p[:10], p[:3]])
    wide = np.concatenate([np.zeros((2, 60), np.int64), ids], 1)
    wmask = np.concatenate([np.zeros((2, 60), np.int64), mask], 1)
    out = model.generate(wide, attention_mask=wmask, max_new_tokens=12).numpy()
    np.testing.assert_array_equal(out[:, 60:], ref_greedy(model, ids, mask, 12))
    with pytest.raises(ValueError, match="max_length"):
        model.generate([p[:5]], max_length=5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate([p[:5]], max_new_tokens=0)
    with pytest.raises(ValueError, match="vocab_size"):
        model.generate([[1, 2, 99]], max_new_tokens=3)
    with pytest.raises(ValueError, match="no real token"):
        model.generate([[1, 2]], attention_mask=[[0, 0]], max_new_tokens=3)
    with pytest.raises(ValueError, match="attention_mask"):
        model.generate([[1, 2]], attention_mask=[[1, 1, 1]], max_new_tokens=3)
    # a 1-D numpy int64 prompt is one row
    one = model.generate(np.array(p[:5], np.int64), max_new_tokens=12)
    np.testing.assert_array_equal(one.numpy(), model.generate([p[:5]], max_new_tokens=12).numpy())


# --- heads and precision -----------------------------------------------------------------------------

def test_double_heads_generates_with_its_lm_head(model):
    dh = tfgpt.TFOpenAIGPTDoubleHeadsModel(model.config)
    src = model.hf_weight_map()
    for name, var in dh.hf_weight_map().items():
        if name in src:
            var.assign(src[name])
    rows = prompts([5, 5, 5, 5], seed=9)
    ids = np.array(rows).reshape(2, 2, 5)  # [B, C, S]
    out = dh.generate(ids, max_new_tokens=12)
    assert out.shape == (2, 2, 17)
    np.testing.assert_array_equal(out.numpy().reshape(4, 17), model.generate(rows, max_new_tokens=12).numpy())


def test_mixed_precision_generation_matches_its_no_cache_reference():
    keras.utils.set_random_seed(3)
    m = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(n_positions=64, initializer_range=0.3),
                                     dtype="mixed_float16")
    assert m.transformer.compute_dtype == "float16"
    p = prompts([6], seed=10)
    out = m.generate(p, max_new_tokens=10).numpy()
    np.testing.assert_array_equal(out, ref_greedy(m, p, [[1] * 6], 10))


# --- the pieces: buckets, requests, special ids, processors ------------------------------------------

def test_in_graph_buckets_equal_python_buckets():
    for npos in (24, 40, 77):
        fn = tf.function(lambda p, n, npos=npos: generation.cache_lengths(p, n, npos))
        for p in range(1, npos):
            for n in range(1, npos - p + 1):
                want = generation.cache_lengths(p, n, npos)
                assert want[0] >= p and want[1] >= n and sum(want) <= npos, (npos, p, n)
                assert tuple(int(v) for v in fn(tf.constant(p), tf.constant(n))) == want, (npos, p, n)
    assert generation.cache_lengths(5, 10, 64) == (8, 16)
    assert generation.cache_lengths(9, 17, 64) == (16, 32)
    assert generation.cache_lengths(60, 4, 64) == (60, 4)  # clipped to n_positions


def test_prepare_request_normalises_the_arguments(model):
    rows = [[5, 6, 7], [8, 9]]
    right = np.array([[5, 6, 7], [8, 9, 0]])
    r = generation.prepare_request(model, right, attention_mask=[[1, 1, 1], [1, 1, 0]], max_new_tokens=5,
                                   do_sample=True, top_k=200, top_p=0.5, seed=2**31 + 4,
                                   eos_token_id=[3, 4], num_return_sequences=2)
    ids, mask = left_pad(rows)
    np.testing.assert_array_equal(r.ids, np.repeat(ids, 2, axis=0))  # left-aligned, each prompt twice
    np.testing.assert_array_equal(r.mask, np.repeat(mask, 2, axis=0))
    assert (r.batch, r.width, r.prompt_len, r.max_new_tokens) == (4, 3, 3, 5)
    assert (r.prompt_bucket, r.new_bucket) == (8, 16)
    assert r.options == generation.DecodeOptions(mode="sample", top_k=99, use_top_p=True, n_eos=2)
    assert r.params == generation.DecodeParams(temperature=1.0, top_p=0.5, repetition_penalty=1.0,
                                               length_penalty=1.0, eos_token_ids=(3, 4), pad_token_id=3,
                                               seed=5)
    bucketed, bmask = r.bucketed_prompts()
    assert bucketed.shape == (4, 8) and bucketed.dtype == np.int32
    np.testing.assert_array_equal(bucketed[:, 5:], r.ids)
    np.testing.assert_array_equal(bmask, np.concatenate([np.zeros((4, 5), np.int32), r.mask], 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.max_new_tokens = 7
    # beams: early_stopping is a beam option; greedy programs do not depend on it
    beam = generation.prepare_request(model, rows[:1], max_length=9, num_beams=3, early_stopping="never")
    assert beam.max_new_tokens == 6
    assert beam.options == generation.DecodeOptions(mode="beam", num_beams=3, early_stopping="never")
    greedy = generation.prepare_request(model, rows[:1], max_new_tokens=3, early_stopping=True)
    assert greedy.options == generation.DecodeOptions()
    with pytest.raises(ValueError, match="mode"):
        generation.DecodeOptions(mode="dola")


def test_special_ids_come_from_the_arguments_then_the_config():
    cfg = tiny_config(eos_token_id=7, pad_token_id=None)
    assert generation.resolve_special_ids(cfg) == ((7,), 7, None)
    assert generation.resolve_special_ids(cfg, eos_token_id=[1, 2], pad_token_id=0) == ((1, 2), 0, 0)
    assert generation.resolve_special_ids(tiny_config(pad_token_id=5)) == ((), 5, 5)
    assert generation.resolve_special_ids(tiny_config()) == ((), 0, None)
    with pytest.raises(ValueError, match="eos_token_id 99 outside"):
        generation.resolve_special_ids(cfg, eos_token_id=99)
    with pytest.raises(ValueError, match="eos_token_id is empty"):
        generation.resolve_special_ids(cfg, eos_token_id=[])


def test_repetition_penalty_processor_reads_only_valid_tokens():
    rng = np.random.default_rng(12)
    scores = rng.normal(size=(2, 11)).astype(np.float32)
    ids = np.array([[4, 4, 1, 2, 0, 0], [9, 3, 3, 5, 6, 0]], np.int32)
    valid = np.array([[0, 0, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], bool)  # padding, then unfilled columns
    got = generation.repetition_penalty(tf.constant(ids), tf.constant(scores), tf.constant(valid), 1.7).numpy()
    want = penalize(scores, [{1, 2, 0}, {9, 3, 5}], 1.7)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    off = generation.ScoreProcessors(generation.DecodeOptions(), generation.DecodeParams().as_tensors())
    np.testing.assert_array_equal(off(ids, tf.constant(scores), 6, valid, [3, 4]).numpy(), scores)


def test_left_pad_ragged_matches_left_padding():
    rows = [[3, 4, 5], [6], [7, 8]]
    ids, mask = generation.left_pad_ragged(tf.ragged.constant(rows, tf.int32), 5)
    want_ids, want_mask = left_pad(rows)  # width 3
    pad = np.zeros((3, 2), np.int32)
    np.testing.assert_array_equal(ids.numpy(), np.concatenate([pad, want_ids], 1))
    np.testing.assert_array_equal(mask.numpy(), np.concatenate([pad, want_mask], 1))


# --- command line ------------------------------------------------------------------------------------

def test_cli_generate_prints_ids_and_text(tmp_path, gpt_tokenizer):
    from tfgpt import cli

    keras.utils.set_random_seed(5)
    m = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(vocab_size=40478, n_positions=64))
    m.save_pretrained(tmp_path / "m")
    p = prompts([5], vocab=40478, seed=11)[0]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["generate", "--checkpoint", str(tmp_path / "m"), "--ids", ",".join(map(str, p)),
                       "--max-new-tokens", "12"])
    assert rc == 0
    printed = [int(t) for t in buf.getvalue().split()]
    assert printed == m.generate([p], max_new_tokens=12).numpy()[0].tolist()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(["generate", "--checkpoint", str(tmp_path / "m"), "--tokenizer", str(tmp_path / "none"),
                       "some text"])
    assert rc == 1 and "tokenizer" in err.getvalue()
    # a text prompt, with OpenAI's vocabulary files as the tokenizer
    text = "the quick brown fox"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["generate", "--checkpoint", str(tmp_path / "m"), "--tokenizer", str(GPT_VOCAB), text,
                       "--max-new-tokens", "6"])
    assert rc == 0
    ids = m.generate([gpt_tokenizer.encode(text)], max_new_tokens=6).numpy()[0].tolist()
    assert buf.getvalue().strip() == gpt_tokenizer.decode(ids).strip()
