"""Contrastive search (penalty_alpha > 0, top_k > 1): the cached XLA program against a no-cache NumPy
reference of the same algorithm (token-exact, left padding and eos included), against HF's formula on
the HF fixture checkpoint, and its argument checks."""

import json

import numpy as np
import pytest

from conftest import GENERATE_FIXTURES, HF_FIXTURES, left_pad, tiny_model


def full_forward(model, ids):
    """(last hidden states [S, E], logits [S, V]) of one unpadded row, no cache, float64."""
    out = model(np.array([ids], np.int32), output_hidden_states=True, return_dict=True)
    return np.asarray(out.hidden_states[-1][0], np.float64), np.asarray(out.logits[0], np.float64)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def penalize(logits, seen, penalty):
    """HF's repetition penalty on one row."""
    out = logits.copy()
    for t in set(seen):
        out[t] = out[t] * penalty if out[t] < 0 else out[t] / penalty
    return out


def reference(model, prompt, k, alpha, steps, eos=None, repetition_penalty=1.0):
    """Contrastive search of one row, every candidate run through the whole model (no cache)."""
    ids = list(prompt)
    hidden, logits = full_forward(model, ids)
    context, logits = list(unit(hidden)), logits[-1]
    new = []
    for _ in range(steps):
        scores = penalize(logits, ids, repetition_penalty) if repetition_penalty != 1.0 else logits
        probs = softmax(scores)
        top = np.argsort(-probs, kind="stable")[:k]
        best = None
        for c in top:
            h, lg = full_forward(model, ids + [int(c)])
            h = unit(h[-1])
            score = (1 - alpha) * probs[c] - alpha * max(float(h @ v) for v in context)
            if best is None or score > best[0]:
                best = (score, int(c), h, lg[-1])
        _, token, h, logits = best
        ids.append(token)
        new.append(token)
        context.append(h)
        if eos is not None and token == eos:
            break
    return new


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=3)


def test_matches_the_no_cache_reference(model):
    prompt = [5, 17, 42, 8, 23]
    out = model.generate(np.array([prompt]), max_new_tokens=10, penalty_alpha=0.6, top_k=4).numpy()
    assert out[0, :5].tolist() == prompt
    assert out[0, 5:].tolist() == reference(model, prompt, 4, 0.6, 10)
    # the penalty changes the choice: greedy search differs
    assert out[0, 5:].tolist() != model.generate(np.array([prompt]), max_new_tokens=10).numpy()[0, 5:].tolist()


def test_left_padded_batch_rows_as_alone(model):
    rows = [[5, 17, 42, 8, 23, 9, 61], [31, 2], [77, 12, 40, 3]]
    ids, mask = left_pad(rows)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=8, penalty_alpha=0.4, top_k=5).numpy()
    for i, row in enumerate(rows):
        assert out[i, ids.shape[1]:].tolist() == reference(model, row, 5, 0.4, 8), i


def test_repetition_penalty_and_eos(model):
    rows = [[5, 17, 42, 8], [31, 2, 9]]
    free = [reference(model, r, 3, 0.5, 9, repetition_penalty=1.3) for r in rows]
    eos = free[0][3]  # row 0 stops at its 4th new token
    ids, mask = left_pad(rows)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=9, penalty_alpha=0.5, top_k=3,
                         repetition_penalty=1.3, eos_token_id=eos, pad_token_id=0).numpy()
    for i, row in enumerate(rows):
        want = reference(model, row, 3, 0.5, 9, eos=eos, repetition_penalty=1.3)
        got = out[i, ids.shape[1]:].tolist()
        assert got[:len(want)] == want
        assert all(t == 0 for t in got[len(want):])  # finished rows hold the pad id
    assert len(reference(model, rows[0], 3, 0.5, 9, eos=eos, repetition_penalty=1.3)) <= 4  # row 0 stopped


def test_alpha_zero_like_greedy_alpha_one_avoids_the_context(model):
    prompt = [5, 17, 42, 8, 23]
    greedy = model.generate(np.array([prompt]), max_new_tokens=8).numpy()
    # penalty_alpha = 0 is greedy search (HF picks greedy then); tiny alpha ranks by probability
    near_zero = model.generate(np.array([prompt]), max_new_tokens=8, penalty_alpha=1e-9, top_k=4).numpy()
    np.testing.assert_array_equal(near_zero, greedy)
    assert model.generate(np.array([prompt]), max_new_tokens=8, penalty_alpha=0.0, top_k=4).numpy().tolist() == \
        greedy.tolist()
    out = model.generate(np.array([prompt]), max_new_tokens=6, penalty_alpha=1.0, top_k=6).numpy()[0, 5:].tolist()
    assert out == reference(model, prompt, 6, 1.0, 6)


def hf_contrastive(model, input_ids, attention_mask, top_k, alpha, steps):
    """HF's ``_contrastive_search`` / ``_ranking_fast`` written out in NumPy on a left-padded batch:
    cosine_matrix_mask from the attention mask (+ finfo.min on padding), candidates repeat_interleaved,
    every forward pass over the whole sequence (no cache)."""
    ids, mask = np.array(input_ids), np.array(attention_mask)
    B = ids.shape[0]

    def forward(x, m):
        out = model(x.astype(np.int32), attention_mask=m.astype(np.int32), output_hidden_states=True,
                    return_dict=True)
        return np.asarray(out.hidden_states[-1]), np.asarray(out.logits)

    last_hidden, logits = forward(ids, mask)
    logit_next = logits[:, -1, :]
    cosine_mask = np.repeat(mask, top_k, axis=0)
    for _ in range(steps):
        probs = softmax(logit_next.astype(np.float64)).astype(np.float32)
        top_ids = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]  # (B, k)
        top_probs = np.take_along_axis(probs, top_ids, 1)
        cand = np.concatenate([np.repeat(ids, top_k, 0), top_ids.reshape(-1, 1)], 1)
        cand_mask = np.concatenate([np.repeat(mask, top_k, 0), np.ones((B * top_k, 1), mask.dtype)], 1)
        hidden, cand_logits = forward(cand, cand_mask)
        next_hidden = hidden[:, -1:, :]  # (B*k, 1, E)
        context = np.repeat(last_hidden, top_k, 0)  # (B*k, S, E)
        # _ranking_fast
        norm_ctx = context / np.linalg.norm(context, axis=2, keepdims=True)
        norm_next = next_hidden / np.linalg.norm(next_hidden, axis=2, keepdims=True)
        cosine = np.matmul(norm_ctx, norm_next.transpose(0, 2, 1))[..., 0]  # (B*k, S)
        cosine = cosine + (1 - cosine_mask) * np.finfo(np.float32).min
        penalty = cosine.max(-1)
        score = ((1.0 - alpha) * top_probs.reshape(-1) - alpha * penalty).reshape(B, top_k)
        selected = score.argmax(-1)
        cosine_mask = np.concatenate([cosine_mask, np.ones((B * top_k, 1), cosine_mask.dtype)], 1)
        flat = np.arange(B) * top_k + selected
        ids = np.concatenate([ids, top_ids[np.arange(B), selected][:, None]], 1)
        mask = np.concatenate([mask, np.ones((B, 1), mask.dtype)], 1)
        last_hidden = np.concatenate([last_hidden, next_hidden[flat]], 1)
        logit_next = cand_logits[flat, -1, :]
    return ids


def test_hf_formula_on_the_hf_fixture():
    import tfgpt

    lm = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(HF_FIXTURES / "lm"))
    golden = np.load(HF_FIXTURES / "lm" / "golden.npz")
    out = lm(golden["input_ids"], attention_mask=golden["attention_mask"], token_type_ids=golden["token_type_ids"],
             output_hidden_states=True, return_dict=True)
    np.testing.assert_allclose(np.asarray(out.hidden_states[-1]), golden["last_hidden_state"], atol=1e-4)
    np.testing.assert_allclose(np.asarray(out.logits), golden["logits"], atol=1e-4)  # what HF's penalty uses

    cases = {c["name"]: c for c in json.loads((GENERATE_FIXTURES / "cases.json").read_text())["cases"]}
    batch = cases["left_padded_batch_no_repeat_2"]
    ids = np.array(batch["input_ids"])
    mask = np.array(batch["attention_mask"] if batch["attention_mask"] is not None else np.ones_like(ids))
    want = hf_contrastive(lm, ids, mask, top_k=4, alpha=0.6, steps=6)
    got = lm.generate(ids, attention_mask=mask, max_new_tokens=6, penalty_alpha=0.6, top_k=4).numpy()
    np.testing.assert_array_equal(got[:, ids.shape[1]:], want[:, ids.shape[1]:])
    single = np.array(cases["greedy_30"]["input_ids"])
    want = hf_contrastive(lm, single, np.ones_like(single), top_k=6, alpha=0.7, steps=6)
    got = lm.generate(single, max_new_tokens=6, penalty_alpha=0.7, top_k=6).numpy()
    np.testing.assert_array_equal(got, want)


def test_one_compiled_program_per_bucket(model):
    from tfgpt.generation import trace_count

    model.generate(np.array([[5, 6, 7]]), max_new_tokens=5, penalty_alpha=0.6, top_k=4)
    before = trace_count()
    model.generate(np.array([[9, 10, 11, 12]]), max_new_tokens=7, penalty_alpha=0.3, top_k=4,
                   repetition_penalty=1.0)
    assert trace_count() == before  # same bucket, other alpha: no new trace


@pytest.mark.parametrize("kwargs, name", [
    (dict(penalty_alpha=0.6, top_k=1), "top_k"),
    (dict(penalty_alpha=0.6, top_k=0), "top_k"),
    (dict(penalty_alpha=0.6, top_k=4, do_sample=True), "do_sample"),
    (dict(penalty_alpha=0.6, top_k=4, num_beams=2), "num_beams"),
    (dict(penalty_alpha=1.5, top_k=4), "penalty_alpha"),
    (dict(penalty_alpha=-0.1, top_k=4), "penalty_alpha"),
])
def test_bad_arguments_name_themselves(model, kwargs, name):
    with pytest.raises(ValueError, match=name):
        model.generate(np.array([[5, 6, 7]]), max_new_tokens=3, **kwargs)


def test_num_return_sequences_refused(model):
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(np.array([[5, 6, 7]]), max_new_tokens=3, penalty_alpha=0.6, top_k=4,
                       num_return_sequences=2)
