"""``tfgpt learn-bpe``: a GPT-1-style BPE vocabulary (vocab.json + merges.txt) from text files."""

from __future__ import annotations

import time

from tfgpt.cli.options import positive_int


def register(subparsers):
    """Add ``tfgpt learn-bpe FILE... --out DIR [--merges N]``."""
    p = subparsers.add_parser(
        "learn-bpe", help="learn a GPT-1-style BPE vocabulary from text files",
        description="Learn vocab.json + merges.txt (GPT-1's pre-tokenization and </w> markers) from "
                    "text files; both tfgpt tokenizers load the folder (--tokenizer DIR).")
    p.add_argument("files", nargs="+", help="UTF-8 text files")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--merges", type=positive_int, default=8000, help="number of merges (default: 8000)")
    p.add_argument("--min-frequency", type=positive_int, default=2,
                   help="stop below this pair count (default: 2)")
    p.add_argument("--special-tokens", nargs="*", default=(),
                   help="tokens appended after the merges, e.g. _start_ _delimiter_ _classify_")
    p.set_defaults(func=learn_bpe_command)
    return p


def learn_bpe_command(args) -> int:
    from tfgpt.tokenizers.trainer import train_bpe

    start = time.time()
    tok = train_bpe(args.files, args.merges, args.min_frequency, output_dir=args.out,
                    special_tokens=args.special_tokens)
    print(f"learned {len(tok.bpe_ranks)} merges, {len(tok)} tokens in {time.time() - start:.1f}s -> {args.out}")
    return 0
