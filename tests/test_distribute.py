"""tf.distribute: MirroredStrategy over 2 logical CPU devices follows the one-device loss curve;
MultiWorkerMirroredStrategy with 2 worker processes on 127.0.0.1 trains a few steps and stops."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

SCRIPT = Path(__file__).resolve().parent / "_distribute_train.py"


def _env(**extra):
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **extra)


def _kill(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


@pytest.mark.slow
def test_mirrored_two_cpus_matches_one_device(tmp_path):
    out = tmp_path / "mirrored.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "mirrored", str(out)], env=_env(),
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and out.exists(), r.stdout + r.stderr
    res = json.loads(out.read_text())
    single, multi = res["single"], res["mirrored"]
    assert len(res["devices"]) == 2 and multi["replicas"] == 2 and single["replicas"] == 1
    assert single["steps"] == multi["steps"] == 5
    np.testing.assert_allclose(multi["loss"], single["loss"], rtol=5e-5)
    np.testing.assert_allclose(multi["perplexity"], single["perplexity"], rtol=2e-4)
    np.testing.assert_allclose(multi["checksum"], single["checksum"], rtol=5e-4)
    assert single["loss"][-1] < single["loss"][0]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_multi_worker_mirrored_two_processes(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs, outs = [], []
    try:
        for i in range(2):
            out = tmp_path / f"worker{i}.json"
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            procs.append(subprocess.Popen([sys.executable, str(SCRIPT), "multiworker", str(out)],
                                          env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
            outs.append(out)
        logs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        _kill(procs)
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    results = [json.loads(o.read_text()) for o in outs]
    assert [r["task"] for r in results] == [0, 1]
    for r in results:
        assert r["replicas"] == 2 and r["steps"] == 5
        assert all(np.isfinite(r["loss"]))
    # Both workers applied the same all-reduced updates.
    np.testing.assert_allclose(results[0]["checksum"], results[1]["checksum"], rtol=1e-6)
