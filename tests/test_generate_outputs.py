"""``generate(..., return_dict_in_generate=True, output_attentions=True, output_hidden_states=True)``.

HF's layout for decoder-only models: one entry per generated step; step 0 holds the prompt's
attentions [B, H, S, S] per layer and hidden states [B, S, E] (n_layer + 1, embeddings first), step
j one query [B, H, 1, S + j] / [B, 1, E]. Every value equals the full forward pass of the model over
the sequence up to that step.
"""

import numpy as np
import pytest

from conftest import left_pad, tiny_model

LAYERS, HEADS, EMBD = 2, 4, 32


@pytest.fixture(scope="module")
def model():
    return tiny_model("lm", n_positions=64)


def check_against_forward(model, out, mask, prompt_width, steps, rows):
    """Each step's attentions / hidden states of ``rows`` (the real query rows of step 0: the same
    for each batch row) against the model over ``out.sequences`` up to that step."""
    sequences = out.sequences.numpy()
    assert len(out.attentions) == len(out.hidden_states) == steps
    for j in range(steps):
        width = prompt_width + j
        full_mask = np.concatenate([mask, np.ones((mask.shape[0], j), mask.dtype)], axis=1)
        ref = model(sequences[:, :width], attention_mask=full_mask, output_attentions=True,
                    output_hidden_states=True, return_dict=True)
        attn, hidden = out.attentions[j], out.hidden_states[j]
        assert len(attn) == model.config.n_layer and len(hidden) == model.config.n_layer + 1
        q = prompt_width if j == 0 else 1
        for layer, a in enumerate(attn):
            a = a.numpy()
            assert a.shape == (sequences.shape[0], model.config.n_head, q, width)
            expect = ref.attentions[layer].numpy()[:, :, width - q:, :]
            for b, start in enumerate(rows):
                r0 = start if j == 0 else 0
                np.testing.assert_allclose(a[b, :, r0:], expect[b, :, r0:], atol=1e-5)
        for layer, h in enumerate(hidden):
            h = h.numpy()
            assert h.shape == (sequences.shape[0], q, model.config.n_embd)
            expect = ref.hidden_states[layer].numpy()[:, width - q:, :]
            for b, start in enumerate(rows):
                r0 = start if j == 0 else 0
                np.testing.assert_allclose(h[b, r0:], expect[b, r0:], atol=1e-5)


@pytest.mark.parametrize("do_sample", [False, True])
def test_greedy_and_sampling_outputs_match_full_forward(model, do_sample):
    ids = np.random.default_rng(1).integers(1, 90, (2, 5)).astype(np.int32)
    out = model.generate(ids, do_sample=do_sample, seed=3, max_new_tokens=4, output_attentions=True,
                         output_hidden_states=True, output_scores=True, return_dict_in_generate=True)
    assert type(out).__name__ == "GenerateDecoderOnlyOutput"
    np.testing.assert_array_equal(out.sequences.numpy(),
                                  model.generate(ids, do_sample=do_sample, seed=3, max_new_tokens=4).numpy())
    assert len(out.scores) == 4
    check_against_forward(model, out, np.ones_like(ids), 5, 4, rows=[0, 0])


def test_left_padded_batch_outputs_match_full_forward(model):
    ids, mask = left_pad([[5, 6, 7, 8, 9, 10], [11, 12, 13]])
    out = model.generate(ids, attention_mask=mask, max_new_tokens=3, output_attentions=True,
                         output_hidden_states=True, return_dict_in_generate=True)
    assert out.attentions[0][0].shape == (2, HEADS, 6, 6)  # the request's width, not the bucket's
    assert out.hidden_states[2][0].shape == (2, 1, EMBD)
    check_against_forward(model, out, np.asarray(mask), 6, 3, rows=[0, 3])


def test_only_the_asked_outputs(model):
    ids = np.array([[3, 4, 5]], np.int32)
    out = model.generate(ids, max_new_tokens=2, output_hidden_states=True, return_dict_in_generate=True)
    assert out.attentions is None and len(out.hidden_states) == 2
    out = model.generate(ids, max_new_tokens=2, output_attentions=True, return_dict_in_generate=True)
    assert out.hidden_states is None and out.attentions[1][1].shape == (1, HEADS, 1, 4)
    # without return_dict_in_generate the flags change nothing (HF)
    np.testing.assert_array_equal(model.generate(ids, max_new_tokens=2, output_attentions=True).numpy(),
                                  model.generate(ids, max_new_tokens=2).numpy())


def test_chunked_decoding_keeps_the_outputs(model):
    ids = np.array([[3, 4, 5, 6]], np.int32)
    kwargs = dict(max_new_tokens=5, output_attentions=True, output_hidden_states=True, return_dict_in_generate=True)
    whole = model.generate(ids, **kwargs)
    chunked = model.generate(ids, max_time=1000.0, stream_chunk_size=2, **kwargs)
    np.testing.assert_array_equal(chunked.sequences.numpy(), whole.sequences.numpy())
    for a, b in zip(chunked.attentions[-1] + chunked.hidden_states[-1], whole.attentions[-1] + whole.hidden_states[-1]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_beam_search_outputs_follow_the_running_beams(model):
    ids = np.array([[5, 6, 7, 8], [9, 10, 11, 12]], np.int32)
    K, new = 3, 4
    out = model.generate(ids, num_beams=K, max_new_tokens=new, output_attentions=True, output_hidden_states=True,
                         output_scores=True, return_dict_in_generate=True)
    assert type(out).__name__ == "GenerateBeamDecoderOnlyOutput"
    np.testing.assert_array_equal(out.sequences.numpy(), model.generate(ids, num_beams=K, max_new_tokens=new).numpy())
    steps = len(out.scores)
    assert len(out.attentions) == len(out.hidden_states) == steps
    ref = model(ids, output_attentions=True, output_hidden_states=True, return_dict=True)
    for layer, a in enumerate(out.attentions[0]):  # every beam starts from its prompt's prefill
        np.testing.assert_allclose(a.numpy(), np.repeat(ref.attentions[layer].numpy(), K, axis=0), atol=1e-5)
    for layer, h in enumerate(out.hidden_states[0]):
        np.testing.assert_allclose(h.numpy(), np.repeat(ref.hidden_states[layer].numpy(), K, axis=0), atol=1e-5)
    # step j's row beam_indices[j] is the running beam that the returned hypothesis extended there
    sequences, beam_indices = out.sequences.numpy(), out.beam_indices.numpy()
    checked = 0
    for row in range(2):
        for j in range(1, steps):
            beam = beam_indices[row, j]
            if beam < 0:
                break
            prefix = sequences[row:row + 1, :4 + j]
            full = model(prefix, output_attentions=True, output_hidden_states=True, return_dict=True)
            for layer, a in enumerate(out.attentions[j]):
                assert a.shape == (2 * K, model.config.n_head, 1, 4 + j)
                np.testing.assert_allclose(a.numpy()[beam], full.attentions[layer].numpy()[0, :, -1:], atol=1e-5)
            for layer, h in enumerate(out.hidden_states[j]):
                np.testing.assert_allclose(h.numpy()[beam], full.hidden_states[layer].numpy()[0, -1:], atol=1e-5)
            checked += 1
    assert checked >= 2


def test_contrastive_and_speculative_refuse_them(model):
    ids = np.array([[3, 4, 5]], np.int32)
    with pytest.raises(ValueError, match="output_attentions"):
        model.generate(ids, max_new_tokens=2, penalty_alpha=0.5, top_k=3, output_attentions=True,
                       return_dict_in_generate=True)
    with pytest.raises(ValueError, match="output_hidden_states"):
        model.generate(ids, max_new_tokens=2, prompt_lookup_num_tokens=2, output_hidden_states=True,
                       return_dict_in_generate=True)
