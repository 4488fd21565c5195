"""Writers: ``save_pretrained`` in HF's layouts, atomically.

``config.json`` plus ``tf_model.h5`` in exactly the layout HF's TF classes write (groups, attributes,
dataset paths, ``[1, n]`` biases), or ``model.safetensors`` with PyTorch names as HF's PyTorch
classes write it; both shard above ``max_shard_size`` with HF's index files. Names and transforms
come from the weight table (``names``). Saves are atomic: files are written into a temporary folder
inside the target, fsynced, and renamed into place in an order that keeps a complete checkpoint (old
or new) loadable at every instant; weight files of an older save are removed only after the new set
is in place, and only files of tfgpt's own naming.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections import OrderedDict
from typing import List, Optional, Tuple

import keras
import numpy as np

from tfgpt.checkpoints import names
from tfgpt.checkpoints.formats import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_INDEX_NAME,
    TF2_WEIGHTS_NAME,
)
from tfgpt.io import fsync_dir, fsync_file, read_json
from tfgpt.models.configuration import CONFIG_NAME

# tf-keras splits attributes above this many bytes into name0, name1, ... (HDF5 header limit).
HDF5_OBJECT_HEADER_LIMIT = 64512
# The ``keras_version`` attribute written into tf_model.h5; None means the installed Keras.
H5_KERAS_VERSION: Optional[str] = None

# Names used while saving; a killed save leaves at most these behind, and the next save clears them.
_TMP_PREFIX = ".tfgpt-save-"
_OLD_PREFIX = ".tfgpt-old-"
# HF's folder for ``save_pretrained(saved_model=True)``: saved_model/<version>/
SAVED_MODEL_DIR = "saved_model"
# The weight files a save writes (and so may remove): entries and HF-named shards.
_SHARD_RE = re.compile(r"^(model-\d{5}-of-\d{5}\.safetensors|tf_model-\d{5}-of-\d{5}\.h5)$")
_OWN_ENTRIES = (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME)

# File operations of the commit, as module attributes so tests can interrupt them at any step.
_replace = os.replace
_remove = os.remove


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


def _plain_value(model, row) -> np.ndarray:
    """A row's value as a float array in Keras layout; LoRA adapters come merged into the kernel."""
    layer = names.layer_of(model, row)
    mode = getattr(layer, "quantization_mode", None)
    if mode is not None:
        raise ValueError(f"save_pretrained cannot write {layer.path}: it is quantized ({mode}); HF's "
                         f"formats hold float weights, so save before model.quantize()")
    return np.asarray(keras.ops.convert_to_numpy(getattr(layer, row.attr)))


def _pt_tensors(model) -> "OrderedDict[str, np.ndarray]":
    """The model as HF's PyTorch state dict, in PyTorch's module order (tied lm_head dropped)."""
    out = OrderedDict()
    for row in names.torch_order(names.model_table(model)):
        value = _plain_value(model, row)
        out[row.torch] = np.ascontiguousarray(value.T) if row.transpose else value
    return out


def _tf_tensors(model) -> "OrderedDict[str, List[Tuple[str, np.ndarray]]]":
    """The model as HF's TF variables: top-level layer -> [(full variable name, value)], HF's order."""
    model_name = names.HF_TF_MODEL_NAMES[names.hf_class_name(model)]
    groups = OrderedDict(names.tf_layer_order(model))
    for row in names.model_table(model):
        value = _plain_value(model, row)
        if row.tf_row:
            value = value.reshape(1, -1)  # HF's TF Conv1D bias is [1, nf]
        groups[row.tf.split("/", 1)[0]].append((f"{model_name}/{row.tf}:0", value))
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
    # HF's formatting (ASCII-escaped), so the file is byte-identical to what HF writes
    d = model.config.to_dict()
    d["architectures"] = [names.hf_class_name(model)[2:]]
    return json.dumps(d, indent=2, sort_keys=True) + "\n"


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


def _own_file(name) -> bool:
    """A weight file of tfgpt's own naming (HF shard names, links of an older save)."""
    return bool(_SHARD_RE.match(name)) or name.startswith(_OLD_PREFIX)


def _index_files(folder, index_name) -> List[str]:
    """The shards an existing index names, restricted to tfgpt's own shard naming: a stale or foreign
    index that lists other files (vocab.json, ...) never makes a save touch them."""
    try:
        weight_map = read_json(os.path.join(folder, index_name), "index file").get("weight_map", {})
        return [s for s in dict.fromkeys(weight_map.values())
                if isinstance(s, str) and os.path.basename(s) == s and _own_file(s)]
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
        index = read_json(os.path.join(folder, index_name), "index file")
        index["weight_map"] = {k: renamed.get(v, v) for k, v in index["weight_map"].items()}
        tmp_index = os.path.join(tmp, "old-" + index_name)
        with open(tmp_index, "w", encoding="utf-8") as f:
            f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
        fsync_file(tmp_index)
        _replace(tmp_index, os.path.join(folder, index_name))
        referenced[index_name] = list(renamed.values())
        fsync_dir(folder)

    # (2) shards, (3) entry, (4) config
    for name in new_shards:
        _replace(os.path.join(tmp, name), os.path.join(folder, name))
    fsync_dir(folder)
    _replace(os.path.join(tmp, entry), os.path.join(folder, entry))
    _replace(os.path.join(tmp, CONFIG_NAME), os.path.join(folder, CONFIG_NAME))
    fsync_dir(folder)

    # (5) older entry files, in loader preference order
    for old in old_entries:
        if old != entry:
            _remove(os.path.join(folder, old))
    fsync_dir(folder)

    # (6) files no index or entry refers to any more
    keep = set(new_files) | {CONFIG_NAME}
    stale = set()
    for shards in referenced.values():
        stale.update(shards)
    stale.update(name for name in os.listdir(folder) if _own_file(name))
    for name in sorted(stale - keep):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            _remove(path)
    fsync_dir(folder)


def _write_weights(tmp, items, max_bytes, single_name, write_single, shard_name, write_shard, index_name,
                   count_parameters):
    """Write the (name, array) ``items`` into ``tmp``: one file ``single_name`` (``write_single(path)``)
    when they fit in ``max_bytes``, else HF's shards (``shard_name.format(i, n)``, each by
    ``write_shard(path, items)``) and the index ``index_name`` mapping names to shards (with the
    parameter count when ``count_parameters``, as HF's safetensors index). Returns (files, entry file)."""
    shards = _split(items, max_bytes)
    if len(shards) == 1:
        write_single(os.path.join(tmp, single_name))
        return [single_name], single_name
    weight_map, files = {}, []
    for i, shard in enumerate(shards):
        fname = shard_name.format(i + 1, len(shards))
        write_shard(os.path.join(tmp, fname), shard)
        weight_map.update({name: fname for name, _ in shard})
        files.append(fname)
    params = sum(v.size for _, v in items) if count_parameters else None
    with open(os.path.join(tmp, index_name), "w", encoding="utf-8") as f:
        f.write(_index_json(weight_map, sum(v.nbytes for _, v in items), params))
    return files + [index_name], index_name


def save_pretrained(model, save_directory, saved_model: bool = False, version: int = 1,
                    safe_serialization: bool = False, max_shard_size="10GB", **kwargs) -> List[str]:
    """Write config.json + tf_model.h5 (HF's TF layout) or model.safetensors (PyTorch names).

    Models that generate (``model.can_generate()``) also get generation_config.json, as HF writes
    it. ``saved_model=True`` adds HF's ``saved_model/<version>/``: tfgpt.export's TF Serving
    SavedModel of the model's forward pass (an existing one of that version is replaced).

    Above ``max_shard_size`` the weights are split into HF-named shards with an index file. The save
    is atomic (see ``_commit``): a process killed at any point leaves the previous checkpoint, or the
    new one, loadable. Weight files of older saves (either format) are removed once the new set is in
    place, so the folder holds one unambiguous checkpoint; other files are left alone. Returns the
    paths written.
    """
    if kwargs:
        raise TypeError(f"save_pretrained got unexpected argument(s) {sorted(kwargs)}")
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 0:
        raise ValueError(f"version must be an int >= 0, got {version!r}")
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
            files, entry = _write_weights(
                tmp, list(tensors.items()), max_bytes, SAFE_WEIGHTS_NAME,
                lambda path: _write_safetensors(path, tensors), "model-{:05d}-of-{:05d}.safetensors",
                lambda path, shard: _write_safetensors(path, OrderedDict(shard)), SAFE_WEIGHTS_INDEX_NAME,
                count_parameters=True)
        else:
            groups = _tf_tensors(model)
            files, entry = _write_weights(
                tmp, [w for weights in groups.values() for w in weights], max_bytes, TF2_WEIGHTS_NAME,
                lambda path: _write_h5_full(path, groups), "tf_model-{:05d}-of-{:05d}.h5", _write_h5_shard,
                TF2_WEIGHTS_INDEX_NAME, count_parameters=False)
        with open(os.path.join(tmp, CONFIG_NAME), "w", encoding="utf-8") as f:
            f.write(_config_json(model))
        for name in files + [CONFIG_NAME]:
            fsync_file(os.path.join(tmp, name))
        _commit(folder, tmp, files, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    written = [os.path.join(folder, name) for name in [CONFIG_NAME] + files]
    if model.can_generate():
        written.append(_generation_config(model).save_pretrained(folder))
    if saved_model:
        from tfgpt.export import export_saved_model

        written.append(export_saved_model(model, os.path.join(folder, SAVED_MODEL_DIR), version=int(version),
                                          overwrite=True))
    return written


def _generation_config(model):
    """The model's own ``generation_config`` if it has one, else the one its config implies (HF)."""
    from tfgpt.generation.config import GenerationConfig

    own = getattr(model, "generation_config", None)
    return own if own is not None else GenerationConfig.from_model_config(model.config)
