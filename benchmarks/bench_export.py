"""Export speed: the exported SavedModel against the in-process model, and the TFLite files.

Prints (random weights, fp32):
* logits latency, batch 1 x 128 tokens: the in-process model as a tf.function with the export's
  input signature against the loaded SavedModel's ``serving_default``, calls interleaved; median / min
  / max and the median ratio (the target: within 10%);
* TFLite fp32 and int8 (dynamic range): file size, conversion time, logits latency (1 x 128) and
  per-token ``decode_step`` latency after a 16-token ``prefill``, with the batch-1 bandwidth limit
  (every fp32 weight read once per token).

    python benchmarks/bench_export.py --size gpt1     # 12 x 768, vocab 40478 (116 M parameters)
    python benchmarks/bench_export.py --size small    # a quick smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

from bench_generate import SIZES


def stats(times):
    return statistics.median(times), min(times), max(times)


def fmt_ms(times):
    med, lo, hi = stats(times)
    return f"{med * 1e3:9.2f} {lo * 1e3:9.2f} {hi * 1e3:9.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="gpt1")
    ap.add_argument("--seq", type=int, default=128, help="tokens per logits call")
    ap.add_argument("--runs", type=int, default=15, help="timed logits calls per side")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128, help="TFLite cache length")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="LiteRT interpreter threads")
    ap.add_argument("--bandwidth-gbs", type=float, default=16.0)
    ap.add_argument("--skip-tflite", action="store_true")
    args = ap.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench_export_")
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    import tensorflow as tf

    import tfgpt
    from tfgpt import export

    cfg = tfgpt.OpenAIGPTConfig(**SIZES[args.size], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    n_params = sum(int(np.prod(v.shape)) for v in model.weights)
    limit_ms = 4 * n_params / (args.bandwidth_gbs * 1e9) * 1e3
    print(f"size={args.size}: {n_params / 1e6:.1f} M parameters ({4 * n_params / 1e6:.0f} MB fp32); "
          f"logits batch 1 x {args.seq}, {args.runs} runs; decode after a {args.prompt_len}-token prompt, "
          f"{args.decode_steps} steps, cache {args.max_length}; batch-1 limit ~{limit_ms:.1f} ms/token "
          f"at {args.bandwidth_gbs:g} GB/s")

    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg.vocab_size, (1, args.seq)).astype(np.int32)
    mask = np.ones_like(ids)

    # --- SavedModel against the in-process model -------------------------------------------------------
    spec = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)]
    in_process = tf.function(lambda i, m: model(i, attention_mask=m, training=False)["logits"],
                             input_signature=spec)
    t0 = time.perf_counter()
    path = export.export_saved_model(model, os.path.join(work, "gpt", "1"))
    export_s = time.perf_counter() - t0
    loaded = tf.saved_model.load(path)
    serving = loaded.signatures["serving_default"]
    ids_t, mask_t = tf.constant(ids), tf.constant(mask)
    a = in_process(ids_t, mask_t).numpy()
    b = serving(input_ids=ids_t, attention_mask=mask_t)["logits"].numpy()
    diff = float(np.abs(a - b).max())
    for _ in range(2):  # warm-up
        in_process(ids_t, mask_t).numpy()
        serving(input_ids=ids_t, attention_mask=mask_t)["logits"].numpy()
    t_in, t_sm = [], []
    for _ in range(args.runs):  # interleaved, so machine noise hits both sides alike
        t0 = time.perf_counter()
        in_process(ids_t, mask_t).numpy()
        t_in.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        serving(input_ids=ids_t, attention_mask=mask_t)["logits"].numpy()
        t_sm.append(time.perf_counter() - t0)
    ratio = statistics.median(t_sm) / statistics.median(t_in)
    print(f"\nSavedModel export {export_s:.1f} s; max |logits diff| {diff:.2e}")
    print(f"{'logits 1x' + str(args.seq):28s} {'median ms':>9s} {'min':>9s} {'max':>9s}  ratio")
    print(f"{'in-process tf.function':28s} {fmt_ms(t_in)}  1.00")
    print(f"{'SavedModel serving_default':28s} {fmt_ms(t_sm)}  {ratio:.2f}")
    del loaded, serving

    if args.skip_tflite:
        return 0

    # --- TFLite -------------------------------------------------------------------------------------------
    from ai_edge_litert.interpreter import Interpreter

    prompt = ids[:, : args.prompt_len]
    rows = []
    for quantize in (False, True):
        name = "int8" if quantize else "fp32"
        target = os.path.join(work, f"gpt.{name}.tflite")
        t0 = time.perf_counter()
        export.export_tflite(model, target, max_length=args.max_length, quantize=quantize)
        convert_s = time.perf_counter() - t0
        it = Interpreter(model_path=target, num_threads=args.threads)
        logits_fn = it.get_signature_runner("logits")
        for _ in range(2):
            logits_fn(input_ids=ids, attention_mask=mask)
        t_logits = []
        for _ in range(max(3, args.runs // 3)):
            t0 = time.perf_counter()
            logits_fn(input_ids=ids, attention_mask=mask)
            t_logits.append(time.perf_counter() - t0)
        prefill, step = it.get_signature_runner("prefill"), it.get_signature_runner("decode_step")
        out = prefill(input_ids=prompt)
        cache, token = out["cache"], int(out["logits"][0].argmax())
        t_step = []
        for i in range(args.decode_steps):
            t0 = time.perf_counter()
            out = step(token=np.array([[token]], np.int32), index=np.array(args.prompt_len + i, np.int32),
                       cache=cache)
            t_step.append(time.perf_counter() - t0)
            cache, token = out["cache"], int(out["logits"][0].argmax())
        t_step = t_step[2:]  # the first steps allocate
        rows.append((name, os.path.getsize(target), convert_s, t_logits, t_step))
        del it, logits_fn, prefill, step

    print(f"\n{'TFLite':6s} {'size MB':>8s} {'convert s':>9s} | {'logits 1x' + str(args.seq) + ' ms':>16s} "
          f"{'min':>7s} | {'decode ms/token':>15s} {'min':>7s} {'max':>7s} {'tokens/s':>8s} {'limit':>6s}")
    for name, size, convert_s, t_logits, t_step in rows:
        med_l, min_l, _ = stats(t_logits)
        med, lo, hi = stats(t_step)
        print(f"{name:6s} {size / 1e6:8.1f} {convert_s:9.1f} | {med_l * 1e3:16.2f} {min_l * 1e3:7.2f} | "
              f"{med * 1e3:15.2f} {lo * 1e3:7.2f} {hi * 1e3:7.2f} {1 / med:8.1f} {limit_ms / (med * 1e3):6.2f}")
    print("(limit = the fp32 bandwidth-limited time per token / the measured time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
