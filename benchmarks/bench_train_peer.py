"""Training throughput against HF PyTorch's GPT-1 in the same run: tokens/s of each and the ratio.

    python -m venv /tmp/hf && /tmp/hf/bin/pip install torch transformers
    python benchmarks/bench_train_peer.py --peer-python /tmp/hf/bin/python --rounds 3

The peer needs torch and transformers, which tfgpt does not depend on, so it runs in the interpreter
given by ``--peer-python`` (a separate environment). Each round runs ``bench_train.py`` (tfgpt:
``train_on_batch``, AdamW, XLA) and HF PyTorch's ``OpenAIGPTLMHeadModel`` (eager, ``torch.optim.AdamW``,
loss from ``labels``, ``backward``, ``step``, ``zero_grad``) at the same size, batch, sequence length
and dropout, each in a fresh process, alternating which goes first, so a change in machine load hits
both alike. Prints every run's median tokens/s, the medians over rounds and tfgpt / HF PyTorch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {
    "gpt1": dict(vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12),
}


def hf_torch_child(args):
    """Runs in the peer interpreter: median tokens/s of HF PyTorch's training step, as JSON."""
    import torch
    from transformers import OpenAIGPTConfig, OpenAIGPTLMHeadModel

    torch.manual_seed(0)
    cfg = OpenAIGPTConfig(**SIZES[args.size], resid_pdrop=args.dropout, embd_pdrop=args.dropout,
                          attn_pdrop=args.dropout)
    model = OpenAIGPTLMHeadModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    ids = torch.randint(0, cfg.vocab_size, (args.batch_size, args.seq_len))

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        rates.append(args.batch_size * args.seq_len / (time.perf_counter() - t))
    print(json.dumps({"median": statistics.median(rates), "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


# the options both sides take, forwarded to each benchmark process as they were given here
SHARED = {"size": "gpt1", "batch_size": 4, "seq_len": 128, "steps": 10, "warmup": 3, "dropout": 0.1}


def forwarded(args):
    return [str(x) for name in SHARED for x in ("--" + name.replace("_", "-"), getattr(args, name))]


def run_tfgpt(args):
    cmd = [sys.executable, str(HERE / "bench_train.py"), *forwarded(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    row = [line for line in out.splitlines() if re.match(r"\| [0-9.]+ \|", line)][0]
    limit = re.search(r"limit ([0-9.]+) tokens/s", out)
    return float(row.split("|")[1]), float(limit.group(1)) if limit else float("nan")


def run_peer(args):
    proc = subprocess.run([args.peer_python, __file__, "--child", *forwarded(args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the peer failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peer-python", help="an interpreter with torch and transformers installed")
    for name, default in SHARED.items():
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                       choices=sorted(SIZES) if name == "size" else None)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return hf_torch_child(args)
    if not args.peer_python:
        p.error("--peer-python is required (an interpreter with torch and transformers)")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    ours, theirs, limits = [], [], []
    for r in range(args.rounds):
        for side in (("tfgpt", "peer") if r % 2 == 0 else ("peer", "tfgpt")):
            if side == "tfgpt":
                rate, limit = run_tfgpt(args)
                ours.append(rate)
                limits.append(limit)
                print(f"round {r + 1}: tfgpt {rate:.1f} tokens/s (matmul limit {limit:.1f})", flush=True)
            else:
                peer = run_peer(args)
                theirs.append(peer["median"])
                print(f"round {r + 1}: HF PyTorch {peer['torch']} ({peer['threads']} threads) "
                      f"{peer['median']:.1f} tokens/s", flush=True)
    a, b, lim = statistics.median(ours), statistics.median(theirs), statistics.median(limits)
    print(f"\n{args.size}, B={args.batch_size} S={args.seq_len}, AdamW, fp32, dropout {args.dropout}: "
          f"tfgpt {a:.1f} tokens/s ({a / lim:.2f} of the matmul limit), HF PyTorch {b:.1f} "
          f"({b / lim:.2f}); tfgpt / HF PyTorch = {a / b:.2f} (medians over {args.rounds} rounds; "
          f"{os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
