"""Tokenizer throughput on a text corpus: in-graph (tf.data), Python, and BPE learning time.

Prints a table with the median, min and max over several runs and the ratio of the median to the
target (targets: tf.data >= 300k tokens/s, HF's Rust tokenizer on this machine; Python >= 75k tokens/s,
1.5x HF's Python tokenizer; learning 8,000 merges < 60 s). Each run of the Python tokenizer starts
with an empty cache; the tf.data figure is the steady state of one iterator (one-time costs, such as
building the layer, tracing and starting an iterator, have their own rows). Shared machines are
noisy, so throughput is also given per CPU second of this process (all its threads): tokens per
CPU-second x number of CPUs is what an idle machine would reach.

    python benchmarks/bench_tokenizer.py [--corpus ../shared/data/corpus/tinyshakespeare.txt]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def _table(rows):
    header = f"{'measurement':<46}{'median':>14}{'min':>14}{'max':>14}  {'unit':<10}{'target':>10}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for name, values, unit, target, higher_is_better in rows:
        med = statistics.median(values)
        if target is None:
            tail = f"{'-':>10}{'-':>8}"
        else:
            ratio = (med / target) if higher_is_better else (target / med if med else float("inf"))
            tail = f"{target:>10,.0f}{ratio:>8.2f}"
        print(f"{name:<46}{med:>14,.2f}{min(values):>14,.2f}{max(values):>14,.2f}  {unit:<10}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(SHARED / "data" / "corpus" / "tinyshakespeare.txt"))
    parser.add_argument("--vocab", default=str(SHARED / "data" / "openai-gpt"),
                        help="folder with vocab.json + merges.txt or OpenAI's encoder_bpe_40000.json + vocab_40000.bpe")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024, help="lines per tf.data batch")
    parser.add_argument("--merges", type=int, default=8000, help="merges to learn for the trainer timing")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tfgpt.tokenizers.trainer import train_bpe
    from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    text = Path(args.corpus).read_text(encoding="utf-8")
    lines = text.split("\n")
    print(f"corpus {args.corpus}: {len(text):,} characters, {len(lines):,} lines; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; TF {tf.__version__}")

    rows = []
    # Python tokenizer (fresh cache each run)
    py_times, py_cpu, n_tokens = [], [], None
    for _ in range(args.runs):
        tok = OpenAIGPTTokenizer.from_pretrained(args.vocab)
        start, cpu = time.perf_counter(), time.process_time()
        ids = tok(lines)["input_ids"]
        py_times.append(time.perf_counter() - start)
        py_cpu.append(time.process_time() - cpu)
        n_tokens = sum(map(len, ids))
    rows.append(("Python OpenAIGPTTokenizer(lines), cold cache", [n_tokens / t for t in py_times], "tokens/s",
                 75_000, True))
    rows.append(("  same, per CPU second (1 core)", [n_tokens / t for t in py_cpu], "tokens/s", 75_000, True))

    # In-graph tokenizer in tf.data: steady state of one iterator over the repeated corpus (creating an
    # iterator instantiates the map function once, like tracing; that cost is shown on its own row).
    start = time.perf_counter()
    layer = TFOpenAIGPTTokenizer.from_pretrained(args.vocab)
    build_s = time.perf_counter() - start
    ds = (tf.data.Dataset.from_tensor_slices(lines).batch(args.batch_size)
          .map(layer, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    n_batches = int(ds.cardinality())
    start = time.perf_counter()
    graph_tokens = sum(int(tf.size(b.flat_values)) for b in ds)  # traces the graph
    first_pass_s = time.perf_counter() - start
    assert graph_tokens == n_tokens, (graph_tokens, n_tokens)
    setup = []
    for _ in range(3):
        start = time.perf_counter()
        next(iter(ds))
        setup.append(time.perf_counter() - start)
    it = iter(ds.repeat())
    for _ in range(n_batches):
        next(it)
    tf_times, tf_cpu = [], []
    for _ in range(args.runs):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(n_batches):
            next(it)
        tf_times.append(time.perf_counter() - start)
        tf_cpu.append(time.process_time() - cpu)
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows.append((f"TFOpenAIGPTTokenizer in tf.data (batch {args.batch_size})", [n_tokens / t for t in tf_times],
                 "tokens/s", 300_000, True))
    rows.append((f"  same, per CPU second x {ncpu} CPUs", [n_tokens * ncpu / t for t in tf_cpu], "tokens/s",
                 300_000, True))
    rows.append(("  layer build (from_pretrained), once", [build_s], "s", None, False))
    rows.append(("  first pass incl. tracing, once", [first_pass_s], "s", None, False))
    rows.append(("  new iterator to first batch", setup, "s", None, False))

    # A 10,000-character word against 10,000 characters of ordinary text
    rng = random.Random(0)
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10_000))
    ordinary = text[:10_000]

    def best(x, repeat=5):
        layer(x)
        out = []
        for _ in range(repeat):
            start = time.perf_counter()
            layer(x)
            out.append(time.perf_counter() - start)
        return out

    word_t, text_t = best(tf.constant([word])), best(tf.constant([ordinary]))
    rows.append(("graph: 10k-char word / 10k chars of text", [w / t for w, t in zip(word_t, text_t)], "x", None,
                 False))

    if not args.skip_train:
        train_times = []
        for _ in range(max(1, min(args.runs, 3))):
            start = time.perf_counter()
            learned = train_bpe(args.corpus, num_merges=args.merges)
            train_times.append(time.perf_counter() - start)
        rows.append((f"learn {len(learned.bpe_ranks):,} merges", train_times, "s", 60, False))

    print(f"{n_tokens:,} tokens per pass")
    _table(rows)


if __name__ == "__main__":
    main()
