"""The ``tfgpt`` command as a new user meets it: bad input gives a clear error (no hang, no traceback),
missing folders say what makes them, backups survive a kill, evaluation matches the run's own numbers,
and the output carries no TensorFlow start-up noise."""

import json
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from conftest import CORPUS, GPT_VOCAB, REPO, subprocess_env, tiny_config
from tfgpt import data, training


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """Run ``tfgpt ...`` in this process, offline, with empty caches; returns (code, stdout, stderr)."""
    from tfgpt.cli import main

    monkeypatch.setenv("TFGPT_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))

    def run(*args):
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _corpus(tmp_path, lines):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(open(CORPUS, encoding="utf-8").readlines()[:lines]), encoding="utf-8")
    return path


# --- impossible values: argparse errors, exit code 2 ----------------------------------------------------

@pytest.mark.parametrize("argv,flag", [
    (["train", "--steps", "0"], "--steps"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--seq-len", "1"], "--seq-len"),
    (["train", "--learning-rate", "-1"], "--learning-rate"),
    (["train", "--learning-rate", "nan"], "--learning-rate"),
    (["train", "--validation-fraction", "1.5"], "--validation-fraction"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--eval-every", "-3"], "--eval-every"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--steps", "3", "--epochs", "1"], "--epochs"),
    (["train", "--preset", "huge"], "--preset"),
    (["train", "--holdout-every", "1"], "--holdout-every"),
    (["evaluate", "--checkpoint", "x", "--steps", "0"], "--steps"),
    (["generate", "--checkpoint", "x", "--max-new-tokens", "0", "hi"], "--max-new-tokens"),
    (["generate", "--checkpoint", "x", "--top-p", "2", "hi"], "--top-p"),
    (["export", "--checkpoint", "x", "--out", "y", "--head", "bogus"], "--head"),
    (["export", "--checkpoint", "x", "--out", "y", "--num-beams", "1"], "--num-beams"),
    (["export", "--checkpoint", "x", "--out", "y", "--no-repeat-ngram-size", "0"], "--no-repeat-ngram-size"),
    (["export", "--checkpoint", "x", "--out", "y", "--top-k", "-1"], "--top-k"),
    (["export", "--checkpoint", "x", "--out", "y", "--stop-string", ""], "--stop-string"),
    (["learn-bpe", "f.txt", "--out", "v", "--merges", "0"], "--merges"),
    (["demo", "--steps", "0"], "--steps"),
])
def test_impossible_values_are_argparse_errors(cli, argv, flag):
    code, out, err = cli(*argv)
    assert code == 2
    assert f"argument {flag}" in err and "Traceback" not in err


# --- training data that cannot fill a window: an error naming the file and its tokens -----------------

@pytest.mark.parametrize("text,tokens", [("", 0), ("   \n\t\n  \n", 0), ("to be or not to be\n", 6)])
def test_train_on_too_little_text_names_the_file_and_its_tokens(cli, tmp_path, text, tokens):
    f = tmp_path / "tiny.txt"
    f.write_text(text, encoding="utf-8")
    code, out, err = cli("train", "--train-file", f, "--tokenizer", GPT_VOCAB, "--validation-fraction", 0,
                         "--steps", 2, "--seq-len", 16, "--batch-size", 2, "--no-jit-compile",
                         "--output", tmp_path / "run", "--no-backup")
    assert code == 1
    assert str(f) in err and f"holds {tokens} tokens" in err and "window" in err


def test_lm_dataset_refuses_too_little_text(gpt_tokenizer, tmp_path):
    f = tmp_path / "short.txt"
    f.write_text("a few words only\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"short.txt holds 4 tokens, fewer than the 15 that one 8-token"):
        data.lm_dataset([f], gpt_tokenizer, seq_len=8, batch_size=2, split="train", validation_fraction=0.0)
    # the same text in one pass (evaluation) is simply empty, and says so by its length
    ds = data.lm_dataset([f], gpt_tokenizer, seq_len=8, batch_size=2, split="all", repeat=False)
    assert int(ds.cardinality()) == 0


# --- folders that do not exist, or hold no checkpoint yet ---------------------------------------------

def test_evaluate_a_missing_folder_says_so_and_what_makes_one(cli, tmp_path):
    code, out, err = cli("evaluate", "--checkpoint", tmp_path / "nonexistent")
    assert code == 1
    assert "does not exist" in err and "tfgpt train --output DIR" in err and "runs/demo/model" in err
    assert "openai-gpt" not in err


def test_generate_before_training_says_so(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # nothing trained yet: runs/train is not there (and is no hub model either)
    code, out, err = cli("generate", "--checkpoint", "runs/train", "ROMEO:")
    assert code == 1
    assert "runs/train" in err and "no such folder here" in err and "tfgpt train --output DIR" in err
    # a run that has started but not finished: the folder exists without config.json
    (tmp_path / "runs" / "train" / "backup").mkdir(parents=True)
    code, out, err = cli("generate", "--checkpoint", "runs/train", "ROMEO:")
    assert code == 1
    assert "holds no checkpoint yet (no config.json)" in err and "tokenizer" not in err


def test_train_offline_without_a_tokenizer_names_the_flag(cli, tmp_path):
    code, out, err = cli("train", "--train-file", _corpus(tmp_path, 50), "--steps", 1,
                         "--output", tmp_path / "run")
    assert code == 1
    assert "--tokenizer DIR" in err and "openai-community/openai-gpt" in err and "tfgpt learn-bpe" in err
    assert not (tmp_path / "run").exists()


def test_demo_offline_error_names_corpus(cli, tmp_path):
    code, out, err = cli("demo", "--output", tmp_path / "demo", "--export-dir", tmp_path / "export")
    assert code == 1
    assert "--corpus PATH" in err and "--train-file" not in err


# --- backups -------------------------------------------------------------------------------------------

def _fit_with_backup(backup, epochs, steps=2, delete=True):
    keras.utils.set_random_seed(0)
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    model(np.zeros((1, 4), np.int32))
    model.compile(optimizer=training.create_optimizer(1e-3, total_steps=epochs * steps, warmup_steps=1))
    ids = np.random.default_rng(0).integers(0, 99, (8, 8)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, ids)).batch(4).repeat()
    restore = training.BackupAndRestore(backup, delete_checkpoint=delete)
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[restore])
    return model, restore


def test_truncated_backup_is_reported_and_the_previous_one_resumes(tmp_path, capsys):
    backup = tmp_path / "backup"
    _fit_with_backup(backup, epochs=3, delete=False)
    assert json.loads((backup / "training_metadata.json").read_text())["step"] == 6
    assert json.loads((backup / "previous_training_metadata.json").read_text())["step"] == 4
    latest = backup / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3])  # a kill inside save_weights
    capsys.readouterr()
    model, restore = _fit_with_backup(backup, epochs=4)
    out = capsys.readouterr().out
    assert "latest.weights.h5 cannot be read" in out
    assert restore.restored_from == str(backup / "previous.weights.h5")
    assert (restore.restored_epoch, restore.restored_step) == (2, 4)
    assert int(model.optimizer.iterations) == 8  # resumed at step 4, finished the 4 epochs


def test_backup_with_no_usable_file_says_what_to_do(tmp_path):
    backup = tmp_path / "backup"
    _fit_with_backup(backup, epochs=1, delete=False)
    (backup / "latest.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="Delete the folder to start the run again"):
        _fit_with_backup(backup, epochs=2)


# --- numbers and output -------------------------------------------------------------------------------

def test_evaluate_reports_the_runs_own_validation_loss(cli, tmp_path):
    """No --seq-len or split given: evaluate measures what training's validation measured."""
    corpus, out = _corpus(tmp_path, 600), tmp_path / "run"
    code, stdout, err = cli("train", "--train-file", corpus, "--tokenizer", GPT_VOCAB, "--steps", 2,
                            "--seq-len", 24, "--batch-size", 4, "--validation-fraction", 0.2,
                            "--no-jit-compile", "--output", out, "--no-backup", "--verbose", 0)
    assert code == 0, err
    log = json.loads((out / "train_log.json").read_text())
    code, stdout, err = cli("evaluate", "--checkpoint", out, "--no-jit-compile", "--verbose", 0)
    assert code == 0, err
    res = json.loads(stdout[stdout.index("{"):])
    assert res["seq_len"] == 24 and "--seq-len 24" in err
    np.testing.assert_allclose(res["loss"], log["final"]["val_loss"], rtol=1e-5)


def test_fit_on_the_library_pipelines_prints_no_keras_warning(gpt_tokenizer, tmp_path):
    corpus = _corpus(tmp_path, 300)
    train, val = data.lm_datasets([corpus], gpt_tokenizer, seq_len=16, batch_size=4)
    n_val = int(val.cardinality())
    assert n_val == data.count_batches(val) and n_val > 0  # a stated, true length
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(vocab_size=len(gpt_tokenizer)))
    model.compile(optimizer=training.create_optimizer(1e-3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, validation_data=val, epochs=2, steps_per_epoch=2, verbose=0, shuffle=False)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "ran out of data" in m or "shuffle=True" in m], messages


def test_progress_bar_only_on_a_terminal():
    import argparse

    from tfgpt.cli.options import verbosity

    # pytest captures stdout, so it is not a terminal here: one line per epoch
    assert not sys.stdout.isatty()
    assert verbosity(argparse.Namespace(verbose=None)) == 2
    assert verbosity(argparse.Namespace(verbose=1)) == 1


def test_export_tflite_and_quantize_write_both_files(cli, tmp_path, gpt_tokenizer):
    keras.utils.set_random_seed(0)
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(n_positions=16))
    model(np.zeros((1, 4), np.int32))
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "export" / "gpt"
    code, stdout, err = cli("export", "--checkpoint", tmp_path / "model", "--out", out, "--tflite",
                            "--quantize", "--max-length", 8)
    assert code == 0, err
    plain, int8 = tmp_path / "export" / "gpt.tflite", tmp_path / "export" / "gpt.int8.tflite"
    assert plain.is_file() and int8.is_file()
    assert int8.stat().st_size < plain.stat().st_size  # the int8 weights are smaller
    assert str(plain) in stdout and str(int8) in stdout


def test_cli_output_has_no_tensorflow_startup_noise(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat. the cat ate.\n" * 20, encoding="utf-8")
    env = subprocess_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    proc = subprocess.run([sys.executable, "-m", "tfgpt.cli", "learn-bpe", str(corpus), "--out",
                           str(tmp_path / "v"), "--merges", "5"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("learned 5 merges")
    for noise in ("absl::InitializeLog", "cuda", "oneDNN", "cpu_feature_guard"):
        assert noise not in proc.stderr, proc.stderr


def test_export_text_options_reach_the_saved_model(cli, tmp_path, gpt_tokenizer):
    from test_export import saved_signatures

    keras.utils.set_random_seed(0)
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(vocab_size=len(gpt_tokenizer), n_positions=16))
    model(np.zeros((1, 4), np.int32))
    model.save_pretrained(tmp_path / "model")
    out = tmp_path / "export" / "gpt"
    code, stdout, err = cli("export", "--checkpoint", tmp_path / "model", "--tokenizer", GPT_VOCAB, "--out", out,
                            "--stop-string", "the", "--stop-string", "king", "--no-repeat-ngram-size", 2,
                            "--num-beams", 2, "--top-k", 5)
    assert code == 0, err
    assert stdout.strip() == str(out / "1")
    names = saved_signatures(out / "1")
    assert {"generate_text", "sample_text", "penalty_text", "penalty_sample_text", "beam_text"} <= names
    assert "lookup_text" not in names  # not exported with stop strings or no_repeat_ngram_size

    code, _, err = cli("export", "--checkpoint", tmp_path / "model", "--out", tmp_path / "bare", "--num-beams", 2)
    assert code == 1 and "--num-beams" in err and "no tokenizer" in err
