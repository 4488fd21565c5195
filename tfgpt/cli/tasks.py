"""What ``tfgpt train`` and ``tfgpt evaluate`` share: the tasks, their data arguments, pipelines,
task tokens and models."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from tfgpt.cli.options import checkpoint_folder, fraction, interval, positive_int, sequence_length
from tfgpt.training.presets import PRESETS, preset_model

TASKS = ("lm", "classification", "multiple-choice")
# The model head each task trains (a tfgpt.models.registry head name).
TASK_HEADS = {"lm": "lm", "classification": "seqcls", "multiple-choice": "double-heads"}
# The default LM run (small preset): this many steps or minutes, whichever ends first; the learning
# rate anneals by the deadline either way (TimeLimit), so the CPU demo fits in 20 minutes.
DEFAULT_LM_STEPS = 2000
DEFAULT_LM_MINUTES = 18.0
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PAD_TOKEN = "<pad>"


def add_data_args(p):
    """The data arguments of ``train`` and ``evaluate``."""
    g = p.add_argument_group("data")
    g.add_argument("--task", choices=TASKS, default="lm",
                   help="lm: causal LM on text files; classification: sequence classification; "
                        "multiple-choice: DoubleHeads on COPA (default: lm)")
    g.add_argument("--train-file", nargs="+", metavar="PATH",
                   help="lm: text files, one document each (default: tiny-shakespeare, downloaded once "
                        "into the Keras cache); classification: TSV files 'label<TAB>text'")
    g.add_argument("--validation-file", nargs="+", metavar="PATH",
                   help="separate validation data (default: held out from the training data)")
    g.add_argument("--validation-fraction", type=fraction, default=None,
                   help="lm: the last fraction of every file is validation (default: 0.1)")
    g.add_argument("--document-per-line", action="store_true",
                   help="lm: every line is a document (default: every file)")
    g.add_argument("--cache-dir", help="Keras cache folder for the default corpus (default: $KERAS_HOME "
                                       "or ~/.keras; the file goes to datasets/tfgpt/)")
    g.add_argument("--class-files", nargs="+", metavar="PATH",
                   help="classification: one text per line, the label is the file's position "
                        "(e.g. rt-polarity.neg rt-polarity.pos)")
    g.add_argument("--holdout-every", type=interval, default=10,
                   help="classification: every N-th line of each class is validation (default: 10)")
    g.add_argument("--copa-file", metavar="XML", help="multiple-choice: COPA / Balanced-COPA XML file")
    g.add_argument("--train-ids", default="1-400", help="multiple-choice: COPA ids to train on (default: 1-400)")
    g.add_argument("--validation-ids", default="401-500",
                   help="multiple-choice: COPA ids to validate on (default: 401-500)")
    g.add_argument("--seq-len", type=sequence_length, default=None,
                   help="tokens per sequence (default: 128 for lm, 64 otherwise)")
    g.add_argument("--batch-size", type=positive_int, default=None,
                   help="sequences per batch (default: 8 for lm, 32 classification, 8 multiple-choice)")


def task_defaults(args):
    """Fill the task-dependent defaults of the data arguments left unset."""
    lm = args.task == "lm"
    if args.seq_len is None:
        args.seq_len = 128 if lm else 64
    if args.batch_size is None:
        args.batch_size = {"lm": 8, "classification": 32, "multiple-choice": 8}[args.task]
    if getattr(args, "validation_fraction", None) is None:
        args.validation_fraction = 0.1


class RunData:
    """The pipelines of one run: train (repeating), validation (one pass, of known length) and sizes."""

    def __init__(self, train, validation, train_batches=None, info=None):
        self.train, self.validation = train, validation
        self.train_batches = train_batches
        self.info = info or {}

    def limit_validation(self, steps=None):
        """Cut validation to ``steps`` batches and give it a known length (Keras then shows a full
        progress bar and does not warn that the data ran out)."""
        from tfgpt.data import count_batches

        if self.validation is None:
            return
        if steps:
            self.validation = self.validation.take(steps)
        n = int(self.validation.cardinality())
        if n < 0:
            n = count_batches(self.validation)
            self.validation = self.validation.apply(tf.data.experimental.assert_cardinality(n))
        if n == 0:
            raise ValueError("the validation data holds no full batch: give more validation text "
                             "(--validation-file, a larger --validation-fraction) or a smaller "
                             "--batch-size / --seq-len")
        self.info["validation_batches"] = n


def lm_files(args, flag="--train-file"):
    """The LM text files: ``--train-file``, else tiny-shakespeare from the Keras cache."""
    from tfgpt.data import CorpusUnavailableError, get_tiny_shakespeare

    if args.train_file:
        return list(args.train_file)
    try:
        return [get_tiny_shakespeare(args.cache_dir)]
    except CorpusUnavailableError as e:
        raise CorpusUnavailableError(f"{e} With tfgpt: {flag} PATH.") from None


def build_data(args, tokenizer, special, evaluate_split=None):
    """Pipelines for the task; ``evaluate_split`` builds only the (one-pass) evaluation pipeline."""
    from tfgpt import data

    seed = getattr(args, "seed", 0)
    b, s = args.batch_size, args.seq_len
    if args.task == "lm":
        files = lm_files(args)
        val_files = args.validation_file
        frac = 0.0 if val_files else args.validation_fraction
        opts = dict(document_per_line=args.document_per_line)
        small = sum(os.path.getsize(f) for f in files if os.path.isfile(f)) < (256 << 20)
        info = {"files": files, "validation_files": val_files, "validation_fraction": frac}
        if evaluate_split is not None:
            split = evaluate_split
            src = files
            if val_files and split == "validation":
                src, split = val_files, "all"
            ev = data.lm_dataset(src, tokenizer, s, b, split=split, validation_fraction=frac,
                                 shuffle=False, repeat=False, random_offset=False, **opts)
            return RunData(None, ev, info=info)
        train = data.lm_dataset(files, tokenizer, s, b, "train", frac, seed=seed, cache=small, **opts)
        if val_files:
            val = data.lm_dataset(val_files, tokenizer, s, b, "all", **opts)
        elif frac > 0:
            val = data.lm_dataset(files, tokenizer, s, b, "validation", frac, **opts)
        else:
            val = None
        n_train = None
        if args.epochs is not None:
            once = data.lm_dataset(files, tokenizer, s, b, "train", frac, repeat=False, shuffle=False,
                                   drop_remainder=True, **opts)
            n_train = data.count_batches(once)
        return RunData(train, val, n_train, info=info)

    if args.task == "classification":
        if args.class_files:
            texts, labels = data.read_class_files(args.class_files)
            names = [os.path.basename(f) for f in args.class_files]
        elif args.train_file:
            texts, labels, names = [], [], None
            for f in args.train_file:
                t, l, n = data.read_tsv(f)
                if names is not None and n != names:
                    raise ValueError(f"{f} has labels {n}, the first file {names}")
                texts, labels, names = texts + t, labels + l, n
        else:
            raise ValueError("classification needs --class-files or --train-file (TSV)")
        if args.validation_file:
            vt, vl = [], []
            for f in args.validation_file:
                t, l, _ = data.read_tsv(f)
                vt, vl = vt + t, vl + l
            train_pairs, val_pairs = list(zip(texts, labels)), list(zip(vt, vl))
        else:
            train_pairs, val_pairs = data.holdout_every(list(zip(texts, labels)), args.holdout_every,
                                                        per_group=labels)
        if evaluate_split == "all":
            train_pairs, val_pairs = [], train_pairs + val_pairs
        elif evaluate_split == "train":
            train_pairs, val_pairs = [], train_pairs
        opts = dict(max_length=s, pad_id=special["pad"], start_id=special["_start_"],
                    classify_id=special["_classify_"])
        info = {"num_labels": len(names), "labels": names, "train_examples": len(train_pairs),
                "validation_examples": len(val_pairs)}

        def make(pairs, **kw):
            t, l = zip(*pairs) if pairs else ((), ())
            return data.classification_dataset(list(t), np.asarray(l, np.int32), tokenizer, b, **opts, **kw)

        val = make(val_pairs)
        if evaluate_split is not None:
            return RunData(None, val, info=info)
        train = make(train_pairs, shuffle=True, repeat=True, seed=seed, drop_remainder=True)
        return RunData(train, val, len(train_pairs) // b, info=info)

    # multiple choice
    if not args.copa_file:
        raise ValueError("multiple-choice needs --copa-file (a COPA / Balanced-COPA XML file)")
    train_items = data.read_copa(args.copa_file, data.parse_id_ranges(args.train_ids))
    val_items = data.read_copa(args.copa_file, data.parse_id_ranges(args.validation_ids))
    if evaluate_split == "train":
        val_items = train_items
    elif evaluate_split == "all":
        val_items = train_items + val_items
    opts = dict(start_id=special["_start_"], delimiter_id=special["_delimiter_"],
                classify_id=special["_classify_"], max_length=s, pad_id=special["pad"],
                batch_size=b)
    info = {"train_examples": len(train_items), "validation_examples": len(val_items)}
    val = data.multiple_choice_dataset(*data.copa_examples(val_items), tokenizer, **opts)
    if evaluate_split is not None:
        return RunData(None, val, info=info)
    train = data.multiple_choice_dataset(*data.copa_examples(train_items), tokenizer, **opts,
                                         shuffle=True, repeat=True, seed=seed, drop_remainder=True)
    return RunData(train, val, max(len(train_items) // b, 1), info=info)


def special_tokens(task, tokenizer, model=None):
    """GPT-1's task tokens for the fine-tuning heads (added to the tokenizer and the token table)."""
    from tfgpt import data

    if task == "lm":
        return {}
    tokens = ("_start_", "_classify_") if task == "classification" else data.GPT1_SPECIAL_TOKENS
    return data.add_gpt1_special_tokens(tokenizer, model, tokens, pad_token=PAD_TOKEN)


def build_model(args, tokenizer):
    """A new model of ``--preset``, or ``--checkpoint``'s weights, with the task's head."""
    from tfgpt.models.registry import class_for_head

    cls = class_for_head(TASK_HEADS[args.task])
    kwargs = {}
    if args.task == "multiple-choice":
        kwargs["lm_coef"] = args.lm_coef
    if args.checkpoint:
        overrides = {}
        if args.task == "classification" and args.num_labels:
            overrides["num_labels"] = args.num_labels
        if args.task == "multiple-choice":
            overrides["num_labels"] = 1  # one score per choice
        if args.dropout is not None:
            overrides.update(resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout)
        checkpoint_folder(args.checkpoint)
        model = cls.from_pretrained(args.checkpoint, **overrides, **kwargs)
    else:
        d = args.dropout
        n_positions = max(PRESETS[args.preset]["n_positions"], args.seq_len)
        model = preset_model(cls, args.preset, len(tokenizer), seed=args.seed, resid_pdrop=d,
                             embd_pdrop=d, attn_pdrop=d, n_positions=n_positions,
                             num_labels=getattr(args, "num_labels", None) or
                             (1 if args.task == "multiple-choice" else 2), **kwargs)
    if args.seq_len > model.config.n_positions:
        raise ValueError(f"--seq-len {args.seq_len} is longer than the model's n_positions="
                         f"{model.config.n_positions}")
    return model


def set_precision(name):
    """Set Keras' global dtype policy; returns the previous one's name."""
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    return previous


def num_labels(args):
    """Classification: the number of classes the data names (None for the other tasks)."""
    if args.task != "classification":
        return None
    if args.class_files:
        return len(args.class_files)
    if args.train_file:
        from tfgpt.data import read_tsv

        return len(read_tsv(args.train_file[0])[2])
    return None


