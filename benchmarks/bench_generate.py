"""Generation speed: the compiled, cached decode loop against the no-cache eager loop.

Prints, for batch 1 and batch 16 (16-token prompt, 64 new tokens, greedy, fp32, random weights):
the first call (trace + XLA compile + run), median / min / max over several runs, tokens/s, and the
ratio to the batch-1 memory-bandwidth limit (every weight read once per step). The no-cache eager
loop (full forward pass per token, as HF's TF GPT-1 does) runs in the same process for contrast.

    python benchmarks/bench_generate.py --size gpt1     # 12 x 768, vocab 40478 (116 M parameters)
    python benchmarks/bench_generate.py --size small    # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

SIZES = {
    "gpt1": dict(vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12),
    "small": dict(vocab_size=5000, n_positions=256, n_embd=256, n_layer=4, n_head=4),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="gpt1")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bandwidth-gbs", type=float, default=16.0,
                    help="streaming read bandwidth for the batch-1 limit (this machine: ~15-20 GB/s)")
    ap.add_argument("--eager-new-tokens", type=int, default=8,
                    help="tokens for the no-cache eager contrast (it is slow)")
    args = ap.parse_args(argv)

    import tensorflow as tf

    import tfgpt
    from tfgpt import generation

    cfg = tfgpt.OpenAIGPTConfig(**SIZES[args.size], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    n_params = sum(int(np.prod(v.shape)) for v in model.weights)
    weight_bytes = 4 * n_params
    limit = args.bandwidth_gbs * 1e9 / weight_bytes  # batch-1 tokens/s if every weight is read once
    rng = np.random.default_rng(0)
    print(f"size={args.size}: {n_params / 1e6:.1f} M parameters ({weight_bytes / 1e6:.0f} MB fp32), "
          f"prompt {args.prompt_len}, {args.new_tokens} new tokens, greedy, {args.runs} runs; "
          f"batch-1 bandwidth limit ~{limit:.1f} tokens/s at {args.bandwidth_gbs:g} GB/s")
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        prompts = [rng.integers(0, cfg.vocab_size, (batch, args.prompt_len)) for _ in range(args.runs + 1)]
        t0, c0 = time.perf_counter(), time.process_time()
        out = model.generate(prompts[0], max_new_tokens=args.new_tokens)
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        assert out.shape == (batch, args.prompt_len + args.new_tokens), out.shape
        traces = generation.trace_count()
        times, cpus = [], []
        for p in prompts[1:]:
            t0, c0 = time.perf_counter(), time.process_time()
            model.generate(p, max_new_tokens=args.new_tokens).numpy()
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        assert generation.trace_count() == traces, "a same-bucket call retraced"
        med = statistics.median(times)
        tps = batch * args.new_tokens / med
        rows.append((f"cached XLA, batch {batch}", first, med, min(times), max(times), tps,
                     tps / limit if batch == 1 else None, first_cpu, statistics.median(cpus)))

    # Contrast: the no-cache eager loop (one full forward pass over the growing sequence per token).
    p = rng.integers(0, cfg.vocab_size, (1, args.prompt_len))
    generation._generate_no_cache(model, p, 1)  # warm up eager kernels
    times, cpus = [], []
    for _ in range(max(1, min(3, args.runs))):
        t0, c0 = time.perf_counter(), time.process_time()
        generation._generate_no_cache(model, p, args.eager_new_tokens)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    med = statistics.median(times)
    tps = args.eager_new_tokens / med
    rows.append((f"no cache, eager, batch 1 ({args.eager_new_tokens} new)", None, med, min(times),
                 max(times), tps, tps / limit, None, statistics.median(cpus)))

    print(f"\n{'variant':<40} {'first call s':>12} {'median s':>9} {'min s':>8} {'max s':>8} "
          f"{'tokens/s':>9} {'/ limit':>8} {'cpu/wall':>8}")
    for name, first, med, lo, hi, tps, ratio, first_cpu, cpu in rows:
        first_s = "" if first is None else f"{first:.2f} ({first_cpu:.1f} cpu)"
        print(f"{name:<40} {first_s:>12} {med:>9.3f} {lo:>8.3f} {hi:>8.3f} {tps:>9.1f} "
              f"{'' if ratio is None else f'{ratio:.2f}':>8} {cpu / med:>8.2f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n(TF {tf.__version__}, {os.cpu_count()} cores, load average {load:.1f} at the end; cpu/wall "
          f"below 1 means the process waited for a core: the machine is shared, so compare ratios "
          f"within one run and rerun when it is quiet)")


if __name__ == "__main__":
    main()
