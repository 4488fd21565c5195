"""Export: the TF Serving SavedModel checked in a fresh process that never imports tfgpt, its folder
layout and CLI listing, the TFLite file run by the LiteRT interpreter, and ``tfgpt export``."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from conftest import TESTS, left_pad, subprocess_env, tiny_model
from tfgpt import export

CHECK = TESTS / "export_check.py"
PROMPTS = ["the king is dead , long live", "hello world", "once upon a time there was a little"]


def reference_texts(model, tok, prompts, max_new, **kwargs):
    """(texts, completions) as the in-process model and the Python tokenizer produce them."""
    rows = [tok.encode(p) for p in prompts]
    ids, mask = left_pad(rows)
    kwargs.setdefault("top_k", 0)  # the exported signatures' default (generate's is HF's 50)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, **kwargs).numpy()
    width = ids.shape[1]
    texts = [tok.decode(row[width - len(r):].tolist()) for row, r in zip(out, rows)]
    completions = [tok.decode(row[width:].tolist()) for row in out]
    return np.array(texts, dtype=bytes), np.array(completions, dtype=bytes)


def run_check(cases, arrays, tmp_path, threads=8):
    """Run tests/export_check.py in a fresh Python (only tensorflow + tensorflow_text imported)."""
    np.savez(tmp_path / "cases.npz", **arrays)
    spec = {"arrays": str(tmp_path / "cases.npz"), "threads": threads, "cases": cases}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, str(CHECK), str(tmp_path / "spec.json")], capture_output=True,
                          text=True, cwd=tmp_path, env=subprocess_env(with_repo=False), timeout=600)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert lines, f"no report (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])


def signature_listing(path):
    exe = shutil.which("saved_model_cli")
    cmd = [exe] if exe else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    proc = subprocess.run(cmd + ["show", "--dir", str(path), "--all"], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def saved_signatures(folder):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(folder) / "saved_model.pb").read_bytes())
    return set(proto.meta_graphs[0].signature_def) - {"__saved_model_init_op"}


# --- the SavedModel, checked in a fresh process ---------------------------------------------------------

@pytest.fixture(scope="module")
def tok(gpt_tokenizer_session):
    return gpt_tokenizer_session


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tok):
    """Four models exported (the LM with the tokenizer) + what the in-process models return."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    arrays, cases, dirs = {}, [], {}

    def add(name, folder, signature, inputs, outputs, atol, **extra):
        for k, v in inputs.items():
            arrays[f"{name}/in/{k}"] = v
        for k, v in outputs.items():
            arrays[f"{name}/out/{k}"] = np.asarray(v)
        cases.append(dict(name=name, dir=str(folder), signature=signature, inputs=sorted(inputs),
                          outputs=sorted(outputs), atol=atol, **extra))

    lm = tiny_model("lm", seed=3, vocab_size=len(tok), n_positions=64, initializer_range=0.1)
    dirs["lm"] = export.export_saved_model(lm, root / "gpt" / "1", tokenizer=tok)
    ids = rng.integers(0, lm.config.vocab_size, (2, 7)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[0, :3] = 0
    logits = lm(ids, attention_mask=mask, training=False)["logits"].numpy()
    add("lm32", dirs["lm"], "serving_default", dict(input_ids=ids, attention_mask=mask), dict(logits=logits), 1e-5)
    add("lm64", dirs["lm"], "serving_int64", dict(input_ids=ids.astype(np.int64), attention_mask=mask.astype(np.int64)),
        dict(logits=logits), 1e-5)
    prompts = np.array(PROMPTS, dtype=bytes)
    texts, completions = reference_texts(lm, tok, PROMPTS, 6)
    add("greedy", dirs["lm"], "generate_text", dict(prompts=prompts, max_new_tokens=np.int32(6)),
        dict(texts=texts, completions=completions), None)
    # the export samples with its top_k (0 here); generate's default is HF's 50
    texts, completions = reference_texts(lm, tok, PROMPTS[:2], 5, do_sample=True, top_k=0, temperature=0.7,
                                         top_p=0.9, seed=1234)
    add("sample", dirs["lm"], "sample_text", dict(prompts=prompts[:2], max_new_tokens=np.int32(5),
                                                  temperature=np.float32(0.7), top_p=np.float32(0.9),
                                                  seed=np.int32(1234)),
        dict(texts=texts, completions=completions), None)
    texts, _ = reference_texts(lm, tok, PROMPTS[1:], 4, do_sample=True, top_k=0, seed=5)
    add("sample_full", dirs["lm"], "sample_text", dict(prompts=prompts[1:], max_new_tokens=np.int32(4),
                                                       temperature=np.float32(1.0), top_p=np.float32(1.0),
                                                       seed=np.int32(5)),
        dict(texts=texts), None)
    texts, completions = reference_texts(lm, tok, PROMPTS[1:], 3, do_sample=True, top_k=0, seed=0)
    add("sample_defaults", dirs["lm"], "sample_text", dict(prompts=prompts[1:], max_new_tokens=np.int32(3)),
        dict(texts=texts, completions=completions), None, method=True)  # temperature 1, top_p 1, seed 0
    one = dict(prompts=np.array([b"hello"]), max_new_tokens=np.int32(64))
    add("too_long", dirs["lm"], "generate_text", one, {}, None, error="n_positions=64")
    add("empty_prompt", dirs["lm"], "generate_text",
        dict(prompts=np.array([b"hello", b""]), max_new_tokens=np.int32(2)), {}, None, error="at least one token")
    add("no_new_tokens", dirs["lm"], "generate_text", dict(one, max_new_tokens=np.int32(0)), {}, None,
        error="max_new_tokens must be positive")
    add("bad_top_p", dirs["lm"], "sample_text", dict(one, max_new_tokens=np.int32(2), temperature=np.float32(1),
                                                     top_p=np.float32(1.5), seed=np.int32(0)),
        {}, None, error="top_p")

    dh = tiny_model("double-heads", seed=4)
    dirs["dh"] = export.export_saved_model(dh, root / "dh", version=2)
    ids = rng.integers(0, 99, (2, 3, 6)).astype(np.int32)
    mask = np.ones_like(ids)
    mc = np.array([[5, 4, 3], [2, 5, 5]], np.int32)
    out = dh(ids, attention_mask=mask, mc_token_ids=mc, training=False)
    add("dh", dirs["dh"], "serving_default", dict(input_ids=ids, attention_mask=mask, mc_token_ids=mc),
        dict(logits=out["logits"].numpy(), mc_logits=out["mc_logits"].numpy()), 1e-5)

    sc = tiny_model("seqcls", seed=5, num_labels=3, pad_token_id=98)
    dirs["sc"] = export.export_saved_model(sc, root / "sc" / "1")
    ids = rng.integers(0, 98, (3, 8)).astype(np.int32)
    ids[1, 5:] = 98
    mask = (ids != 98).astype(np.int32)
    add("sc", dirs["sc"], "serving_default", dict(input_ids=ids, attention_mask=mask),
        dict(logits=sc(ids, attention_mask=mask, training=False)["logits"].numpy()), 1e-5)

    base = tiny_model("base", seed=6)
    dirs["base"] = export.export_saved_model(base, root / "base" / "1")
    add("base", dirs["base"], "serving_int64",
        dict(input_ids=ids.astype(np.int64), attention_mask=mask.astype(np.int64)),
        dict(last_hidden_state=base(ids, attention_mask=mask, training=False)["last_hidden_state"].numpy()), 1e-5)
    return dict(root=root, dirs=dirs, cases=cases, arrays=arrays, lm=lm)


@pytest.fixture(scope="module")
def fresh_report(exported, tmp_path_factory):
    return run_check(exported["cases"], exported["arrays"], tmp_path_factory.mktemp("check"))


def test_fresh_process_never_imports_tfgpt(fresh_report):
    assert fresh_report["tfgpt_imported"] is False


def test_fresh_process_signatures(fresh_report, exported):
    sigs = fresh_report["signatures"]
    assert sigs[exported["dirs"]["lm"]] == ["generate_text", "lookup_text", "penalty_sample_text", "penalty_text",
                                           "sample_text", "serving_default", "serving_int64"]
    for key in ("dh", "sc", "base"):
        assert sigs[exported["dirs"][key]] == ["serving_default", "serving_int64"]


@pytest.mark.parametrize("name", ["lm32", "lm64", "dh", "sc", "base"])
def test_fresh_process_logits_match_in_process(fresh_report, name):
    case = next(c for c in fresh_report["cases"] if c["name"] == name)
    assert case["ok"], case


@pytest.mark.parametrize("name", ["greedy", "sample", "sample_full"])
def test_fresh_process_generated_text_is_identical(fresh_report, exported, name):
    case = next(c for c in fresh_report["cases"] if c["name"] == name)
    want = [t.decode() for t in exported["arrays"][f"{name}/out/texts"]]
    assert case["outputs"]["texts"]["got"] == want
    if "completions" in case["outputs"]:
        completions = case["outputs"]["completions"]["got"]
        assert completions == [t.decode() for t in exported["arrays"][f"{name}/out/completions"]]
        # prompt + continuation: each text ends with its (non-empty) completion
        assert all(c and t.endswith(c.strip()) for t, c in zip(want, completions)), (want, completions)


def test_fresh_process_eight_threads_agree(fresh_report, exported):
    checked = [c for c in fresh_report["cases"] if "threads_identical" in c]
    # every case that returns outputs ran from eight threads at once
    assert sorted(c["name"] for c in checked) == sorted(c["name"] for c in exported["cases"] if "error" not in c)
    for case in checked:
        assert case["threads_identical"], (case["name"], case["thread_errors"])


def test_versioned_layout_and_saved_model_cli(exported):
    root = exported["root"]
    assert sorted(p.name for p in (root / "gpt").iterdir()) == ["1"]  # no temporary folders left
    assert sorted(p.name for p in (root / "dh").iterdir()) == ["2"]
    assert (root / "gpt" / "1" / "saved_model.pb").is_file()
    listing = signature_listing(exported["dirs"]["lm"])
    for name in ("serving_default", "serving_int64", "generate_text", "sample_text"):
        assert f"signature_def['{name}']" in listing
    for name in ("input_ids", "attention_mask", "prompts", "max_new_tokens", "temperature", "top_p",
                 "seed", "logits", "texts", "completions"):
        assert f"['{name}']" in listing


@pytest.mark.parametrize("name", ["too_long", "empty_prompt", "no_new_tokens", "bad_top_p"])
def test_fresh_process_text_errors_name_the_problem(fresh_report, name):
    case = next(c for c in fresh_report["cases"] if c["name"] == name)
    assert case["ok"], case


def test_fresh_process_sampling_options_default_in_the_method(fresh_report):
    case = next(c for c in fresh_report["cases"] if c["name"] == "sample_defaults")
    assert case["ok"], case


# --- folders, versions, overwriting ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_lm():
    return tiny_model("lm", seed=11, n_positions=32, n_embd=64, initializer_range=0.3)


def test_resolve_version_dir(tmp_path):
    assert export.resolve_version_dir(tmp_path / "gpt" / "3") == (tmp_path / "gpt", 3)
    assert export.resolve_version_dir(tmp_path / "gpt", 7) == (tmp_path / "gpt", 7)
    assert export.resolve_version_dir(tmp_path / "gpt") == (tmp_path / "gpt", 1)
    (tmp_path / "gpt" / "4").mkdir(parents=True)
    (tmp_path / "gpt" / "notes").mkdir()
    assert export.resolve_version_dir(tmp_path / "gpt") == (tmp_path / "gpt", 5)
    with pytest.raises(ValueError, match="disagrees"):
        export.resolve_version_dir(tmp_path / "gpt" / "3", 4)
    with pytest.raises(ValueError, match="version"):
        export.resolve_version_dir(tmp_path / "gpt", -1)


def test_existing_version_is_kept_unless_overwrite(small_lm, tmp_path):
    target = tmp_path / "gpt" / "1"
    target.mkdir(parents=True)
    (target / "marker").write_text("old")
    with pytest.raises(FileExistsError, match=str(target)):
        export.export_saved_model(small_lm, target)
    assert (target / "marker").read_text() == "old"
    path = export.export_saved_model(small_lm, tmp_path / "gpt", version=1, overwrite=True)
    assert Path(path) == target and not (target / "marker").exists()
    assert (target / "saved_model.pb").is_file()
    assert export.export_saved_model(small_lm, tmp_path / "gpt") == str(tmp_path / "gpt" / "2")
    assert sorted(p.name for p in (tmp_path / "gpt").iterdir()) == ["1", "2"]


def test_failed_export_leaves_no_partial_version(small_lm, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_saved_model(small_lm, tmp_path / "gpt" / "1")
    assert list((tmp_path / "gpt").iterdir()) == []


def test_tokenizer_needs_an_lm_head(tok, tmp_path):
    with pytest.raises(ValueError, match="LM head"):
        export.export_saved_model(tiny_model("base"), tmp_path / "m" / "1", tokenizer=tok)
    assert not (tmp_path / "m").exists()


# --- TFLite -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tflite_files(small_lm, tmp_path_factory):
    root = tmp_path_factory.mktemp("tflite")
    fp32 = export.export_tflite(small_lm, root / "gpt.tflite", max_length=24)
    int8 = export.export_tflite(small_lm, root / "gpt.int8.tflite", max_length=24, quantize=True)
    return fp32, int8


def interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path))


def greedy_tflite(it, prompt, new):
    """Greedy decoding with the prefill / decode_step signatures: (tokens, each step's logits [V])."""
    prefill, step = it.get_signature_runner("prefill"), it.get_signature_runner("decode_step")
    out = prefill(input_ids=np.array([prompt], np.int32))
    cache, logits = out["cache"], [out["logits"][0]]
    tokens = [int(np.argmax(logits[-1]))]
    for i in range(new - 1):
        out = step(token=np.array([[tokens[-1]]], np.int32), index=np.array(len(prompt) + i, np.int32),
                   cache=cache)
        cache = out["cache"]
        logits.append(out["logits"][0])
        tokens.append(int(np.argmax(logits[-1])))
    return tokens, logits


def test_tflite_signatures_and_builtin_ops_only(tflite_files):
    for path in tflite_files:
        it = interpreter(path)
        sigs = it.get_signature_list()
        assert sigs["logits"] == {"inputs": ["attention_mask", "input_ids"], "outputs": ["logits"]}
        assert sigs["decode_step"] == {"inputs": ["cache", "index", "token"], "outputs": ["cache", "logits"]}
        assert sigs["prefill"] == {"inputs": ["input_ids"], "outputs": ["cache", "logits"]}
        ops = {o["op_name"] for o in it._get_ops_details()}
        assert not {o for o in ops if o.startswith("Flex") or o in ("CUSTOM", "DELEGATE")}, ops
        assert "DYNAMIC_UPDATE_SLICE" in ops and not {"VAR_HANDLE", "READ_VARIABLE"} & ops


def test_tflite_logits_match_the_model(small_lm, tflite_files):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 99, (2, 9)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    want = small_lm(ids, attention_mask=mask, training=False)["logits"].numpy()
    got = interpreter(tflite_files[0]).get_signature_runner("logits")(input_ids=ids, attention_mask=mask)["logits"]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_tflite_greedy_decode_loop_equals_generate(small_lm, tflite_files):
    it = interpreter(tflite_files[0])
    for prompt in ([5, 17, 42], list(range(3, 10))):  # one prompt bucket: one compiled program
        want = small_lm.generate(np.array([prompt]), max_new_tokens=12).numpy()[0, len(prompt):].tolist()
        assert greedy_tflite(it, prompt, 12)[0] == want


def test_tflite_int8_is_smaller_and_close(small_lm, tflite_files):
    fp32, int8 = tflite_files
    assert os.path.getsize(int8) < 0.6 * os.path.getsize(fp32)
    ids = np.array([[5, 17, 42, 7, 8]], np.int32)
    want = small_lm(ids, training=False)["logits"].numpy()
    got = interpreter(int8).get_signature_runner("logits")(input_ids=ids, attention_mask=np.ones_like(ids))["logits"]
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.98
    # the int8 cached loop: every step's logits follow the fp32 model's over the same prefix
    prompt = [5, 17, 42]
    tokens, logits = greedy_tflite(interpreter(int8), prompt, 6)
    for i, step_logits in enumerate(logits):
        prefix = np.array([prompt + tokens[:i]], np.int32)
        ref = small_lm(prefix, training=False)["logits"].numpy()[0, -1]
        assert np.corrcoef(step_logits, ref)[0, 1] > 0.98, i


def test_tflite_max_length_is_checked(small_lm, tmp_path):
    for bad in (0, -1, 33):  # n_positions is 32
        with pytest.raises(ValueError, match="max_length"):
            export.export_tflite(small_lm, tmp_path / "x.tflite", max_length=bad)
    assert not (tmp_path / "x.tflite").exists()
    (tmp_path / "y.tflite").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        export.export_tflite(small_lm, tmp_path / "y.tflite", max_length=8)
    assert (tmp_path / "y.tflite").read_bytes() == b"old"


# --- the command line ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_model(tok, tmp_path_factory):
    """An LM saved with its tokenizer: (model, folder)."""
    folder = tmp_path_factory.mktemp("cli") / "model"
    model = tiny_model("lm", seed=5, vocab_size=len(tok), n_positions=32)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, folder


def test_cli_export_saved_model_and_tflite(cli_model, tok, tmp_path, capsys):
    from tfgpt import cli

    model, folder = cli_model
    out = tmp_path / "export" / "gpt"
    assert cli.main(["export", "--checkpoint", str(folder), "--out", str(out), "--tflite", "--max-length", "16"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line]
    assert printed == [str(out / "1"), str(tmp_path / "export" / "gpt.tflite")]
    assert saved_signatures(out / "1") == {"generate_text", "lookup_text", "penalty_sample_text", "penalty_text",
                                          "sample_text", "serving_default", "serving_int64"}
    # the SavedModel answers as the model and the tokenizer of the folder do
    loaded = tf.saved_model.load(str(out / "1"))
    ids = np.array([[5, 17, 42, 7]], np.int32)
    logits = loaded.signatures["serving_default"](input_ids=tf.constant(ids), attention_mask=tf.ones_like(ids))
    np.testing.assert_allclose(logits["logits"].numpy(), model(ids, training=False)["logits"].numpy(), atol=1e-5)
    got = loaded.signatures["generate_text"](prompts=tf.constant(PROMPTS[:2]), max_new_tokens=tf.constant(4))
    texts, completions = reference_texts(model, tok, PROMPTS[:2], 4)
    assert got["texts"].numpy().tolist() == texts.tolist()
    assert got["completions"].numpy().tolist() == completions.tolist()
    # the TFLite cache is --max-length long: [L, 1, 2, H, 16, D]
    cache = interpreter(tmp_path / "export" / "gpt.tflite").get_signature_runner("decode_step").get_input_details()
    assert cache["cache"]["shape"].tolist() == [2, 1, 2, 4, 16, 8]

    assert cli.main(["export", "--checkpoint", str(folder), "--out", str(out), "--version", "1"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["export", "--checkpoint", str(folder), "--out", str(out), "--head", "base"]) == 0
    assert saved_signatures(out / "2") == {"serving_default", "serving_int64"}
    hidden = tf.saved_model.load(str(out / "2")).signatures["serving_default"](
        input_ids=tf.constant(ids), attention_mask=tf.ones_like(ids))["last_hidden_state"]
    np.testing.assert_allclose(hidden.numpy(), model.transformer(ids, training=False, return_dict=True).last_hidden_state.numpy(), atol=1e-5)


def test_cli_export_quantize_writes_an_int8_tflite(cli_model, tmp_path, capsys):
    from tfgpt import cli

    model, folder = cli_model
    out = tmp_path / "gpt"
    assert cli.main(["export", "--checkpoint", str(folder), "--out", str(out), "--quantize", "--max-length", "8"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line]
    assert printed == [str(out / "1"), str(tmp_path / "gpt.int8.tflite")]
    assert not (tmp_path / "gpt.tflite").exists()
    it = interpreter(tmp_path / "gpt.int8.tflite")
    assert "int8" in {str(np.dtype(t["dtype"])) for t in it.get_tensor_details()}
    runner = it.get_signature_runner("decode_step")
    assert runner.get_input_details()["cache"]["shape"].tolist() == [2, 1, 2, 4, 8, 8]
    ids = np.array([[5, 17, 42, 7, 8]], np.int32)
    got = it.get_signature_runner("logits")(input_ids=ids, attention_mask=np.ones_like(ids))["logits"]
    want = model(ids, training=False)["logits"].numpy()
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.98
