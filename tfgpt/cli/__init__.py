"""The ``tfgpt`` command: train, generate, evaluate, export, convert, demo.

Each subcommand lives beside the code it drives; its module exposes ``register_cli(subparsers)`` that
adds the parser and sets ``func``. Modules are imported only to build the parser.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module's register_cli adds one or more subcommands.
COMMAND_MODULES = (
    "tfgpt.training.core",     # train, evaluate
    "tfgpt.generation.decoding",   # generate
    "tfgpt.export.core",       # export
    "tfgpt.checkpoints.convert",  # convert
    "tfgpt.tokenizers.trainer",  # learn-bpe
    "tfgpt.cli.demo",         # demo (the end-to-end main job)
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfgpt", description="OpenAI GPT (GPT-1) for TensorFlow / Keras 3")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"tfgpt {args.command}: error: {e}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
