"""Training throughput of ``model.fit``'s step: tokens/s, ratio to the matmul limit, peak memory.

    python benchmarks/bench_train.py --size gpt1            # B=4, S=128, AdamW, fp32, XLA
    python benchmarks/bench_train.py --size small --no-jit
    python benchmarks/bench_train.py --size small --breakdown   # where the step's time goes

Times ``train_on_batch`` (one full AdamW step, synchronous) after warm-up steps and prints median /
min / max tokens/s. The limit is measured in the same run: fp32 matmul GFLOP/s (2048^2 through
TensorFlow) divided by the training FLOPs per token (6 x (block weights + tied LM head) + attention).

``--breakdown`` then times, in the same process, the parts of one step on their own, each an
XLA-compiled function at the step's real shapes (warm, median over ``--repeats`` calls, less the cost
of calling a compiled function that takes the same arguments and does nothing): every matmul of the
forward and backward pass (per Dense layer of a block x n_layer: the forward product and the two
gradient products; the attention scores and values per head batch; the tied LM head and its two
gradients), their sum, the AdamW update of all variables, the LM loss with its gradient (logits in,
gradient out), and the dropout masks. Each is printed in ms and as a share of the step (timed again
after the parts, median of all steps), with the limit that the matmuls' own rate at these shapes
allows (their FLOPs / their summed time): the matmuls of a B x S = 512-token step run below the
2048^2 rate, which is why the 2048^2 limit is not reachable.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
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


def timed(fn, *args, repeats=10):
    """Median seconds of ``fn(*args)`` over ``repeats`` calls, after two calls (trace, compile, warm).
    CPU execution is synchronous: the call returns when the outputs are computed."""
    fn(*args)
    fn(*args)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def step_matmuls(cfg, batch, seq):
    """(name, a shape, b shape, transpose_a, transpose_b, calls per step) of every matmul in one train
    step. A Dense y = x @ w has the gradient products dy @ w^T and x^T @ dy."""
    n, e, h, v = batch * seq, cfg.n_embd, cfg.n_head, cfg.vocab_size
    heads = [batch, h, seq, e // h]
    scores = [batch, h, seq, seq]
    rows = []
    for name, d_in, d_out in (("attn c_attn (QKV)", e, 3 * e), ("attn c_proj", e, e),
                              ("mlp c_fc", e, 4 * e), ("mlp c_proj", 4 * e, e)):
        rows += [(f"{name}: x @ w", [n, d_in], [d_in, d_out], False, False, cfg.n_layer),
                 (f"{name}: dy @ w^T", [n, d_out], [d_in, d_out], False, True, cfg.n_layer),
                 (f"{name}: x^T @ dy", [n, d_in], [n, d_out], True, False, cfg.n_layer)]
    rows += [("scores: q @ k^T", heads, heads, False, True, cfg.n_layer),
             ("scores grad: ds @ k", scores, heads, False, False, cfg.n_layer),
             ("scores grad: ds^T @ q", scores, heads, True, False, cfg.n_layer),
             ("values: p @ v", scores, heads, False, False, cfg.n_layer),
             ("values grad: da @ v^T", heads, heads, False, True, cfg.n_layer),
             ("values grad: p^T @ da", scores, heads, True, False, cfg.n_layer),
             ("LM head: h @ wte^T", [n, e], [v, e], False, True, 1),
             ("LM head grad: dlogits @ wte", [n, v], [v, e], False, False, 1),
             ("LM head grad: dlogits^T @ h", [n, v], [n, e], True, False, 1)]
    return rows


def matmul_flops(a, b, transpose_a, transpose_b):
    m = a[-1] if transpose_a else a[-2]
    k = a[-2] if transpose_a else a[-1]
    n_out = b[-2] if transpose_b else b[-1]
    return 2 * int(np.prod(a[:-2], dtype=np.int64)) * m * k * n_out


def dropout_layers(model):
    """(layer, input shape as a function of B, S) for every dropout a step of the LM head runs."""
    cfg = model.config
    row = lambda b, s: [b, s, cfg.n_embd]  # noqa: E731
    probs = lambda b, s: [b, cfg.n_head, s, s]  # noqa: E731
    found = [(model.transformer.drop, row)]
    for block in model.transformer.h:
        found += [(block.attn.attn_dropout, probs), (block.attn.resid_dropout, row),
                  (block.mlp.dropout, row)]
    return found


def breakdown(model, cfg, ids, step_times, time_steps, gflops_2048, repeats):
    """Print the time of each part of a train step measured alone, against the whole step.

    ``time_steps()`` times more steps after the parts; the step's median is taken over both sets, so
    that a host busier during the parts than during the first steps shows as a spread."""
    batch, seq = ids.shape
    tokens = batch * seq
    flops_token = train_flops_per_token(cfg, seq)
    rng = tf.random.Generator.from_seed(0)
    overheads = []

    def part(fn, *args):
        # less the cost of calling a compiled function with the same arguments that returns one of
        # their numbers (returning an argument whole would time a copy of it)
        nothing = tf.function(lambda *a: tf.reshape(tf.nest.flatten(a)[0], [-1])[0], jit_compile=True)
        overheads.append(timed(nothing, *args, repeats=repeats))
        return max(timed(fn, *args, repeats=repeats) - overheads[-1], 0.0)

    table = []  # (name, shapes, calls, GFLOP per step or None, seconds per step)
    for name, a, b, ta, tb, calls in step_matmuls(cfg, batch, seq):
        mm = tf.function(lambda x, y, ta=ta, tb=tb: tf.matmul(x, y, transpose_a=ta, transpose_b=tb),
                         jit_compile=True)
        t = part(mm, rng.normal(a), rng.normal(b))
        table.append((name, f"{a} x {b}", calls, calls * matmul_flops(a, b, ta, tb) / 1e9, calls * t))
    mm_flops = sum(r[3] for r in table)
    mm_s = sum(r[4] for r in table)

    variables = model.trainable_variables
    grads = [rng.normal(v.shape, stddev=1e-3) for v in variables]
    update = tf.function(lambda g: model.optimizer.apply(g, variables), jit_compile=True)
    t_adam = part(update, grads)

    from tfgpt.models.modeling import causal_lm_loss

    labels = tf.constant(ids)
    logits = rng.normal([batch, seq, cfg.vocab_size])

    @tf.function(jit_compile=True)
    def loss_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = causal_lm_loss(labels, x)
        return loss, tape.gradient(loss, x)

    t_loss = part(loss_and_grad, logits)
    t_pass = part(tf.function(lambda x: x * 2.0, jit_compile=True), logits)

    layers = dropout_layers(model)
    inputs = [rng.normal(shape(batch, seq)) for _, shape in layers]

    def masks(with_layers):
        return tf.function(lambda xs: [f(x, training=True) for f, x in zip(with_layers, xs)],
                           jit_compile=True)

    t_drop = part(masks([layer for layer, _ in layers]), inputs)
    keras_drop = [keras.layers.Dropout(layer.rate) for layer, _ in layers]
    t_keras_drop = part(masks(keras_drop), inputs)

    table += [("AdamW update, all variables", f"{len(variables)} variables", 1, None, t_adam),
              ("LM loss + gradient", f"logits {[batch, seq, cfg.vocab_size]}", 1, None, t_loss),
              ("dropout masks", f"{len(layers)} layers", 1, None, t_drop)]
    measured = sum(r[4] for r in table)
    after = time_steps()
    step_s = statistics.median(step_times + after)

    def share(t):
        return f"{1000 * t:.2f} | {100 * t / step_s:.1f} %"

    print()
    print(f"Breakdown of the {1000 * step_s:.1f} ms step (median of the steps before the parts, "
          f"{1000 * statistics.median(step_times):.1f} ms, and after, {1000 * statistics.median(after):.1f} "
          f"ms), each part timed alone (XLA, median of {repeats} calls, less "
          f"{1e6 * min(overheads):.0f}-{1e6 * max(overheads):.0f} us of call cost):")
    print()
    print("| part | shapes | per step | GFLOP | ms | share of step | GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, shapes, calls, gf, t in table:
        rate = f"{gf / t:.0f}" if gf is not None and t > 0 else ""
        print(f"| {name} | {shapes} | {calls} | {'' if gf is None else f'{gf:.3f}'} | {share(t)} | {rate} |")
    print(f"| **all matmuls** | | | {mm_flops:.3f} | {share(mm_s)} | {mm_flops / mm_s:.0f} |")
    print(f"| **all parts above** | | | | {share(measured)} | |")
    print(f"| step - all parts (the rest: elementwise, layer norms, softmax, embeddings; below 0 where "
          f"parts overlap in the step) | | | | {share(step_s - measured)} | |")
    print()
    print(f"For contrast: Keras' Dropout (Philox) at the same shapes {1000 * t_keras_drop:.2f} ms; "
          f"one read + write of the logits {1000 * t_pass:.2f} ms (the loss costs "
          f"{t_loss / max(t_pass, 1e-9):.1f} of those).")
    limit_2048 = gflops_2048 * 1e9 / flops_token
    limit_real = mm_flops / mm_s * 1e9 / flops_token
    step_rate = tokens / step_s
    print(f"Step {step_rate:.1f} tokens/s: {step_rate / limit_2048:.2f} of the 2048^2 limit "
          f"({limit_2048:.1f} tokens/s at {gflops_2048:.0f} GFLOP/s), {step_rate / limit_real:.2f} of "
          f"the limit at the step's own matmul rate ({limit_real:.1f} tokens/s at "
          f"{mm_flops / mm_s:.0f} GFLOP/s).")


def time_steps(model, x, y, steps):
    """Seconds of each of ``steps`` calls of ``train_on_batch``."""
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    return times


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
    p.add_argument("--breakdown", action="store_true",
                   help="also time each part of the step alone (matmuls, AdamW, loss, dropout)")
    p.add_argument("--repeats", type=int, default=10, help="calls per part timed by --breakdown")
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
    times = time_steps(model, x, y, args.steps)
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
    if args.breakdown:
        breakdown(model, cfg, ids, times, lambda: time_steps(model, x, y, args.steps), gflops,
                  args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
