"""``tfgpt train``: train a new ``--preset`` model or fine-tune a ``--checkpoint`` with ``model.fit``."""

from __future__ import annotations

import math
import os
import sys
import time

import keras
import numpy as np

from tfgpt.cli.options import (DEFAULT_TOKENIZER, TRAIN_LOG_NAME, add_checkpoint, add_tokenizer, add_verbose,
                               fraction, load_tokenizer, non_negative_float, non_negative_int,
                               positive_float, positive_int, unit_interval, verbosity)
from tfgpt.cli.tasks import (DEFAULT_LM_MINUTES, DEFAULT_LM_STEPS, PRECISIONS, add_data_args, build_data,
                             build_model, num_labels, set_precision, special_tokens, task_defaults)
from tfgpt.training import (PRESET_OPTIMIZER, PRESETS, BackupAndRestore, JSONLog, PerplexityFromLoss,
                            SavePretrainedCheckpoint, TensorBoard, TimeLimit, create_optimizer,
                            default_metrics)


def register(subparsers):
    """Add ``tfgpt train``."""
    p = subparsers.add_parser(
        "train", help="train or fine-tune a GPT-1 model with model.fit",
        description="Train a GPT-1 model with Keras fit on a tf.data pipeline; writes the checkpoint "
                    "(save_pretrained), the tokenizer files and train_log.json to --output.")
    add_data_args(p)
    m = p.add_argument_group("model")
    add_tokenizer(m, help=f"tokenizer folder or hub id (default: the --checkpoint folder's, else "
                          f"{DEFAULT_TOKENIZER})")
    m.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="size of a new model: small (CPU demo) or gpt1 (12 x 768) (default: small)")
    add_checkpoint(m, required=False, help="start from this saved model (folder or hub id) instead of "
                                           "a new --preset model")
    m.add_argument("--dropout", type=fraction, default=None,
                   help="dropout for a new model (default: the preset's, 0.1 as GPT-1); with --checkpoint "
                        "the checkpoint's")
    m.add_argument("--lm-coef", type=non_negative_float, default=0.5,
                   help="multiple-choice: weight of the auxiliary LM loss (GPT-1: 0.5; 0 turns it off)")
    o = p.add_argument_group("optimisation")
    length = o.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, default=None,
                   help=f"optimizer steps (default for lm: {DEFAULT_LM_STEPS}; a new small model also "
                        f"stops after {DEFAULT_LM_MINUTES:g} minutes, see --max-minutes)")
    length.add_argument("--epochs", type=positive_float, default=None, help="passes over the training data instead of --steps")
    o.add_argument("--eval-every", type=positive_int, default=None,
                   help="steps between validations, backups and log records (default: 200 for lm, "
                        "an epoch otherwise); the steps are rounded up to whole intervals")
    o.add_argument("--validation-steps", type=positive_int, default=None,
                   help="validate on at most this many batches (default: all of the validation data)")
    o.add_argument("--learning-rate", type=positive_float, default=None,
                   help="peak learning rate (default: 1e-3 for a new small model, 2.5e-4 for gpt1, "
                        "6.25e-5 when fine-tuning, as GPT-1)")
    o.add_argument("--warmup-steps", type=non_negative_int, default=None, help="linear warm-up (default: 5%% of steps)")
    o.add_argument("--min-lr-ratio", type=unit_interval, default=0.0, help="cosine decays to this x peak (default: 0)")
    o.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="AdamW weight decay, not on biases and layer norms (default: 0.1 for a new "
                        "small model, else 0.01 as GPT-1)")
    o.add_argument("--clipnorm", type=non_negative_float, default=1.0, help="global gradient norm clip (0: off)")
    o.add_argument("--seed", type=non_negative_int, default=0)
    o.add_argument("--max-minutes", type=positive_float, default=None,
                   help="stop after this much training time; the learning rate anneals by then")
    r = p.add_argument_group("runtime")
    r.add_argument("--output", default="runs/train", help="output folder (default: runs/train)")
    r.add_argument("--precision", choices=PRECISIONS, default="float32")
    r.add_argument("--jit-compile", dest="jit_compile", action="store_true", default=True,
                   help="compile train steps with XLA (default)")
    r.add_argument("--no-jit-compile", dest="jit_compile", action="store_false")
    r.add_argument("--checkpoint-every", type=positive_int, default=None,
                   help="also save_pretrained into OUTPUT/checkpoints/checkpoint-STEP every N steps")
    r.add_argument("--no-backup", dest="backup", action="store_false", default=True,
                   help="no BackupAndRestore (default: back up at every --eval-every in OUTPUT/backup; a "
                        "killed run started again with the same command resumes there)")
    r.add_argument("--tensorboard", nargs="?", const="", default=None, metavar="DIR",
                   help="write TensorBoard logs (default folder: OUTPUT/tensorboard)")
    add_verbose(r)
    p.set_defaults(func=train_command)


def train_command(args) -> int:
    """``tfgpt train``: build data, model and optimizer, fit, and write the results to --output."""
    task_defaults(args)
    lm = args.task == "lm"
    if args.steps is None and args.epochs is None:
        if lm:
            args.steps = DEFAULT_LM_STEPS
            if args.max_minutes is None and not args.checkpoint and args.preset == "small":
                args.max_minutes = DEFAULT_LM_MINUTES
        else:
            args.epochs = 3.0
    recipe = {} if args.checkpoint else PRESET_OPTIMIZER.get(args.preset, {})
    if args.learning_rate is None:
        args.learning_rate = recipe.get("learning_rate", 6.25e-5)
    if args.weight_decay is None:
        args.weight_decay = recipe.get("weight_decay", 0.01)
    keras.utils.set_random_seed(args.seed)
    previous_policy = set_precision(args.precision)
    try:
        tokenizer = load_tokenizer(args.tokenizer, args.checkpoint,
                                   default=None if args.checkpoint else DEFAULT_TOKENIZER)
        args.num_labels = num_labels(args)
        model = build_model(args, tokenizer)
        special = special_tokens(args.task, tokenizer, model)
        d = build_data(args, tokenizer, special)
        d.limit_validation(args.validation_steps)
        if args.task == "classification":
            model.config.id2label = {i: str(n) for i, n in enumerate(d.info["labels"])}
            model.config.label2id = {str(n): i for i, n in enumerate(d.info["labels"])}
        if args.epochs is not None:
            if not d.train_batches:
                raise ValueError("the training data is smaller than one batch")
            total = max(int(round(args.epochs * d.train_batches)), 1)
        else:
            total = args.steps
        every = args.eval_every or (200 if lm else max(d.train_batches or 100, 1))
        every = max(1, min(every, total))
        epochs = math.ceil(total / every)
        total = epochs * every  # whole intervals, so backups and resumes line up
        warmup = args.warmup_steps if args.warmup_steps is not None else max(int(0.05 * total), 1)
        optimizer = create_optimizer(args.learning_rate, total, warmup, args.weight_decay,
                                     args.min_lr_ratio, args.clipnorm or None)
        model.compile(optimizer=optimizer, metrics=default_metrics(model, perplexity=not lm),
                      jit_compile=args.jit_compile)

        os.makedirs(args.output, exist_ok=True)
        log = JSONLog(os.path.join(args.output, TRAIN_LOG_NAME), every=max(1, min(10, every)), extra={
            "command": "tfgpt train " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train"] else None,
            "settings": {k: v for k, v in vars(args).items() if k != "func"},
            "total_steps": total, "warmup_steps": warmup, "data": d.info,
            "config": model.config.to_dict(),
        })
        callbacks = ([PerplexityFromLoss()] if lm else []) + [log, keras.callbacks.TerminateOnNaN()]
        if args.backup:
            callbacks.insert(0, BackupAndRestore(os.path.join(args.output, "backup")))
        if args.max_minutes:
            callbacks.append(TimeLimit(args.max_minutes * 60))
        if args.checkpoint_every:
            callbacks.append(SavePretrainedCheckpoint(os.path.join(args.output, "checkpoints"),
                                                      save_freq=args.checkpoint_every, keep=3,
                                                      tokenizer=tokenizer))
        if args.tensorboard is not None:
            callbacks.append(TensorBoard(
                args.tensorboard or os.path.join(args.output, "tensorboard"), update_freq=every))
        n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        print(f"tfgpt train: task={args.task}, {type(model).__name__} with {n_params / 1e6:.1f} M "
              f"parameters, {total} steps of {args.batch_size} x {args.seq_len} tokens, validating "
              f"every {every}; output in {args.output}", flush=True)
        start = time.monotonic()
        history = model.fit(d.train, validation_data=d.validation, epochs=epochs, steps_per_epoch=every,
                            callbacks=callbacks,
                            verbose=verbosity(args), shuffle=False)
        elapsed = time.monotonic() - start
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        final = {k: float(v[-1]) for k, v in history.history.items() if v}
        if not final and log.record["epochs"]:
            final = {k: v for k, v in log.record["epochs"][-1].items() if k not in ("epoch", "elapsed_s")}
        nan = any(not np.isfinite(v) for k, v in final.items() if "loss" in k)

        model.save_pretrained(args.output, safe_serialization=True)
        tokenizer.save_pretrained(args.output)
        log.write(final=final, steps_done=step, train_seconds=round(elapsed, 1),
                  stopped_by_time_limit=any(isinstance(c, TimeLimit) and c.stopped for c in callbacks),
                  terminated_on_nan=nan)
        summary = ", ".join(f"{k} {v:.4f}" for k, v in final.items())
        print(f"tfgpt train: {step} steps in {elapsed / 60:.1f} min; {summary}", flush=True)
        print(f"tfgpt train: wrote the checkpoint, tokenizer and train_log.json to {args.output}",
              flush=True)
        return 1 if nan else 0
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

