"""Generation speed and weight memory of a Keras-int8-quantized model against float32, in the same run.

Two copies of one random-weight model (one after ``model.quantize("int8")``) generate greedily with the
compiled, cached decode loop; their runs are interleaved so that both see the same machine load.
Prints, per batch size: median / min / max seconds, tokens/s and the int8 / float32 ratio, plus the
bytes of weights each holds.

    python benchmarks/bench_quantize.py --size small    # a quick smoke run
    python benchmarks/bench_quantize.py --size gpt1     # 12 x 768, vocab 40478
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from bench_generate import SIZES, add_generation_args


def weight_bytes(model) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generation_args(ap)
    args = ap.parse_args(argv)

    import keras
    import tensorflow as tf

    import tfgpt

    cfg = tfgpt.OpenAIGPTConfig(**SIZES[args.size], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    keras.utils.set_random_seed(0)
    fp32 = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    int8 = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    int8.set_weights(fp32.get_weights())
    int8.quantize("int8")
    models = {"float32": fp32, "int8": int8}
    print(f"size={args.size}: weights float32 {weight_bytes(fp32) / 1e6:.1f} MB, int8 "
          f"{weight_bytes(int8) / 1e6:.1f} MB; prompt {args.prompt_len}, {args.new_tokens} new tokens, "
          f"greedy, {args.runs} runs")

    rng = np.random.default_rng(0)
    print(f"\n{'variant':<20} {'first call s':>12} {'median s':>9} {'min s':>8} {'max s':>8} {'tokens/s':>9}")
    for batch in [int(b) for b in args.batches.split(",")]:
        prompts = [rng.integers(0, cfg.vocab_size, (batch, args.prompt_len)) for _ in range(args.runs)]
        first, walls = {}, {name: [] for name in models}
        for name, model in models.items():
            t0 = time.perf_counter()
            model.generate(prompts[0], max_new_tokens=args.new_tokens).numpy()  # trace + compile + run
            first[name] = time.perf_counter() - t0
        same = np.array_equal(fp32.generate(prompts[0], max_new_tokens=args.new_tokens).numpy(),
                              int8.generate(prompts[0], max_new_tokens=args.new_tokens).numpy())
        for p in prompts:  # interleaved
            for name, model in models.items():
                t0 = time.perf_counter()
                model.generate(p, max_new_tokens=args.new_tokens).numpy()
                walls[name].append(time.perf_counter() - t0)
        tps = {}
        for name in models:
            med = statistics.median(walls[name])
            tps[name] = batch * args.new_tokens / med
            print(f"{name + f', batch {batch}':<20} {first[name]:>12.2f} {med:>9.3f} {min(walls[name]):>8.3f} "
                  f"{max(walls[name]):>8.3f} {tps[name]:>9.1f}")
        print(f"{'':<20} int8 / float32 tokens/s: {tps['int8'] / tps['float32']:.2f}; "
              f"greedy tokens identical on the first prompt: {same}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} cores, load average "
          f"{load:.1f} at the end; the machine may be shared: compare the ratio within one run)")


if __name__ == "__main__":
    main()
