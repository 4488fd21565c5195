"""Readers: every weight format as one PyTorch-style state dict (HF PyTorch names and shapes).

safetensors (PyTorch or HF TF names), HF's tf_model.h5 (Keras-2 HDF5 layout, any model name),
pytorch_model.bin (through torch's ``weights_only=True`` loader), each possibly sharded with an HF
index file. TF names are mapped through ``tfgpt.checkpoints.names``.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import numpy as np

from tfgpt.checkpoints.formats import CheckpointError, CheckpointNotFoundError, check_not_lfs
from tfgpt.checkpoints.names import is_tf_name, tf_to_pt_name
from tfgpt.io import read_json


class LazyTensor:
    """A checkpoint tensor known by its header (shape, dtype); the data is read on first use.

    Readers return these so that shapes can be compared with the config before anything is built,
    and tensors the model does not use are never read. ``np.asarray`` reads the data.
    """

    def __init__(self, shape, dtype, read, transforms=()):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self._read = read
        self._transforms = tuple(transforms)

    @property
    def ndim(self):
        return len(self.shape)

    def _with(self, shape, fn):
        return LazyTensor(shape, self.dtype, self._read, self._transforms + (fn,))

    def reshape(self, shape):
        return self._with(shape, lambda a: a.reshape(shape))

    @property
    def T(self):
        return self._with(self.shape[::-1], lambda a: a.T)

    def load(self) -> np.ndarray:
        value = np.asarray(self._read())
        for fn in self._transforms:
            value = fn(value)
        return value

    def __array__(self, dtype=None, copy=None):
        value = self.load()
        return value if dtype is None else value.astype(dtype)

    def __repr__(self):
        return f"LazyTensor(shape={self.shape}, dtype={self.dtype})"


def as_array(value) -> np.ndarray:
    """The data of a checkpoint tensor (a ``LazyTensor`` is read now)."""
    return value.load() if isinstance(value, LazyTensor) else np.asarray(value)


_SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
                       "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8",
                       "BOOL": "bool"}


def _safetensors_tensor(path, key):
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return f.get_tensor(key)
    except Exception as first:  # bf16 has no numpy dtype: read it through TensorFlow
        if "bf16" in str(first).lower() or "bfloat16" in str(first).lower():
            with safe_open(path, framework="tf") as f:
                return f.get_tensor(key).numpy()
        raise CheckpointError(f"{path}: tensor {key!r} could not be read (truncated or corrupt?): {first}") from first


def read_safetensors(path) -> Dict[str, "LazyTensor"]:
    """All tensors of a safetensors file, by name, as ``LazyTensor``s (only the header is read now)."""
    check_not_lfs(path)
    from safetensors import safe_open

    try:
        out = OrderedDict()
        with safe_open(path, framework="numpy") as f:
            for key in f.keys():
                sl = f.get_slice(key)
                dtype = _SAFETENSORS_DTYPES.get(sl.get_dtype(), sl.get_dtype())
                out[key] = LazyTensor(sl.get_shape(), dtype,
                                      lambda key=key: _safetensors_tensor(path, key))
        return out
    except Exception as first:  # safetensors raises its own error types
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {first}") from first


def load_h5_attr(obj, name) -> List[str]:
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


def _h5_lazy(path, key, dataset) -> LazyTensor:
    def read():
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return f[key][()]
        except Exception as e:  # h5py raises OSError/KeyError/RuntimeError on damaged data
            raise CheckpointError(f"{path}: dataset {key!r} could not be read (truncated or corrupt?): {e}") from e
    return LazyTensor(dataset.shape, str(dataset.dtype), read)


def read_h5(path) -> Dict[str, LazyTensor]:
    """Tensors of an HF tf_model.h5 (full layout or one shard), keyed by their TF names, as
    ``LazyTensor``s (only the HDF5 metadata is read now)."""
    import h5py

    check_not_lfs(path)
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
            for layer in load_h5_attr(f, "layer_names"):
                if layer not in f:
                    raise CheckpointError(f"{path}: 'layer_names' lists {layer!r} but the file has no such entry")
                obj = f[layer]
                if isinstance(obj, h5py.Dataset):  # HF's sharded layout: one dataset per weight
                    out[layer] = _h5_lazy(path, layer, obj)
                    continue
                for weight_name in load_h5_attr(obj, "weight_names"):
                    if weight_name not in obj or not isinstance(obj[weight_name], h5py.Dataset):
                        raise CheckpointError(
                            f"{path}: group {layer!r} lists weight {weight_name!r} but holds no such dataset")
                    out[weight_name] = _h5_lazy(path, f"{layer}/{weight_name}", obj[weight_name])
            return out
    except CheckpointError:
        raise
    except Exception as e:  # h5py raises OSError/KeyError/RuntimeError on damaged data
        raise CheckpointError(f"{path} could not be read (truncated or corrupt?): {e}") from e


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def read_torch_bin(path) -> Dict[str, np.ndarray]:
    """A pytorch_model.bin through torch's safe loader (weights_only=True); never plain pickle."""
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path} is a PyTorch pickle; reading it needs torch (pip install torch), and tfgpt then "
            f"loads it with weights_only=True. Without torch, use a folder or hub revision that has "
            f"model.safetensors or tf_model.h5 (openai-community/openai-gpt has both).") from None
    check_not_lfs(path)
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


def read_index(folder, index_name) -> Tuple[List[str], Dict[str, str]]:
    """Shard paths (in index order) and the weight_map of an HF index file."""
    path = os.path.join(folder, index_name)
    try:
        index = read_json(path, "index file")
    except (OSError, ValueError) as e:
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


def read_sharded(folder, index_name, reader) -> Dict[str, np.ndarray]:
    """All tensors of a sharded checkpoint; every name the index lists must be in some shard."""
    shards, weight_map = read_index(folder, index_name)
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
        value = value if isinstance(value, LazyTensor) else np.asarray(value)
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
