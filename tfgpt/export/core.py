"""The ``tfgpt export`` subcommand (``register_cli``, collected by ``tfgpt.cli``).

The export code itself is in ``saved_model`` and ``tflite`` beside this module.
"""

from __future__ import annotations

import os
import sys

from tfgpt.export.saved_model import export_saved_model, resolve_version_dir
from tfgpt.export.tflite import export_tflite
from tfgpt.models.registry import entry_for


# --- command line -----------------------------------------------------------------------------------------

def register_cli(subparsers):
    """Add ``tfgpt export --model DIR --out export/NAME [--version N] [--tflite] [--quantize]``."""
    p = subparsers.add_parser(
        "export", help="export a model for TF Serving (SavedModel) and TFLite",
        description="Write a SavedModel at OUT/VERSION (TF Serving's layout) with logits and, when the "
                    "model folder has tokenizer files, text generation signatures; optionally a "
                    "TFLite file OUT.tflite (OUT.int8.tflite with --quantize).")
    p.add_argument("--model", required=True, help="model folder (save_pretrained output) or hub id")
    p.add_argument("--out", required=True, help="export base folder, e.g. export/gpt")
    p.add_argument("--version", type=int, help="version number (default: the next free one)")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the model folder when it has one)")
    p.add_argument("--head", choices=["lm", "base", "double-heads", "seqcls"],
                   help="model class (default: from config.json's architectures, else lm)")
    p.add_argument("--tflite", action="store_true", help="also write OUT.tflite")
    p.add_argument("--quantize", action="store_true",
                   help="write the TFLite file with int8 weights (dynamic range) as OUT.int8.tflite")
    p.add_argument("--max-length", type=int, help="TFLite cache length (default n_positions)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version / file")
    p.set_defaults(func=_cli_export)
    return p


def _cli_export(args):
    from tfgpt import checkpoints

    folder = args.model if os.path.isdir(args.model) else None
    cls = checkpoints.model_class(args.head, folder)
    print(f"loading {args.model} ({cls.__name__}) ...", file=sys.stderr, flush=True)
    model = cls.from_pretrained(args.model)
    tokenizer = None
    tok_source = args.tokenizer or (folder if _has_tokenizer_files(folder) else None)
    if tok_source is not None and entry_for(model).has_lm_head:
        from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

        tokenizer = OpenAIGPTTokenizer.from_pretrained(tok_source)
    print("writing the SavedModel ...", file=sys.stderr, flush=True)
    out = export_saved_model(model, args.out, tokenizer=tokenizer, version=args.version,
                             overwrite=args.overwrite)
    print(out)
    if args.tflite or args.quantize:
        base = os.fspath(resolve_version_dir(out)[0])  # export/gpt/1 -> export/gpt
        target = base + (".int8.tflite" if args.quantize else ".tflite")
        print(f"converting to TFLite{' (int8 weights)' if args.quantize else ''} ...", file=sys.stderr,
              flush=True)
        print(export_tflite(model, target, max_length=args.max_length, quantize=args.quantize,
                            overwrite=args.overwrite))
    return 0


def _has_tokenizer_files(folder) -> bool:
    return bool(folder) and any(os.path.isfile(os.path.join(folder, f))
                                for f in ("vocab.json", "encoder_bpe_40000.json"))
