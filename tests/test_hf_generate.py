"""HF transformers' TF generate tests, adapted to the tiny GPT-1 model.

From ``tests/test_modeling_tf_common.py`` (``test_lm_head_model_*``, ``test_xla_generate_*``),
``tests/generation/test_tf_utils.py`` (``test_generate_tf_function_export_*``,
``test_eos_token_id_int_and_list_top_k_top_sampling``) and the generation integration mixin
(``test_validate_generation_inputs``, ``test_max_new_tokens_decoder_only``,
``test_eos_token_id_int_and_list_*``, ``test_custom_logits_processor``). HF's hub checkpoints become
the seeded tiny model; HF's "does not fail" checks become exact ids.
"""

import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_model

VOCAB = 99


def prompts(batch=3, length=7, seed=0, low=1, high=98):
    """HF's model-tester prompts: random ids without the pad id (98), [B, S] int32."""
    return np.random.default_rng(seed).integers(low, high, (batch, length)).astype(np.int32)


@pytest.fixture(scope="module")
def lm():
    return tiny_model("lm", n_positions=160, pad_token_id=98)


def check_ids(out, batch, vocab=VOCAB):
    """HF's _check_generated_ids, plus the shape: every id in [0, vocab)."""
    out = np.asarray(out)
    assert out.shape[0] == batch
    assert out.min() >= 0 and out.max() < vocab


def has_bad_words(rows, bad_words_ids):
    """HF's _check_match_tokens: does any row contain any of the banned sequences?"""
    for row in rows:
        for bad in bad_words_ids:
            n = len(bad)
            if any(list(row[i:i + n]) == list(bad) for i in range(len(row) - n + 1)):
                return True
    return False


# --- test_modeling_tf_common.py: test_lm_head_model_* ----------------------------------------------

def test_lm_head_model_random_no_beam_search_generate(lm):
    ids = prompts()
    with pytest.raises(ValueError, match="bos_token_id"):  # no bos id: generate needs input_ids
        lm.generate(do_sample=True, max_length=5)
    out = lm.generate(ids, do_sample=True, seed=0).numpy()
    check_ids(out, 3)
    assert out.shape == (3, 20)  # HF's default max_length=20, prompt included
    np.testing.assert_array_equal(out[:, :7], ids)
    with pytest.raises(ValueError, match="num_return_sequences"):  # greedy would repeat one sequence
        lm.generate(ids, do_sample=False, num_return_sequences=2)
    out = lm.generate(ids, do_sample=True, num_return_sequences=2, seed=0).numpy()
    check_ids(out, 6)
    np.testing.assert_array_equal(out[::2, :7], ids)
    np.testing.assert_array_equal(out[1::2, :7], ids)


@pytest.mark.parametrize("mode, kwargs, second", [
    ("sampling", dict(do_sample=True, seed=0), (2, 3)),
    ("beams", dict(do_sample=False, num_beams=2), (1, 2)),
])
def test_lm_head_model_random_generate_bad_words(lm, mode, kwargs, second):
    """HF's bad_words_ids parts of test_lm_head_model_random_{no_,}beam_search_generate: tokens the free
    run chose, banned (one single-token and one two-token word), never appear."""
    ids = prompts()
    free = lm.generate(ids, num_return_sequences=2, max_new_tokens=10, **kwargs).numpy()[:, 7:]
    bad_words_ids = [[int(free[0, 0])], [int(free[1, second[0]]), int(free[1, second[1]])]]
    out = lm.generate(ids, bad_words_ids=bad_words_ids, num_return_sequences=2, max_new_tokens=10, **kwargs).numpy()
    assert not has_bad_words(out[:, 7:].tolist(), bad_words_ids)


def test_lm_head_model_no_beam_search_generate_dict_outputs(lm):
    ids = prompts()
    greedy = lm.generate(ids, do_sample=False, output_scores=True, output_hidden_states=True,
                         output_attentions=True, return_dict_in_generate=True, max_new_tokens=4)
    np.testing.assert_array_equal(greedy.sequences.numpy(), lm.generate(ids, max_new_tokens=4).numpy())
    assert len(greedy.scores) == 4 and greedy.scores[0].shape == (3, VOCAB)
    sample = lm.generate(ids, do_sample=True, output_scores=True, output_hidden_states=True,
                         output_attentions=True, return_dict_in_generate=True, max_new_tokens=4, seed=0)
    assert type(greedy).__name__ == type(sample).__name__ == "GenerateDecoderOnlyOutput"


def test_lm_head_model_random_beam_search_generate(lm):
    ids = prompts()
    check_ids(lm.generate(ids, do_sample=True, num_beams=2, seed=0), 3)
    with pytest.raises(ValueError, match="num_return_sequences"):  # more sequences than beams
        lm.generate(ids, do_sample=False, num_return_sequences=3, num_beams=2)
    sampled = lm.generate(ids, do_sample=True, num_beams=2, num_return_sequences=2, seed=0).numpy()
    check_ids(sampled, 6)
    beams = lm.generate(ids, do_sample=False, num_beams=2, num_return_sequences=2).numpy()
    check_ids(beams, 6)
    np.testing.assert_array_equal(beams[::2, :7], ids)
    # the best beam of two first, and one beam returned is that best beam
    np.testing.assert_array_equal(lm.generate(ids, num_beams=2).numpy(), beams[::2])


def test_lm_head_model_beam_search_generate_dict_outputs(lm):
    ids = prompts()
    beam = lm.generate(ids, do_sample=False, num_beams=2, output_scores=True, output_hidden_states=True,
                       output_attentions=True, return_dict_in_generate=True, max_new_tokens=4)
    np.testing.assert_array_equal(beam.sequences.numpy(), lm.generate(ids, num_beams=2, max_new_tokens=4).numpy())
    assert beam.sequences_scores.shape == (3,)
    sample = lm.generate(ids, do_sample=True, num_beams=2, output_scores=True, return_dict_in_generate=True,
                         max_new_tokens=4, seed=0)
    assert type(beam).__name__ == type(sample).__name__ == "GenerateBeamDecoderOnlyOutput"


# --- test_modeling_tf_common.py: test_xla_generate_* -----------------------------------------------

def _xla_generate(lm, **kwargs):
    """HF's _test_xla_generate: tf.function(model.generate, jit_compile=True) gives generate's ids."""
    ids = prompts(batch=13, seed=3)
    eager = lm.generate(ids, **kwargs).numpy()
    compiled = tf.function(lm.generate, jit_compile=True)(tf.constant(ids), **kwargs)
    np.testing.assert_array_equal(np.asarray(compiled), eager)


def test_xla_generate_fast(lm):
    _xla_generate(lm, num_beams=1, num_return_sequences=1, max_new_tokens=3)


def test_xla_generate_contrastive(lm):
    _xla_generate(lm, num_beams=1, num_return_sequences=1, max_new_tokens=64, penalty_alpha=0.5, top_k=4)


@pytest.mark.slow
def test_xla_generate_slow(lm):
    _xla_generate(lm, num_beams=8, num_return_sequences=2, max_new_tokens=128)


# --- generation/test_tf_utils.py: tf.function export ------------------------------------------------

def _export_and_compare(lm, tmp_path, spec_shape, rows, masks):
    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=(tf.TensorSpec(spec_shape, tf.int32, name="input_ids"),
                                      tf.TensorSpec(spec_shape, tf.int32, name="attention_mask")),
                     jit_compile=True)
        def serving(self, input_ids, attention_mask):
            out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=2,
                                      return_dict_in_generate=True)
            return {"sequences": out["sequences"]}

    module = Serving(lm)
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serving})
    serving = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    for ids, mask in zip(rows, masks):
        inputs = {"input_ids": tf.constant(ids, tf.int32), "attention_mask": tf.constant(mask, tf.int32)}
        np.testing.assert_array_equal(serving(**inputs)["sequences"].numpy(),
                                      lm.generate(**inputs, max_new_tokens=2).numpy())


def test_generate_tf_function_export_fixed_input_length(lm, tmp_path):
    ids, masks = [[2, 0], [12, 13]], [[1, 0], [1, 1]]
    _export_and_compare(lm, tmp_path, (None, 2), [ids[:1], ids], [masks[:1], masks])


def test_generate_tf_function_export_fixed_batch_size(lm, tmp_path):
    _export_and_compare(lm, tmp_path, (1, None), [[[2]], [[12, 13]]], [[[1]], [[1, 1]]])


# --- generation integration mixin ----------------------------------------------------------------

def test_validate_generation_inputs_unknown_keywords():
    lm = tiny_model("lm")
    ids = prompts(batch=1)
    with pytest.raises(ValueError, match="do_samples"):  # a typo of do_sample
        lm.generate(ids, do_samples=True)
    with pytest.raises(ValueError, match="foo"):  # an argument nothing uses
        lm.generate(ids, foo="bar")


def test_validate_generation_inputs(lm):
    ids = prompts(batch=1)
    with pytest.raises((ValueError, TypeError), match="do_samples"):
        lm.generate(ids, do_samples=True)
    # a model input is accepted (HF passes an all-zero mask to T5; for GPT-1 a row without a real
    # token has nothing to continue, so tfgpt refuses it naming attention_mask)
    out = lm.generate(ids, attention_mask=np.ones_like(ids))
    assert out.shape == (1, 20)
    np.testing.assert_array_equal(out.numpy(), lm.generate(ids).numpy())
    with pytest.raises(ValueError, match="attention_mask"):
        lm.generate(ids, attention_mask=np.zeros_like(ids))


def test_max_new_tokens_decoder_only():
    model = tiny_model("lm", bos_token_id=3)
    ids = prompts(batch=1, length=9, seed=4)
    out = model.generate(ids, max_new_tokens=3)
    assert out.shape == (1, 12)  # 9 prompt + 3 new
    out = model.generate(max_new_tokens=23)
    assert out.shape == (1, 24)  # bos + 23 new, past the default max_length of 20
    assert int(out[0, 0]) == 3


def _eos_from_free_run(model, ids, step, **kwargs):
    """The token ``model`` emits at ``step`` (0-based) of a run without eos, and one it never emits."""
    free = model.generate(ids, max_new_tokens=10, **kwargs).numpy()[0, ids.shape[1]:]
    unused = next(t for t in range(VOCAB) if t not in set(free.tolist()) and t not in ids)
    return int(free[step]), unused, free


@pytest.mark.parametrize("eos_as_list", [False, True])
def test_eos_token_id_int_and_list_greedy_search(lm, eos_as_list):
    ids = prompts(batch=1, seed=5)
    eos, unused, free = _eos_from_free_run(lm, ids, 5)
    first = int(np.flatnonzero(free == eos)[0])  # the eos token may come earlier than step 5
    out = lm.generate(ids, max_new_tokens=10, eos_token_id=[unused, eos] if eos_as_list else eos).numpy()
    np.testing.assert_array_equal(out[0], np.concatenate([ids[0], free[:first + 1]]))


@pytest.mark.parametrize("eos_as_list", [False, True])
def test_eos_token_id_int_and_list_contrastive_search(lm, eos_as_list):
    ids = prompts(batch=1, seed=6)
    kw = dict(penalty_alpha=0.6, top_k=4)
    eos, unused, free = _eos_from_free_run(lm, ids, 4, **kw)
    first = int(np.flatnonzero(free == eos)[0])
    out = lm.generate(ids, max_new_tokens=10, eos_token_id=[unused, eos] if eos_as_list else eos, **kw).numpy()
    np.testing.assert_array_equal(out[0], np.concatenate([ids[0], free[:first + 1]]))


def test_eos_token_id_int_and_list_beam_search(lm):
    ids = prompts(batch=1, seed=7)
    eos, unused, _ = _eos_from_free_run(lm, ids, 3, num_beams=2)
    as_int = lm.generate(ids, max_new_tokens=10, num_beams=2, eos_token_id=eos).numpy()
    as_list = lm.generate(ids, max_new_tokens=10, num_beams=2, eos_token_id=[unused, eos]).numpy()
    np.testing.assert_array_equal(as_int, as_list)
    new = as_int[0, 7:]
    assert eos in new.tolist() or len(new) == 10  # a finished hypothesis ends in eos (then padding)
    if eos in new.tolist():
        assert np.all(new[new.tolist().index(eos) + 1:] == 98)


def test_eos_token_id_int_and_list_top_k_top_sampling(lm):
    ids = prompts(batch=1, seed=8)
    kw = dict(do_sample=True, num_beams=1, top_p=0.7, top_k=10, temperature=0.7, seed=0)
    eos, unused, free = _eos_from_free_run(lm, ids, 2, **kw)
    first = int(np.flatnonzero(free == eos)[0])
    as_int = lm.generate(ids, max_new_tokens=10, eos_token_id=eos, **kw).numpy()
    as_list = lm.generate(ids, max_new_tokens=10, eos_token_id=[unused, eos], **kw).numpy()
    np.testing.assert_array_equal(as_int, as_list)
    # the same seed draws the same tokens up to eos, then stops
    np.testing.assert_array_equal(as_int[0], np.concatenate([ids[0], free[:first + 1]]))


def test_custom_logits_processor():
    """HF: min_length both in the config and as a user processor raises; the processor alone runs."""
    from tfgpt.generation.processors import MinLengthLogitsProcessor

    model = tiny_model("lm", n_positions=64, eos_token_id=0)
    ids = prompts(batch=1)
    model.generation_config.min_length = 1  # with an eos id, the config builds its own min-length processor
    processors = [MinLengthLogitsProcessor(min_length=10, eos_token_id=0)]
    with pytest.raises(ValueError, match="MinLength|min_length"):
        model.generate(ids, logits_processor=processors)
    model.generation_config.min_length = None
    out = model.generate(ids, logits_processor=processors, max_new_tokens=5).numpy()
    assert 0 not in out[0, 7:10].tolist()  # eos banned while the length is under 10


# --- generation integration mixin: transition scores ----------------------------------------------



def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.mark.parametrize("normalize", [False, True])
def test_transition_scores_greedy_search(lm, normalize):
    """HF's test_transition_scores_greedy_search(_normalized): the chosen tokens' (log-softmaxed)
    scores, here checked against a full forward pass over the generated sequence."""
    ids = prompts(batch=2, seed=9)
    out = lm.generate(ids, max_new_tokens=5, eos_token_id=None, return_dict_in_generate=True, output_scores=True)
    scores = lm.compute_transition_scores(out.sequences, out.scores, normalize_logits=normalize)
    sequences = out.sequences.numpy()
    logits = lm(sequences).logits.numpy()[:, 6:-1]  # (B, 5, V): the logits that chose tokens 7..11
    if normalize:
        logits = _log_softmax(logits)
    expected = np.take_along_axis(logits, sequences[:, 7:, None], axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(scores), expected, atol=1e-4)


def test_transition_scores_beam_search_decoder_only(lm):
    """HF's test_transition_scores_beam_search_decoder_only: with length_penalty=0 the transition
    scores of each returned beam sum to its sequence score."""
    ids = prompts(batch=2, seed=10)
    out = lm.generate(ids, max_length=12, num_beams=4, num_return_sequences=2, eos_token_id=None,
                      return_dict_in_generate=True, output_scores=True, length_penalty=0.0)
    scores = lm.compute_transition_scores(out.sequences, out.scores, out.beam_indices)
    np.testing.assert_allclose(np.sum(np.asarray(scores), axis=-1), np.asarray(out.sequences_scores), atol=1e-3)
