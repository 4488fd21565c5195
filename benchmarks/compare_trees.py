"""Run one benchmark against two checkouts of tfgpt, alternating, and print both sets of figures.

    git worktree add /tmp/tfgpt-before <commit>
    python benchmarks/compare_trees.py --before /tmp/tfgpt-before --rounds 3 -- \
        benchmarks/bench_train.py --size gpt1 --steps 6

Each round runs the benchmark script once with the ``before`` tree first on ``PYTHONPATH`` and once with
this tree (in alternating order, so a change in machine load hits both alike), each in a fresh process,
and prints each run's output under a heading naming the side and round. The script path is taken from
each tree, so each side measures with its own benchmark code; compare the ratios each run prints.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def run(tree: Path, script_args, timeout):
    script, rest = script_args[0], script_args[1:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tree)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run([sys.executable, str(tree / script), *rest], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=tree)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: {script} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, type=Path, help="the other checkout (a git worktree)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...] relative to each tree")
    args = ap.parse_args(argv)
    script = [a for a in args.script if a != "--"]
    if not script:
        ap.error("give the benchmark after --, e.g. -- benchmarks/bench_train.py --size small")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    sides = {"before": args.before.resolve(), "after": HERE}
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for name in order:
            print(f"=== round {r + 1}, {name} ({sides[name]})", flush=True)
            print(run(sides[name], script, args.timeout), flush=True)


if __name__ == "__main__":
    main()
