"""Reading and writing GPT-1 checkpoints in the formats users bring and the ones HF reads back.

Reading (``from_pretrained``), in this order of preference inside a folder:

* ``model.safetensors`` / ``model.safetensors.index.json`` -- PyTorch names (with or without the
  ``transformer.`` prefix) or HF's TF names (``transformer/h_._0/attn/c_attn/weight:0``);
* ``tf_model.h5`` / ``tf_model.h5.index.json`` -- HF's Keras-2 HDF5 layout, any model name;
* ``pytorch_model.bin`` / its index -- only when torch is installed, read with ``weights_only=True``;
* OpenAI's original release -- ``params_shapes.json`` + ``params_{0..9}.npy``.

Every format is first turned into one PyTorch-style state dict (HF PyTorch names and shapes); the
model's ``hf_weight_map()`` then says which Keras variable each name fills. All checks (names,
shapes, config agreement) run before the first variable is assigned, so a failed load never leaves a
half-loaded model behind.

Writing (``save_pretrained``) produces ``config.json`` plus ``tf_model.h5`` in exactly the layout HF's
TF classes write (groups, attributes, dataset paths, ``[1, n]`` biases), or ``model.safetensors`` with
PyTorch names as HF's PyTorch classes write it; both shard above ``max_shard_size`` with HF's index
files. Saves are atomic: files are written into a temporary folder inside the target, fsynced, and
renamed into place in an order that keeps a complete checkpoint (old or new) loadable at every
instant; files of an older save are removed only after the new set is in place.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np

from tfgpt.models.configuration import CONFIG_NAME, OpenAIGPTConfig
from tfgpt.hub import resolve_dir

logger = logging.getLogger(__name__)

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TF2_WEIGHTS_NAME = "tf_model.h5"
TF2_WEIGHTS_INDEX_NAME = "tf_model.h5.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
ORIGINAL_SHAPES_NAME = "params_shapes.json"
ORIGINAL_NAMES_NAME = "parameters_names.json"

# PyTorch nn.Linear weights are stored [out, in]; the Keras kernels are [in, out].
TRANSPOSED = ("multiple_choice_head.summary.weight", "score.weight")
# Old PyTorch checkpoints carry the causal-mask buffer; the LM head is tied to the token table.
IGNORED_SUFFIXES = (".attn.bias", "attn.masked_bias")
IGNORED_NAMES = ("lm_head.weight",)

# The model name HF's TF classes put in front of every variable (Keras 2's default layer name).
HF_TF_MODEL_NAMES = {
    "TFOpenAIGPTModel": "tf_open_aigpt_model",
    "TFOpenAIGPTLMHeadModel": "tf_open_aigptlm_head_model",
    "TFOpenAIGPTDoubleHeadsModel": "tf_open_aigpt_double_heads_model",
    "TFOpenAIGPTForSequenceClassification": "tf_open_aigpt_for_sequence_classification",
}
# Top-level layers in the order HF's TF classes create them (that is the tf_model.h5 order).
HF_TF_LAYER_ORDER = {
    "TFOpenAIGPTModel": ("transformer",),
    "TFOpenAIGPTLMHeadModel": ("transformer",),
    "TFOpenAIGPTDoubleHeadsModel": ("transformer", "multiple_choice_head"),
    "TFOpenAIGPTForSequenceClassification": ("score", "transformer"),
}
TOP_LAYERS = ("transformer", "multiple_choice_head", "score")

# tf-keras splits attributes above this many bytes into name0, name1, ... (HDF5 header limit).
HDF5_OBJECT_HEADER_LIMIT = 64512
# The ``keras_version`` attribute written into tf_model.h5; None means the installed Keras.
H5_KERAS_VERSION: Optional[str] = None

# Names used while saving; a killed save leaves at most these behind, and the next save clears them.
_TMP_PREFIX = ".tfgpt-save-"
_OLD_PREFIX = ".tfgpt-old-"
_SHARD_RE = re.compile(r"^(model-\d{5}-of-\d{5}\.safetensors|tf_model-\d{5}-of-\d{5}\.h5)$")
_BODY_RE = re.compile(r"^(transformer\.)?(tokens_embed|positions_embed|h\.\d+)\.")
_LAYER_RE = re.compile(r"^(?:transformer\.)?h\.(\d+)\.")

# Keyword arguments of from_pretrained that go to the model's constructor, not the config.
_MODEL_KWARGS = ("name", "dtype", "lm_coef", "trainable")
_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token")
# HF loader options that have no meaning here; kept out of the config overrides.
_HF_NO_OP_KWARGS = ("from_pt", "from_tf", "force_download", "resume_download", "proxies",
                    "trust_remote_code", "mirror", "_from_auto", "_from_pipeline")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model as asked (corrupt, mismatched, unknown)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The files a checkpoint needs are not there."""


# --- names -----------------------------------------------------------------------------------------

_TF_PATTERNS = (
    (re.compile(r"^transformer/tokens_embed/(weight|embeddings)$"),
     lambda m: "transformer.tokens_embed.weight", "plain"),
    (re.compile(r"^transformer/positions_embed/(embeddings|weight)$"),
     lambda m: "transformer.positions_embed.weight", "plain"),
    (re.compile(r"^transformer/h_\._(\d+)/(attn/c_attn|attn/c_proj|mlp/c_fc|mlp/c_proj)/weight$"),
     lambda m: f"transformer.h.{m[1]}.{m[2].replace('/', '.')}.weight", "plain"),
    (re.compile(r"^transformer/h_\._(\d+)/(attn/c_attn|attn/c_proj|mlp/c_fc|mlp/c_proj)/bias$"),
     lambda m: f"transformer.h.{m[1]}.{m[2].replace('/', '.')}.bias", "bias"),
    (re.compile(r"^transformer/h_\._(\d+)/(ln_1|ln_2)/(gamma|beta)$"),
     lambda m: f"transformer.h.{m[1]}.{m[2]}.{'weight' if m[3] == 'gamma' else 'bias'}", "plain"),
    (re.compile(r"^multiple_choice_head/summary/kernel$"),
     lambda m: "multiple_choice_head.summary.weight", "kernel"),
    (re.compile(r"^multiple_choice_head/summary/bias$"),
     lambda m: "multiple_choice_head.summary.bias", "plain"),
    (re.compile(r"^score/kernel$"), lambda m: "score.weight", "kernel"),
)


def is_tf_name(name: str) -> bool:
    """HF's TF variable names use '/' (and usually end in ':0'); PyTorch names use '.'."""
    return "/" in name or name.endswith(":0")


def tf_to_pt_name(tf_name: str) -> Tuple[Optional[str], str]:
    """HF TF variable name (with or without model name and ':0') -> (PyTorch name, conversion).

    The conversion is "plain", "bias" (TF [1, n] -> [n]) or "kernel" (transpose); the name is None
    when the variable is not a GPT-1 weight.
    """
    name = re.sub(r":\d+$", "", tf_name)
    parts = name.split("/")
    candidates = ["/".join(parts)]
    if len(parts) > 1:
        candidates.append("/".join(parts[1:]))  # drop the model name (any model name loads)
    for cand in candidates:
        for pattern, to_pt, kind in _TF_PATTERNS:
            m = pattern.match(cand)
            if m:
                return to_pt(m), kind
    return None, "plain"


def pt_to_tf_name(pt_name: str) -> str:
    """PyTorch name (with or without 'transformer.') -> HF TF name without model name and ':0'."""
    if pt_name == "multiple_choice_head.summary.weight":
        return "multiple_choice_head/summary/kernel"
    if pt_name == "multiple_choice_head.summary.bias":
        return "multiple_choice_head/summary/bias"
    if pt_name == "score.weight":
        return "score/kernel"
    n = pt_name[len("transformer."):] if pt_name.startswith("transformer.") else pt_name
    if n == "tokens_embed.weight":
        return "transformer/tokens_embed/weight"
    if n == "positions_embed.weight":
        return "transformer/positions_embed/embeddings"
    m = re.match(r"^h\.(\d+)\.(.+)\.(weight|bias)$", n)
    if not m:
        raise KeyError(f"{pt_name!r} is not a GPT-1 weight name")
    layer, module, leaf = m.groups()
    if module in ("ln_1", "ln_2"):
        leaf = "gamma" if leaf == "weight" else "beta"
    return f"transformer/h_._{layer}/{module.replace('.', '/')}/{leaf}"


def _hf_class_name(model) -> str:
    """The one of HF's four TF class names that ``model`` is (a subclass counts as its base)."""
    for klass in type(model).__mro__:
        if klass.__name__ in HF_TF_MODEL_NAMES:
            return klass.__name__
    raise TypeError(f"{type(model).__name__} is not one of the GPT-1 model classes")


def hf_tf_model_name(model) -> str:
    """The model name HF's TF class would carry (e.g. 'tf_open_aigptlm_head_model')."""
    return HF_TF_MODEL_NAMES[_hf_class_name(model)]


# --- reading: one state dict per format -------------------------------------------------------------

def _check_not_lfs(path):
    """A Git LFS pointer instead of the weights is the most common 'corrupt file'; say so."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise CheckpointNotFoundError(f"cannot read {path}: {e}") from e
    if head.startswith(b"version https://git-lfs"):
        raise CheckpointError(
            f"{path} is a Git LFS pointer, not the weights: fetch the real file (git lfs pull), or "
            f"load by hub id so huggingface_hub downloads it")
    if not head:
        raise CheckpointError(f"{path} is empty (an interrupted download or copy?)")


def _read_safetensors(path) -> Dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays (bf16 through TensorFlow)."""
    _check_not_lfs(path)
    from safetensors import safe_open

    try:
        out = OrderedDict()
        with safe_open(path, framework="numpy") as f:
            for key in f.keys():
                out[key] = f.get_tensor(key)
        return out
    except Exception as first:  # safetensors raises its own error types
        if "bf16" in str(first).lower() or "bfloat16" in str(first).lower():
            try:
                with safe_open(path, framework="tf") as f:
                    return OrderedDict((k, f.get_tensor(k).numpy()) for k in f.keys())
            except Exception:
                pass
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {first}") from first


def _load_h5_attr(obj, name) -> List[str]:
    """Read a string-list attribute, also when tf-keras split it into name0, name1, ..."""
    if name in obj.attrs:
        values = list(obj.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in obj.attrs:
            values.extend(obj.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _has_h5_attr(obj, name) -> bool:
    return name in obj.attrs or f"{name}0" in obj.attrs


def _read_h5(path) -> Dict[str, np.ndarray]:
    """Tensors of an HF tf_model.h5 (full layout or one shard), keyed by their TF names."""
    import h5py

    _check_not_lfs(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {e}") from e
    try:
        with f:
            if not _has_h5_attr(f, "layer_names"):
                hint = ""
                if "layers" in f or "_layer_checkpoint_dependencies" in f or "vars" in f:
                    hint = (" It looks like a Keras .weights.h5 file: load it with "
                            "model.load_weights() on a model built from the same config.")
                raise CheckpointError(
                    f"{path} is an HDF5 file but not in HF's tf_model.h5 layout (no 'layer_names' "
                    f"attribute).{hint}")
            out = OrderedDict()
            for layer in _load_h5_attr(f, "layer_names"):
                if layer not in f:
                    raise CheckpointError(f"{path}: 'layer_names' lists {layer!r} but the file has no such entry")
                obj = f[layer]
                if isinstance(obj, h5py.Dataset):  # HF's sharded layout: one dataset per weight
                    out[layer] = obj[()]
                    continue
                for weight_name in _load_h5_attr(obj, "weight_names"):
                    if weight_name not in obj:
                        raise CheckpointError(
                            f"{path}: group {layer!r} lists weight {weight_name!r} but holds no such dataset")
                    out[weight_name] = obj[weight_name][()]
            return out
    except CheckpointError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError/RuntimeError on damaged data
        raise CheckpointError(f"{path} could not be read (truncated or corrupt?): {e}") from e


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _read_torch_bin(path) -> Dict[str, np.ndarray]:
    """A pytorch_model.bin through torch's safe loader (weights_only=True); never plain pickle."""
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path} is a PyTorch pickle; reading it needs torch (pip install torch), and tfgpt then "
            f"loads it with weights_only=True. Without torch, use a folder or hub revision that has "
            f"model.safetensors or tf_model.h5 (openai-community/openai-gpt has both).") from None
    _check_not_lfs(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} could not be loaded safely (weights_only=True): {e}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    out = OrderedDict()
    for key, value in state.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            if str(getattr(value, "dtype", "")) == "torch.bfloat16":
                value = value.float()
            value = value.numpy()
        out[key] = np.asarray(value)
    return out


def _read_index(folder, index_name) -> Tuple[List[str], Dict[str, str]]:
    """Shard paths (in index order) and the weight_map of an HF index file."""
    path = os.path.join(folder, index_name)
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a readable index file: {e}") from e
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{path} has no 'weight_map' naming the shard of each weight")
    shards = []
    for shard in weight_map.values():
        if not isinstance(shard, str) or os.path.basename(shard) != shard:
            raise CheckpointError(f"{path}: shard name {shard!r} is not a file name in this folder")
        if shard not in shards:
            shards.append(shard)
    missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
    if missing:
        raise CheckpointNotFoundError(
            f"{path} lists shard(s) {missing} that are not in {folder} (an incomplete download or copy?)")
    return [os.path.join(folder, s) for s in shards], weight_map


def _read_sharded(folder, index_name, reader) -> Dict[str, np.ndarray]:
    shards, weight_map = _read_index(folder, index_name)
    out = OrderedDict()
    found = {}
    for shard in shards:
        for key, value in reader(shard).items():
            if key in out:
                raise CheckpointError(f"{key!r} appears in more than one shard of {index_name}")
            out[key] = value
            found[_normalise_for_index(key)] = os.path.basename(shard)
    for key, shard in weight_map.items():
        if _normalise_for_index(key) not in found:
            raise CheckpointError(
                f"{index_name} says {key!r} is in {shard}, but no shard holds it (incomplete or mixed shards?)")
    return out


def _normalise_for_index(name):
    if is_tf_name(name):
        pt, _ = tf_to_pt_name(name)
        return pt or re.sub(r":\d+$", "", name)
    return name


def to_pt_state(tensors: Dict[str, np.ndarray]) -> "OrderedDict[str, np.ndarray]":
    """Turn TF-named tensors into PyTorch names and shapes; PyTorch-named ones pass through."""
    out = OrderedDict()
    for name, value in tensors.items():
        value = np.asarray(value)
        key = name
        if is_tf_name(name):
            pt, kind = tf_to_pt_name(name)
            if pt is not None:
                key = pt
                if kind == "bias" and value.ndim == 2 and value.shape[0] == 1:
                    value = value.reshape(value.shape[1:])
                elif kind == "kernel" and value.ndim == 2:
                    value = value.T
        if key in out:
            raise CheckpointError(f"the checkpoint holds {key!r} twice (as {name!r} and another name)")
        out[key] = value
    return out


# --- OpenAI's original release -----------------------------------------------------------------------

# The 12 tensors of one block in OpenAI's release, in file order.
_ORIGINAL_LEAVES = ("attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
                    "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                    "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias")


def _original_block_shapes(e: int, inner: int) -> Tuple[Tuple[int, ...], ...]:
    """Shapes of one block's tensors in OpenAI's files (Conv1D weights carry a leading 1)."""
    return ((1, e, 3 * e), (3 * e,), (1, e, e), (e,), (e,), (e,),
            (1, e, inner), (inner,), (1, inner, e), (e,), (e,), (e,))


def original_release_dims(shapes, names=None) -> Dict[str, int]:
    """Validate OpenAI's ``params_shapes.json`` layout and infer the sizes it implies.

    Index 0 is the position table, 1 the token table (40478 rows in OpenAI's file, more if special
    tokens were appended), then 12 tensors per block. Returns n_positions, vocab_size, n_embd and
    n_layer; n_head is not in the shapes.
    """
    if (not isinstance(shapes, list) or len(shapes) < 2
            or not all(isinstance(s, list) and all(isinstance(d, int) and d > 0 for d in s) for s in shapes)):
        raise CheckpointError(f"{ORIGINAL_SHAPES_NAME} must be a list of shapes (lists of positive ints)")
    if len(shapes) == 2 or (len(shapes) - 2) % len(_ORIGINAL_LEAVES):
        raise CheckpointError(
            f"{ORIGINAL_SHAPES_NAME} lists {len(shapes)} tensors; OpenAI's layout has 2 embeddings + "
            f"12 per block")
    positions, tokens = shapes[0], shapes[1]
    if len(positions) != 2 or len(tokens) != 2 or positions[1] != tokens[1]:
        raise CheckpointError(
            f"{ORIGINAL_SHAPES_NAME}: entries 0 and 1 must be the position and token tables "
            f"[n, n_embd], got {positions} and {tokens}")
    n_embd = tokens[1]
    n_layer = (len(shapes) - 2) // len(_ORIGINAL_LEAVES)
    inner = shapes[2 + 6][-1]  # c_fc weight [1, n_embd, inner]
    for i in range(n_layer):
        for j, (leaf, want) in enumerate(zip(_ORIGINAL_LEAVES, _original_block_shapes(n_embd, inner))):
            k = 2 + i * len(_ORIGINAL_LEAVES) + j
            if tuple(shapes[k]) != want:
                label = names[k - 1] if names and 0 < k - 1 < len(names) else f"entry {k}"
                raise CheckpointError(
                    f"{ORIGINAL_SHAPES_NAME}: {label} (block {i} {leaf}) has shape {shapes[k]}, "
                    f"expected {list(want)} for n_embd={n_embd}")
    return {"n_positions": positions[0], "vocab_size": tokens[0], "n_embd": n_embd, "n_layer": n_layer}


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not readable JSON: {e}") from e


def read_original_release(folder) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, int]]:
    """Read OpenAI's release (params_shapes.json + params_{i}.npy) -> (state dict, inferred dims).

    The arrays are concatenated, split at the cumulative sizes and reshaped, as OpenAI's code does;
    Conv1D weights lose their leading 1. See ``original_release_dims`` for the layout.
    """
    shapes = _read_json(os.path.join(folder, ORIGINAL_SHAPES_NAME))
    names_path = os.path.join(folder, ORIGINAL_NAMES_NAME)
    try:
        names = _read_json(names_path) if os.path.isfile(names_path) else None
    except CheckpointError:
        names = None  # only used to label errors
    dims = original_release_dims(shapes, names if isinstance(names, list) else None)
    files = []
    while os.path.isfile(os.path.join(folder, f"params_{len(files)}.npy")):
        files.append(os.path.join(folder, f"params_{len(files)}.npy"))
    if not files:
        raise CheckpointNotFoundError(f"{folder} has {ORIGINAL_SHAPES_NAME} but no params_0.npy")
    parts = []
    for path in files:
        _check_not_lfs(path)
        try:
            parts.append(np.load(path, allow_pickle=False).ravel())
        except Exception as e:
            raise CheckpointError(f"{path} is not a readable .npy file (truncated or corrupt?): {e}") from e
    flat = np.concatenate(parts)
    sizes = [int(np.prod(s)) for s in shapes]
    if flat.size != sum(sizes):
        raise CheckpointError(
            f"params_0..{len(files) - 1}.npy hold {flat.size} values but {ORIGINAL_SHAPES_NAME} needs "
            f"{sum(sizes)} (a missing or truncated params file?)")
    arrays = [a.reshape(s) for a, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]
    state = OrderedDict()
    state["transformer.tokens_embed.weight"] = arrays[1]
    state["transformer.positions_embed.weight"] = arrays[0]
    for i in range(dims["n_layer"]):
        for j, leaf in enumerate(_ORIGINAL_LEAVES):
            arr = arrays[2 + i * len(_ORIGINAL_LEAVES) + j]
            if arr.ndim == 3:
                arr = arr.reshape(arr.shape[1:])  # Conv1D [1, in, out] -> [in, out]
            state[f"transformer.h.{i}.{leaf}"] = arr
    return state, dims


def _original_config(folder, dims, overrides) -> OpenAIGPTConfig:
    """config.json when the release folder has one; otherwise the dims the shapes give, plus n_head."""
    config_path = os.path.join(folder, CONFIG_NAME)
    if os.path.isfile(config_path):
        return OpenAIGPTConfig.from_json_file(config_path, **overrides)
    overrides = dict(overrides)
    n_head = overrides.pop("n_head", overrides.pop("num_attention_heads", None))
    if n_head is None:
        n_head = 12
        if dims["n_embd"] % n_head:
            raise CheckpointError(
                f"n_head cannot be read from OpenAI's shapes and the GPT-1 default 12 does not divide "
                f"n_embd={dims['n_embd']}: pass n_head=... (tfgpt convert --n-head N)")
        logger.warning("OpenAI release without config.json: n_head cannot be inferred from the "
                       "shapes, using GPT-1's 12 (pass n_head=... to override)")
    return OpenAIGPTConfig(**{**dims, **overrides, "n_head": n_head})


# --- finding a checkpoint in a folder ---------------------------------------------------------------

# (file that marks the checkpoint, kind, sharded) in loader preference order.
_CANDIDATES = (
    (SAFE_WEIGHTS_NAME, "safetensors", False),
    (SAFE_WEIGHTS_INDEX_NAME, "safetensors", True),
    (TF2_WEIGHTS_NAME, "h5", False),
    (TF2_WEIGHTS_INDEX_NAME, "h5", True),
    (WEIGHTS_NAME, "bin", False),
    (WEIGHTS_INDEX_NAME, "bin", True),
    (ORIGINAL_SHAPES_NAME, "original", False),
)
_OWN_ENTRIES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME)


def find_checkpoint(folder, use_safetensors: Optional[bool] = None) -> Tuple[str, str, bool]:
    """(entry file, kind, sharded) of the checkpoint ``from_pretrained`` would read in ``folder``."""
    for name, kind, sharded in _CANDIDATES:
        if use_safetensors is True and kind != "safetensors":
            continue
        if use_safetensors is False and kind == "safetensors":
            continue
        if os.path.isfile(os.path.join(folder, name)):
            return name, kind, sharded
    try:
        present = sorted(os.listdir(folder))
    except OSError:
        present = []
    hint = ""
    if any(p.endswith(".keras") or p.endswith(".weights.h5") for p in present):
        hint = (" It holds Keras-native files: use keras.models.load_model(...) for .keras, or "
                "model.load_weights(...) for .weights.h5.")
    elif any(p.endswith(".index") and ".ckpt" in p for p in present):
        hint = " TF1/TF2 tf.train checkpoints are not a supported format."
    elif use_safetensors is True:
        hint = " use_safetensors=True was given; pass use_safetensors=None to accept other formats."
    shown = present[:12] + (["..."] if len(present) > 12 else [])
    raise CheckpointNotFoundError(
        f"no GPT-1 weights in {folder}: expected {SAFE_WEIGHTS_NAME}, {TF2_WEIGHTS_NAME}, "
        f"{WEIGHTS_NAME} (each possibly sharded with an .index.json) or OpenAI's "
        f"{ORIGINAL_SHAPES_NAME} + params_*.npy; found {shown}.{hint}")


def read_checkpoint(folder, use_safetensors: Optional[bool] = None):
    """Read the preferred checkpoint of ``folder`` -> (PyTorch-style state dict, kind, file name, dims).

    ``dims`` is the inferred size dict for OpenAI's release and None otherwise.
    """
    name, kind, sharded = find_checkpoint(folder, use_safetensors)
    path = os.path.join(folder, name)
    dims = None
    if kind == "original":
        state, dims = read_original_release(folder)
        return state, kind, name, dims
    reader = {"safetensors": _read_safetensors, "h5": _read_h5, "bin": _read_torch_bin}[kind]
    raw = _read_sharded(folder, name, reader) if sharded else reader(path)
    if not raw:
        raise CheckpointError(f"{path} holds no tensors")
    return to_pt_state(raw), kind, name, dims


# --- assigning a state dict to a model ---------------------------------------------------------------

def _canonical(name: str, model_names) -> str:
    """Map a checkpoint name onto the model's naming (with or without the 'transformer.' prefix)."""
    if name in model_names:
        return name
    if name.startswith("transformer.") and name[len("transformer."):] in model_names:
        return name[len("transformer."):]
    if "transformer." + name in model_names:
        return "transformer." + name
    return name


def _is_body(name: str) -> bool:
    return bool(_BODY_RE.match(name))


def _config_mismatch_message(model, state_names, missing, unexpected) -> str:
    cfg = model.config
    layers = sorted({int(m[1]) for m in map(_LAYER_RE.match, state_names) if m})
    if layers and len(layers) != cfg.n_layer:
        what = (f"the checkpoint has {len(layers)} transformer blocks (h.{layers[0]}..h.{layers[-1]}) "
                f"but the config says n_layer={cfg.n_layer}")
    else:
        what = "the checkpoint and the config describe different transformers"
    parts = [what]
    if missing:
        parts.append(f"weights the model needs but the checkpoint lacks: {missing[:8]}"
                     + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""))
    if unexpected:
        parts.append(f"transformer weights the model has no place for: {unexpected[:8]}"
                     + (f" (+{len(unexpected) - 8} more)" if len(unexpected) > 8 else ""))
    return "; ".join(parts) + ". Fix config.json (or the overrides) so it matches the weights."


def load_state_dict(model, state: Dict[str, np.ndarray], ignore_mismatched_sizes: bool = False,
                    source: str = "checkpoint") -> Dict[str, list]:
    """Assign arrays named by HF PyTorch names (PyTorch shapes) to ``model``.

    Every name and shape is checked before any variable changes. Head weights may be missing (they
    keep their fresh initialisation) or unexpected (a head the model does not have); transformer
    weights must match the config exactly. A shape mismatch raises, naming the tensor and both shapes,
    unless ``ignore_mismatched_sizes`` (the variable then keeps its initialisation). Returns HF's
    loading-info dict: missing_keys, unexpected_keys, mismatched_keys [(name, ckpt, model)], error_msgs.
    """
    targets = model.hf_weight_map()
    pending: Dict[str, np.ndarray] = {}
    origin: Dict[str, str] = {}
    unexpected, mismatched = [], []
    for name, value in state.items():
        if name.endswith(IGNORED_SUFFIXES) or name in IGNORED_NAMES:
            continue
        key = _canonical(name, targets)
        if key not in targets:
            unexpected.append(name)
            continue
        if key in origin:
            raise CheckpointError(f"{source} holds {key!r} twice (as {origin[key]!r} and {name!r})")
        origin[key] = name
        value = np.asarray(value)
        if key.endswith(TRANSPOSED) and value.ndim == 2:
            value = value.T
        var = targets[key]
        if tuple(value.shape) != tuple(var.shape):
            ckpt_shape = tuple(np.shape(state[name]))
            # both shapes in the checkpoint's (PyTorch) convention
            model_shape = tuple(var.shape)[::-1] if key.endswith(TRANSPOSED) else tuple(var.shape)
            if ignore_mismatched_sizes:
                mismatched.append((name, ckpt_shape, model_shape))
                continue
            raise CheckpointError(
                f"{name}: the {source} has shape {ckpt_shape}, the model expects {model_shape} "
                f"(config and weights disagree; pass ignore_mismatched_sizes=True to keep that "
                f"weight freshly initialised, e.g. for a new number of labels or a new vocabulary)")
        if value.dtype.kind not in "fV" and "float" not in value.dtype.name:
            raise CheckpointError(f"{name}: the {source} stores dtype {value.dtype}, expected floats")
        pending[key] = value
    mismatched_keys = {_canonical(m[0], targets) for m in mismatched}
    missing = [k for k in targets if k not in pending and k not in mismatched_keys]
    if not pending and not mismatched:
        shown = list(state)[:5]
        raise CheckpointError(
            f"none of the {len(state)} tensors in the {source} is a weight of "
            f"{type(model).__name__} (first names: {shown}); is it an OpenAI GPT checkpoint?")
    body_missing = [k for k in missing if _is_body(k)]
    body_unexpected = [n for n in unexpected if _is_body(n)]
    if body_missing or body_unexpected:
        raise CheckpointError(_config_mismatch_message(model, list(state), body_missing, body_unexpected))
    for key, value in pending.items():
        var = targets[key]
        var.assign(value.astype(np.dtype(var.dtype), copy=False))
    return {"missing_keys": missing, "unexpected_keys": unexpected,
            "mismatched_keys": mismatched, "error_msgs": []}


def _report(model, info, where):
    cls = type(model).__name__
    if info["missing_keys"]:
        logger.warning("%s: weights not in %s, newly initialised: %s", cls, where, info["missing_keys"])
    if info["unexpected_keys"]:
        logger.warning("%s: weights in %s that the model does not use: %s",
                       cls, where, info["unexpected_keys"])
    if info["mismatched_keys"]:
        shown = [f"{n} (checkpoint {a}, model {b})" for n, a, b in info["mismatched_keys"]]
        logger.warning("%s: weights with a different shape in %s, newly initialised: %s", cls, where, shown)


# --- from_pretrained ---------------------------------------------------------------------------------

_HUB_STAGES = (
    ("safetensors", [SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, "model-*-of-*.safetensors"]),
    ("h5", [TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME, "tf_model-*-of-*.h5"]),
    ("bin", [WEIGHTS_NAME, WEIGHTS_INDEX_NAME, "pytorch_model-*-of-*.bin"]),
    ("original", [ORIGINAL_SHAPES_NAME, ORIGINAL_NAMES_NAME, "params_*.npy"]),
)


def resolve_checkpoint_dir(path_or_id, use_safetensors=None, **hub_kwargs) -> str:
    """A local folder for ``path_or_id``; a hub id downloads one format only (the first it has).

    Formats are tried in the loader's order, each a snapshot_download restricted to that format's
    files, so a hub repo with safetensors, h5 and bin does not fetch all three. Offline, each stage
    looks in the huggingface_hub cache only; without a cached copy resolve_dir raises HubError.
    """
    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        return path
    folder = None
    for kind, patterns in _HUB_STAGES:
        if use_safetensors is True and kind != "safetensors":
            continue
        if use_safetensors is False and kind == "safetensors":
            continue
        if kind == "bin" and not _torch_available():
            continue  # it could not be read; do not download hundreds of MB for nothing
        folder = resolve_dir(path, allow_patterns=[CONFIG_NAME, *patterns], **hub_kwargs)
        try:
            found_kind = find_checkpoint(folder, use_safetensors)[1]
        except CheckpointNotFoundError:
            continue
        if found_kind == kind or kind == "original":
            return folder
    if folder is None:
        folder = resolve_dir(path, allow_patterns=[CONFIG_NAME], **hub_kwargs)
    return folder


def from_pretrained(cls, path_or_id, *model_args, config=None, **kwargs):
    """Build ``cls`` from a folder or hub id and load its weights (see the module docstring).

    Keyword arguments: ``ignore_mismatched_sizes``, ``output_loading_info`` (then returns
    ``(model, info)``), ``use_safetensors`` (None: any format; False: skip safetensors; True: only
    safetensors), hub options ``revision``/``cache_dir``/``local_files_only``/``token``, model
    constructor options ``name``/``dtype``/``lm_coef``; everything else overrides config fields
    (e.g. ``num_labels=5``, ``n_head=12`` for OpenAI's release without config.json).
    HF loader options without meaning here (``from_pt``, ``from_tf``, ``force_download``,
    ``proxies``, ...) are accepted and ignored (every format loads).
    """
    ignore_mismatched_sizes = bool(kwargs.pop("ignore_mismatched_sizes", False))
    output_loading_info = bool(kwargs.pop("output_loading_info", False))
    use_safetensors = kwargs.pop("use_safetensors", None)
    for key in _HF_NO_OP_KWARGS:
        if key in kwargs:
            value = kwargs.pop(key)
            if key in ("force_download", "proxies") and value:
                logger.warning("from_pretrained ignores %s=%r (huggingface_hub's cache decides)", key, value)
    hub_kwargs = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
    if "use_auth_token" in kwargs:
        hub_kwargs.setdefault("token", kwargs.pop("use_auth_token"))
    model_kwargs = {k: kwargs.pop(k) for k in _MODEL_KWARGS if k in kwargs}
    overrides = kwargs

    folder = resolve_checkpoint_dir(path_or_id, use_safetensors=use_safetensors, **hub_kwargs)
    entry, kind, _ = find_checkpoint(folder, use_safetensors)
    config_path = os.path.join(folder, CONFIG_NAME)
    if config is None and kind != "original" and not os.path.isfile(config_path):
        raise CheckpointNotFoundError(
            f"no {CONFIG_NAME} in {folder}: the weights alone do not say n_head and the other "
            f"hyper-parameters; add config.json or pass config=OpenAIGPTConfig(...)")
    state, _, _, dims = read_checkpoint(folder, use_safetensors)
    if config is None:
        if kind == "original":
            config = _original_config(folder, dims, overrides)
        else:
            config = OpenAIGPTConfig.from_json_file(config_path, **overrides)
    elif isinstance(config, (str, os.PathLike)):
        config = OpenAIGPTConfig.from_pretrained(config, **overrides)
    elif isinstance(config, dict):
        config = OpenAIGPTConfig.from_dict(config, **overrides)
    elif overrides:
        config = OpenAIGPTConfig.from_dict(config.to_dict(), **overrides)

    model = cls(config, *model_args, **model_kwargs)
    where = os.path.join(os.fspath(path_or_id), entry) if os.path.isdir(os.fspath(path_or_id)) else \
        f"{os.fspath(path_or_id)} ({entry})"
    info = load_state_dict(model, state, ignore_mismatched_sizes=ignore_mismatched_sizes, source=where)
    _report(model, info, where)
    return (model, info) if output_loading_info else model


# --- writing -----------------------------------------------------------------------------------------

def parse_size(size) -> int:
    """'10GB' -> 10**10, '5MiB' -> 5 * 2**20, '200KB', '1.5GB', or an int of bytes (HF's rules)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size <= 0:
            raise ValueError(f"max_shard_size must be positive, got {size}")
        return int(size)
    if not isinstance(size, str):
        raise ValueError(f"max_shard_size must be an int of bytes or a string like '10GB', got {size!r}")
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*", size.upper())
    if not m:
        raise ValueError(f"max_shard_size {size!r} is not a size like '10GB', '500MB' or '2GiB'")
    number, unit = float(m[1]), m[2] or "B"
    scale = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}[unit]
    value = int(number * scale)
    if value <= 0:
        raise ValueError(f"max_shard_size must be positive, got {size!r}")
    return value


def _pt_tensors(model) -> "OrderedDict[str, np.ndarray]":
    """The model as HF's PyTorch state dict, in PyTorch's module order (tied lm_head dropped)."""
    wmap = model.hf_weight_map()
    names = list(wmap)
    # PyTorch registers tokens_embed before positions_embed; HF's TF order is the reverse.
    body = [n for n in names if _is_body(n)]
    heads = [n for n in names if not _is_body(n)]
    emb = [n for n in body if "tokens_embed" in n] + [n for n in body if "positions_embed" in n]
    blocks = [n for n in body if n not in emb]
    out = OrderedDict()
    for name in emb + blocks + heads:
        value = np.asarray(wmap[name].numpy())
        if name.endswith(TRANSPOSED):
            value = np.ascontiguousarray(value.T)
        out[name] = value
    return out


def _tf_tensors(model) -> "OrderedDict[str, List[Tuple[str, np.ndarray]]]":
    """The model as HF's TF variables: top-level layer -> [(full variable name, value)], HF's order."""
    cls_name = _hf_class_name(model)
    model_name = HF_TF_MODEL_NAMES[cls_name]
    groups: "OrderedDict[str, List[Tuple[str, np.ndarray]]]" = OrderedDict(
        (layer, []) for layer in HF_TF_LAYER_ORDER[cls_name])
    for pt_name, var in model.hf_weight_map().items():
        tf_name = pt_to_tf_name(pt_name)
        value = np.asarray(var.numpy())
        if tf_name.startswith("transformer/h_._") and tf_name.endswith("/bias"):
            value = value.reshape(1, -1)  # HF's TF Conv1D bias is [1, nf]
        layer = tf_name.split("/", 1)[0]
        groups.setdefault(layer, []).append((f"{model_name}/{tf_name}:0", value))
    return groups


def _save_h5_attr(obj, name, values: List[bytes]):
    """Write a string-list attribute the way tf-keras does (chunked above the HDF5 header limit)."""
    if not values:
        obj.attrs[name] = np.asarray([])
        return
    data = np.asarray(values)
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > HDF5_OBJECT_HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    if chunks == 1:
        obj.attrs[name] = list(values)
    else:
        for i, part in enumerate(parts):
            obj.attrs[f"{name}{i}"] = part


def _keras_version() -> str:
    if H5_KERAS_VERSION is not None:
        return H5_KERAS_VERSION
    import keras

    return keras.__version__


def _write_h5_full(path, groups):
    """HF's unsharded tf_model.h5: tf-keras ``save_weights`` layout, byte for byte."""
    import h5py

    with h5py.File(path, "w") as f:
        _save_h5_attr(f, "layer_names", [layer.encode("utf8") for layer in groups])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = _keras_version().encode("utf8")
        for layer, weights in groups.items():
            g = f.create_group(layer)
            _save_h5_attr(g, "weight_names", [n.encode("utf8") for n, _ in weights])
            for name, value in weights:
                ds = g.create_dataset(name, value.shape, dtype=value.dtype)
                ds[...] = value
        g = f.create_group("top_level_model_weights")
        _save_h5_attr(g, "weight_names", [])


def _write_h5_shard(path, weights):
    """One shard of HF's sharded tf_model.h5: root datasets named without the model name."""
    import h5py

    with h5py.File(path, "w") as f:
        names = []
        for full_name, value in sorted(weights, key=lambda w: w[0]):
            name = full_name.split("/", 1)[1]
            ds = f.create_dataset(name, value.shape, dtype=value.dtype)
            ds[...] = value
            names.append(name.encode("utf8"))
        _save_h5_attr(f, "layer_names", names)


def _write_safetensors(path, tensors, fmt="pt"):
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path, metadata={"format": fmt})


def _split(items: List[Tuple[str, np.ndarray]], max_bytes: int) -> List[List[Tuple[str, np.ndarray]]]:
    """Greedy shards in order; a tensor larger than the limit gets a shard of its own."""
    shards, current, size = [], [], 0
    for name, value in items:
        n = value.nbytes
        if current and size + n > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append((name, value))
        size += n
    if current:
        shards.append(current)
    return shards


def _index_json(weight_map, total_size, total_parameters=None) -> str:
    metadata = {"total_size": int(total_size)}
    if total_parameters is not None:
        metadata["total_parameters"] = int(total_parameters)
    return json.dumps({"metadata": metadata, "weight_map": weight_map}, indent=2, sort_keys=True) + "\n"


def _config_json(model) -> str:
    d = model.config.to_dict()
    d["architectures"] = [_hf_class_name(model)[2:]]
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


def _fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# File operations of the commit, as module attributes so tests can interrupt them at any step.
_replace = os.replace
_remove = os.remove


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clear_dead_temp_dirs(folder):
    """Remove temporary folders left by saves whose process died (killed mid-save)."""
    for entry in os.listdir(folder):
        if not entry.startswith(_TMP_PREFIX):
            continue
        m = re.match(re.escape(_TMP_PREFIX) + r"(\d+)-", entry)
        if m and int(m[1]) != os.getpid() and not _pid_alive(int(m[1])):
            shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)


def _index_files(folder, index_name) -> List[str]:
    try:
        with open(os.path.join(folder, index_name), encoding="utf-8") as f:
            weight_map = json.load(f).get("weight_map", {})
        return [s for s in dict.fromkeys(weight_map.values())
                if isinstance(s, str) and os.path.basename(s) == s]
    except (OSError, ValueError, AttributeError):
        return []


def _commit(folder, tmp, new_files: List[str], entry: str):
    """Move a finished save from ``tmp`` into ``folder`` so that a loadable checkpoint exists throughout.

    Order: (1) if new shard names collide with shards the current index uses, that index is first
    pointed at hard links of its shards; (2) new shards move in; (3) the new entry file (single file or
    index) moves in; (4) config.json; (5) entry files of older saves go, highest loader preference
    first, so the loader switches from old to new in one rename or removal; (6) stale shards and links.
    """
    old_entries = [e for e in _OWN_ENTRIES if os.path.isfile(os.path.join(folder, e))]
    new_shards = [f for f in new_files if f != entry]
    referenced = {e: _index_files(folder, e) for e in old_entries if e.endswith(".index.json")}

    # (1) keep the old sharded checkpoint complete while same-named new shards replace its files
    for index_name, shards in referenced.items():
        if not set(shards) & set(new_shards):
            continue
        token = uuid.uuid4().hex[:8]
        renamed = {}
        for shard in shards:
            src = os.path.join(folder, shard)
            if os.path.isfile(src):
                renamed[shard] = f"{_OLD_PREFIX}{token}-{shard}"
                _link_or_copy(src, os.path.join(folder, renamed[shard]))
        with open(os.path.join(folder, index_name), encoding="utf-8") as f:
            index = json.load(f)
        index["weight_map"] = {k: renamed.get(v, v) for k, v in index["weight_map"].items()}
        tmp_index = os.path.join(tmp, "old-" + index_name)
        with open(tmp_index, "w", encoding="utf-8") as f:
            f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp_index, os.path.join(folder, index_name))
        referenced[index_name] = list(renamed.values())
        _fsync_dir(folder)

    # (2) shards, (3) entry, (4) config
    for name in new_shards:
        _replace(os.path.join(tmp, name), os.path.join(folder, name))
    _fsync_dir(folder)
    _replace(os.path.join(tmp, entry), os.path.join(folder, entry))
    _replace(os.path.join(tmp, CONFIG_NAME), os.path.join(folder, CONFIG_NAME))
    _fsync_dir(folder)

    # (5) older entry files, in loader preference order
    for old in old_entries:
        if old != entry:
            _remove(os.path.join(folder, old))
    _fsync_dir(folder)

    # (6) files no index or entry refers to any more
    keep = set(new_files) | {CONFIG_NAME}
    stale = set()
    for shards in referenced.values():
        stale.update(shards)
    for name in os.listdir(folder):
        if _SHARD_RE.match(name) or name.startswith(_OLD_PREFIX):
            stale.add(name)
    for name in sorted(stale - keep):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            _remove(path)
    _fsync_dir(folder)


def save_pretrained(model, save_directory, safe_serialization: bool = False, max_shard_size="10GB",
                    **kwargs) -> List[str]:
    """Write config.json + tf_model.h5 (HF's TF layout) or model.safetensors (PyTorch names).

    Above ``max_shard_size`` the weights are split into HF-named shards with an index file. The save
    is atomic (see ``_commit``): a process killed at any point leaves the previous checkpoint, or the
    new one, loadable. Weight files of older saves (either format) are removed once the new set is in
    place, so the folder holds one unambiguous checkpoint; other files are left alone. Returns the
    paths written.
    """
    if kwargs:
        raise TypeError(f"save_pretrained got unexpected argument(s) {sorted(kwargs)}")
    max_bytes = parse_size(max_shard_size)
    folder = os.fspath(save_directory)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{folder!r} is a file; save_pretrained needs a folder")
    os.makedirs(folder, exist_ok=True)
    _clear_dead_temp_dirs(folder)
    tmp = tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=folder)
    try:
        if safe_serialization:
            tensors = _pt_tensors(model)
            items = list(tensors.items())
            shards = _split(items, max_bytes)
            if len(shards) == 1:
                files, entry = [SAFE_WEIGHTS_NAME], SAFE_WEIGHTS_NAME
                _write_safetensors(os.path.join(tmp, entry), tensors)
            else:
                weight_map, files = {}, []
                for i, shard in enumerate(shards):
                    fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
                    _write_safetensors(os.path.join(tmp, fname), OrderedDict(shard))
                    weight_map.update({name: fname for name, _ in shard})
                    files.append(fname)
                entry = SAFE_WEIGHTS_INDEX_NAME
                total = sum(v.nbytes for _, v in items)
                params = sum(v.size for _, v in items)
                with open(os.path.join(tmp, entry), "w", encoding="utf-8") as f:
                    f.write(_index_json(weight_map, total, params))
                files.append(entry)
        else:
            groups = _tf_tensors(model)
            items = [w for weights in groups.values() for w in weights]
            shards = _split(items, max_bytes)
            if len(shards) == 1:
                files, entry = [TF2_WEIGHTS_NAME], TF2_WEIGHTS_NAME
                _write_h5_full(os.path.join(tmp, entry), groups)
            else:
                weight_map, files = {}, []
                for i, shard in enumerate(shards):
                    fname = f"tf_model-{i + 1:05d}-of-{len(shards):05d}.h5"
                    _write_h5_shard(os.path.join(tmp, fname), shard)
                    weight_map.update({name: fname for name, _ in shard})
                    files.append(fname)
                entry = TF2_WEIGHTS_INDEX_NAME
                with open(os.path.join(tmp, entry), "w", encoding="utf-8") as f:
                    f.write(_index_json(weight_map, sum(v.nbytes for _, v in items)))
                files.append(entry)
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            f.write(_config_json(model))
        for name in files + [CONFIG_NAME]:
            _fsync_file(os.path.join(tmp, name))
        _commit(folder, tmp, files, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [os.path.join(folder, name) for name in [CONFIG_NAME] + files]


# --- conversion and the command line -----------------------------------------------------------------

def model_class(head: Optional[str], folder: Optional[str] = None):
    """The model class for a ``--head`` name; None: the folder's config.json architectures, else LM."""
    from tfgpt.models import registry

    return registry.class_for_folder(folder, head)


def convert(source, out, model: Optional[str] = None, safe_serialization: bool = False,
            max_shard_size="10GB", **overrides) -> List[str]:
    """Load any supported checkpoint (folder or hub id) and write it as save_pretrained output."""
    folder = source if os.path.isdir(os.fspath(source)) else None
    cls = model_class(model, folder)
    m = cls.from_pretrained(source, **overrides)
    return m.save_pretrained(out, safe_serialization=safe_serialization, max_shard_size=max_shard_size)


def convert_original_release(folder, out, n_head: Optional[int] = None, model: str = "lm",
                             safe_serialization: bool = False, max_shard_size="10GB") -> List[str]:
    """OpenAI's params_*.npy release -> config.json + tf_model.h5 (or model.safetensors)."""
    if not os.path.isfile(os.path.join(folder, ORIGINAL_SHAPES_NAME)):
        raise CheckpointNotFoundError(f"{folder} has no {ORIGINAL_SHAPES_NAME}: not OpenAI's release layout")
    overrides = {} if n_head is None else {"n_head": int(n_head)}
    cls = model_class(model)
    m = cls.from_pretrained(folder, use_safetensors=False, **overrides)
    return m.save_pretrained(out, safe_serialization=safe_serialization, max_shard_size=max_shard_size)
