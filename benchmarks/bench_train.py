"""Training throughput of ``model.fit``'s step: tokens/s, ratio to the matmul limit, peak memory.

    python benchmarks/bench_train.py --size gpt1            # B=4, S=128, AdamW, fp32, XLA
    python benchmarks/bench_train.py --size small --no-jit

Times ``train_on_batch`` (one full AdamW step, synchronous) after warm-up steps and prints median /
min / max tokens/s. The limit is measured in the same run: fp32 matmul GFLOP/s (2048^2 through
TensorFlow) divided by the training FLOPs per token (6 x (block weights + tied LM head) + attention).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfgpt  # noqa: E402
from tfgpt.training import create_optimizer, preset_config  # noqa: E402


def matmul_gflops(n=2048, repeats=5):
    """Best-of-``repeats`` fp32 matmul throughput through TensorFlow, GFLOP/s."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    mm = tf.function(lambda x, y: tf.matmul(x, y))
    mm(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def train_flops_per_token(cfg, seq_len):
    e, l, v = cfg.n_embd, cfg.n_layer, cfg.vocab_size
    block = l * (12 * e * e + 13 * e)  # c_attn, c_proj, c_fc, mlp c_proj (+ biases)
    attention = 12 * l * seq_len * e  # QK^T and AV, forward + backward
    return 6 * (block + v * e) + attention


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=["gpt1", "small"], default="gpt1")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=8, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (trace + compile)")
    p.add_argument("--jit", dest="jit", action="store_true", default=True, help="XLA (default)")
    p.add_argument("--no-jit", dest="jit", action="store_false")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--limit", type=float, default=None,
                   help="tokens/s limit to compare with (default: measured in this run)")
    args = p.parse_args(argv)

    cfg = preset_config(args.size, resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                        attn_pdrop=args.dropout)
    model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    model.compile(optimizer=create_optimizer(1e-4, total_steps=10_000, warmup_steps=10),
                  jit_compile=args.jit)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg.vocab_size, (args.batch_size, args.seq_len), dtype=np.int32)
    x, y = {"input_ids": ids}, ids
    tokens = args.batch_size * args.seq_len

    t = time.perf_counter()
    for _ in range(args.warmup):
        model.train_on_batch(x, y)
    warm_s = time.perf_counter() - t
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    rates = sorted(tokens / s for s in times)

    gflops = matmul_gflops()
    flops = train_flops_per_token(cfg, args.seq_len)
    limit = args.limit or gflops * 1e9 / flops
    median = statistics.median(rates)
    n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    print(f"model {args.size}: {n_params / 1e6:.1f} M parameters, {flops / 1e9:.3f} GFLOP/token; "
          f"B={args.batch_size} S={args.seq_len}, AdamW, fp32, jit_compile={args.jit}; "
          f"{args.warmup} warm-up steps took {warm_s:.1f} s")
    print(f"matmul 2048^2 fp32 in this run: {gflops:.1f} GFLOP/s -> limit {limit:.1f} tokens/s")
    print()
    print("| tokens/s median | min | max | ratio to limit | step ms (median) | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {median:.1f} | {rates[0]:.1f} | {rates[-1]:.1f} | {median / limit:.2f} | "
          f"{1000 * tokens / median:.0f} | {peak_rss_mib():.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
