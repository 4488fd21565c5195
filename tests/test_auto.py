"""The Auto classes: config.json's model_type picks the config, HF's TF auto mapping picks the head,
and the loaded models reproduce HF's golden outputs."""

import json
import shutil

import numpy as np
import pytest

import tfgpt
from conftest import HF_FIXTURES, tiny_config


def golden(name):
    return np.load(HF_FIXTURES / name / "golden.npz")


def test_auto_config_reads_model_type_and_fields():
    cfg = tfgpt.AutoConfig.from_pretrained(HF_FIXTURES / "seqcls")
    assert type(cfg) is tfgpt.OpenAIGPTConfig
    assert (cfg.n_embd, cfg.n_layer, cfg.num_labels, cfg.pad_token_id) == (64, 2, 3, 999)
    assert cfg.name_or_path == str(HF_FIXTURES / "seqcls")
    cfg, unused = tfgpt.AutoConfig.from_pretrained(HF_FIXTURES / "lm", n_layer=1, foo=2, return_unused_kwargs=True)
    assert cfg.n_layer == 1 and unused == {"foo": 2}
    assert tfgpt.AutoConfig.for_model("openai-gpt", n_layer=3).n_layer == 3
    with pytest.raises(EnvironmentError):
        tfgpt.AutoConfig()


def test_auto_config_other_model_type_names_it(tmp_path):
    data = json.loads((HF_FIXTURES / "lm" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "model_type": "gpt2"}))
    with pytest.raises(ValueError, match="'gpt2'"):
        tfgpt.AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'gpt2'"):
        tfgpt.TFAutoModelForCausalLM.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="'bert'"):
        tfgpt.AutoConfig.for_model("bert")


def test_auto_config_without_model_type_needs_the_family_in_the_name(tmp_path):
    data = json.loads((HF_FIXTURES / "lm" / "config.json").read_text())
    del data["model_type"]
    for name in ("plain", "my-openai-gpt"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="model_type"):
        tfgpt.AutoConfig.from_pretrained(tmp_path / "plain")
    assert tfgpt.AutoConfig.from_pretrained(tmp_path / "my-openai-gpt").n_embd == 64


@pytest.mark.parametrize("auto, cls, output", [
    ("TFAutoModelForCausalLM", "TFOpenAIGPTLMHeadModel", "logits"),
    ("TFAutoModel", "TFOpenAIGPTModel", "last_hidden_state"),  # config.json names the LM head; this is the base
])
def test_lm_fixture_matches_hf_golden(auto, cls, output):
    g = golden("lm")
    model = getattr(tfgpt, auto).from_pretrained(HF_FIXTURES / "lm")
    assert type(model) is getattr(tfgpt, cls)
    out = model(g["input_ids"], attention_mask=g["attention_mask"], token_type_ids=g["token_type_ids"])
    np.testing.assert_allclose(getattr(out, output).numpy(), g[output], atol=1e-4)


def test_lm_head_auto_classes_load_the_lm_head():
    for auto in (tfgpt.TFAutoModelForPreTraining, tfgpt.TFAutoModelWithLMHead):
        assert type(auto.from_pretrained(HF_FIXTURES / "lm")) is tfgpt.TFOpenAIGPTLMHeadModel


def test_sequence_classification_matches_hf_golden():
    g = golden("seqcls")
    model = tfgpt.TFAutoModelForSequenceClassification.from_pretrained(HF_FIXTURES / "seqcls")
    assert type(model) is tfgpt.TFOpenAIGPTForSequenceClassification
    out = model(g["input_ids"], labels=g["labels"])
    np.testing.assert_allclose(out.logits.numpy(), g["logits"], atol=1e-4)
    np.testing.assert_allclose(out.loss.numpy(), g["loss"], atol=1e-4)


def test_from_pretrained_with_config_and_subfolder(tmp_path):
    shutil.copytree(HF_FIXTURES / "lm", tmp_path / "sub")
    g = golden("lm")
    config = tfgpt.AutoConfig.from_pretrained(tmp_path, subfolder="sub")
    assert config.n_embd == 64
    model = tfgpt.TFAutoModelForCausalLM.from_pretrained(tmp_path / "sub", config=config)
    out = model(g["input_ids"], attention_mask=g["attention_mask"], token_type_ids=g["token_type_ids"])
    np.testing.assert_allclose(out.logits.numpy(), g["logits"], atol=1e-4)
    with pytest.raises(ValueError, match="Unrecognized configuration class"):
        tfgpt.TFAutoModelForCausalLM.from_pretrained(tmp_path / "sub", config=object())


def test_from_config_builds_the_mapped_class():
    cfg = tiny_config(num_labels=4, pad_token_id=0)
    expected = {tfgpt.TFAutoModel: tfgpt.TFOpenAIGPTModel, tfgpt.TFAutoModelForCausalLM: tfgpt.TFOpenAIGPTLMHeadModel,
                tfgpt.TFAutoModelForSequenceClassification: tfgpt.TFOpenAIGPTForSequenceClassification}
    ids = np.array([[5, 6, 7]], np.int32)
    for auto, cls in expected.items():
        model = auto.from_config(cfg)
        assert type(model) is cls and model.config == cfg
    logits = tfgpt.TFAutoModelForSequenceClassification.from_config(cfg)(ids).logits
    assert logits.shape == (1, 4)
    with pytest.raises(ValueError, match="Unrecognized configuration class dict"):
        tfgpt.TFAutoModel.from_config({"n_layer": 2})
    with pytest.raises(EnvironmentError, match="from_pretrained"):
        tfgpt.TFAutoModel()


def test_top_level_names():
    assert tfgpt.TFAutoModelForCausalLM is tfgpt.TFAutoModelForCausalLM and tfgpt.AutoConfig is tfgpt.AutoConfig
    assert tfgpt.models.TFAutoModelForSequenceClassification is tfgpt.TFAutoModelForSequenceClassification
