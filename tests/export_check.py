"""Check exported SavedModels in a process that imports only tensorflow and tensorflow_text.

    python tests/export_check.py SPEC.json

SPEC.json: {"arrays": "cases.npz", "threads": 8, "cases": [{"name", "dir", "signature", "inputs": [...],
"outputs": [...], "atol": float or null (exact), optional "method": true (call the tf.function
attribute, Python defaults applying), optional "error": regex (the call must raise
InvalidArgumentError matching it)}]}. Array ``<name>/in/<input>`` of the npz is fed to
the signature, ``<name>/out/<output>`` is what the in-process model returned. Every case is also run
from ``threads`` threads at once; their results must equal the single-call result exactly. Prints one
JSON report on stdout and exits 0 when everything matched.
"""

import json
import re
import sys
import threading

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tf-text ops the tokenizer uses)


def _compare(got, want, atol):
    if want.dtype.kind in "SUO":
        got_s = [g.decode("utf-8") if isinstance(g, bytes) else str(g) for g in np.asarray(got).ravel()]
        want_s = [w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in want.ravel()]
        return got_s == want_s, {"got": got_s, "want": want_s}
    got = np.asarray(got)
    if got.shape != want.shape:
        return False, {"shape": list(got.shape), "want_shape": list(want.shape)}
    if atol is None:
        return bool(np.array_equal(got, want)), {}
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    return diff <= atol, {"max_abs_diff": diff}


def main(spec_path):
    spec = json.load(open(spec_path))
    arrays = np.load(spec["arrays"])
    report = {"tfgpt_imported": "tfgpt" in sys.modules, "keras_imported": "keras" in sys.modules,
              "cases": [], "signatures": {}}
    loaded = {}
    for case in spec["cases"]:
        d = case["dir"]
        if d not in loaded:
            loaded[d] = tf.saved_model.load(d)
            report["signatures"][d] = sorted(loaded[d].signatures.keys())
        if case.get("method"):  # the tf.function attribute (Python defaults apply), not the signature
            fn = getattr(loaded[d], case["signature"])
        else:
            fn = loaded[d].signatures[case["signature"]]
        feed = {k: tf.constant(arrays[f"{case['name']}/in/{k}"]) for k in case["inputs"]}
        result = {"name": case["name"], "ok": True, "outputs": {}}
        if case.get("error"):  # the call must fail with InvalidArgumentError matching this regex
            try:
                fn(**feed)
                result.update(ok=False, error="no error raised")
            except tf.errors.InvalidArgumentError as e:
                result.update(ok=re.search(case["error"], e.message) is not None, error=e.message[:500])
            report["cases"].append(result)
            continue
        first = {k: v.numpy() for k, v in fn(**feed).items()}
        for key in case["outputs"]:
            ok, info = _compare(first[key], arrays[f"{case['name']}/out/{key}"], case.get("atol"))
            result["outputs"][key] = dict(info, ok=ok)
            result["ok"] &= ok

        threads = int(spec.get("threads", 0))
        if threads:
            outs = [None] * threads
            errors = []
            barrier = threading.Barrier(threads)

            def worker(i):
                try:
                    barrier.wait()
                    outs[i] = {k: v.numpy() for k, v in fn(**feed).items()}
                except Exception as e:  # reported below
                    errors.append(repr(e))

            pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            same = not errors and all(
                o is not None and all(np.array_equal(o[k], first[k]) for k in first) for o in outs)
            result["threads_identical"] = same
            result["thread_errors"] = errors
            result["ok"] &= same
        report["cases"].append(result)
    report["tfgpt_imported"] = "tfgpt" in sys.modules
    report["ok"] = all(c["ok"] for c in report["cases"]) and not report["tfgpt_imported"]
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
