"""OpenAI's original release (finetune-transformer-lm): params_shapes.json + params_{0..9}.npy."""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from typing import Dict, Tuple

import numpy as np

from tfgpt.checkpoints.formats import (
    ORIGINAL_NAMES_NAME,
    ORIGINAL_SHAPES_NAME,
    CheckpointError,
    CheckpointNotFoundError,
    check_not_lfs,
)
from tfgpt.checkpoints.names import BLOCK_TORCH_LEAVES
from tfgpt.io import read_json
from tfgpt.models.configuration import CONFIG_NAME, OpenAIGPTConfig

logger = logging.getLogger(__name__)


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
    if len(shapes) == 2 or (len(shapes) - 2) % len(BLOCK_TORCH_LEAVES):
        raise CheckpointError(
            f"{ORIGINAL_SHAPES_NAME} lists {len(shapes)} tensors; OpenAI's layout has 2 embeddings + "
            f"12 per block")
    positions, tokens = shapes[0], shapes[1]
    if len(positions) != 2 or len(tokens) != 2 or positions[1] != tokens[1]:
        raise CheckpointError(
            f"{ORIGINAL_SHAPES_NAME}: entries 0 and 1 must be the position and token tables "
            f"[n, n_embd], got {positions} and {tokens}")
    n_embd = tokens[1]
    n_layer = (len(shapes) - 2) // len(BLOCK_TORCH_LEAVES)
    inner = shapes[2 + 6][-1]  # c_fc weight [1, n_embd, inner]
    for i in range(n_layer):
        for j, (leaf, want) in enumerate(zip(BLOCK_TORCH_LEAVES, _original_block_shapes(n_embd, inner))):
            k = 2 + i * len(BLOCK_TORCH_LEAVES) + j
            if tuple(shapes[k]) != want:
                label = names[k - 1] if names and 0 < k - 1 < len(names) else f"entry {k}"
                raise CheckpointError(
                    f"{ORIGINAL_SHAPES_NAME}: {label} (block {i} {leaf}) has shape {shapes[k]}, "
                    f"expected {list(want)} for n_embd={n_embd}")
    return {"n_positions": positions[0], "vocab_size": tokens[0], "n_embd": n_embd, "n_layer": n_layer}


def _read_json(path):
    try:
        return read_json(path)
    except (OSError, ValueError) as e:
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
        check_not_lfs(path)
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
        for j, leaf in enumerate(BLOCK_TORCH_LEAVES):
            arr = arrays[2 + i * len(BLOCK_TORCH_LEAVES) + j]
            if arr.ndim == 3:
                arr = arr.reshape(arr.shape[1:])  # Conv1D [1, in, out] -> [in, out]
            state[f"transformer.h.{i}.{leaf}"] = arr
    return state, dims


def original_config(folder, dims, overrides) -> OpenAIGPTConfig:
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
