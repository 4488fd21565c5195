"""``tfgpt evaluate``: loss, perplexity and accuracy of a ``--checkpoint`` on held-out data, as JSON."""

from __future__ import annotations

import json
import os
import sys

from tfgpt.cli.options import (TRAIN_LOG_NAME, add_checkpoint, add_tokenizer, add_verbose, checkpoint_folder,
                               load_tokenizer, positive_int, train_log, verbosity)
from tfgpt.cli.tasks import (PRECISIONS, TASK_HEADS, add_data_args, build_data, set_precision, special_tokens,
                             task_defaults)

# Settings taken from the checkpoint's train_log.json when not given, so that evaluating a run
# measures what its own validation measured (the same text, windows and split).
FROM_TRAINING = ("task", "seq_len", "train_file", "validation_file", "validation_fraction",
                 "document_per_line", "class_files", "holdout_every", "copa_file", "validation_ids")


def register(subparsers):
    """Add ``tfgpt evaluate``."""
    e = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint (loss, perplexity, accuracy)",
        description="Evaluate a checkpoint on held-out data; prints a JSON object of metrics. Settings "
                    "not given (task, sequence length, data files, validation split) are those the "
                    "checkpoint was trained with, read from its train_log.json.")
    add_data_args(e)
    e.set_defaults(task=None, holdout_every=None, validation_ids=None)
    add_checkpoint(e, help="checkpoint folder (as written by tfgpt train) or hub id")
    add_tokenizer(e)
    e.add_argument("--split", choices=("validation", "train", "all"), default="validation",
                   help="which part of the data to evaluate (default: validation)")
    e.add_argument("--precision", choices=PRECISIONS, default="float32")
    e.add_argument("--jit-compile", dest="jit_compile", action="store_true", default=True)
    e.add_argument("--no-jit-compile", dest="jit_compile", action="store_false")
    e.add_argument("--steps", type=positive_int, default=None, help="evaluate at most this many batches")
    e.add_argument("--output-json", metavar="PATH", help="also write the metrics here")
    add_verbose(e)
    e.set_defaults(func=evaluate_command)


def _defaults_from_training(args, folder):
    settings = train_log(folder).get("settings")
    if not isinstance(settings, dict):
        return []
    taken = []
    for key in FROM_TRAINING:
        if getattr(args, key, None) is None and settings.get(key) is not None:
            setattr(args, key, settings[key])
            taken.append(key)
    return taken


def evaluate_command(args) -> int:
    """``tfgpt evaluate``: metrics of a checkpoint on held-out data, as JSON on stdout."""
    from tfgpt.io import atomic_write_text
    from tfgpt.models.registry import class_for_head
    from tfgpt.training import default_metrics, perplexity_from_loss

    folder = checkpoint_folder(args.checkpoint)
    taken = _defaults_from_training(args, folder)
    if taken:
        shown = ", ".join(f"--{k.replace('_', '-')} {getattr(args, k)}" for k in taken
                          if k in ("task", "seq_len", "validation_fraction"))
        print(f"evaluating as trained ({TRAIN_LOG_NAME}): {shown}", file=sys.stderr, flush=True)
    args.task = args.task or "lm"
    args.holdout_every = args.holdout_every or 10
    args.validation_ids = args.validation_ids or "401-500"
    task_defaults(args)
    previous_policy = set_precision(args.precision)
    try:
        tokenizer = load_tokenizer(args.tokenizer, args.checkpoint)
        model = class_for_head(TASK_HEADS[args.task]).from_pretrained(args.checkpoint)
        special = special_tokens(args.task, tokenizer, model)
        d = build_data(args, tokenizer, special, evaluate_split=args.split)
        d.limit_validation(args.steps)
        lm = args.task == "lm"
        model.compile(optimizer=None, metrics=default_metrics(model, perplexity=not lm),
                      jit_compile=args.jit_compile)
        results = model.evaluate(d.validation, return_dict=True, verbose=verbosity(args))
        results = {k: float(v) for k, v in results.items()}
        if lm:
            results["perplexity"] = perplexity_from_loss(results["loss"])
        results.update(task=args.task, split=args.split, checkpoint=os.fspath(args.checkpoint),
                       seq_len=args.seq_len)
        text = json.dumps(results, indent=1)
        print(text, flush=True)
        if args.output_json:
            atomic_write_text(args.output_json, text + "\n")
        return 0
    finally:
        import keras

        keras.mixed_precision.set_global_policy(previous_policy)
