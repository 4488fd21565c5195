"""GenerationConfig: HF's defaults, generation_config.json round trips, update / validate errors."""

import json
import math
import warnings

import pytest

from conftest import GENERATE_FIXTURES, HF_FIXTURES, tiny_config
from tfgpt.generation.config import GENERATION_CONFIG_NAME, GenerationConfig


def test_hf_defaults():
    gc = GenerationConfig()
    expected = dict(max_length=20, max_new_tokens=None, min_length=0, min_new_tokens=None, do_sample=False,
                    num_beams=1, temperature=1.0, top_k=50, top_p=1.0, typical_p=1.0, min_p=None,
                    epsilon_cutoff=0.0, eta_cutoff=0.0, repetition_penalty=1.0, no_repeat_ngram_size=0,
                    bad_words_ids=None, suppress_tokens=None, begin_suppress_tokens=None,
                    forced_bos_token_id=None, forced_eos_token_id=None, length_penalty=1.0,
                    early_stopping=False, num_return_sequences=1, output_scores=False, output_logits=None,
                    return_dict_in_generate=False, output_attentions=False, output_hidden_states=False,
                    pad_token_id=None, bos_token_id=None, eos_token_id=None, stop_strings=None, max_time=None,
                    penalty_alpha=None, prompt_lookup_num_tokens=None, max_matching_ngram_size=None,
                    num_assistant_tokens=20, num_assistant_tokens_schedule="constant", use_cache=True,
                    renormalize_logits=False, sequence_bias=None)
    assert {k: getattr(gc, k) for k in expected} == expected
    assert gc.to_diff_dict() == {"transformers_version": "4.57.6"}


def test_reads_hf_file_and_writes_only_differences(tmp_path):
    gc = GenerationConfig.from_pretrained(GENERATE_FIXTURES / "cfgdir")
    assert (gc.max_new_tokens, gc.no_repeat_ngram_size, gc.repetition_penalty, gc.pad_token_id) == (9, 2, 1.25, 0)
    assert gc.top_k == 50 and gc.max_length == 20
    path = gc.save_pretrained(tmp_path)
    assert path == str(tmp_path / GENERATION_CONFIG_NAME)
    written = json.loads((tmp_path / GENERATION_CONFIG_NAME).read_text())
    original = json.loads((GENERATE_FIXTURES / "cfgdir" / GENERATION_CONFIG_NAME).read_text())
    assert written == original  # the same keys and values HF wrote
    assert GenerationConfig.from_pretrained(tmp_path) == gc
    assert hash(GenerationConfig.from_pretrained(tmp_path)) == hash(gc) != hash(GenerationConfig())
    assert GenerationConfig.from_pretrained(tmp_path / GENERATION_CONFIG_NAME, top_k=5).top_k == 5


def test_model_config_file_flag_round_trips(tmp_path):
    gc = GenerationConfig.from_pretrained(HF_FIXTURES / "lm")
    assert gc._from_model_config is True and gc == GenerationConfig()
    gc.save_pretrained(tmp_path)
    assert json.loads((tmp_path / GENERATION_CONFIG_NAME).read_text()) == \
        {"_from_model_config": True, "transformers_version": "4.57.6"}


def test_unknown_file_keys_are_kept(tmp_path):
    (tmp_path / GENERATION_CONFIG_NAME).write_text(json.dumps({"top_k": 7, "my_custom_flag": [1, 2]}))
    gc = GenerationConfig.from_pretrained(tmp_path)
    assert gc.my_custom_flag == [1, 2] and gc.top_k == 7
    out = tmp_path / "out"
    gc.save_pretrained(out)
    assert json.loads((out / GENERATION_CONFIG_NAME).read_text()) == \
        {"top_k": 7, "my_custom_flag": [1, 2], "transformers_version": "4.57.6"}


def test_bad_files_raise_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="generation config"):
        GenerationConfig.from_pretrained(tmp_path)
    (tmp_path / GENERATION_CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        GenerationConfig.from_pretrained(tmp_path)
    (tmp_path / GENERATION_CONFIG_NAME).write_text(json.dumps({"temperature": 0.0, "do_sample": True}))
    with pytest.raises(ValueError, match="temperature"):
        GenerationConfig.from_pretrained(tmp_path)


def test_from_model_config():
    cfg = tiny_config(pad_token_id=3, bos_token_id=1, eos_token_id=2)
    gc = GenerationConfig.from_model_config(cfg)
    assert (gc.pad_token_id, gc.bos_token_id, gc.eos_token_id) == (3, 1, 2)
    assert gc._from_model_config is True
    assert not hasattr(gc, "n_embd") and not hasattr(gc, "vocab_size")
    assert gc.to_diff_dict() == {"pad_token_id": 3, "bos_token_id": 1, "eos_token_id": 2,
                                 "_from_model_config": True, "transformers_version": "4.57.6"}


def test_update_returns_unused_and_merged_refuses_them():
    gc = GenerationConfig()
    unused = gc.update(top_k=4, do_sample=True, attention_mask=[1], frobnicate=2)
    assert unused == {"attention_mask": [1], "frobnicate": 2}
    assert gc.top_k == 4 and gc.do_sample is True
    with pytest.raises(ValueError, match="frobnicate"):
        gc.merged(frobnicate=1, top_p=0.5)
    copy = gc.merged(top_p=0.5)
    assert copy.top_p == 0.5 and gc.top_p == 1.0
    with pytest.raises(ValueError, match="top_p"):
        gc.update(top_p=0.0)
    assert gc.top_p == 1.0  # a refused update leaves the config as it was


@pytest.mark.parametrize("kwargs, name", [
    (dict(do_sample=True, temperature=0.0), "temperature"),
    (dict(do_sample=True, temperature=-1.0), "temperature"),
    (dict(do_sample=True, top_p=0.0), "top_p"),
    (dict(do_sample=True, top_p=1.5), "top_p"),
    (dict(do_sample=True, typical_p=0.0), "typical_p"),
    (dict(do_sample=True, min_p=2.0), "min_p"),
    (dict(do_sample=True, epsilon_cutoff=1.0), "epsilon_cutoff"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(max_new_tokens=-3), "max_new_tokens"),
    (dict(min_new_tokens=-1), "min_new_tokens"),
    (dict(max_length=-1), "max_length"),
    (dict(min_length=-2), "min_length"),
    (dict(num_beams=0), "num_beams"),
    (dict(length_penalty=math.nan, num_beams=2), "length_penalty"),
    (dict(repetition_penalty=0.0), "repetition_penalty"),
    (dict(top_k=-1), "top_k"),
    (dict(early_stopping="sometimes"), "early_stopping"),
    (dict(num_return_sequences=2), "num_return_sequences"),
    (dict(num_beams=2, num_return_sequences=3), "num_return_sequences"),
    (dict(eos_token_id=[]), "eos_token_id"),
    (dict(eos_token_id=-1), "eos_token_id"),
    (dict(stop_strings=[""]), "stop_strings"),
    (dict(max_time=0), "max_time"),
    (dict(streamer=object()), "streamer"),
])
def test_validate_names_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GenerationConfig(**kwargs)


def test_ignored_options_warn_like_hf(tmp_path):
    with pytest.warns(UserWarning, match="temperature"):
        GenerationConfig(temperature=0.5)
    with pytest.warns(UserWarning, match="length_penalty"):
        GenerationConfig(length_penalty=0.5)
    with pytest.warns(UserWarning):
        gc = GenerationConfig(top_p=0.9)
    with pytest.raises(ValueError, match="top_p"):
        gc.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GenerationConfig(do_sample=True, temperature=0.5, top_p=0.9)
        GenerationConfig(num_beams=3, length_penalty=0.5, early_stopping=True)
