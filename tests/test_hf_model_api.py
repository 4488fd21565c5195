"""The model side of HF's TF API: double heads' one score per choice, flags inside input dicts and
lists, the serving API, save_pretrained(saved_model=True) / generation_config.json, subfolder loads,
refused loader arguments, resizing below the pad id and loads with other sizes."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from tfgpt.checkpoints import CheckpointNotFoundError
from tfgpt.generation.config import GenerationConfig
from tests.conftest import tiny_config, tiny_model

IDS = np.array([[5, 9, 3, 7, 1], [2, 8, 8, 4, 6]], np.int32)
MASK = np.array([[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]], np.int32)


# --- 1. double heads -------------------------------------------------------------------------------------

def test_double_heads_scores_one_logit_per_choice():
    config = tiny_config(num_labels=3)
    keras.utils.set_random_seed(0)
    model = tfgpt.TFOpenAIGPTDoubleHeadsModel(config)
    assert config.num_labels == 1 and model.config.num_labels == 1  # HF sets it on the config passed in
    ids = np.random.default_rng(0).integers(0, 99, (2, 3, 6)).astype(np.int32)
    mc_token_ids = np.array([[5, 2, 0], [1, 5, 3]], np.int32)
    out = model(ids, mc_token_ids=mc_token_ids, output_hidden_states=True)
    assert out.mc_logits.shape == (2, 3) and out.logits.shape == (2, 3, 6, 99)
    hidden = out.hidden_states[-1].numpy()  # (B, C, S, E)
    picked = np.take_along_axis(hidden, mc_token_ids[..., None, None], axis=2)[:, :, 0]  # (B, C, E)
    kernel = model.multiple_choice_head.summary.kernel.numpy()  # (E, 1)
    bias = model.multiple_choice_head.summary.bias.numpy()
    np.testing.assert_allclose(out.mc_logits.numpy(), (picked @ kernel)[..., 0] + bias, atol=1e-5)
    mc_labels = np.array([2, 0], np.int32)
    out = model(ids, mc_token_ids=mc_token_ids, mc_labels=mc_labels)
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(mc_labels, out.mc_logits))
    np.testing.assert_allclose(out.mc_loss.numpy(), expected.numpy(), atol=1e-6)


def test_double_heads_output_embeddings_as_hf():
    """HF's TF double heads model has no get_lm_head, so get_output_embeddings() is None."""
    model = tiny_model("double-heads")
    assert model.get_output_embeddings() is None
    assert model.get_input_embeddings() is model.transformer.tokens_embed
    assert tiny_model("lm").get_output_embeddings() is not None


# --- 2. inputs -------------------------------------------------------------------------------------------

def test_flags_inside_the_input_dict_match_keywords():
    model = tiny_model("lm")
    by_kw = model(IDS, attention_mask=MASK, output_attentions=True, output_hidden_states=True)
    by_dict = model({"input_ids": IDS, "attention_mask": MASK, "output_attentions": True,
                     "output_hidden_states": True, "token_type_ids": None, "head_mask": None,
                     "training": False})
    assert list(by_dict.keys()) == ["logits", "hidden_states", "attentions"]
    np.testing.assert_allclose(by_dict.logits.numpy(), by_kw.logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(by_dict.attentions[1].numpy(), by_kw.attentions[1].numpy(), atol=1e-6)
    off = model({"input_ids": IDS, "output_attentions": False, "return_dict": False})
    assert isinstance(off, tuple) and len(off) == 1
    np.testing.assert_allclose(off[0].numpy(), model(IDS).logits.numpy(), atol=1e-6)


def test_training_flag_inside_the_input_dict_turns_dropout_on():
    keras.utils.set_random_seed(0)
    model = tfgpt.TFOpenAIGPTModel(tiny_config(embd_pdrop=0.5))
    plain = model(IDS).last_hidden_state.numpy()
    np.testing.assert_array_equal(model({"input_ids": IDS, "training": False}).last_hidden_state.numpy(), plain)
    noisy = model({"input_ids": IDS, "training": True}).last_hidden_state.numpy()
    assert np.abs(noisy - plain).max() > 1e-2


def test_list_inputs_with_flags_follow_the_signature():
    model = tiny_model("lm")
    # input_ids, attention_mask, token_type_ids, position_ids, head_mask, inputs_embeds, output_attentions
    out = model([tf.constant(IDS), tf.constant(MASK), None, None, None, None, True])
    assert len(out.attentions) == 2
    np.testing.assert_allclose(out.logits.numpy(), model(IDS, attention_mask=MASK).logits.numpy(), atol=1e-6)
    labels = tf.constant(IDS)
    names = list(__import__("inspect").signature(model.call).parameters)
    assert names[:10] == ["input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask",
                          "inputs_embeds", "output_attentions", "output_hidden_states", "return_dict",
                          "labels"]  # HF's order
    row = [tf.constant(IDS), None, None, None, None, None, None, None, None, labels, False]
    np.testing.assert_allclose(model(row).loss.numpy(), model(IDS, labels=labels).loss.numpy(), atol=1e-6)


def test_conflicting_or_unknown_inputs_raise():
    model = tiny_model("lm")
    with pytest.raises(ValueError, match="output_attentions"):
        model({"input_ids": IDS, "output_attentions": True}, output_attentions=False)
    with pytest.raises(ValueError, match="attention_mask"):
        model({"input_ids": IDS, "attention_mask": MASK}, attention_mask=MASK)
    with pytest.raises(ValueError, match="extra_column"):
        model({"input_ids": IDS, "extra_column": IDS})
    same = model({"input_ids": IDS, "output_attentions": True}, output_attentions=True)
    assert len(same.attentions) == 2


# --- 3. model API ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("head,keys,rank", [
    ("base", ["input_ids", "attention_mask", "token_type_ids"], 2),
    ("lm", ["input_ids", "attention_mask", "token_type_ids"], 2),
    ("seqcls", ["input_ids", "attention_mask", "token_type_ids"], 2),
    ("double-heads", ["input_ids", "attention_mask", "mc_token_ids"], 3),
])
def test_input_signature_dummies_and_serving(head, keys, rank):
    model = tiny_model(head, pad_token_id=0)
    sig = model.input_signature
    assert list(sig) == keys
    assert sig["input_ids"].shape.as_list() == [None] * rank and sig["input_ids"].dtype == tf.int32
    dummies = model.dummy_inputs
    assert list(dummies) == keys
    assert dummies["input_ids"].shape == (1,) + (2,) * (rank - 1)
    np.testing.assert_array_equal(dummies["input_ids"].numpy(), 1)
    if "token_type_ids" in dummies:
        np.testing.assert_array_equal(dummies["token_type_ids"].numpy(), 0)
    served = model.serving(dummies)
    direct = model(dummies)
    assert set(served) == set(direct)
    for key in served:
        np.testing.assert_allclose(served[key].numpy(), direct[key].numpy(), atol=1e-5)
    assert model.serving.input_signature[0] == sig


def test_serving_output_follows_the_config_and_stacks_layers():
    model = tiny_model("lm")
    out = model(IDS, output_attentions=True, output_hidden_states=True)
    assert list(model.serving_output(out)) == ["logits"]  # the config asks for neither
    model.config.output_attentions = model.config.output_hidden_states = True
    served = model.serving_output(out)
    assert served["hidden_states"].shape == (3, 2, 5, 32) and served["attentions"].shape == (2, 2, 4, 5, 5)
    np.testing.assert_array_equal(served["hidden_states"].numpy(), np.stack(out.hidden_states))


def test_hf_model_attributes():
    for head, generates in (("base", False), ("lm", True), ("double-heads", True), ("seqcls", False)):
        model = tiny_model(head)
        cls = type(model)
        assert cls.main_input_name == "input_ids"
        assert cls.can_generate() is generates and model.can_generate() is generates
        assert model.get_lm_head() is None and model.get_bias() is None
        assert model.supports_xla_generation is True
        assert model.config.is_encoder_decoder is False
        before = [w.copy() for w in model.get_weights()]
        model.build_in_name_scope()
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_push_to_hub_methods_delegate(monkeypatch, gpt_tokenizer):
    calls = []
    monkeypatch.setattr("tfgpt.checkpoints.push.push_to_hub",
                        lambda obj, repo_id, **kw: calls.append((obj, repo_id, kw)) or "url")
    model = tiny_model("lm")
    assert model.push_to_hub("me/gpt", private=True) == "url"
    assert gpt_tokenizer.push_to_hub("me/tok") == "url"
    assert calls == [(model, "me/gpt", {"private": True}), (gpt_tokenizer, "me/tok", {})]


# --- 4. saving -------------------------------------------------------------------------------------------

def test_save_pretrained_saved_model_version(tmp_path):
    model = tiny_model("lm")
    written = model.save_pretrained(tmp_path, saved_model=True, version=3)
    saved = tmp_path / "saved_model" / "3"
    assert str(saved) in written and (saved / "saved_model.pb").is_file()
    assert not (tmp_path / "saved_model" / "1").exists()
    served = tf.saved_model.load(str(saved)).signatures["serving_default"](
        input_ids=tf.constant(IDS), attention_mask=tf.constant(MASK))
    np.testing.assert_allclose(served["logits"].numpy(), model(IDS, attention_mask=MASK).logits.numpy(),
                               atol=1e-5)
    again = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path)  # the weights next to it still load
    np.testing.assert_allclose(again(IDS).logits.numpy(), model(IDS).logits.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="version"):
        model.save_pretrained(tmp_path, saved_model=True, version=-1)


def test_generation_config_json_only_for_models_that_generate(tmp_path):
    lm = tiny_model("lm", eos_token_id=7)
    lm.save_pretrained(tmp_path / "lm")
    written = json.loads((tmp_path / "lm" / "generation_config.json").read_text())
    assert written["eos_token_id"] == 7
    assert GenerationConfig.from_pretrained(tmp_path / "lm") == GenerationConfig.from_model_config(lm.config)
    tiny_model("base").save_pretrained(tmp_path / "base")
    assert sorted(os.listdir(tmp_path / "base")) == ["config.json", "tf_model.h5"]


def test_from_pretrained_subfolder(tmp_path):
    model = tiny_model("seqcls", pad_token_id=0)
    model.save_pretrained(tmp_path / "models" / "classifier")
    loaded = tfgpt.TFOpenAIGPTForSequenceClassification.from_pretrained(tmp_path / "models",
                                                                        subfolder="classifier")
    np.testing.assert_allclose(loaded(IDS).logits.numpy(), model(IDS).logits.numpy(), atol=1e-6)
    assert "subfolder" not in loaded.config.to_dict()
    auto = tfgpt.TFAutoModelForSequenceClassification.from_pretrained(tmp_path / "models", subfolder="classifier")
    np.testing.assert_allclose(auto(IDS).logits.numpy(), model(IDS).logits.numpy(), atol=1e-6)
    with pytest.raises(CheckpointNotFoundError, match="missing"):
        tfgpt.TFOpenAIGPTModel.from_pretrained(tmp_path / "models", subfolder="missing")
    with pytest.raises(ValueError, match="subfolder"):
        tfgpt.TFOpenAIGPTModel.from_pretrained(tmp_path / "models", subfolder="../models/classifier")


def test_unsupported_loader_and_saver_arguments_raise(tmp_path):
    model = tiny_model("lm")
    model.save_pretrained(tmp_path)
    for kwarg in ("from_flax", "load_weight_prefix", "not_an_option"):
        with pytest.raises(TypeError, match=kwarg):
            tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path, **{kwarg: True})
    with pytest.raises(TypeError, match="signatures"):
        model.save_pretrained(tmp_path, signatures=None)


# --- 5. resizing and loads with other sizes ----------------------------------------------------------------

def test_resize_below_pad_token_id_as_hf(caplog):
    model = tiny_model("seqcls", pad_token_id=98)
    old = model.get_input_embeddings().embeddings.numpy()
    model.resize_token_embeddings(50)
    assert model.config.vocab_size == 50 and model.config.pad_token_id == 98
    np.testing.assert_array_equal(model.get_input_embeddings().embeddings.numpy(), old[:50])
    assert "pad_token_id 98" in caplog.text
    assert model(IDS).logits.shape == (2, 2)


def test_load_with_a_smaller_vocabulary(tmp_path):
    model = tiny_model("lm")
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="ignore_mismatched_sizes"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path, vocab_size=10)
    small, info = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(
        tmp_path, vocab_size=10, ignore_mismatched_sizes=True, output_loading_info=True)
    assert info["mismatched_keys"] == [("transformer.tokens_embed.weight", (99, 32), (10, 32))]
    assert small(IDS).logits.shape == (2, 5, 10)
    np.testing.assert_array_equal(small.transformer.h[1].mlp.c_fc.kernel.numpy(),
                                  model.transformer.h[1].mlp.c_fc.kernel.numpy())


def test_generate_without_input_ids_starts_from_bos_or_raises():
    """HF: without input_ids generation starts from [[bos_token_id]]; with no bos id it is a ValueError."""
    with pytest.raises(ValueError, match="bos_token_id"):
        tiny_model("lm").generate(do_sample=True, max_length=5)
    model = tiny_model("lm", bos_token_id=3)
    out = model.generate(do_sample=False, max_length=5).numpy()
    np.testing.assert_array_equal(out, model.generate(np.array([[3]], np.int32), do_sample=False,
                                                      max_length=5).numpy())
    assert out.shape == (1, 5) and out[0, 0] == 3


def test_hf_class_attributes_and_small_methods():
    model = tiny_model("lm")
    cls = type(model)
    assert cls.config_class is tfgpt.OpenAIGPTConfig and cls.base_model_prefix == "transformer"
    assert getattr(model, cls.base_model_prefix) is model.transformer
    assert model.framework == "tf"
    assert cls._keys_to_ignore_on_load_missing is None and cls._keys_to_ignore_on_load_unexpected is None
    assert model.get_output_layer_with_bias() is None and model.get_prefix_bias_name() is None
    with pytest.raises(NotImplementedError, match="head_mask"):
        model.prune_heads({0: [1]})
    assert model.prepare_inputs_for_generation(IDS)["input_ids"] is IDS


def test_name_or_path_follows_the_loaded_folder(tmp_path):
    tiny_model("lm").save_pretrained(tmp_path)
    assert tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(tmp_path)).name_or_path == str(tmp_path)
    assert tiny_model("lm").name_or_path == ""


def test_set_input_and_output_embeddings():
    """HF's TF set_input_embeddings takes the token table; the tied LM head follows it."""
    model = tiny_model("lm")
    table = np.random.default_rng(0).normal(size=(99, 32)).astype(np.float32)
    model.set_input_embeddings(table)
    np.testing.assert_array_equal(model.get_input_embeddings().embeddings.numpy(), table)
    hidden = model.transformer(IDS).last_hidden_state.numpy()
    np.testing.assert_allclose(model(IDS).logits.numpy(), hidden @ table.T, atol=1e-4)
    bigger = np.concatenate([table, np.ones((3, 32), np.float32)])
    model.set_output_embeddings(bigger)
    assert model.config.vocab_size == 102 and model(IDS).logits.shape[-1] == 102
    np.testing.assert_array_equal(model.get_output_embeddings().embeddings.numpy(), bigger)
    with pytest.raises(ValueError, match=r"\[vocab, n_embd=32\]"):
        model.set_input_embeddings(np.ones((99, 8), np.float32))
    with pytest.raises(ValueError, match="no output embeddings"):
        tiny_model("seqcls").set_output_embeddings(table)
    base = tiny_model("base")
    base.set_input_embeddings(base.get_input_embeddings())  # a layer: its table, unchanged
