"""OpenAIGPTConfig against HF's PretrainedConfig contract: the checks of HF's ConfigTester (with
n_embd=36, tfgpt's one deviation), the common kwargs, the diff JSON HF writes, validation, bad files."""

import copy
import json
import os

import numpy as np
import pytest

from conftest import HF_FIXTURES
from tfgpt.models.configuration import (
    COMMON_DEFAULTS,
    GENERATION_DEFAULTS,
    MODEL_DEFAULTS,
    OpenAIGPTConfig,
)

# HF's ConfigTester builds n_embd=37 with 12 heads; tfgpt needs a multiple of n_head, so 36.
TESTER_INPUTS = {"n_embd": 36}

# The common kwargs HF's ConfigTester passes (transformers 4.5x, plus the keys older releases passed).
COMMON_KWARGS = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "torchscript": True,
    "dtype": "float16",
    "use_bfloat16": True,
    "tf_legacy_loss": True,
    "pruned_heads": {"a": 1},
    "tie_word_embeddings": False,
    "is_decoder": True,
    "cross_attention_hidden_size": 128,
    "add_cross_attention": True,
    "tie_encoder_decoder": True,
    "max_length": 50,
    "min_length": 3,
    "do_sample": True,
    "early_stopping": True,
    "num_beams": 3,
    "num_beam_groups": 3,
    "diversity_penalty": 0.5,
    "temperature": 2.0,
    "top_k": 10,
    "top_p": 0.7,
    "typical_p": 0.2,
    "repetition_penalty": 0.8,
    "length_penalty": 0.8,
    "no_repeat_ngram_size": 5,
    "encoder_no_repeat_ngram_size": 5,
    "bad_words_ids": [1, 2, 3],
    "num_return_sequences": 3,
    "chunk_size_feed_forward": 5,
    "output_scores": True,
    "return_dict_in_generate": True,
    "forced_bos_token_id": 2,
    "forced_eos_token_id": 3,
    "remove_invalid_values": True,
    "architectures": ["BertModel"],
    "finetuning_task": "translation",
    "id2label": {0: "label"},
    "label2id": {"label": "0"},
    "tokenizer_class": "BertTokenizerFast",
    "prefix": "prefix",
    "bos_token_id": 6,
    "pad_token_id": 7,
    "eos_token_id": 8,
    "sep_token_id": 9,
    "decoder_start_token_id": 10,
    "exponential_decay_length_penalty": (5, 1.01),
    "suppress_tokens": [0, 1],
    "begin_suppress_tokens": 2,
    "task_specific_params": {"translation": "some_params"},
    "problem_type": "regression",
}


# --- HF's ConfigTester, point by point ----------------------------------------------------------------

def test_common_properties_readable_settable_and_accepted_by_init():
    cfg = OpenAIGPTConfig(**TESTER_INPUTS)
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers, cfg.vocab_size) == (36, 12, 12, 40478)
    for name, value, field in [("hidden_size", 48, "n_embd"), ("num_attention_heads", 4, "n_head"),
                               ("num_hidden_layers", 2, "n_layer"), ("vocab_size", 3, "vocab_size"),
                               ("max_position_embeddings", 64, "n_positions")]:
        setattr(cfg, name, value)
        assert getattr(cfg, name) == value and getattr(cfg, field) == value
        assert OpenAIGPTConfig(**{name: value * 12 if name == "hidden_size" else value}).to_dict()[field] == (
            value * 12 if name == "hidden_size" else value)
    assert cfg.to_dict()["n_embd"] == 48 and "hidden_size" not in cfg.to_dict()


def test_to_json_string_holds_the_inputs():
    obj = json.loads(OpenAIGPTConfig(**TESTER_INPUTS).to_json_string())
    assert obj["n_embd"] == 36 and obj["model_type"] == "openai-gpt"


def test_to_json_file_round_trip(tmp_path):
    first = OpenAIGPTConfig(**TESTER_INPUTS, num_labels=4, pad_token_id=3)
    path = first.to_json_file(tmp_path / "config.json")
    assert os.path.basename(path) == "config.json"
    second = OpenAIGPTConfig.from_json_file(tmp_path / "config.json")
    assert second.to_dict() == first.to_dict() and second == first
    assert second.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"}
    full = json.loads(first.to_json_string(use_diff=False))
    assert full["max_length"] == 20 and full["torchscript"] is False and full["n_embd"] == 36


def test_save_and_from_pretrained_round_trip(tmp_path):
    first = OpenAIGPTConfig(**TESTER_INPUTS)
    first.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json"]  # atomic write leaves no temporary file
    second = OpenAIGPTConfig.from_pretrained(tmp_path)
    assert second.to_dict() == first.to_dict()
    with pytest.raises(OSError):
        OpenAIGPTConfig.from_pretrained(f".{tmp_path}")
    with pytest.raises(OSError):
        OpenAIGPTConfig.from_pretrained(tmp_path / "missing")


def test_from_pretrained_subfolder(tmp_path):
    first = OpenAIGPTConfig(**TESTER_INPUTS, n_layer=3)
    first.save_pretrained(tmp_path / "test")
    second = OpenAIGPTConfig.from_pretrained(tmp_path, subfolder="test")
    assert second.to_dict() == first.to_dict() and second.n_layer == 3
    with pytest.raises(OSError, match="config.json"):
        OpenAIGPTConfig.from_pretrained(tmp_path, subfolder="other")


def test_num_labels_resizes_id2label_and_label2id():
    cfg = OpenAIGPTConfig(**TESTER_INPUTS, num_labels=5)
    assert len(cfg.id2label) == 5 and len(cfg.label2id) == 5
    cfg.num_labels = 3
    assert cfg.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert cfg.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}
    cfg.id2label = {0: "neg", 1: "pos", 2: "neutral"}
    cfg.num_labels = 3  # the same count keeps the names
    assert cfg.id2label[2] == "neutral"
    cfg.num_labels = 1  # what HF's double-heads model sets
    assert cfg.id2label == {0: "LABEL_0"} and cfg.num_labels == 1


def test_saved_config_with_new_num_labels_reloads_with_int_keys(tmp_path):
    cfg = OpenAIGPTConfig.from_pretrained(HF_FIXTURES / "seqcls")
    cfg.num_labels = 5
    cfg.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert sorted(data["id2label"]) == ["0", "1", "2", "3", "4"]
    again = OpenAIGPTConfig.from_pretrained(tmp_path)
    assert again.num_labels == 5 and sorted(again.id2label) == [0, 1, 2, 3, 4]
    assert again.label2id["LABEL_4"] == 4 and again.pad_token_id == 999


def test_init_without_params_and_class_attributes():
    cfg = OpenAIGPTConfig()
    assert OpenAIGPTConfig.has_no_defaults_at_init is False and OpenAIGPTConfig.sub_configs == {}
    assert cfg.is_encoder_decoder is False and cfg.bos_token_id is None and cfg.eos_token_id is None
    assert cfg.tie_word_embeddings is True and cfg.chunk_size_feed_forward == 0 and cfg.num_labels == 2
    assert cfg.get_text_config() is cfg and cfg.use_return_dict is True
    assert {k: getattr(cfg, k) for k in MODEL_DEFAULTS} == MODEL_DEFAULTS


def test_common_kwargs_are_stored_and_round_trip(tmp_path):
    cfg = OpenAIGPTConfig(**copy.deepcopy(COMMON_KWARGS))
    wrong = {k: getattr(cfg, k) for k, v in COMMON_KWARGS.items() if getattr(cfg, k) != v}
    assert wrong == {}
    assert cfg.torch_dtype == "float16" and cfg.use_return_dict is False and cfg.num_labels == 1
    with pytest.warns(UserWarning, match="generation parameters"):
        cfg.save_pretrained(tmp_path)
    again = OpenAIGPTConfig.from_pretrained(tmp_path)
    assert again.to_dict() == cfg.to_dict()
    assert again.exponential_decay_length_penalty == [5, 1.01] and again.pruned_heads == {"a": 1}
    assert OpenAIGPTConfig.from_dict({"pruned_heads": {"1": [0, 2]}}).pruned_heads == {1: [0, 2]}
    assert OpenAIGPTConfig(torch_dtype="bfloat16").dtype == "bfloat16"


# --- HF's JSON: the diff form config.json holds ------------------------------------------------------

@pytest.mark.parametrize("fixture", ["lm", "seqcls", "double_heads"])
def test_to_json_string_reproduces_hf_config_json(fixture):
    path = HF_FIXTURES / fixture / "config.json"
    cfg = OpenAIGPTConfig.from_json_file(path)
    assert json.loads(cfg.to_json_string()) == json.loads(path.read_text())
    diff = cfg.to_diff_dict()
    assert set(diff) == set(json.loads(path.read_text()))
    assert all(isinstance(k, int) for k in diff.get("id2label", {}))  # JSON keys become ints, as HF


def test_to_diff_dict_of_defaults_is_the_model_fields():
    diff = OpenAIGPTConfig().to_diff_dict()
    assert diff == {**MODEL_DEFAULTS, "model_type": "openai-gpt"}
    full = OpenAIGPTConfig().to_dict()
    assert set(full) >= set(COMMON_DEFAULTS) | set(GENERATION_DEFAULTS) | {"id2label", "label2id"}
    assert OpenAIGPTConfig(pad_token_id=5, top_k=3).to_diff_dict()["pad_token_id"] == 5


def test_repr_and_eq():
    cfg = OpenAIGPTConfig(n_layer=3)
    text = repr(cfg)
    assert text.startswith("OpenAIGPTConfig {") and json.loads(text.split(" ", 1)[1]) == cfg.to_diff_dict()
    assert cfg == OpenAIGPTConfig(n_layer=3) and cfg != OpenAIGPTConfig(n_layer=4) and cfg != {"n_layer": 3}


def test_from_dict_overrides_and_unused_kwargs():
    d = OpenAIGPTConfig(n_layer=3).to_dict()
    cfg, unused = OpenAIGPTConfig.from_dict(d, n_head=4, num_labels=4, foo=False, return_unused_kwargs=True)
    assert (cfg.n_layer, cfg.n_head, cfg.num_labels) == (3, 4, 4) and unused == {"foo": False}
    assert not hasattr(cfg, "foo")
    with pytest.raises(TypeError, match="foo"):
        OpenAIGPTConfig.from_dict(d, foo=False)
    # n_embd and n_head change together: validated once
    cfg = OpenAIGPTConfig.from_dict(d, hidden_size=64, num_attention_heads=16)
    assert (cfg.n_embd, cfg.n_head) == (64, 16)
    with pytest.raises(ValueError, match="num_labels"):
        OpenAIGPTConfig.from_dict(d, num_labels=3, id2label={0: "a"})


def test_from_pretrained_return_unused_kwargs(tmp_path):
    OpenAIGPTConfig(n_layer=2).save_pretrained(tmp_path)
    cfg, unused = OpenAIGPTConfig.from_pretrained(tmp_path, output_attentions=True, foo=False,
                                                  return_unused_kwargs=True)
    assert cfg.output_attentions is True and cfg.n_layer == 2 and unused == {"foo": False}
    cfg = OpenAIGPTConfig.from_pretrained(tmp_path / "config.json", n_layer=5)
    assert cfg.n_layer == 5


def test_update_and_update_from_string():
    cfg = OpenAIGPTConfig()
    cfg.update({"n_embd": 64, "n_head": 4, "finetuning_task": "sst2"})
    assert (cfg.n_embd, cfg.n_head, cfg.finetuning_task) == (64, 4, "sst2")
    with pytest.raises(ValueError, match="n_head"):
        cfg.update({"n_layer": 3, "n_head": 5})
    assert (cfg.n_layer, cfg.n_head) == (12, 4)  # all or nothing
    cfg.update_from_string("n_layer=3,resid_pdrop=0.2,summary_use_proj=false,summary_type=last")
    assert (cfg.n_layer, cfg.resid_pdrop, cfg.summary_use_proj, cfg.summary_type) == (3, 0.2, False, "last")
    with pytest.raises(ValueError, match="true or false"):
        cfg.update_from_string("summary_use_proj=maybe")
    with pytest.raises(ValueError, match="isn't in the original config"):
        cfg.update_from_string("no_such_key=1")


# --- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    (dict(n_embd=37), "n_embd"),  # HF's ConfigTester value: the one justified deviation
    (dict(n_layer="abc"), "n_layer"),
    (dict(n_layer=12.0), "n_layer"),
    (dict(vocab_size=-3), "vocab_size"),
    (dict(n_positions=-1), "n_positions"),
    (dict(n_head=0), "n_head"),
    (dict(afn="tanhh"), "afn"),
    (dict(resid_pdrop="0.1"), "resid_pdrop"),
    (dict(layer_norm_epsilon=0), "layer_norm_epsilon"),
    (dict(summary_use_proj="yes"), "summary_use_proj"),
    (dict(problem_type="ranking"), "problem_type"),
    (dict(id2label=["a", "b"]), "id2label"),
    (dict(id2label={"x": "a"}), "id2label"),
    (dict(num_labels=-1), "num_labels"),
    (dict(pad_token_id="3"), "pad_token_id"),
    (dict(attn_implementation="sdpa"), "attn_implementation"),
    (dict(model_type="gpt2"), "model_type"),
    (dict(hidden_size=64, n_embd=32), "hidden_size"),
    (dict(to_dict=1), "to_dict"),
])
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        OpenAIGPTConfig(**kwargs)


def test_assignment_is_validated_and_undone_when_invalid():
    cfg = OpenAIGPTConfig()
    with pytest.raises(ValueError, match="n_embd"):
        cfg.n_head = 5
    assert cfg.n_head == 12
    with pytest.raises(ValueError, match="n_layer"):
        cfg.num_hidden_layers = -2
    with pytest.raises(ValueError, match="afn"):
        cfg.afn = "swishh"
    assert (cfg.n_layer, cfg.afn) == (12, "gelu")
    cfg.n_embd = np.int64(384)  # numpy sizes become ints: the config stays JSON
    assert type(cfg.n_embd) is int and json.loads(cfg.to_json_string())["n_embd"] == 384
    cfg.vocab_size = 10  # below pad_token_id is allowed, as HF's resize_token_embeddings does
    cfg.custom_note = "kept"
    assert cfg.to_dict()["custom_note"] == "kept"


@pytest.mark.parametrize("content, what", [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "UTF-8"),
    (b'{"n_layer": "abc"}', "n_layer"),
    (b'{"n_embd": [64]}', "n_embd"),
    (b"[" * 100000 + b"]" * 100000, "JSON"),
    (b'[{"n_layer": 2}]', "list"),
    (b'{"n_layer": 2,', "JSON"),
    (b'{"id2label": {"a": "x"}}', "id2label"),
    (b'{"model_type": "bert"}', "model_type"),
])
def test_malformed_config_json_names_the_file(tmp_path, content, what):
    (tmp_path / "config.json").write_bytes(content)
    for load in (OpenAIGPTConfig.from_pretrained, lambda p: OpenAIGPTConfig.from_json_file(p / "config.json")):
        with pytest.raises(ValueError) as e:
            load(tmp_path)
        assert str(tmp_path / "config.json") in str(e.value) and what in str(e.value)


def test_save_pretrained_refuses_a_file_and_stray_kwargs(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="save_directory"):
        OpenAIGPTConfig().save_pretrained(tmp_path / "f")
    with pytest.raises(TypeError, match="push_to_hub"):
        OpenAIGPTConfig().save_pretrained(tmp_path / "d", commit_message="x")


def test_keras_get_config_round_trip_keeps_the_config():
    from conftest import tiny_model

    model = tiny_model("seqcls", num_labels=3, pad_token_id=0)
    model.config.id2label = {0: "neg", 1: "neu", 2: "pos"}
    again = type(model).from_config(model.get_config())
    assert again.config == model.config and again.config.id2label[2] == "pos"
