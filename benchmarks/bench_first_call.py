"""First ``generate`` call in a fresh process, with an empty and with a warm XLA compilation cache.

Each run is a new Python process (batch 1, 16-token prompt, 64 new tokens, greedy, random weights):
"off" runs without the cache (``TFGPT_XLA_CACHE=0``), "cold" starts from an empty cache folder
(compile, then write the entry), "warm" from the folder a previous process filled. The
child splits its first call into the trace (Python building the graph), the execution of the traced
program (TF-to-HLO lowering + XLA compile or cache load + the run) and the rest; the second call with
the same shapes is the run alone, so ``execute - run`` is what compiling (cold) or loading (warm)
costs. Prints median / min / max of each and the off / warm and cold / warm ratios.

    python benchmarks/bench_first_call.py --size gpt1 --runs 3
    python benchmarks/bench_first_call.py --size small
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = {
    "gpt1": dict(vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12),
    "small": dict(vocab_size=5000, n_positions=256, n_embd=256, n_layer=4, n_head=4),
}
PROMPT, NEW = 16, 64


def child(size: str) -> dict:
    """One process's first and second generate calls; the first split into trace / execute."""
    t_start = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.eager import execute
    from tensorflow.python.framework import func_graph

    import tfgpt

    t_import = time.perf_counter() - t_start
    spent = {"trace": 0.0, "execute": 0.0}
    depth = {"trace": 0, "execute": 0}

    def timing(name, fn):
        def wrapped(*args, **kwargs):  # outermost call only: loop bodies are traced inside the program
            depth[name] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[name] -= 1
                if depth[name] == 0:
                    spent[name] += time.perf_counter() - t0
        return wrapped

    # Measurement hooks only: the program's trace and its execution, where TensorFlow calls them.
    func_graph.func_graph_from_py_func = timing("trace", func_graph.func_graph_from_py_func)
    execute.execute = execute.quick_execute = timing("execute", execute.quick_execute)

    tf.keras.utils.set_random_seed(0)
    model = tfgpt.TFOpenAIGPTLMHeadModel(tfgpt.OpenAIGPTConfig(**SIZES[size]))
    model(np.zeros((1, 4), np.int32))
    ids = np.random.default_rng(0).integers(1, SIZES[size]["vocab_size"], (1, PROMPT)).astype(np.int32)
    spent.update(trace=0.0, execute=0.0)
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=NEW).numpy()
    first = time.perf_counter() - t0
    first_parts = dict(spent)
    t0 = time.perf_counter()
    again = model.generate(ids, max_new_tokens=NEW).numpy()
    run = time.perf_counter() - t0
    assert (out == again).all()
    return dict(first=first, trace=first_parts["trace"], execute=first_parts["execute"],
                other=first - first_parts["trace"] - first_parts["execute"], run=run, import_s=t_import,
                compiled=tfgpt.compilation_cache.compiled_entries(), tokens=out[0, PROMPT:].tolist())


def spawn(size: str, cache_dir: str, cache: bool = True) -> dict:
    env = dict(os.environ, TFGPT_XLA_CACHE="1" if cache else "0", TFGPT_XLA_CACHE_DIR=cache_dir,
               TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--size", size], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(rows, key):
    xs = [r[key] for r in rows]
    return statistics.median(xs), min(xs), max(xs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--runs", type=int, default=3, help="cold and warm processes each (default 3)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.size)))
        return
    if a.runs < 1:
        p.error("--runs must be at least 1")
    off, cold, warm = [], [], []
    root = tempfile.mkdtemp(prefix="tfgpt-first-call-")
    try:
        for i in range(a.runs):
            d = os.path.join(root, f"run{i}")
            off.append(spawn(a.size, d, cache=False))
            cold.append(spawn(a.size, d))  # empty folder
            warm.append(spawn(a.size, d))  # the folder the cold process filled
    finally:
        shutil.rmtree(root, ignore_errors=True)
    same = all(o["tokens"] == c["tokens"] == w["tokens"] for o, c, w in zip(off, cold, warm))
    hits = sum(not w["compiled"] for w in warm)
    print(f"first generate call, {a.size}, batch 1, {PROMPT}-token prompt + {NEW} new (greedy), "
          f"{a.runs} fresh processes each; seconds, median (min-max)")
    print(f"{'':6} {'first':>18} {'trace':>18} {'execute':>18} {'other':>18} {'run':>18} {'import':>8}")
    for name, rows in (("off", off), ("cold", cold), ("warm", warm)):
        cells = " ".join("%6.2f (%4.2f-%5.2f)" % summary(rows, k)
                         for k in ("first", "trace", "execute", "other", "run"))
        print(f"{name:6} {cells} {summary(rows, 'import_s')[0]:8.2f}")
    o, c, w = (summary(rows, "first")[0] for rows in (off, cold, warm))
    cc = summary(cold, "execute")[0] - summary(cold, "run")[0]
    wc = summary(warm, "execute")[0] - summary(warm, "run")[0]
    print(f"first call off / warm: {o / w:.2f}x   cold / warm: {c / w:.2f}x   "
          f"cold - off (writing the entry): {c - o:+.2f} s")
    print(f"compile (cold execute - run): {cc:.2f} s   "
          f"lowering + load (warm execute - run): {wc:.2f} s")
    print(f"warm processes that compiled nothing (cache hits): {hits}/{a.runs}; identical tokens: {same}")


if __name__ == "__main__":
    main()
