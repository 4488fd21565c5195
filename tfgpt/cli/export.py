"""``tfgpt export``: a ``--checkpoint`` as a TF Serving SavedModel and, optionally, TFLite files."""

from __future__ import annotations

import os
import sys

from tfgpt.cli.options import add_checkpoint, add_head, add_tokenizer, has_tokenizer, load_model, positive_int


def register(subparsers):
    """Add ``tfgpt export --checkpoint DIR --out export/NAME [--version N] [--tflite] [--quantize]``."""
    p = subparsers.add_parser(
        "export", help="export a model for TF Serving (SavedModel) and TFLite",
        description="Write a SavedModel at OUT/VERSION (TF Serving's layout) with logits and, when the "
                    "checkpoint has tokenizer files, text generation signatures; with --tflite also "
                    "OUT.tflite (float32 weights), with --quantize also OUT.int8.tflite (int8 weights).")
    add_checkpoint(p)
    p.add_argument("--out", required=True, help="export base folder, e.g. export/gpt")
    p.add_argument("--version", type=positive_int, help="version number (default: the next free one)")
    add_tokenizer(p, help="tokenizer folder (default: the checkpoint folder when it has one)")
    add_head(p)
    p.add_argument("--tflite", action="store_true", help="also write OUT.tflite (float32 weights)")
    p.add_argument("--quantize", action="store_true",
                   help="also write OUT.int8.tflite (int8 weights, dynamic range); with --tflite both")
    p.add_argument("--max-length", type=positive_int, help="TFLite cache length (default n_positions)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version / file")
    p.set_defaults(func=export_command)
    return p


def export_command(args) -> int:
    from tfgpt import export
    from tfgpt.models.registry import entry_for

    model = load_model(args.checkpoint, args.head)
    tokenizer = None
    folder = args.checkpoint if os.path.isdir(args.checkpoint) else None
    tok_source = args.tokenizer or (folder if has_tokenizer(folder) else None)
    if tok_source is not None and entry_for(model).has_lm_head:
        from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

        tokenizer = OpenAIGPTTokenizer.from_pretrained(tok_source)
    print("writing the SavedModel ...", file=sys.stderr, flush=True)
    out = export.export_saved_model(model, args.out, tokenizer=tokenizer, version=args.version,
                                    overwrite=args.overwrite)
    print(out)
    base = os.fspath(export.resolve_version_dir(out)[0])  # export/gpt/1 -> export/gpt
    for quantize in [q for q, wanted in ((False, args.tflite), (True, args.quantize)) if wanted]:
        target = base + (".int8.tflite" if quantize else ".tflite")
        print(f"converting to TFLite{' (int8 weights)' if quantize else ''} ...", file=sys.stderr, flush=True)
        print(export.export_tflite(model, target, max_length=args.max_length, quantize=quantize,
                                   overwrite=args.overwrite))
    return 0
