"""The vocabulary every subcommand shares, and the checks behind it.

``--preset NAME`` (a model size for a new model), ``--checkpoint DIR_OR_ID`` (a saved model folder or
hub id), ``--head lm|base|double-heads|seqcls``, ``--tokenizer DIR_OR_ID``. Impossible numbers are
refused by argparse itself (usage line and exit code 2, no traceback); a missing folder is reported
with what makes one.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from tfgpt.models.registry import HEADS

# Where a checkpoint folder comes from, for the "does not exist" errors.
MAKES_A_CHECKPOINT = ("`tfgpt train --output DIR` writes one when training ends; `tfgpt demo` writes "
                      "runs/demo/model")
DEFAULT_TOKENIZER = "openai-community/openai-gpt"
TOKENIZER_FILES = ("vocab.json", "encoder_bpe_40000.json")
TRAIN_LOG_NAME = "train_log.json"


# --- argparse types ----------------------------------------------------------------------------------

def _number(kind, text, what, lowest, strict, highest, highest_strict):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if value < lowest or (strict and value == lowest):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    if highest is not None and (value > highest or (highest_strict and value == highest)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _number_type(name, kind, what, lowest, strict=False, highest=None, highest_strict=False):
    """An argparse type ``name``: a finite ``kind`` from ``lowest`` (excluded when ``strict``) up to
    ``highest`` (excluded when ``highest_strict``); anything else is refused as not ``what``."""
    def parse(text):
        return _number(kind, text, what, lowest, strict, highest, highest_strict)

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = f"argparse type: {what}."
    return parse


positive_int = _number_type("positive_int", int, "a positive integer", 0, strict=True)
non_negative_int = _number_type("non_negative_int", int, "an integer >= 0", 0)
positive_float = _number_type("positive_float", float, "a number > 0", 0.0, strict=True)
non_negative_float = _number_type("non_negative_float", float, "a number >= 0", 0.0)
fraction = _number_type("fraction", float, "a number in [0, 1)", 0.0, highest=1.0, highest_strict=True)
unit_interval = _number_type("unit_interval", float, "a number in [0, 1]", 0.0, highest=1.0)
# Tokens per sequence: a next-token target needs two.
sequence_length = _number_type("sequence_length", int, "an integer >= 2", 2)
# An "every N-th" count: every 1st would take everything.
interval = _number_type("interval", int, "an integer >= 2", 2)
# Beams of a beam search: one beam is greedy search.
beam_count = _number_type("beam_count", int, "an integer >= 2", 2)


def non_empty_text(text):
    """argparse type: a non-empty string (a stop string, say)."""
    if not text:
        raise argparse.ArgumentTypeError(f"expected a non-empty string, got {text!r}")
    return text


# --- shared arguments --------------------------------------------------------------------------------

def add_checkpoint(p, required=True, help="saved model folder (save_pretrained output) or hub id"):
    p.add_argument("--checkpoint", metavar="DIR_OR_ID", required=required, help=help)


def add_tokenizer(p, help="tokenizer folder or hub id (default: the checkpoint folder)"):
    p.add_argument("--tokenizer", metavar="DIR_OR_ID", help=help)


def add_head(p, help="model class (default: from config.json's architectures, else lm)"):
    p.add_argument("--head", choices=HEADS, default=None, help=help)


def add_verbose(p):
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras progress: 1 a progress bar (default on a terminal), 2 one line per "
                        "epoch (default otherwise), 0 none")


def verbosity(args) -> int:
    """Keras' verbose: as given, else a progress bar on a terminal and one line per epoch in a log."""
    if getattr(args, "verbose", None) is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() else 2


# --- folders -----------------------------------------------------------------------------------------

def has_tokenizer(folder) -> bool:
    """Whether ``folder`` holds tokenizer files (HF's vocab.json or OpenAI's encoder_bpe_40000.json)."""
    return bool(folder) and os.path.isdir(folder) and any(
        os.path.isfile(os.path.join(folder, f)) for f in TOKENIZER_FILES)


def _looks_like_hub_id(value: str) -> bool:
    parts = value.split("/")
    return (len(parts) == 2 and all(parts) and not value.startswith((".", "~", "/"))
            and not os.path.exists(parts[0]))


def checkpoint_folder(value, flag="--checkpoint") -> Optional[str]:
    """The local folder ``value`` names, checked; None for a hub id (the loader fetches it).

    A folder that does not exist, or holds no config.json (a run still training, or another folder),
    raises FileNotFoundError saying what makes a checkpoint.
    """
    value = os.fspath(value)
    if os.path.isdir(value):
        if not os.path.isfile(os.path.join(value, "config.json")):
            raise FileNotFoundError(
                f"{flag} {value}: the folder holds no checkpoint yet (no config.json); "
                f"{MAKES_A_CHECKPOINT}")
        return value
    if os.path.exists(value):
        raise NotADirectoryError(f"{flag} {value} is a file; pass the folder that holds config.json "
                                 f"and the weights")
    if _looks_like_hub_id(value):
        return None
    raise FileNotFoundError(f"{flag} {value}: the folder does not exist; {MAKES_A_CHECKPOINT}")


def load_model(value, head=None, flag="--checkpoint"):
    """Load ``value`` (folder or hub id) as ``head``'s class, or the class its config names."""
    from tfgpt.hub import HubError
    from tfgpt.models import registry

    folder = checkpoint_folder(value, flag)
    cls = registry.class_for_folder(folder, head)
    print(f"loading {value} ({cls.__name__}) ...", file=sys.stderr, flush=True)
    try:
        return cls.from_pretrained(value)
    except HubError as e:
        raise FileNotFoundError(f"{flag} {value}: no such folder here, and as a hub id: {e} "
                                f"({MAKES_A_CHECKPOINT})") from e


def load_tokenizer(value, checkpoint=None, required=True, default=None):
    """The Python tokenizer from ``--tokenizer``, else the checkpoint folder's files, else ``default``.

    Without any of them (``required``), or when the default hub tokenizer is not available offline,
    the error says to pass ``--tokenizer DIR``.
    """
    from tfgpt.hub import HubError
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    learn = "a folder with vocab.json and merges.txt, e.g. from `tfgpt learn-bpe FILE --out DIR`"
    source = value
    if source is None and checkpoint is not None and has_tokenizer(checkpoint):
        source = checkpoint
    if source is None and checkpoint is not None and not os.path.isdir(checkpoint):
        source = checkpoint  # a hub id: its tokenizer files come with it
    if source is None:
        source = default
    if source is None:
        if not required:
            return None
        where = f"{checkpoint} has no tokenizer files" if checkpoint else "no tokenizer given"
        raise FileNotFoundError(f"{where}; pass --tokenizer DIR ({learn})")
    if value is not None and not os.path.exists(value) and not _looks_like_hub_id(value):
        raise FileNotFoundError(f"--tokenizer {value}: the folder does not exist; pass {learn}")
    try:
        return OpenAIGPTTokenizer.from_pretrained(source)
    except HubError as e:
        if value is None and source == default:
            raise FileNotFoundError(
                f"no --tokenizer given, and the default {default} is not available ({e}); pass "
                f"--tokenizer DIR ({learn})") from e
        raise


def train_log(folder) -> dict:
    """The ``train_log.json`` that ``tfgpt train`` wrote beside a checkpoint, or {}."""
    from tfgpt.io import read_json

    path = os.path.join(folder, TRAIN_LOG_NAME) if folder else None
    if not path or not os.path.isfile(path):
        return {}
    try:
        record = read_json(path, "training log")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
