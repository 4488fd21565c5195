"""``tfgpt convert``: any supported checkpoint (or OpenAI's release) -> HF's save_pretrained files."""

from __future__ import annotations

from tfgpt.cli.options import add_checkpoint, add_head, checkpoint_folder, positive_int


def register(subparsers):
    """Add ``tfgpt convert (--checkpoint DIR_OR_ID | --from-openai DIR) --out DIR``."""
    p = subparsers.add_parser(
        "convert", help="convert a checkpoint (HF folder/hub id or OpenAI's release) to HF's files",
        description="Read a GPT-1 checkpoint (model.safetensors, tf_model.h5, pytorch_model.bin, "
                    "sharded or not, a hub id, or OpenAI's original params_*.npy release) and write "
                    "config.json + tf_model.h5 (HF's TF layout) or, with --safe, model.safetensors "
                    "with PyTorch names.")
    source = p.add_mutually_exclusive_group(required=True)
    add_checkpoint(source, required=False, help="folder or hub id to convert")
    source.add_argument("--from-openai", metavar="DIR",
                        help="OpenAI's release folder (params_shapes.json + params_*.npy)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--n-head", type=positive_int, default=None,
                   help="attention heads (OpenAI's shapes do not say; default: config.json, else 12)")
    add_head(p, help="model class to load and write (default: the config's architecture, else lm)")
    p.add_argument("--safe", action="store_true", help="write model.safetensors instead of tf_model.h5")
    p.add_argument("--max-shard-size", default="10GB", help="shard above this size (default 10GB)")
    p.set_defaults(func=convert_command)
    return p


def convert_command(args) -> int:
    from tfgpt import checkpoints

    fmt = "model.safetensors (PyTorch names)" if args.safe else "tf_model.h5 (HF's TF layout)"
    if args.from_openai:
        print(f"reading OpenAI's release from {args.from_openai}", flush=True)
        written = checkpoints.convert_original_release(
            args.from_openai, args.out, n_head=args.n_head, model=args.head or "lm",
            safe_serialization=args.safe, max_shard_size=args.max_shard_size)
    else:
        checkpoint_folder(args.checkpoint)
        print(f"reading {args.checkpoint}", flush=True)
        overrides = {} if args.n_head is None else {"n_head": args.n_head}
        written = checkpoints.convert(args.checkpoint, args.out, model=args.head, safe_serialization=args.safe,
                                      max_shard_size=args.max_shard_size, **overrides)
    print(f"wrote {fmt} to {args.out}:", flush=True)
    for path in written:
        print(f"  {path}")
    return 0
