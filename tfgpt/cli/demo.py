"""``tfgpt demo``: the whole path in one command, on its defaults in a few minutes on a 2-core CPU.

1. get tiny-shakespeare (downloaded once into the Keras cache),
2. learn a small GPT-1-style BPE vocabulary from it (or load one with ``--tokenizer``),
3. train the ``small`` preset with ``model.fit`` on a tf.data pipeline (progress bar),
4. generate a sample with the XLA-compiled decode loop,
5. export a TF Serving SavedModel (and a TFLite file),
6. load the SavedModel in a fresh process that imports only TensorFlow and tensorflow_text, and
   answer one prompt through its ``generate_text`` signature.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tfgpt.cli.options import positive_int, sequence_length
from tfgpt.io import atomic_write_json, read_json
from tfgpt.training.presets import PRESETS

_RELOAD_SCRIPT = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
assert "tfgpt" not in sys.modules
loaded = tf.saved_model.load(sys.argv[1])
fn = loaded.signatures["generate_text"]
out = fn(prompts=tf.constant([sys.argv[2]]), max_new_tokens=tf.constant(int(sys.argv[3]), tf.int32))
print(json.dumps({"signatures": sorted(loaded.signatures.keys()),
                  "text": out["texts"].numpy()[0].decode("utf-8")}))
"""


def _step(n, title):
    print(f"\n[{n}/6] {title}", flush=True)


def run_demo(output="runs/demo", export_dir="export/demo", tokenizer=None, corpus=None, merges=4000,
             steps=300, seq_len=64, batch_size=16, prompt="ROMEO:", new_tokens=40, tflite=True,
             cache_dir=None, verbose=None, preset="small") -> dict:
    """Run the end-to-end demo; returns a summary dict (also written to OUTPUT/demo_summary.json)."""
    from tfgpt import data
    from tfgpt.cli import main as cli_main

    start = time.time()
    summary = {}
    _step(1, "corpus")
    if corpus is None:
        try:
            corpus = data.get_tiny_shakespeare(cache_dir=cache_dir)
        except data.CorpusUnavailableError as e:
            raise data.CorpusUnavailableError(f"{e} With tfgpt demo: --corpus PATH.") from None
    elif not os.path.isfile(corpus):
        raise FileNotFoundError(f"--corpus {corpus}: no such file")
    print(f"  {corpus} ({os.path.getsize(corpus) / 1e6:.1f} MB)")

    _step(2, "tokenizer")
    model_dir = os.path.join(output, "model")
    if tokenizer is None:
        from tfgpt.tokenizers.trainer import train_bpe

        tokenizer = os.path.join(output, "tokenizer")
        t0 = time.time()
        tok = train_bpe(corpus, num_merges=merges, output_dir=tokenizer)
        print(f"  learned {merges} merges ({len(tok)} tokens) in {time.time() - t0:.1f}s -> {tokenizer}")
    else:
        print(f"  using {tokenizer}")

    _step(3, "training the small preset with model.fit")
    args = ["train", "--train-file", corpus, "--tokenizer", tokenizer, "--preset", preset,
            "--steps", str(steps), "--seq-len", str(seq_len), "--batch-size", str(batch_size),
            "--eval-every", str(max(steps // 3, 1)), "--output", model_dir, "--no-backup"]
    if verbose is not None:
        args += ["--verbose", str(verbose)]
    code = cli_main(args)
    if code:
        raise RuntimeError(f"tfgpt train failed with exit code {code}")
    log = read_json(os.path.join(model_dir, "train_log.json"), "training log")
    summary["train_log"] = os.path.join(model_dir, "train_log.json")
    summary["final"] = log.get("final")

    _step(4, "generating with the XLA decode loop and its KV cache")
    import tfgpt

    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(model_dir)
    tok = tfgpt.OpenAIGPTTokenizer.from_pretrained(model_dir)
    ids = tok(prompt, return_tensors="np")["input_ids"]
    t0 = time.time()
    out = model.generate(ids, max_new_tokens=new_tokens)
    first = time.time() - t0
    t0 = time.time()
    out = model.generate(ids, max_new_tokens=new_tokens)
    again = time.time() - t0
    sample = tok.decode(out[0].numpy())
    print(f"  first call {first:.1f}s (trace + compile), then {new_tokens / again:.0f} tokens/s")
    print(f"  {sample!r}")
    summary["sample"] = sample

    _step(5, "exporting a SavedModel for TF Serving" + (" and a TFLite file" if tflite else ""))
    from tfgpt import export

    saved = export.export_saved_model(model, os.path.join(export_dir, "1"), tokenizer=tok, overwrite=True)
    saved = os.fspath(saved) if saved else os.path.join(export_dir, "1")
    print(f"  SavedModel -> {saved}")
    summary["saved_model"] = saved
    if tflite:
        path = export_dir.rstrip("/\\") + ".tflite"
        export.export_tflite(model, path, overwrite=True)
        print(f"  TFLite -> {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
        summary["tflite"] = path

    _step(6, "loading the export in a fresh process (tensorflow + tensorflow_text only)")
    proc = subprocess.run([sys.executable, "-c", _RELOAD_SCRIPT, saved, prompt, str(new_tokens)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"reloading the SavedModel failed:\n{proc.stderr[-3000:]}")
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  signatures: {', '.join(answer['signatures'])}")
    print(f"  generate_text({prompt!r}) -> {answer['text']!r}")
    summary["served_text"] = answer["text"]
    summary["served_matches_in_process"] = answer["text"] == sample
    summary["seconds"] = round(time.time() - start, 1)
    atomic_write_json(os.path.join(output, "demo_summary.json"), summary, sort_keys=False)
    print(f"\ndone in {summary['seconds']}s; summary in {os.path.join(output, 'demo_summary.json')}")
    if not summary["served_matches_in_process"]:
        raise RuntimeError("the exported generate_text answer differs from the in-process model")
    return summary


def register(subparsers):
    """Add ``tfgpt demo``."""
    p = subparsers.add_parser(
        "demo", help="end to end: tokenizer, training, XLA generation, export, reload",
        description="Learn a tokenizer, train the small preset on tiny-shakespeare, generate with XLA, "
                    "export a SavedModel and a TFLite file, and answer a prompt from the export.")
    p.add_argument("--output", default="runs/demo", help="checkpoint and logs (default: runs/demo)")
    p.add_argument("--export-dir", default="export/demo",
                   help="SavedModel base folder; version 1 is written (default: export/demo)")
    p.add_argument("--tokenizer", help="tokenizer folder or hub id (default: learn one from the corpus)")
    p.add_argument("--corpus", help="text file (default: tiny-shakespeare from the Keras cache)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="size of the model to train (default: small)")
    p.add_argument("--merges", type=positive_int, default=4000, help="BPE merges to learn (default: 4000)")
    p.add_argument("--steps", type=positive_int, default=300, help="training steps (default: 300)")
    p.add_argument("--seq-len", type=sequence_length, default=64)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--prompt", default="ROMEO:")
    p.add_argument("--new-tokens", type=positive_int, default=40)
    p.add_argument("--no-tflite", dest="tflite", action="store_false", default=True)
    p.add_argument("--cache-dir", help="Keras cache folder (default: $KERAS_HOME or ~/.keras)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None)
    p.set_defaults(func=lambda a: run_demo(
        a.output, a.export_dir, a.tokenizer, a.corpus, a.merges, a.steps, a.seq_len, a.batch_size,
        a.prompt, a.new_tokens, a.tflite, a.cache_dir, a.verbose, a.preset) and 0)
