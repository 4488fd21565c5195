"""``tfgpt convert``: any supported checkpoint (or OpenAI's release) -> save_pretrained output."""

from __future__ import annotations

import os
from typing import List, Optional

from tfgpt.checkpoints.formats import ORIGINAL_SHAPES_NAME, CheckpointNotFoundError


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
