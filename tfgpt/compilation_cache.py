"""Persistent XLA compilation cache: compiled programs (``generate``'s decode loop, training steps) are
kept on disk and loaded by later processes instead of being compiled again.

TensorFlow's own cache does the work (``--tf_xla_persistent_cache_directory`` in ``TF_XLA_FLAGS``, for
every ``jit_compile=True`` function); this module chooses the folder, keeps its files whole and bounds
its size. ``import tfgpt`` switches it on, under ``{$KERAS_HOME or ~/.keras}/tfgpt/xla_cache``:

- ``TFGPT_XLA_CACHE=0`` turns it off; ``TFGPT_XLA_CACHE_DIR=/path`` picks the folder.
- A persistent-cache folder the user already put in ``TF_XLA_FLAGS`` wins; other flags there are kept.
- TensorFlow reads ``TF_XLA_FLAGS`` once, when it runs its first op (``import tensorflow`` alone does
  not): import tfgpt before running TensorFlow ops, or call :func:`enable` before them.

TensorFlow writes an entry in place, not atomically, and a truncated entry makes every later call of
that program fail. So each process works in a private folder beside the store: complete entries are
hard-linked in when the cache is switched on, and the entries the process compiled are published into
the store by an atomic rename (at exit, or by :func:`publish`). Entry names carry TensorFlow's version
and a fingerprint of this CPU, so an upgraded TensorFlow or a home folder shared between different
machines never loads a foreign executable.

An entry is keyed by the traced function (its name includes a per-process counter) and its HLO, so it
is found again by a process that traces the same programs in the same order (a script, a server, the
CLI); a process that traced other functions first compiles afresh and adds an entry. For such
functions the trace (Python building the graph) and TensorFlow's lowering of it to HLO run in every
process; the cache saves XLA's compile. ``generate``'s decode programs go further
(``tfgpt.generation.program_cache``): their StableHLO modules are kept in ``{store}/programs`` and run
through ``XlaCallModule``, whose entries are keyed by the module alone, so a later process traces and
lowers nothing and its first call costs the module's load plus the run. Loading an entry, TensorFlow logs two harmless lines at error level (it
first tries to parse the entry as text, "Error parsing text-format tensorflow.XlaSerializedCacheEntry";
on some CPUs the loader names a tuning feature such as +prefer-no-gather); TF_CPP_MIN_LOG_LEVEL=3
hides them.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import platform
import shutil
import time
import uuid
import warnings
from importlib import metadata
from pathlib import Path
from typing import Iterable, List, Optional

from tfgpt.io import PathLike, env_flag, fsync_dir, keras_cache_dir

ENV_SWITCH = "TFGPT_XLA_CACHE"
ENV_DIR = "TFGPT_XLA_CACHE_DIR"
TF_XLA_FLAGS = "TF_XLA_FLAGS"
DIR_FLAG = "--tf_xla_persistent_cache_directory"
PREFIX_FLAG = "--tf_xla_persistent_cache_prefix"

# The store is pruned (oldest entries first) to this size when entries are published; one decode
# program of the small benchmark size is 1.2 MB.
MAX_CACHE_BYTES = 2 * 1024 ** 3
ENTRY_SUFFIX = ".pb"
WORK_PREFIX = ".tfgpt-work-"
# A private folder left by a process that was killed is removed once it is this old.
STALE_WORK_SECONDS = 24 * 3600

_STATE = {"store": None, "work": None, "published": [], "registered": False}


def default_directory() -> str:
    """``{$KERAS_HOME or ~/.keras}/tfgpt/xla_cache``, or ``$TFGPT_XLA_CACHE_DIR`` when set."""
    override = os.environ.get(ENV_DIR)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    return os.path.join(keras_cache_dir(), "tfgpt", "xla_cache")


def _host_fingerprint() -> str:
    """Twelve hex digits naming this CPU's model and instruction-set flags (the first core's)."""
    parts = [platform.system(), platform.machine(), platform.processor()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip() and len(parts) > 3:
                    break
                if line.split(":", 1)[0].strip() in ("model name", "flags", "Features", "CPU part"):
                    parts.append(line.strip())
    except OSError:
        pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def cache_prefix() -> str:
    """The entry-name prefix: TensorFlow's version and this CPU, e.g. ``tfgpt-tf2.21.0-3f2a...``."""
    version = "unknown"
    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    safe = "".join(c if c.isalnum() or c in "._" else "_" for c in version)
    return f"tfgpt-tf{safe}-{_host_fingerprint()}"


def _split_flags(value: str) -> List[str]:
    return value.split()


def _flag_value(flags: List[str], name: str) -> Optional[str]:
    for token in flags:
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    return None


def _is_ours(flags: List[str]) -> bool:
    """Whether the persistent-cache folder in ``flags`` is a private folder set by tfgpt (inherited
    from a parent process), rather than one the user chose."""
    value = _flag_value(flags, DIR_FLAG)
    return value is not None and os.path.basename(os.path.normpath(value)).startswith(WORK_PREFIX)


def _without_ours(flags: List[str]) -> List[str]:
    return [t for t in flags if not t.startswith(DIR_FLAG + "=")
            and not (t.startswith(PREFIX_FLAG + "=") and t.split("=", 1)[1].startswith("tfgpt-"))]


def entries(directory: Optional[PathLike] = None) -> List[Path]:
    """The complete entries in the store ``directory`` (default: :func:`default_directory`), by name."""
    root = Path(directory if directory is not None else default_directory())
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir()
                  if p.is_file() and p.name.endswith(ENTRY_SUFFIX) and not p.name.startswith("."))


def _host_tag() -> str:
    return hashlib.sha256(platform.node().encode()).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would stop the process there; such folders go by age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _remove_stale_work_dirs(store: Path) -> None:
    """Private folders of processes that ended without cleaning up (killed). A folder is named
    ``.tfgpt-work-{pid}-{host}-{random}``; another host's folders are removed only by age."""
    now, host = time.time(), _host_tag()
    for p in store.iterdir():
        if not (p.is_dir() and p.name.startswith(WORK_PREFIX)):
            continue
        try:
            pid, owner = p.name[len(WORK_PREFIX):].split("-")[:2]
            age = now - p.stat().st_mtime
            dead = owner == host and not _pid_alive(int(pid))
        except (ValueError, OSError):
            continue
        if dead or age > STALE_WORK_SECONDS:
            shutil.rmtree(p, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` a whole copy of ``src`` in one rename (a hard link where the file system allows)."""
    tmp = dst.parent / f".tmp-{dst.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    try:
        os.replace(tmp, dst)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def enable(directory: Optional[PathLike] = None, max_bytes: int = MAX_CACHE_BYTES) -> Optional[str]:
    """Switch the cache on with the store ``directory`` (default :func:`default_directory`).

    Returns the private folder TensorFlow will use, or None when the user's own
    ``--tf_xla_persistent_cache_directory`` is in ``TF_XLA_FLAGS`` (theirs is kept) or the store
    cannot be written (a warning says why). Takes effect only if TensorFlow has run no op yet.
    """
    if not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    flags = _split_flags(os.environ.get(TF_XLA_FLAGS, ""))
    if _flag_value(flags, DIR_FLAG) is not None and not _is_ours(flags):
        return None
    flags = _without_ours(flags)
    if _STATE["work"] is not None:
        _finish()
    store = Path(os.path.abspath(os.path.expanduser(os.fspath(directory if directory is not None
                                                              else default_directory()))))
    users_prefix = _flag_value(flags, PREFIX_FLAG)
    prefix = users_prefix or cache_prefix()
    try:
        store.mkdir(parents=True, exist_ok=True)
        _remove_stale_work_dirs(store)
        work = store / f"{WORK_PREFIX}{os.getpid()}-{_host_tag()}-{uuid.uuid4().hex[:8]}"
        work.mkdir()
        for entry in entries(store):
            if entry.name.startswith(prefix):
                _link_or_copy(entry, work / entry.name)
    except OSError as e:
        warnings.warn(f"XLA compilation cache not used: cannot write {store} ({e}); "
                      f"set {ENV_DIR} to a writable folder or {ENV_SWITCH}=0", RuntimeWarning, stacklevel=2)
        os.environ[TF_XLA_FLAGS] = " ".join(flags)
        return None
    flags.append(f"{DIR_FLAG}={work}")
    if users_prefix is None:
        flags.append(f"{PREFIX_FLAG}={prefix}")
    os.environ[TF_XLA_FLAGS] = " ".join(flags)
    _STATE.update(store=store, work=work, max_bytes=max_bytes, published=[])
    if not _STATE["registered"]:
        atexit.register(_finish)
        _STATE["registered"] = True
    return str(work)


def active_directory() -> Optional[str]:
    """The store this process publishes into, or None when tfgpt's cache is off."""
    return None if _STATE["store"] is None else str(_STATE["store"])


def _pending() -> List[str]:
    """Entries in the private folder that the store lacks: compiled here and not yet published."""
    work, store = _STATE["work"], _STATE["store"]
    if work is None or not work.is_dir():
        return []
    return sorted(p.name for p in work.iterdir() if p.is_file() and p.name.endswith(ENTRY_SUFFIX)
                  and not p.name.startswith(".") and not (store / p.name).exists())


def compiled_entries() -> List[str]:
    """Names of the entries this process compiled and wrote (a program found in the cache adds none)."""
    return sorted(set(_STATE["published"]) | set(_pending()))


def publish() -> List[str]:
    """Publish the entries this process compiled into the store (one rename each); returns their names.

    Runs at exit; a long-lived process may call it after its first calls so that others find them.
    """
    work, store = _STATE["work"], _STATE["store"]
    if work is None or not work.is_dir():
        return []
    done = []
    for name in _pending():
        try:
            _link_or_copy(work / name, store / name)
        except OSError:
            continue
        done.append(name)
    _STATE["published"].extend(done)
    if done:
        fsync_dir(store)
        prune(store, _STATE.get("max_bytes", MAX_CACHE_BYTES))
    return done


def prune(directory: PathLike, max_bytes: int = MAX_CACHE_BYTES) -> List[str]:
    """Remove the oldest entries until the store holds at most ``max_bytes``; returns their names."""
    return prune_files(entries(directory), max_bytes)


def prune_files(paths: Iterable[Path], max_bytes: int) -> List[str]:
    """Remove the oldest of ``paths`` until the rest hold at most ``max_bytes``; returns their names.

    Files that vanish or cannot be removed meanwhile (another process pruning) are skipped."""
    found = []
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        found.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in found)
    removed = []
    for _, size, p in sorted(found, key=lambda t: t[0]):
        if total <= max_bytes:
            break
        try:
            p.unlink()
        except OSError:
            continue
        total -= size
        removed.append(p.name)
    return removed


def _finish() -> None:
    """Publish this process's entries and remove its private folder."""
    work = _STATE["work"]
    if work is None:
        return
    try:
        publish()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _STATE.update(store=None, work=None)


def configure_from_env() -> Optional[str]:
    """What ``import tfgpt`` runs: :func:`enable` unless ``TFGPT_XLA_CACHE`` is off, where tfgpt's
    flags inherited from a parent process are removed."""
    if env_flag(ENV_SWITCH, default=True):
        return enable()
    flags = _split_flags(os.environ.get(TF_XLA_FLAGS, ""))
    if _is_ours(flags):
        os.environ[TF_XLA_FLAGS] = " ".join(_without_ours(flags))
    return None
