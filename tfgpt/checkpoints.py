"""Reading and writing GPT-1 checkpoints: HF safetensors (PyTorch or TF names), HF tf_model.h5,
OpenAI's original release. Weights are matched by HF's PyTorch parameter names
(``model.hf_weight_map()``); Linear layers (multiple-choice summary, score) are stored transposed.
"""

from __future__ import annotations

import os
from typing import Dict

import numpy as np

from tfgpt.configuration import CONFIG_NAME, OpenAIGPTConfig
from tfgpt.hub import resolve_dir

SAFE_WEIGHTS_NAME = "model.safetensors"
TRANSPOSED = ("multiple_choice_head.summary.weight", "score.weight")
IGNORED_SUFFIXES = (".attn.bias", "attn.masked_bias")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model as asked (missing, corrupt, mismatched)."""


def _read_safetensors(path) -> Dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as e:
        raise CheckpointError(f"{path} is not a readable safetensors file: {e}") from e


def _canonical(name: str, model_names) -> str:
    """Map a checkpoint name onto the model's naming (with or without the 'transformer.' prefix)."""
    if name in model_names:
        return name
    if name.startswith("transformer.") and name[len("transformer."):] in model_names:
        return name[len("transformer."):]
    if "transformer." + name in model_names:
        return "transformer." + name
    return name


def load_state_dict(model, state: Dict[str, np.ndarray], ignore_mismatched_sizes=False, strict=False):
    """Assign arrays named by HF PyTorch names to the model; returns (missing, unexpected, mismatched)."""
    targets = model.hf_weight_map()
    pending = {}
    unexpected, mismatched = [], []
    for name, value in state.items():
        if name.endswith(IGNORED_SUFFIXES) or name == "lm_head.weight":
            continue
        key = _canonical(name, targets)
        if key not in targets:
            unexpected.append(name)
            continue
        value = np.asarray(value)
        if key.endswith(TRANSPOSED):
            value = value.T
        var = targets[key]
        if tuple(value.shape) != tuple(var.shape):
            if ignore_mismatched_sizes:
                mismatched.append((name, tuple(value.shape), tuple(var.shape)))
                continue
            raise CheckpointError(
                f"{name}: checkpoint shape {tuple(value.shape)} does not match the model's "
                f"{tuple(var.shape)} (config and weights disagree; pass ignore_mismatched_sizes=True "
                f"to leave it freshly initialised)")
        pending[key] = value
    missing = [k for k in targets if k not in pending]
    if strict and (missing or unexpected):
        raise CheckpointError(f"missing weights {missing}, unexpected weights {unexpected}")
    for key, value in pending.items():
        targets[key].assign(value.astype(targets[key].dtype))
    return missing, unexpected, mismatched


def from_pretrained(cls, path_or_id, *model_args, config=None, **kwargs):
    ignore_mismatched_sizes = kwargs.pop("ignore_mismatched_sizes", False)
    folder = resolve_dir(path_or_id, allow_patterns=[CONFIG_NAME, "*.safetensors", "*.json"])
    if config is None:
        config = OpenAIGPTConfig.from_pretrained(folder, **kwargs)
    model = cls(config, *model_args)
    path = os.path.join(folder, SAFE_WEIGHTS_NAME)
    if not os.path.isfile(path):
        raise CheckpointError(f"no weights found in {folder}")
    load_state_dict(model, _read_safetensors(path), ignore_mismatched_sizes=ignore_mismatched_sizes)
    return model


def save_pretrained(model, save_directory, safe_serialization=False, max_shard_size="10GB", **kwargs):
    raise NotImplementedError("save_pretrained")
