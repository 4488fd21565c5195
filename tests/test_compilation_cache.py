"""The persistent XLA compilation cache: entries written by one process, found by the next (same
tokens, nothing compiled again), nothing written when switched off, TF_XLA_FLAGS merged, the store
kept whole (stale private folders removed, oldest entries pruned). The decode programs kept beside it:
a later process runs them without tracing, a damaged file is written again.

Every case runs in a fresh child process: TensorFlow reads TF_XLA_FLAGS once per process.
"""

import json
import os
import subprocess
import textwrap

import pytest

from conftest import PYTHON, TESTS, subprocess_env

GENERATE = textwrap.dedent(f"""
    import json, os, sys
    sys.path.insert(0, {str(TESTS)!r})
    import numpy as np
    import tfgpt
    from conftest import tiny_model
    model = tiny_model()
    ids = np.array([[5, 17, 3, 42, 8, 1, 77, 23, 9, 64, 2, 31]], np.int32)
    kwargs = json.loads(os.environ.get("GENERATE_KWARGS", "{{}}"))
    out = model.generate(ids, max_new_tokens=12, **kwargs).numpy()
    print(json.dumps(dict(tokens=out.tolist(), compiled=tfgpt.compilation_cache.compiled_entries(),
                          flags=os.environ.get("TF_XLA_FLAGS", ""),
                          store=tfgpt.compilation_cache.active_directory(),
                          traces=tfgpt.generation.trace_count())))
""")

FLAGS = textwrap.dedent("""
    import json, os
    import tfgpt
    print(json.dumps(dict(flags=os.environ.get("TF_XLA_FLAGS", ""),
                          store=tfgpt.compilation_cache.active_directory(),
                          default=tfgpt.compilation_cache.default_directory())))
""")


def run_child(code, timeout=600, **env):
    env.setdefault("TF_XLA_FLAGS", "")
    proc = subprocess.run([PYTHON, "-c", code], env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def store_files(path, programs=False):
    """Every file under the store, private folders included (names relative to it); the decode
    programs' folder only with ``programs``."""
    names = sorted(os.path.relpath(os.path.join(d, f), path) for d, _, fs in os.walk(path) for f in fs)
    return [n for n in names if programs or not n.startswith("programs" + os.sep)]


def program_files(store):
    folder = store / "programs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_second_process_loads_what_the_first_compiled(tmp_path):
    store = tmp_path / "xla"
    first = run_child(GENERATE, TFGPT_XLA_CACHE_DIR=store)
    assert first["store"] == str(store)
    assert first["compiled"], "the first process compiled nothing into the cache"
    written = store_files(store)
    assert written == sorted(first["compiled"])  # published, the private folder removed at exit
    assert all(name.startswith("tfgpt-tf") and name.endswith("_XLA_CPU_JIT.pb") for name in written)
    assert all(os.path.getsize(store / name) > 1000 for name in written)

    programs = program_files(store)
    assert len(programs) == 1 and programs[0].endswith(".mlir") and first["traces"] == 1

    second = run_child(GENERATE, TFGPT_XLA_CACHE_DIR=store)
    assert second["tokens"] == first["tokens"]
    assert second["compiled"] == []  # the program came from the cache: TensorFlow wrote no entry
    assert second["traces"] == 0  # and from the program file: nothing traced in Python
    assert store_files(store) == written and program_files(store) == programs


def test_tensorflow_imported_first_still_caches(tmp_path):
    """TensorFlow reads TF_XLA_FLAGS at its first op, not at import: importing it before tfgpt is fine."""
    store = tmp_path / "xla"
    out = run_child("import tensorflow\n" + GENERATE, TFGPT_XLA_CACHE_DIR=store)
    assert out["compiled"] and store_files(store) == sorted(out["compiled"])


def test_switched_off_writes_nothing(tmp_path):
    store = tmp_path / "xla"
    inherited = ("--tf_xla_min_cluster_size=2 "
                 f"--tf_xla_persistent_cache_directory={tmp_path}/.tfgpt-work-1-x-y")
    out = run_child(GENERATE, TFGPT_XLA_CACHE="0", TFGPT_XLA_CACHE_DIR=store, TF_XLA_FLAGS=inherited)
    assert out["store"] is None and out["compiled"] == [] and out["traces"] == 1
    assert out["flags"] == "--tf_xla_min_cluster_size=2"  # tfgpt's inherited flag dropped, the user's kept
    assert os.listdir(tmp_path) == []


def test_flags_merge_with_the_users(tmp_path):
    store = tmp_path / "xla"
    out = run_child(FLAGS, TFGPT_XLA_CACHE_DIR=store, TF_XLA_FLAGS="--tf_xla_min_cluster_size=2")
    flags = out["flags"].split()
    assert flags[0] == "--tf_xla_min_cluster_size=2"
    work = dict(f.split("=", 1) for f in flags[1:])["--tf_xla_persistent_cache_directory"]
    assert os.path.dirname(work) == str(store) and os.path.basename(work).startswith(".tfgpt-work-")
    assert dict(f.split("=", 1) for f in flags[1:])["--tf_xla_persistent_cache_prefix"].startswith("tfgpt-tf")
    assert not os.path.exists(work)  # removed at exit

    mine = f"--tf_xla_persistent_cache_directory={tmp_path / 'mine'}"
    out = run_child(FLAGS, TFGPT_XLA_CACHE_DIR=store, TF_XLA_FLAGS=mine)
    assert out["flags"] == mine and out["store"] is None  # the user's own cache folder wins

    # a child inherits its parent's private folder: it gets its own instead
    parent = (f"--tf_xla_persistent_cache_directory={store}/.tfgpt-work-1-x-y "
              "--tf_xla_persistent_cache_prefix=tfgpt-tfz")
    out = run_child(FLAGS, TFGPT_XLA_CACHE_DIR=store, TF_XLA_FLAGS=parent)
    assert out["store"] == str(store) and ".tfgpt-work-1-x-y" not in out["flags"]
    assert "tfgpt-tfz" not in out["flags"]


def test_default_folder_is_under_keras_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TFGPT_XLA_CACHE_DIR"}
    env.update(subprocess_env(KERAS_HOME=tmp_path / "kh", TF_XLA_FLAGS=""))
    env.pop("TFGPT_XLA_CACHE_DIR", None)
    proc = subprocess.run([PYTHON, "-c", FLAGS], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["default"] == str(tmp_path / "kh" / "tfgpt" / "xla_cache") == out["store"]


def test_bad_switch_value_names_the_variable(tmp_path):
    proc = subprocess.run([PYTHON, "-c", "import tfgpt"], capture_output=True, text=True, timeout=120,
                          env=subprocess_env(TFGPT_XLA_CACHE="maybe", TFGPT_XLA_CACHE_DIR=tmp_path))
    assert proc.returncode != 0 and "TFGPT_XLA_CACHE='maybe'" in proc.stderr


def test_stale_private_folder_and_partial_files_are_never_loaded(tmp_path):
    store = tmp_path / "xla"
    stale = store / ".tfgpt-work-999999999-deadbeef-0000"  # a killed process's folder, half an entry in it
    stale.mkdir(parents=True)
    (stale / "tfgpt-tfX__1__2__XLA_CPU_JIT.pb").write_bytes(b"\x0a\x05half")
    (store / ".tmp-tfgpt-tfX__3__4__XLA_CPU_JIT.pb-abcd").write_bytes(b"\x0a")  # an unfinished publish
    recent = store / ".tfgpt-work-999999998-deadbeef-0001"  # another host's live process: kept
    recent.mkdir()
    os.utime(stale, (1000, 1000))  # older than a day
    first = run_child(FLAGS, TFGPT_XLA_CACHE_DIR=store)
    assert not stale.exists() and recent.exists()

    # this host's folder of a process that no longer runs: removed at once
    host = os.path.basename(dict(f.split("=", 1) for f in first["flags"].split())[
        "--tf_xla_persistent_cache_directory"]).split("-")[3]
    dead = store / f".tfgpt-work-999999999-{host}-0002"
    dead.mkdir()
    run_child(FLAGS, TFGPT_XLA_CACHE_DIR=store)
    assert not dead.exists()

    from tfgpt import compilation_cache

    assert compilation_cache.entries(store) == []


def test_prune_removes_the_oldest_first(tmp_path):
    from tfgpt import compilation_cache

    for i, name in enumerate(["a.pb", "b.pb", "c.pb"]):
        p = tmp_path / name
        p.write_bytes(b"x" * 100)
        os.utime(p, (1000 + i, 1000 + i))
    assert compilation_cache.prune(tmp_path, max_bytes=250) == ["a.pb"]
    assert [p.name for p in compilation_cache.entries(tmp_path)] == ["b.pb", "c.pb"]
    with pytest.raises(ValueError, match="max_bytes"):
        compilation_cache.enable(tmp_path, max_bytes=0)


def test_programs_folder_is_pruned_oldest_first(tmp_path):
    from tfgpt.generation import program_cache

    for i, name in enumerate(["a.mlir", "b.mlir", "c.mlir", "keep.txt"]):
        p = tmp_path / name
        p.write_bytes(b"x" * 100)
        os.utime(p, (1000 + i, 1000 + i))
    program_cache.prune_programs(tmp_path, max_bytes=150)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mlir", "keep.txt"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other key"])
def test_damaged_program_file_is_written_again(tmp_path, damage):
    store = tmp_path / "xla"
    first = run_child(GENERATE, TFGPT_XLA_CACHE_DIR=store)
    (name,) = program_files(store)
    path = store / "programs" / name
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not a program")
    else:  # a whole file written for another program
        path.write_bytes(good.replace(name[:-len(".mlir")].encode(), b"0" * (len(name) - len(".mlir")), 1))
    again = run_child(GENERATE, TFGPT_XLA_CACHE_DIR=store)
    assert again["tokens"] == first["tokens"] and again["traces"] == 1  # traced again, no crash
    assert path.read_bytes() == good  # and written whole again
    third = run_child(GENERATE, TFGPT_XLA_CACHE_DIR=store)
    assert third["tokens"] == first["tokens"] and third["traces"] == 0


def test_kept_programs_give_the_tokens_of_the_traced_program(tmp_path):
    """Sampling and beam search through the kept module: the tokens of the plain program (cache off)."""
    store = tmp_path / "xla"
    for kwargs in (dict(do_sample=True, top_k=5, top_p=0.9, temperature=0.8, seed=3),
                   dict(num_beams=3, num_return_sequences=2), dict(repetition_penalty=1.3, eos_token_id=7)):
        env = dict(TFGPT_XLA_CACHE_DIR=store, GENERATE_KWARGS=json.dumps(kwargs))
        off = run_child(GENERATE, TFGPT_XLA_CACHE="0", **env)
        cold, warm = run_child(GENERATE, **env), run_child(GENERATE, **env)
        assert off["tokens"] == cold["tokens"] == warm["tokens"], kwargs
        assert cold["traces"] == 1 and warm["traces"] == 0, kwargs


def test_program_without_a_portable_module_is_remembered(tmp_path):
    """A program whose StableHLO cannot be kept is marked once; later processes trace it as usual."""
    store = tmp_path / "xla"
    code = ("from tfgpt.generation import program_cache\n"
            "program_cache.portable_module = lambda text: None\n" + GENERATE)
    first = run_child(code, TFGPT_XLA_CACHE_DIR=store)
    (name,) = program_files(store)
    assert (store / "programs" / name).read_bytes().count(b"unsupported") == 1
    second = run_child(GENERATE, TFGPT_XLA_CACHE_DIR=store)  # the marker is read: no module is made
    assert second["tokens"] == first["tokens"] and second["traces"] == 1
    assert program_files(store) == [name]
