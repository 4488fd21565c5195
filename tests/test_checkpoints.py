"""Checkpoints: HF fixtures reproduce their goldens, save/load round trips are bit-exact, written files
have HF's exact structure, saves are atomic (a real SIGKILL and every interrupted step), and broken
inputs fail loudly."""

import copy
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import h5py
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import tfgpt
from tfgpt import checkpoints as ck
from tfgpt.checkpoints import names, readers, writers
from tfgpt.hub import HubError

SHARED = Path(__file__).resolve().parents[2] / "shared"
HF = SHARED / "fixtures" / "hf"
TESTS = Path(__file__).resolve().parent

CLASSES = {
    "base": tfgpt.TFOpenAIGPTModel,
    "lm": tfgpt.TFOpenAIGPTLMHeadModel,
    "double-heads": tfgpt.TFOpenAIGPTDoubleHeadsModel,
    "seqcls": tfgpt.TFOpenAIGPTForSequenceClassification,
}
TINY = dict(vocab_size=97, n_positions=16, n_embd=32, n_layer=2, n_head=4, num_labels=3)


def tiny(kind, **kw):
    model = CLASSES[kind](tfgpt.OpenAIGPTConfig(**{**TINY, **kw}))
    # Heads start with zero biases; give every weight distinct values so round trips prove something.
    rng = np.random.default_rng(len(kind))
    for var in model.weights:
        var.assign(rng.standard_normal(tuple(var.shape)).astype(np.float32))
    return model


def weights_of(model):
    return {name: var.numpy() for name, var in model.hf_weight_map().items()}


def assert_same_weights(a, b):
    wa, wb = weights_of(a), weights_of(b)
    assert list(wa) == list(wb)
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def copy_fixture(name, dest, files=None):
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in (HF / name).iterdir():
        if files is None or f.name in files:
            shutil.copyfile(f, dest / f.name)
    return dest


@pytest.fixture(scope="module")
def lm_fixture():
    return tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF / "lm")


# --- each format reproduces HF's outputs -----------------------------------------------------------------

def test_lm_h5_fixture_matches_golden():
    """HF's tf_model.h5 loads to the same numbers (test_modeling covers the safetensors files)."""
    g = np.load(HF / "lm" / "golden.npz")
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF / "lm", use_safetensors=False)
    out = model(g["input_ids"], attention_mask=g["attention_mask"], token_type_ids=g["token_type_ids"],
                labels=g["labels"])
    assert np.abs(out.logits.numpy() - g["logits"]).max() < 1e-4
    assert abs(float(out.loss) - float(g["loss"])) < 1e-4


def test_original_release_matches_golden():
    g = np.load(HF / "original_release" / "golden.npz")
    model = tfgpt.TFOpenAIGPTModel.from_pretrained(HF / "original_release")
    hidden = model(g["input_ids"]).last_hidden_state.numpy()
    assert np.abs(hidden - g["last_hidden_state"]).max() < 1e-4


def test_original_release_without_config(tmp_path):
    folder = copy_fixture("original_release", tmp_path / "rel", files=None)
    (folder / "config.json").unlink()
    (folder / "golden.npz").unlink()
    g = np.load(HF / "original_release" / "golden.npz")
    model = tfgpt.TFOpenAIGPTModel.from_pretrained(folder, n_head=4)
    c = model.config
    assert (c.vocab_size, c.n_positions, c.n_embd, c.n_layer, c.n_head) == (1000, 128, 64, 2, 4)
    assert np.abs(model(g["input_ids"]).last_hidden_state.numpy() - g["last_hidden_state"]).max() < 1e-4
    # n_head is not in the shapes; GPT-1's 12 does not divide 64, so it must be given
    with pytest.raises(ck.CheckpointError, match="n_head"):
        tfgpt.TFOpenAIGPTModel.from_pretrained(folder)


def test_original_release_special_tokens_and_sizes(tmp_path):
    """Token table with OpenAI's 3 special tokens appended: vocab follows the shapes."""
    state, dims = ck.read_original_release(HF / "original_release")
    tokens = np.concatenate([state["transformer.tokens_embed.weight"],
                             np.full((3, 64), 0.5, np.float32)])
    arrays = [state["transformer.positions_embed.weight"], tokens]
    shapes = [[128, 64], [1003, 64]]
    for i in range(2):
        for leaf in names.BLOCK_TORCH_LEAVES:
            a = state[f"transformer.h.{i}.{leaf}"]
            a = a[None] if a.ndim == 2 else a
            arrays.append(a)
            shapes.append(list(a.shape))
    flat = np.concatenate([a.ravel() for a in arrays])
    folder = tmp_path / "rel"
    folder.mkdir()
    (folder / "params_shapes.json").write_text(json.dumps(shapes))
    for i, part in enumerate(np.array_split(flat, 10)):
        np.save(folder / f"params_{i}.npy", part)
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder, n_head=4)
    assert model.config.vocab_size == 1003
    np.testing.assert_array_equal(model.transformer.tokens_embed.embeddings.numpy(), tokens)
    # a missing params file is a clear error
    (folder / "params_9.npy").unlink()
    with pytest.raises(ck.CheckpointError, match="params_shapes.json needs"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder, n_head=4)


def test_openai_release_shapes_give_gpt1_config():
    """The real params_shapes.json (weights not available offline): layout and sizes of GPT-1."""
    shapes = json.loads((SHARED / "data" / "openai-gpt" / "params_shapes.json").read_text())
    names = json.loads((SHARED / "data" / "openai-gpt" / "parameters_names.json").read_text())
    assert ck.original_release_dims(shapes, names) == {
        "n_positions": 512, "vocab_size": 40478, "n_embd": 768, "n_layer": 12}
    bad = [list(s) for s in shapes]
    bad[2 + 12 * 5 + 6] = [1, 768, 3000]  # block 5 c_fc weight
    with pytest.raises(ck.CheckpointError, match="model/h5/mlp/c_fc/w:0"):
        ck.original_release_dims(bad, names)


# --- save -> load round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(CLASSES))
def test_round_trip_bit_exact(kind, tmp_path):
    model = tiny(kind)
    for safe in (False, True):
        for shard in ("10GB", "8KB"):
            folder = tmp_path / f"{safe}-{shard}"
            written = model.save_pretrained(folder, safe_serialization=safe, max_shard_size=shard)
            names = sorted(os.listdir(folder))
            assert names == sorted(os.path.basename(p) for p in written)
            if shard == "8KB":
                assert (ck.SAFE_WEIGHTS_INDEX_NAME if safe else ck.TF2_WEIGHTS_INDEX_NAME) in names
                assert len(names) > 3
            loaded, info = CLASSES[kind].from_pretrained(folder, output_loading_info=True)
            assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [],
                            "error_msgs": []}
            assert_same_weights(model, loaded)
            config = json.loads((folder / "config.json").read_text())
            assert config["architectures"] == [CLASSES[kind].__name__[2:]]


def test_saved_files_are_byte_identical_to_hf(lm_fixture, tmp_path, monkeypatch):
    """HF wrote the fixtures; the same weights saved here give the same bytes."""
    monkeypatch.setattr(writers, "H5_KERAS_VERSION", "2.21.0")  # the tf-keras version HF ran under
    lm_fixture.save_pretrained(tmp_path / "h5")
    assert (tmp_path / "h5" / "tf_model.h5").read_bytes() == (HF / "lm" / "tf_model.h5").read_bytes()
    for name, cls in (("lm", tfgpt.TFOpenAIGPTLMHeadModel), ("double_heads", tfgpt.TFOpenAIGPTDoubleHeadsModel),
                      ("seqcls", tfgpt.TFOpenAIGPTForSequenceClassification)):
        model = lm_fixture if name == "lm" else cls.from_pretrained(HF / name)
        model.save_pretrained(tmp_path / name, safe_serialization=True)
        ours = (tmp_path / name / "model.safetensors").read_bytes()
        assert ours == (HF / name / "model.safetensors").read_bytes(), name


def _h5_tree(path):
    """Everything HF's loader and tf-keras look at: groups, attributes (type and value), datasets."""
    def attrs(obj):
        out = {}
        for key in obj.attrs:
            t = obj.attrs.get_id(key).get_type()
            kind = (t.get_class(), t.is_variable_str(), t.get_cset()) if isinstance(t, h5py.h5t.TypeStringID) \
                else (t.get_class(),)
            value = obj.attrs[key]
            value = [v.decode() if isinstance(v, bytes) else v for v in np.atleast_1d(value).tolist()]
            out[key] = (kind, value)
        return out

    tree = {}
    with h5py.File(path, "r") as f:
        tree["/"] = attrs(f)
        f.visititems(lambda n, o: tree.__setitem__(
            n, attrs(o) if isinstance(o, h5py.Group) else (o.shape, o.dtype.str, o.chunks, o.compression)))
    return tree


def test_h5_structure_for_every_head(lm_fixture, tmp_path):
    """Heads follow HF's TF classes: layer order, model name, kernel [in, out], bias shapes."""
    reference = _h5_tree(HF / "lm" / "tf_model.h5")
    lm_fixture.save_pretrained(tmp_path / "lm")
    ours = _h5_tree(tmp_path / "lm" / "tf_model.h5")
    assert ours["/"]["keras_version"][1] == [__import__("keras").__version__]
    ours["/"]["keras_version"] = reference["/"]["keras_version"]
    assert ours == reference

    def expected(model_name, layers, head):
        tree = {}
        for key, value in copy.deepcopy(reference).items():
            tree[key.replace("tf_open_aigptlm_head_model", model_name)] = value
        t = tree["transformer"]["weight_names"]
        tree["transformer"]["weight_names"] = (t[0], [w.replace("tf_open_aigptlm_head_model", model_name)
                                                      for w in t[1]])
        tree["/"]["layer_names"] = (tree["/"]["layer_names"][0], layers)
        tree.update(head)
        return tree

    string_list = reference["transformer"]["weight_names"][0]
    dh = tfgpt.TFOpenAIGPTDoubleHeadsModel.from_pretrained(HF / "double_heads")
    dh.save_pretrained(tmp_path / "dh")
    name = "tf_open_aigpt_double_heads_model"
    head = {"multiple_choice_head": {"weight_names": (string_list, [
                f"{name}/multiple_choice_head/summary/kernel:0", f"{name}/multiple_choice_head/summary/bias:0"])},
            f"multiple_choice_head/{name}": {}, f"multiple_choice_head/{name}/multiple_choice_head": {},
            f"multiple_choice_head/{name}/multiple_choice_head/summary": {},
            f"multiple_choice_head/{name}/multiple_choice_head/summary/kernel:0": ((64, 1), "<f4", None, None),
            f"multiple_choice_head/{name}/multiple_choice_head/summary/bias:0": ((1,), "<f4", None, None)}
    ours = _h5_tree(tmp_path / "dh" / "tf_model.h5")
    ours["/"]["keras_version"] = reference["/"]["keras_version"]
    assert ours == expected(name, ["transformer", "multiple_choice_head"], head)
    with h5py.File(tmp_path / "dh" / "tf_model.h5") as f:
        kernel = f[f"multiple_choice_head/{name}/multiple_choice_head/summary/kernel:0"][()]
    np.testing.assert_array_equal(kernel, load_file(HF / "double_heads" / "model.safetensors")[
        "multiple_choice_head.summary.weight"].T)

    sc = tfgpt.TFOpenAIGPTForSequenceClassification.from_pretrained(HF / "seqcls")
    sc.save_pretrained(tmp_path / "sc")
    name = "tf_open_aigpt_for_sequence_classification"
    head = {"score": {"weight_names": (string_list, [f"{name}/score/kernel:0"])},
            f"score/{name}": {}, f"score/{name}/score": {},
            f"score/{name}/score/kernel:0": ((64, 3), "<f4", None, None)}
    ours = _h5_tree(tmp_path / "sc" / "tf_model.h5")
    ours["/"]["keras_version"] = reference["/"]["keras_version"]
    assert ours == expected(name, ["score", "transformer"], head)

    import keras
    for cls_name, model_name in ck.HF_TF_MODEL_NAMES.items():  # Keras 2's default-name rule
        assert keras.src.utils.naming.to_snake_case(cls_name) == model_name


def test_sharded_files_follow_hf(lm_fixture, tmp_path):
    lm_fixture.save_pretrained(tmp_path / "h5", max_shard_size="200KB")
    index = json.loads((tmp_path / "h5" / "tf_model.h5.index.json").read_text())
    assert index["metadata"]["total_size"] == 4 * sum(v.size for v in weights_of(lm_fixture).values())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == [f"tf_model-0000{i}-of-00004.h5" for i in range(1, 5)]
    with h5py.File(HF / "lm" / "tf_model.h5") as f:
        hf_names = list(f["transformer"].attrs["weight_names"])
    assert sorted(index["weight_map"]) == sorted(hf_names)
    for shard in shards:  # HF's shard layout: root datasets without the model name, listed in layer_names
        with h5py.File(tmp_path / "h5" / shard) as f:
            names = list(f.attrs["layer_names"])
            assert names == sorted(names) and all(n.startswith("transformer/") for n in names)
            for n in names:
                assert isinstance(f[n], h5py.Dataset)
                assert index["weight_map"]["tf_open_aigptlm_head_model/" + n] == shard
                if n.endswith("bias:0") and "/ln_" not in n:
                    assert f[n].shape[0] == 1  # TF Conv1D bias [1, n]

    lm_fixture.save_pretrained(tmp_path / "st", safe_serialization=True, max_shard_size="200KB")
    index = json.loads((tmp_path / "st" / "model.safetensors.index.json").read_text())
    reference = load_file(HF / "lm" / "model.safetensors")
    assert sorted(index["weight_map"]) == sorted(reference)
    merged = {}
    for shard in sorted(set(index["weight_map"].values())):
        from safetensors import safe_open
        with safe_open(tmp_path / "st" / shard, framework="numpy") as f:
            assert f.metadata() == {"format": "pt"}
        merged.update(load_file(tmp_path / "st" / shard))
    assert sorted(merged) == sorted(reference)
    for k in reference:
        np.testing.assert_array_equal(merged[k], reference[k])


def test_tf_named_safetensors_load(lm_fixture, tmp_path):
    raw = {k: np.asarray(v) for k, v in readers.read_h5(HF / "lm" / "tf_model.h5").items()}  # TF names
    for variant, tensors in (("stripped", {k.split("/", 1)[1]: v for k, v in raw.items()}),
                             ("with-model-name", dict(raw))):
        folder = copy_fixture("lm", tmp_path / variant, files={"config.json"})
        save_file(tensors, folder / "model.safetensors", metadata={"format": "tf"})
        assert_same_weights(lm_fixture, tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder))


def test_long_attribute_lists_are_chunked_like_tf_keras(tmp_path):
    names = [f"model/transformer/h_._{i}/attn/c_attn/weight:0".encode() for i in range(3000)]
    with h5py.File(tmp_path / "a.h5", "w") as f:
        writers._save_h5_attr(f, "weight_names", names)
        assert "weight_names" not in f.attrs and "weight_names1" in f.attrs
        assert readers.load_h5_attr(f, "weight_names") == [n.decode() for n in names]


def test_explicit_config_and_hf_loader_options(tmp_path):
    folder = copy_fixture("lm", tmp_path, files={"model.safetensors"})
    config = tfgpt.OpenAIGPTConfig.from_pretrained(HF / "lm")
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder, config=config, from_pt=True)
    assert not hasattr(model.config, "from_pt")
    ref = load_file(HF / "lm" / "model.safetensors")
    np.testing.assert_array_equal(model.transformer.tokens_embed.embeddings.numpy(),
                                  ref["transformer.tokens_embed.weight"])


# --- heads, prefixes and sizes ------------------------------------------------------------------------

def test_base_checkpoint_into_head_model(lm_fixture, caplog):
    with caplog.at_level(logging.WARNING, logger="tfgpt.checkpoints"):
        model, info = tfgpt.TFOpenAIGPTDoubleHeadsModel.from_pretrained(HF / "lm", output_loading_info=True)
    assert info["missing_keys"] == ["multiple_choice_head.summary.weight", "multiple_choice_head.summary.bias"]
    assert "multiple_choice_head.summary.weight" in caplog.text
    for name, value in weights_of(lm_fixture).items():
        np.testing.assert_array_equal(model.hf_weight_map()[name].numpy(), value)


def test_head_checkpoint_into_base_model(caplog):
    with caplog.at_level(logging.WARNING, logger="tfgpt.checkpoints"):
        model, info = tfgpt.TFOpenAIGPTModel.from_pretrained(HF / "double_heads", output_loading_info=True)
    assert sorted(info["unexpected_keys"]) == ["multiple_choice_head.summary.bias",
                                               "multiple_choice_head.summary.weight"]
    assert info["missing_keys"] == [] and "multiple_choice_head.summary.bias" in caplog.text
    ref = load_file(HF / "double_heads" / "model.safetensors")
    np.testing.assert_array_equal(model.hf_weight_map()["h.1.mlp.c_fc.weight"].numpy(),
                                  ref["transformer.h.1.mlp.c_fc.weight"])


def test_base_model_names_without_prefix_load_into_lm(tmp_path):
    base = tiny("base")
    base.save_pretrained(tmp_path, safe_serialization=True)
    assert all(not k.startswith("transformer.") for k in load_file(tmp_path / "model.safetensors"))
    lm = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path)
    for name, value in weights_of(base).items():
        np.testing.assert_array_equal(lm.hf_weight_map()["transformer." + name].numpy(), value)


def test_new_number_of_labels_and_vocab():
    with pytest.raises(ck.CheckpointError) as err:
        tfgpt.TFOpenAIGPTForSequenceClassification.from_pretrained(HF / "seqcls", num_labels=5)
    assert "score.weight" in str(err.value) and "(3, 64)" in str(err.value) and "(5, 64)" in str(err.value)
    model, info = tfgpt.TFOpenAIGPTForSequenceClassification.from_pretrained(
        HF / "seqcls", num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert info["mismatched_keys"] == [("score.weight", (3, 64), (5, 64))]
    assert model.score.kernel.shape == (64, 5)

    model, info = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(
        HF / "lm", vocab_size=1003, ignore_mismatched_sizes=True, output_loading_info=True)
    assert info["mismatched_keys"] == [("transformer.tokens_embed.weight", (1000, 64), (1003, 64))]
    ref = load_file(HF / "lm" / "model.safetensors")
    np.testing.assert_array_equal(model.transformer.positions_embed.embeddings.numpy(),
                                  ref["transformer.positions_embed.weight"])


# --- pytorch_model.bin ---------------------------------------------------------------------------------

class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pytorch_bin_without_torch_never_unpickles(tmp_path, monkeypatch):
    folder = copy_fixture("lm", tmp_path / "bin", files={"config.json"})
    marker = tmp_path / "unpickled"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(marker)))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(ck.CheckpointError, match="needs torch"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    assert not marker.exists()


def test_pytorch_bin_uses_weights_only(lm_fixture, tmp_path, monkeypatch):
    folder = copy_fixture("lm", tmp_path / "bin", files={"config.json"})
    (folder / "pytorch_model.bin").write_bytes(b"PK\x03\x04 stand-in for a torch zip")
    calls = []

    class FakeTensor:
        def __init__(self, a):
            self.a, self.dtype = a, "torch.float32"

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    def fake_load(path, map_location=None, weights_only=False):
        calls.append((os.path.basename(path), map_location, weights_only))
        state = {k: FakeTensor(v) for k, v in load_file(HF / "lm" / "model.safetensors").items()}
        state["lm_head.weight"] = state["transformer.tokens_embed.weight"]
        return state

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(load=fake_load))
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    assert calls == [("pytorch_model.bin", "cpu", True)]
    assert_same_weights(lm_fixture, model)


# --- hub ids through huggingface_hub's cache ------------------------------------------------------------

def test_hub_id_offline_from_cache(lm_fixture, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--tfgpt-test--tiny-gpt"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    copy_fixture("lm", repo / "snapshots" / commit, files={"config.json", "model.safetensors"})
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained("tfgpt-test/tiny-gpt", cache_dir=str(tmp_path / "cache"))
    assert_same_weights(lm_fixture, model)
    with pytest.raises(HubError) as err:
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained("tfgpt-test/not-cached", cache_dir=str(tmp_path / "cache"))
    message = str(err.value)
    assert "tfgpt-test/not-cached" in message and "local folder" in message and "HF_HUB_OFFLINE" in message


# --- errors -------------------------------------------------------------------------------------------

def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ck.CheckpointNotFoundError, match="no GPT-1 weights"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path / "empty")
    folder = copy_fixture("lm", tmp_path / "noconfig", files={"model.safetensors"})
    with pytest.raises(ck.CheckpointNotFoundError, match="config.json"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    model = tiny("lm")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="8KB")
    index = json.loads((tmp_path / "sharded" / "tf_model.h5.index.json").read_text())
    shard = sorted(set(index["weight_map"].values()))[1]
    (tmp_path / "sharded" / shard).unlink()
    with pytest.raises(ck.CheckpointNotFoundError, match=shard):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path / "sharded")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "lfs", "empty"])
@pytest.mark.parametrize("file", ["model.safetensors", "tf_model.h5"])
def test_corrupt_files(file, damage, tmp_path):
    folder = copy_fixture("lm", tmp_path, files={"config.json", file})
    path = folder / file
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 64)
    elif damage == "lfs":
        path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    else:
        path.write_bytes(b"")
    with pytest.raises(ck.CheckpointError, match=file.replace(".", r"\.")):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)


def test_corrupt_original_release(tmp_path):
    folder = copy_fixture("original_release", tmp_path)
    data = (folder / "params_3.npy").read_bytes()
    (folder / "params_3.npy").write_bytes(data[:-100])
    with pytest.raises(ck.CheckpointError, match="params_3.npy"):
        tfgpt.TFOpenAIGPTModel.from_pretrained(folder)


def test_wrong_shapes_and_config_mismatch(tmp_path):
    with pytest.raises(ck.CheckpointError) as err:
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF / "lm", vocab_size=999)
    assert "transformer.tokens_embed.weight" in str(err.value)
    assert "(1000, 64)" in str(err.value) and "(999, 64)" in str(err.value)
    with pytest.raises(ck.CheckpointError, match="n_layer=3"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF / "lm", n_layer=3)
    with pytest.raises(ck.CheckpointError, match="n_layer=1"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF / "lm", n_layer=1, use_safetensors=False)
    # one tensor with a wrong shape inside an otherwise fine file
    state = load_file(HF / "lm" / "model.safetensors")
    state["transformer.h.1.attn.c_proj.weight"] = np.zeros((64, 65), np.float32)
    folder = copy_fixture("lm", tmp_path / "bad", files={"config.json"})
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ck.CheckpointError) as err:
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    assert "transformer.h.1.attn.c_proj.weight" in str(err.value)
    assert "(64, 65)" in str(err.value) and "(64, 64)" in str(err.value)


def test_failed_load_changes_nothing():
    model = tiny("lm", vocab_size=1000, n_positions=128, n_embd=64)
    before = weights_of(model)
    state = load_file(HF / "lm" / "model.safetensors")
    state["transformer.h.1.ln_2.bias"] = np.zeros(7, np.float32)  # the last tensor checked
    with pytest.raises(ck.CheckpointError):
        ck.load_state_dict(model, state)
    for name, value in weights_of(model).items():
        np.testing.assert_array_equal(value, before[name])


def test_unknown_formats(tmp_path):
    folder = copy_fixture("lm", tmp_path / "names", files={"config.json"})
    save_file({"encoder.layer.0.weight": np.zeros((2, 2), np.float32)}, folder / "model.safetensors")
    with pytest.raises(ck.CheckpointError, match="is it an OpenAI GPT checkpoint"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    keras_file = copy_fixture("lm", tmp_path / "keras", files={"config.json"})
    model = tiny("lm", vocab_size=1000, n_positions=128, n_embd=64)
    model.save_weights(str(keras_file / "model.weights.h5"))
    shutil.copyfile(keras_file / "model.weights.h5", keras_file / "tf_model.h5")
    with pytest.raises(ck.CheckpointError, match="not in HF's tf_model.h5 layout"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(keras_file)
    (keras_file / "tf_model.h5").unlink()
    with pytest.raises(ck.CheckpointNotFoundError, match="load_weights"):
        tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(keras_file)
    with pytest.raises(ValueError, match="max_shard_size"):
        model.save_pretrained(tmp_path / "out", max_shard_size="ten gigs")


# --- atomic saves --------------------------------------------------------------------------------------

TRANSITIONS = [  # (old save kwargs, new save kwargs)
    ({}, {}),
    ({}, {"safe_serialization": True}),
    ({"safe_serialization": True}, {}),
    ({"max_shard_size": "40KB"}, {"max_shard_size": "40KB"}),  # same shard names
    ({"safe_serialization": True, "max_shard_size": "40KB"}, {"safe_serialization": True, "max_shard_size": "40KB"}),
    ({}, {"max_shard_size": "40KB"}),
    ({"safe_serialization": True, "max_shard_size": "40KB"}, {}),
    ({"max_shard_size": "40KB"}, {"safe_serialization": True}),
]


def _pt_state(model):
    return {k: v.copy() for k, v in writers._pt_tensors(model).items()}


def _matches(folder, states):
    state = ck.read_checkpoint(folder)[0]
    return [i for i, s in enumerate(states)
            if set(state) == set(s) and all(np.array_equal(state[k], s[k]) for k in s)]


@pytest.mark.parametrize("old,new", TRANSITIONS)
def test_save_interrupted_at_every_step(old, new, tmp_path, monkeypatch):
    """Stop the commit after each rename/removal: the folder always loads as the old or new weights."""
    model = tiny("lm")
    old_state = _pt_state(model)
    old_weights = weights_of(model)
    new_weights = {n: v + 1.0 for n, v in old_weights.items()}

    def fresh(folder):
        for name, var in model.hf_weight_map().items():
            var.assign(old_weights[name])
        model.save_pretrained(folder, **old)
        for name, var in model.hf_weight_map().items():
            var.assign(new_weights[name])

    # count the steps of an uninterrupted save
    ops = []
    real_replace, real_remove = writers._replace, writers._remove
    monkeypatch.setattr(writers, "_replace", lambda a, b: (ops.append("r"), real_replace(a, b)))
    monkeypatch.setattr(writers, "_remove", lambda a: (ops.append("d"), real_remove(a)))
    fresh(tmp_path / "count")
    ops.clear()
    model.save_pretrained(tmp_path / "count", **new)
    steps = len(ops)
    new_state = _pt_state(model)
    assert _matches(tmp_path / "count", [old_state, new_state]) == [1]

    class Crash(Exception):
        pass

    for k in range(steps):
        folder = tmp_path / f"k{k}"
        fresh(folder)
        budget = [k]

        def step(fn):
            def wrapped(*args):
                if budget[0] == 0:
                    raise Crash()
                budget[0] -= 1
                return fn(*args)
            return wrapped

        monkeypatch.setattr(writers, "_replace", step(real_replace))
        monkeypatch.setattr(writers, "_remove", step(real_remove))
        with pytest.raises(Crash):
            model.save_pretrained(folder, **new)
        monkeypatch.setattr(writers, "_replace", real_replace)
        monkeypatch.setattr(writers, "_remove", real_remove)
        assert _matches(folder, [old_state, new_state]), f"interrupted after {k} steps: {os.listdir(folder)}"
        # the next save cleans up whatever the interrupted one left
        model.save_pretrained(folder, **new)
        assert _matches(folder, [old_state, new_state]) == [1]
        assert sorted(os.listdir(folder)) == sorted(os.listdir(tmp_path / "count"))


@pytest.mark.slow
def test_kill_during_save(tmp_path):
    """SIGKILL a real process in the middle of save_pretrained: the folder still loads, old or new."""
    sys.path.insert(0, str(TESTS))
    try:
        import _ckpt_save_loop as loop
    finally:
        sys.path.remove(str(TESTS))
    vocab = 30000
    model = loop.build(vocab)
    sets = [loop.weight_set(model, seed) for seed in (1, 2)]
    folder = tmp_path / "ckpt"
    loop.assign(model, sets[0])
    model.save_pretrained(folder)  # the good checkpoint already there
    expected = []
    for s in sets:
        loop.assign(model, s)
        expected.append(_pt_state(model))

    progress = tmp_path / "progress"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(TESTS.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    proc = subprocess.Popen([sys.executable, str(TESTS / "_ckpt_save_loop.py"), str(folder), str(vocab)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_in = None
    try:
        deadline = time.monotonic() + 100
        while time.monotonic() < deadline and proc.poll() is None:
            done = int(progress.read_text()) if progress.exists() else 0
            if done >= 5:  # past a few format changes; kill once a save is writing its files
                temp = [e for e in os.listdir(folder) if e.startswith(writers._TMP_PREFIX)]
                if temp and os.listdir(folder / temp[0]):
                    killed_in = (done, sorted(os.listdir(folder / temp[0])))
                    proc.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None and killed_in is None:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    assert killed_in is not None, f"the saving process never reached a save: {err.decode()[-2000:]}"
    assert proc.returncode == -signal.SIGKILL
    # a temporary folder is left behind, the checkpoint is not harmed
    assert any(e.startswith(writers._TMP_PREFIX) for e in os.listdir(folder))
    assert _matches(folder, expected), f"killed during save #{killed_in[0] + 1}: {os.listdir(folder)}"
    print(f"killed during save #{killed_in[0] + 1}, temp files {killed_in[1]}, folder {sorted(os.listdir(folder))}")
    loaded = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder)
    assert any(all(np.array_equal(loaded.hf_weight_map()[k].numpy(), s[k]) for k in s) for s in sets)
    loaded.save_pretrained(folder)  # the next save clears the dead process's temporary folder
    assert not any(e.startswith(writers._TMP_PREFIX) for e in os.listdir(folder))


# --- command line -------------------------------------------------------------------------------------

def test_cli_convert(tmp_path, capsys):
    from tfgpt.cli import main

    out = tmp_path / "from-openai"
    assert main(["convert", "--from-openai", str(HF / "original_release"), "--out", str(out),
                 "--head", "base"]) == 0
    assert "tf_model.h5" in capsys.readouterr().out
    g = np.load(HF / "original_release" / "golden.npz")
    model = tfgpt.TFOpenAIGPTModel.from_pretrained(out)
    assert np.abs(model(g["input_ids"]).last_hidden_state.numpy() - g["last_hidden_state"]).max() < 1e-4

    out = tmp_path / "safe"
    assert main(["convert", "--checkpoint", str(HF / "lm"), "--out", str(out), "--safe"]) == 0
    assert (out / "model.safetensors").read_bytes() == (HF / "lm" / "model.safetensors").read_bytes()

    assert main(["convert", "--from-openai", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 1
    assert "params_shapes.json" in capsys.readouterr().err


def test_stale_index_never_deletes_foreign_files(tmp_path):
    """A stale *.index.json naming other files (vocab.json, notes) must not make a save remove them."""
    model = tiny("lm")
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "vocab.json").write_text('{"a": 0}')
    (folder / "notes.txt").write_text("keep me")
    (folder / "tf_model-00001-of-00002.h5").write_bytes(b"stale shard")
    index = {"metadata": {"total_size": 1},
             "weight_map": {"a": "vocab.json", "b": "notes.txt", "c": "tf_model-00001-of-00002.h5"}}
    (folder / ck.TF2_WEIGHTS_INDEX_NAME).write_text(json.dumps(index))
    model.save_pretrained(folder, safe_serialization=True)
    assert (folder / "vocab.json").read_text() == '{"a": 0}'
    assert (folder / "notes.txt").read_text() == "keep me"
    # the stale index and tfgpt's own shard names are gone; the new checkpoint is the only one
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "generation_config.json",
                                                        "model.safetensors", "notes.txt", "vocab.json"]
    assert_same_weights(tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(folder), model)
