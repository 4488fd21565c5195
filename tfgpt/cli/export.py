"""``tfgpt export``: a ``--checkpoint`` as a TF Serving SavedModel and, optionally, TFLite files."""

from __future__ import annotations

import os
import sys

from tfgpt.cli.options import (add_checkpoint, add_head, add_tokenizer, beam_count, has_tokenizer, load_model,
                               non_empty_text, non_negative_int, positive_int)

# The export-time options of the text signatures: flag -> export_saved_model argument.
TEXT_OPTIONS = {"--top-k": "top_k", "--no-repeat-ngram-size": "no_repeat_ngram_size", "--num-beams": "num_beams",
                "--stop-string": "stop_strings"}


def register(subparsers):
    """Add ``tfgpt export --checkpoint DIR --out export/NAME [--version N] [--tflite] [--quantize]`` and the
    text signatures' export-time options (``--top-k``, ``--no-repeat-ngram-size``, ``--num-beams``,
    ``--stop-string``)."""
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
    text = p.add_argument_group("text signatures", "fixed at export; they need a tokenizer and an LM head")
    text.add_argument("--top-k", type=non_negative_int, help="top-k of sample_text (default 0: off)")
    text.add_argument("--no-repeat-ngram-size", type=positive_int,
                      help="ban repeated n-grams of this size in every text signature (no lookup_text then)")
    text.add_argument("--num-beams", type=beam_count, help="add beam_text: beam search with this many beams")
    text.add_argument("--stop-string", type=non_empty_text, action="append", dest="stop_strings",
                      help="end a row once its text ends this string (repeatable; no lookup_text then)")
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
    text_options = {name: getattr(args, name) for name in TEXT_OPTIONS.values() if getattr(args, name) is not None}
    if text_options and tokenizer is None:
        flags = ", ".join(flag for flag, name in TEXT_OPTIONS.items() if name in text_options)
        why = "has no LM head" if not entry_for(model).has_lm_head else "has no tokenizer (pass --tokenizer DIR)"
        raise ValueError(f"{flags} set options of the text signatures, but {args.checkpoint} {why}")
    print("writing the SavedModel ...", file=sys.stderr, flush=True)
    out = export.export_saved_model(model, args.out, tokenizer=tokenizer, version=args.version,
                                    overwrite=args.overwrite, **text_options)
    print(out)
    base = os.fspath(export.resolve_version_dir(out)[0])  # export/gpt/1 -> export/gpt
    for quantize in [q for q, wanted in ((False, args.tflite), (True, args.quantize)) if wanted]:
        target = base + (".int8.tflite" if quantize else ".tflite")
        print(f"converting to TFLite{' (int8 weights)' if quantize else ''} ...", file=sys.stderr, flush=True)
        print(export.export_tflite(model, target, max_length=args.max_length, quantize=quantize,
                                   overwrite=args.overwrite))
    return 0
