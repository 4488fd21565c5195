"""tfgpt.training: schedule, AdamW decay rules, metrics, fit on every head (XLA, mixed precision),
callbacks (save_pretrained checkpoints, TensorBoard, TerminateOnNaN, BackupAndRestore after SIGKILL)
and the ``tfgpt train`` / ``tfgpt evaluate`` commands."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from conftest import GPT_VOCAB, REPO, SHARED, tiny_config
from tfgpt import training

HERE = Path(__file__).resolve().parent
SHAKESPEARE = SHARED / "data" / "corpus" / "tinyshakespeare.txt"


def _lm_data(n=8, seq=12, vocab=99, batch=4, seed=0):
    ids = np.random.default_rng(seed).integers(0, vocab, (n, seq)).astype("int32")
    return ids, tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, ids)).batch(batch)


# --- schedule and optimizer --------------------------------------------------------------------------

def test_warmup_cosine_schedule():
    s = training.WarmupCosineDecay(1e-3, total_steps=110, warmup_steps=10, min_ratio=0.1)
    lr = [float(s(i)) for i in range(130)]
    np.testing.assert_allclose(lr[0], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(lr[9], 1e-3, rtol=1e-6)  # warm-up ends at the peak
    np.testing.assert_allclose(lr[10], 1e-3, rtol=1e-6)
    np.testing.assert_allclose(lr[60], 1e-4 + 0.9e-3 * 0.5, rtol=1e-5)  # half way down the cosine
    np.testing.assert_allclose(lr[110], 1e-4, rtol=1e-5)
    np.testing.assert_allclose(lr[129], 1e-4, rtol=1e-5)
    assert all(a <= b for a, b in zip(lr[:10], lr[1:11])) and all(a >= b for a, b in zip(lr[10:110], lr[11:111]))
    again = training.WarmupCosineDecay.from_config(s.get_config())
    assert float(again(37)) == float(s(37))


def test_adamw_skips_biases_and_layer_norms():
    model = tfgpt.TFOpenAIGPTForSequenceClassification(tiny_config())
    opt = training.create_optimizer(1e-3, total_steps=10, warmup_steps=2, weight_decay=0.1)
    assert isinstance(opt._learning_rate, training.WarmupCosineDecay)
    np.testing.assert_allclose(training.current_learning_rate(opt), 1e-3 / 2, rtol=1e-6)  # step 0 of 2 warm-up
    decayed = {v.path for v in model.trainable_variables if opt._use_weight_decay(v)}
    skipped = {v.path for v in model.trainable_variables} - decayed
    assert skipped and all(p.endswith(("/bias", "/gamma", "/beta")) for p in skipped)
    assert any(p.endswith("ln_1/gamma") for p in skipped) and any(p.endswith("c_fc/bias") for p in skipped)
    assert all(p.endswith(("/weight", "/kernel", "/embeddings")) for p in decayed)
    assert any(p.endswith("tokens_embed/embeddings") for p in decayed) and any(p.endswith("score/kernel") for p in decayed)
    cfg = opt.get_config()
    assert cfg["no_decay_pattern"] == training.NO_DECAY_PATTERN and cfg["global_clipnorm"] == 1.0


# --- metrics -----------------------------------------------------------------------------------------

def test_token_accuracy_and_perplexity_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6, 11)).astype("float32")
    labels = rng.integers(0, 11, (3, 6)).astype("int32")
    labels[0, 3] = labels[2, 5] = -100
    acc, ppl = training.TokenAccuracy(), training.Perplexity()
    acc.update_state(labels[:2], logits[:2])
    acc.update_state(labels[2:], logits[2:])
    ppl.update_state(labels, logits)
    tgt, lg = labels[:, 1:], logits[:, :-1]
    keep = tgt != -100
    np.testing.assert_allclose(float(acc.result()), (lg.argmax(-1) == tgt)[keep].mean(), rtol=1e-6)
    logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, np.where(keep, tgt, 0)[..., None], -1)[..., 0]
    np.testing.assert_allclose(float(ppl.result()), np.exp(ce[keep].mean()), rtol=1e-5)
    from tfgpt.models.modeling import causal_lm_loss

    np.testing.assert_allclose(math.log(float(ppl.result())), float(causal_lm_loss(labels, logits)), rtol=1e-5)


# --- fit on every head -------------------------------------------------------------------------------

def _head_data(kind, n=8):
    rng = np.random.default_rng(1)
    if kind == "lm":
        ids = rng.integers(0, 99, (n, 10)).astype("int32")
        return tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, ids)).batch(4)
    if kind == "seqcls":
        ids = rng.integers(1, 99, (n, 10)).astype("int32")
        ids[:, 7:] = 0  # right padding with pad_token_id 0
        mask = (ids != 0).astype("int32")
        y = rng.integers(0, 2, n).astype("int32")
        return tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "attention_mask": mask}, y)).batch(4)
    ids = rng.integers(0, 99, (n, 2, 10)).astype("int32")
    mc = np.full((n, 2), 9, "int32")
    y = {"mc_labels": rng.integers(0, 2, n).astype("int32"), "labels": ids}
    return tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "mc_token_ids": mc}, y)).batch(4)


def _head_model(kind, **cfg):
    if kind == "lm":
        return tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(**cfg))
    if kind == "seqcls":
        return tfgpt.TFOpenAIGPTForSequenceClassification(tiny_config(pad_token_id=0, **cfg))
    return tfgpt.TFOpenAIGPTDoubleHeadsModel(tiny_config(num_labels=1, **cfg))


@pytest.mark.parametrize("kind", ["lm", "seqcls", "double_heads"])
def test_fit_with_xla_and_metrics(kind):
    keras.utils.set_random_seed(0)
    model = _head_model(kind)
    model.compile(optimizer=training.create_optimizer(3e-3, total_steps=6, warmup_steps=1),
                  metrics=training.default_metrics(model), jit_compile=True)
    ds = _head_data(kind)
    hist = model.fit(ds, epochs=3, verbose=0).history
    names = {"lm": {"loss", "token_accuracy", "perplexity"}}.get(kind, {"loss", "accuracy"})
    assert set(hist) == names
    assert hist["loss"][-1] < hist["loss"][0]
    assert all(np.isfinite(v) for v in hist["loss"])
    assert int(model.optimizer.iterations) == 6
    res = model.evaluate(ds, return_dict=True, verbose=0)
    if kind == "lm":
        np.testing.assert_allclose(res["perplexity"], np.exp(res["loss"]), rtol=1e-4)
    else:  # the accuracy Keras reports is the fraction of argmax hits, computed here from the outputs
        hits = total = 0
        for x, y in ds:
            out = model(x, training=False)
            scores = out.logits if kind == "seqcls" else out.mc_logits
            labels = y if kind == "seqcls" else y["mc_labels"]
            hits += int(np.sum(np.argmax(scores.numpy(), -1) == labels.numpy()))
            total += int(labels.shape[0])
        np.testing.assert_allclose(res["accuracy"], hits / total, atol=1e-6)


@pytest.mark.parametrize("jit", [True, False])
def test_fit_with_dropout_is_seeded(jit):
    def run():
        keras.utils.set_random_seed(0)
        model = _head_model("lm", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)
        model.compile(optimizer=training.create_optimizer(3e-3), jit_compile=jit)
        return model, model.fit(_head_data("lm"), epochs=2, verbose=0).history["loss"]

    (model, losses), (_, again) = run(), run()
    assert all(np.isfinite(losses)) and losses == again  # the same seed draws the same masks
    steps = int(model.optimizer.iterations)
    assert steps == 4
    drops = [model.transformer.drop] + [d for b in model.transformer.h
                                        for d in (b.attn.attn_dropout, b.attn.resid_dropout, b.mlp.dropout)]
    for layer in drops:  # one mask a step from every dropout layer
        assert int(layer.seed_generator.state.numpy()[1]) == steps


def test_labels_inside_the_inputs_feed_the_metrics():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    ids = np.random.default_rng(2).integers(0, 99, (4, 8)).astype("int32")
    model.compile(optimizer=training.create_optimizer(1e-3), metrics=training.default_metrics(model))
    as_x = model.evaluate({"input_ids": ids, "labels": ids}, batch_size=4, return_dict=True, verbose=0)
    as_y = model.evaluate({"input_ids": ids}, ids, batch_size=4, return_dict=True, verbose=0)
    for k in ("loss", "token_accuracy", "perplexity"):
        np.testing.assert_allclose(as_x[k], as_y[k], rtol=1e-6)


@pytest.mark.parametrize("policy,kind", [("mixed_float16", "lm"), ("mixed_float16", "double_heads"),
                                         ("mixed_bfloat16", "lm")])
def test_mixed_precision_trains_without_nan(policy, kind):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = _head_model(kind)
        assert model.transformer.h[0].attn.c_attn.compute_dtype == policy.split("_")[1]
        model.compile(optimizer=training.create_optimizer(3e-3, total_steps=6, warmup_steps=1),
                      metrics=training.default_metrics(model), jit_compile=kind == "lm")
        if policy == "mixed_float16":  # dynamic loss scaling
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        hist = model.fit(_head_data(kind), epochs=3, verbose=0).history
        assert all(np.isfinite(v) for v in hist["loss"]), hist
        assert hist["loss"][-1] < hist["loss"][0]
        assert model.transformer.tokens_embed.embeddings.dtype == "float32"  # float32 master weights
    finally:
        keras.mixed_precision.set_global_policy(previous)


# --- callbacks ---------------------------------------------------------------------------------------

def test_save_pretrained_tensorboard_and_json_log_callbacks(tmp_path):
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    model.compile(optimizer=training.create_optimizer(1e-3, total_steps=4), metrics=training.default_metrics(model))
    _, ds = _lm_data()
    ckpt = training.SavePretrainedCheckpoint(tmp_path / "ckpt", save_freq=2, keep=1)
    log = training.JSONLog(tmp_path / "log.json", every=1)
    model.fit(ds, epochs=2, verbose=0, validation_data=ds, callbacks=[
        ckpt, log, training.TensorBoard(str(tmp_path / "tb")), keras.callbacks.TerminateOnNaN()])
    assert [os.path.basename(p) for p in ckpt.saved] == ["checkpoint-4"]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["checkpoint-4"]
    loaded = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(str(tmp_path / "ckpt" / "checkpoint-4"))
    ids = np.arange(8, dtype="int32")[None]
    np.testing.assert_allclose(loaded(ids).logits, model(ids).logits, atol=1e-6)
    record = json.loads((tmp_path / "log.json").read_text())
    assert [e["step"] for e in record["steps"]] == [1, 2, 3, 4]
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and "val_perplexity" in record["epochs"][-1]
    events = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "tb") for f in fs if "tfevents" in f]
    tags = {v.tag for e in events for ev in tf.compat.v1.train.summary_iterator(e) for v in ev.summary.value}
    assert {"epoch_loss", "epoch_perplexity", "epoch_token_accuracy"} <= tags


def test_terminate_on_nan_stops_training():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    model.compile(optimizer=training.create_optimizer(1e-3))

    class Poison(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                w = model.transformer.h[0].ln_1.gamma
                w.assign(np.full(w.shape, np.nan, "float32"))

    _, ds = _lm_data(n=40)
    model.fit(ds, epochs=3, verbose=0, callbacks=[Poison(), keras.callbacks.TerminateOnNaN()])
    assert int(model.optimizer.iterations) == 3  # stopped right after the first NaN step


def _run_backup_script(args, **kw):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, str(HERE / "_backup_restore_train.py"), *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.slow
def test_backup_and_restore_resumes_after_sigkill(tmp_path):
    """A training process killed with SIGKILL resumes at its last backup and ends at the same step."""
    epochs, steps = 6, 3
    backup, log = tmp_path / "backup", tmp_path / "steps.log"
    proc = _run_backup_script([backup, log, epochs, steps, 0.4])
    meta = backup / "training_metadata.json"
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 2:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = [int(line) for line in log.read_text().split()]
    backed_up = json.loads(meta.read_text())["epoch"]
    assert 2 <= backed_up < epochs and killed_at[-1] < epochs * steps

    proc = _run_backup_script([backup, log, epochs, steps, 0.0])
    try:
        out, _ = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["restored_epoch"] == backed_up
    assert result["restored_step"] == backed_up * steps  # weights and optimizer state came back
    assert result["first_step"] == backed_up * steps + 1
    assert result["final_step"] == epochs * steps  # same number of steps as an uninterrupted run
    assert result["epochs_run"] == epochs - backed_up
    assert not backup.exists()  # the backup is removed once training completes


# --- the commands ------------------------------------------------------------------------------------

def _seed_keras_cache(home: Path) -> Path:
    """Pre-seed the Keras cache with tiny-shakespeare, as a download would have left it."""
    target = home / "datasets" / "tfgpt" / "tinyshakespeare.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHAKESPEARE, target)
    return target


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``tfgpt ...`` in this process, offline; returns (exit code, stdout, stderr)."""
    from tfgpt.cli import main

    monkeypatch.setenv("TFGPT_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_train_lm_default_corpus_then_evaluate(tmp_path, cli, monkeypatch):
    home = tmp_path / "keras"
    _seed_keras_cache(home)
    monkeypatch.setenv("KERAS_HOME", str(home))
    out = tmp_path / "run"
    code, stdout, stderr = cli("train", "--tokenizer", GPT_VOCAB, "--steps", 4, "--eval-every", 2,
                               "--batch-size", 4, "--seq-len", 32, "--validation-fraction", 0.01,
                               "--no-jit-compile", "--output", out, "--verbose", 2)
    assert code == 0, stdout + stderr
    assert "4 steps" in stdout
    files = set(os.listdir(out))
    assert {"config.json", "model.safetensors", "train_log.json"} <= files
    assert files & {"vocab.json", "encoder_bpe_40000.json"}
    log = json.loads((out / "train_log.json").read_text())
    assert log["steps_done"] == 4 and log["total_steps"] == 4
    assert log["data"]["files"] == [str(home / "datasets" / "tfgpt" / "tinyshakespeare.txt")]
    assert [e["step"] for e in log["epochs"]] == [2, 4]
    assert all(np.isfinite(e["loss"]) and "val_loss" in e for e in log["epochs"])
    assert np.isfinite(log["final"]["val_perplexity"])
    assert not (out / "backup").exists()
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["n_embd"], cfg["n_layer"]) == (training.PRESETS["small"]["n_embd"], training.PRESETS["small"]["n_layer"])

    code, stdout, stderr = cli("evaluate", "--checkpoint", out, "--seq-len", 32, "--batch-size", 4,
                               "--validation-fraction", 0.01, "--no-jit-compile", "--verbose", 0)
    assert code == 0, stdout + stderr
    res = json.loads(stdout[stdout.index("{"):])
    np.testing.assert_allclose(res["loss"], log["final"]["val_loss"], rtol=1e-4)


def test_cli_train_offline_without_cache_says_how_to_pass_a_file(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    code, stdout, stderr = cli("train", "--tokenizer", GPT_VOCAB, "--steps", 1, "--output", tmp_path / "run")
    assert code == 1
    assert "--train-file" in stderr and "tiny-shakespeare" in stderr
    assert not (tmp_path / "empty" / "datasets" / "tfgpt" / "tinyshakespeare.txt").exists()


def test_cli_classification_and_multiple_choice(tmp_path, cli):
    pol = SHARED / "data" / "labelled" / "sentence_polarity"
    files = []
    for name in ("rt-polarity.neg", "rt-polarity.pos"):
        f = tmp_path / name
        f.write_text("".join(open(pol / name, encoding="utf-8").readlines()[:40]), encoding="utf-8")
        files.append(f)
    # a tiny LM checkpoint to fine-tune from
    base = tmp_path / "base"
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    tok = OpenAIGPTTokenizer.from_pretrained(str(GPT_VOCAB))
    tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(vocab_size=len(tok), n_positions=64)).save_pretrained(
        base, safe_serialization=True)
    tok.save_pretrained(base)

    out = tmp_path / "cls"
    code, stdout, stderr = cli("train", "--task", "classification", "--checkpoint", base, "--class-files",
                               *files, "--steps", 4, "--eval-every", 2, "--batch-size", 8, "--seq-len", 24,
                               "--learning-rate", 1e-3, "--no-jit-compile", "--output", out, "--verbose", 0)
    assert code == 0, stdout + stderr
    log = json.loads((out / "train_log.json").read_text())
    assert log["data"]["train_examples"] == 72 and log["data"]["validation_examples"] == 8
    # 8 held-out sentences: the accuracy is a whole number of eighths, as evaluate finds it below
    assert log["final"]["val_accuracy"] * 8 == pytest.approx(round(log["final"]["val_accuracy"] * 8))
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["vocab_size"] == len(tok) + 3 and cfg["pad_token_id"] == len(tok) + 2
    code, stdout, stderr = cli("evaluate", "--task", "classification", "--checkpoint", out, "--class-files",
                               *files, "--seq-len", 24, "--batch-size", 32, "--no-jit-compile", "--verbose", 0)
    assert code == 0, stdout + stderr
    res = json.loads(stdout[stdout.index("{"):])
    np.testing.assert_allclose(res["accuracy"], log["final"]["val_accuracy"], atol=1e-6)

    out = tmp_path / "copa"
    copa = SHARED / "data" / "labelled" / "copa" / "balanced-copa-dev-all.xml"
    code, stdout, stderr = cli("train", "--task", "multiple-choice", "--checkpoint", base, "--copa-file", copa,
                               "--train-ids", "1-16", "--validation-ids", "17-24", "--steps", 4,
                               "--eval-every", 2, "--batch-size", 4, "--seq-len", 32, "--learning-rate", 1e-3,
                               "--no-jit-compile", "--output", out, "--verbose", 0)
    assert code == 0, stdout + stderr
    log = json.loads((out / "train_log.json").read_text())
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(log["final"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["vocab_size"] == len(tok) + 4 and len(cfg["id2label"]) == 1  # num_labels is len(id2label), as HF


def test_time_limit_stops_and_anneals_the_schedule():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    model.compile(optimizer=training.create_optimizer(1e-3, total_steps=1000, warmup_steps=1))

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.5)

    _, ds = _lm_data(n=400)
    model.fit(ds.take(1), epochs=1, verbose=0)  # traced without the clock
    limit = training.TimeLimit(6.0)
    model.fit(ds, epochs=1, verbose=0, callbacks=[Slow(), limit])
    steps = int(model.optimizer.iterations)
    assert limit.stopped and 2 <= steps < 90
    # The deadline came long before step 1000: the cosine followed the clock to its end.
    assert training.current_learning_rate(model.optimizer) == pytest.approx(0.0, abs=1e-9)


def test_presets():
    cfg = training.preset_config("gpt1")
    assert (cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.n_positions, cfg.vocab_size) == (768, 12, 12, 512, 40478)
    model = training.preset_model(tfgpt.TFOpenAIGPTDoubleHeadsModel, "small", vocab_size=1000, seed=0,
                                  num_labels=1, lm_coef=0.25)
    assert model.config.n_embd == 128 and model.config.vocab_size == 1000 and model.lm_coef == 0.25
    table = model.transformer.tokens_embed.embeddings.numpy()
    assert abs(table.std() - training.PRESET_TOKEN_INIT["small"]) < 0.01
    with pytest.raises(ValueError, match="preset"):
        training.preset_config("huge")
