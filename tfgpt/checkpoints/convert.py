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


def _cli_convert(args) -> int:
    if bool(args.source) == bool(args.from_openai):
        raise ValueError("give exactly one of SOURCE (folder or hub id) or --from-openai DIR")
    fmt = "model.safetensors (PyTorch names)" if args.safe else "tf_model.h5 (HF's TF layout)"
    if args.from_openai:
        print(f"reading OpenAI's release from {args.from_openai}", flush=True)
        written = convert_original_release(args.from_openai, args.out, n_head=args.n_head,
                                           model=args.model or "lm", safe_serialization=args.safe,
                                           max_shard_size=args.max_shard_size)
    else:
        print(f"reading {args.source}", flush=True)
        overrides = {} if args.n_head is None else {"n_head": args.n_head}
        written = convert(args.source, args.out, model=args.model, safe_serialization=args.safe,
                          max_shard_size=args.max_shard_size, **overrides)
    print(f"wrote {fmt} to {args.out}:", flush=True)
    for path in written:
        print(f"  {path}")
    return 0


def register_cli(subparsers):
    """Add ``tfgpt convert``: any supported checkpoint (or OpenAI's release) -> save_pretrained output."""
    p = subparsers.add_parser(
        "convert", help="convert a checkpoint (HF folder/hub id or OpenAI's release) to HF's files",
        description="Read a GPT-1 checkpoint (model.safetensors, tf_model.h5, pytorch_model.bin, "
                    "sharded or not, a hub id, or OpenAI's original params_*.npy release) and write "
                    "config.json + tf_model.h5 (HF's TF layout) or, with --safe, model.safetensors "
                    "with PyTorch names.")
    p.add_argument("source", nargs="?", help="folder or hub id to convert")
    p.add_argument("--from-openai", metavar="DIR", help="OpenAI's release folder (params_shapes.json + params_*.npy)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--n-head", type=int, default=None,
                   help="attention heads (OpenAI's shapes do not say; default: config.json, else 12)")
    p.add_argument("--model", choices=["lm", "base", "double-heads", "seqcls"], default=None,
                   help="model class to load and write (default: the config's architecture, else lm)")
    p.add_argument("--safe", action="store_true", help="write model.safetensors instead of tf_model.h5")
    p.add_argument("--max-shard-size", default="10GB", help="shard above this size (default 10GB)")
    p.set_defaults(func=_cli_convert)
    return p
