"""Small file-system helpers every module shares: atomic writes, safe JSON reads, environment flags.

A write either lands whole or leaves the previous file in place: data goes to a temporary name in the
same folder, is flushed and fsynced, then renamed over the target (atomic on one file system).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, Union

PathLike = Union[str, os.PathLike]

TRUE_STRINGS = ("1", "true", "yes", "on")
FALSE_STRINGS = ("0", "false", "no", "off", "")

# Largest JSON file read as configuration (config.json, tokenizer_config.json, index files ...):
# those are kilobytes; a larger file is refused before it is parsed.
MAX_JSON_BYTES = 64 * 1024 * 1024


def env_flag(name: str, default: bool = False) -> bool:
    """The boolean environment variable ``name`` ("1/true/yes/on" or "0/false/no/off"); else ``default``."""
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in TRUE_STRINGS:
        return True
    if value in FALSE_STRINGS:
        return False
    raise ValueError(f"environment variable {name}={value!r} is not a boolean (use 1/0, true/false)")


def keras_cache_dir(cache_dir: Optional[str] = None) -> str:
    """Where ``keras.utils.get_file`` caches: ``cache_dir``, else ``$KERAS_HOME``, else ``~/.keras``."""
    if cache_dir:
        return os.path.expanduser(cache_dir)
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def fsync_dir(path: PathLike) -> None:
    """Flush a folder's entries (renames into it) to disk, where the platform allows."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: PathLike) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def atomic_write_bytes(path: PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically; returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    return path


def atomic_write_text(path: PathLike, text: str) -> str:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines kept as given); returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_text(obj: Any, indent: Optional[int] = 2, sort_keys: bool = True) -> str:
    """The JSON text tfgpt writes: UTF-8 kept as characters, a final newline."""
    return json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n"


def atomic_write_json(path: PathLike, obj: Any, indent: Optional[int] = 2, sort_keys: bool = True) -> str:
    """Write ``obj`` as JSON to ``path`` atomically; returns the path."""
    return atomic_write_text(path, json_text(obj, indent=indent, sort_keys=sort_keys))


def read_json(path: PathLike, what: str = "JSON file", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file; a missing, oversized, binary or malformed file raises an error naming it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist or is not a file")
    size = os.path.getsize(path)
    if size > max_bytes:
        raise ValueError(f"{what} {path!r} is {size} bytes, more than the {max_bytes} a JSON file may hold here")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {path!r} is not UTF-8 text: {e}") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{what} {path!r} is not valid JSON: {e}") from None


def atomic_write_dir(target: PathLike, write: Callable[[Path], Any], overwrite: bool = False) -> Path:
    """Run ``write(tmp)`` on a temporary folder beside ``target``, then move it into place.

    Readers (TF Serving polls the base folder) never see a half-written folder: the temporary name starts
    with a dot, and the final rename is atomic on one file system. An existing ``target`` is refused
    unless ``overwrite``; then it is replaced in one rename and removed afterwards.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    old = None
    try:
        write(tmp)
        if target.exists():
            if not overwrite:  # checked again: the write may have taken a while
                raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
            old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and (leftover.exists() or leftover.is_symlink()):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink()
    return target
