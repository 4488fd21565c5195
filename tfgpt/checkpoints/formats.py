"""File names of the checkpoint formats and the errors loading raises."""

from __future__ import annotations

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TF2_WEIGHTS_NAME = "tf_model.h5"
TF2_WEIGHTS_INDEX_NAME = "tf_model.h5.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"
ORIGINAL_SHAPES_NAME = "params_shapes.json"
ORIGINAL_NAMES_NAME = "parameters_names.json"

# (file that marks the checkpoint, kind, sharded) in loader preference order.
CANDIDATES = (
    (SAFE_WEIGHTS_NAME, "safetensors", False),
    (SAFE_WEIGHTS_INDEX_NAME, "safetensors", True),
    (TF2_WEIGHTS_NAME, "h5", False),
    (TF2_WEIGHTS_INDEX_NAME, "h5", True),
    (WEIGHTS_NAME, "bin", False),
    (WEIGHTS_INDEX_NAME, "bin", True),
    (ORIGINAL_SHAPES_NAME, "original", False),
)

# Per format, the files a hub download needs, in loader preference order.
HUB_STAGES = (
    ("safetensors", [SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, "model-*-of-*.safetensors"]),
    ("h5", [TF2_WEIGHTS_NAME, TF2_WEIGHTS_INDEX_NAME, "tf_model-*-of-*.h5"]),
    ("bin", [WEIGHTS_NAME, WEIGHTS_INDEX_NAME, "pytorch_model-*-of-*.bin"]),
    ("original", [ORIGINAL_SHAPES_NAME, ORIGINAL_NAMES_NAME, "params_*.npy"]),
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the model as asked (corrupt, mismatched, unknown)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The files a checkpoint needs are not there."""


def check_not_lfs(path):
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
