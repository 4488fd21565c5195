"""The ``tfgpt`` command: train, evaluate, generate, export, convert, learn-bpe, demo.

Every subcommand lives in this package, one module each, and calls the library's public functions.
They share one vocabulary (:mod:`tfgpt.cli.options`): ``--preset`` (a model size), ``--checkpoint``
(a saved model folder or hub id), ``--head`` and ``--tokenizer``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import tempfile

# One module per subcommand, in the order ``tfgpt --help`` lists them.
COMMAND_MODULES = (
    "tfgpt.cli.demo",
    "tfgpt.cli.train",
    "tfgpt.cli.evaluate",
    "tfgpt.cli.generate",
    "tfgpt.cli.export",
    "tfgpt.cli.convert",
    "tfgpt.cli.learn_bpe",
)

# What TensorFlow's C++ runtime prints to stderr while it is imported and finds its devices, before
# its log level applies: absl's pre-initialisation notice, INFO/WARNING lines (oneDNN, CUDA probing),
# the "no GPU driver" error of a CPU-only machine and the CPU-feature note.
_STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:. ]+\d+ [\w.]+:\d+\] "
    r"|E\d{4} [\d:. ]+\d+ cuda\w*\.cc:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)")


def quiet_tensorflow_import() -> None:
    """Import TensorFlow and let it find its devices with its start-up log lines filtered out of
    stderr (anything else it prints is passed on); later C++ INFO lines stay off
    (``TF_CPP_MIN_LOG_LEVEL``, 1 unless set)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr file descriptor (an embedding host)
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the GPU probe logs here, not at import
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if not _STARTUP_NOISE.match(line):
                    print(line, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfgpt", description="OpenAI GPT (GPT-1) for TensorFlow / Keras 3")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    quiet_tensorflow_import()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, TypeError, OSError) as e:
        print(f"tfgpt {args.command}: error: {e}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
