"""Decode programs kept on disk between processes, so a fresh process's first ``generate`` call neither
traces the program in Python nor lowers its TensorFlow graph to XLA again.

The first process that runs a program (for one model configuration, decode options and bucketed
shapes) traces it as usual, takes XLA's lowering of it as a StableHLO module whose arguments are the
program's inputs followed by the model's weights (values, not captured variables), and writes the
module to ``{XLA cache store}/programs/{key}.mlir``. Every process, that one included, then runs the
module through TensorFlow's ``XlaCallModule`` op with the model's current weights, so the XLA
executable, found in the persistent XLA cache after the first process, is the same in every process
and so are the tokens. A later process reads the file (about a megabyte at GPT-1 size), lowers the
module (a fraction of a second) and loads the executable from the XLA cache.

The key covers the tfgpt source (a hash of the package's files), TensorFlow's version, the CPU
(``compilation_cache.cache_prefix``), the model class, configuration, compute dtype and weights
(names, shapes, dtypes), the decode options and the shapes. It is on whenever tfgpt's XLA cache is
(``TFGPT_XLA_CACHE=0`` switches both off), on CPU. A file that is truncated, corrupt or written for
other weights is ignored and written again; a program whose module cannot be kept or run falls back to
the traced ``tf.function`` of this process.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
from pathlib import Path
from typing import List, Optional

import tensorflow as tf
from tensorflow.compiler.tf2xla.ops import gen_xla_ops

from tfgpt import compilation_cache
from tfgpt.io import atomic_write_bytes

FORMAT = 1
MAGIC = b"tfgpt-decode-program"
SUBDIR = "programs"
SUFFIX = ".mlir"
# XlaCallModule's semantics version for a StableHLO module with a platform list (no platform argument).
CALL_MODULE_VERSION = 9
# The programs folder is pruned (oldest files first) to this size when a program is written.
MAX_PROGRAM_BYTES = 512 * 1024 ** 2

_SOURCE = {"hash": None}


def source_fingerprint() -> str:
    """A hash of tfgpt's own Python files: a program written by other tfgpt code is never loaded."""
    if _SOURCE["hash"] is None:
        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        _SOURCE["hash"] = h.hexdigest()[:16]
    return _SOURCE["hash"]


def programs_directory() -> Optional[Path]:
    """``{store}/programs`` of tfgpt's XLA cache, or None when that cache is off."""
    store = compilation_cache.active_directory()
    return None if store is None else Path(store) / SUBDIR


def program_key(model, options, shapes) -> str:
    """The file name stem of a program: a hash of everything that shapes the compiled module."""
    parts = dict(
        format=FORMAT, source=source_fingerprint(), tf=tf.__version__, host=compilation_cache.cache_prefix(),
        model=type(model).__name__, config=model.config.to_dict(), dtype=str(model.transformer.compute_dtype),
        options=repr(options), shapes=list(shapes),
        weights=[(w.path, list(w.shape), str(w.dtype)) for w in model.weights])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def portable_module(text: str) -> Optional[bytes]:
    """TensorFlow's StableHLO text of a program, made loadable by ``XlaCallModule`` (which knows no
    ``mhlo`` dialect): ``mhlo.copy`` becomes an identity reshape and ``mhlo`` attributes (frontend
    hints, module defaults) are dropped. None when other ``mhlo`` constructs remain."""
    text = re.sub(r"mhlo\.copy (%[\w#.:]+) : (tensor<[^<>]*>)", r"stablehlo.reshape \1 : (\2) -> \2", text)
    text = re.sub(r" \{mhlo\.frontend_attributes = \{[^{}]*\}\}", "", text)
    text = re.sub(r"(module @[\w.$-]+) attributes \{[^{}]*\}", r"\1", text)
    return None if "mhlo." in text else text.encode("utf-8")


def _spec(t) -> list:
    return [t.dtype.name, [int(d) for d in t.shape]]


def _pack(module: bytes, meta: dict) -> bytes:
    header = dict(meta, format=FORMAT, sha256=hashlib.sha256(module).hexdigest())
    return MAGIC + b"\n" + json.dumps(header, sort_keys=True).encode() + b"\n" + module


def _unpack(data: bytes, key: str):
    """(module, meta) from a program file's bytes, or None when it is not a whole file for ``key``."""
    try:
        magic, header, module = data.split(b"\n", 2)
        meta = json.loads(header)
    except ValueError:
        return None
    if (magic != MAGIC or not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("key") != key
            or meta.get("sha256") != hashlib.sha256(module).hexdigest()):
        return None
    return module, meta


def prune_programs(directory: Path, max_bytes: int = MAX_PROGRAM_BYTES) -> None:
    """Remove the oldest program files of ``directory`` until they hold at most ``max_bytes``."""
    compilation_cache.prune_files(directory.glob("*" + SUFFIX), max_bytes)


class PersistentProgram:
    """A decode program run from its StableHLO module, kept on disk between processes.

    Called like the ``tf.function`` it wraps (``program(prompt_ids, prompt_mask, new_slots, max_new,
    params)``); outside eager execution, and where the module cannot be kept or run, it calls that
    ``tf.function``.
    """

    def __init__(self, model, options, shapes, fallback):
        self.model, self.options, self.shapes, self.fallback = model, options, tuple(shapes), fallback
        self.module: Optional[bytes] = None
        self.meta: Optional[dict] = None
        self.failed = False
        self.loaded = False  # True when the module came from a file another process wrote

    def __getattr__(self, name):  # the tf.function's own API (get_concrete_function, ...)
        if name == "fallback":
            raise AttributeError(name)
        return getattr(self.fallback, name)

    def path(self, key: str) -> Optional[Path]:
        directory = programs_directory()
        return None if directory is None else directory / (key + SUFFIX)

    def _load(self, key: str) -> bool:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except (OSError, AttributeError):
            return False
        found = _unpack(data, key)
        if found is None:
            return False
        self.module, self.meta = found
        self.loaded = True
        if self.meta.get("unsupported"):  # an earlier process found no portable module: trace as usual
            self.failed = True
        return True

    def _build(self, key: str, args) -> bool:
        """Trace the program (once, as the ``tf.function`` does), lower it to StableHLO and keep it."""
        concrete = self.fallback.get_concrete_function(*args)
        outputs = concrete.structured_outputs
        if not isinstance(outputs, tuple) or not all(tf.is_tensor(o) for o in outputs):
            return False
        handles = {id(w.value.handle): i for i, w in enumerate(self.model.weights)}
        order = [handles.get(id(h)) for h in concrete.captured_inputs]
        if None in order:  # a capture that is not a model weight: not a pure function of its arguments
            return False
        # every argument spelled out: the compiler-IR call does not fill in Python defaults itself
        bound = inspect.signature(self.fallback.python_function).bind(*args)
        bound.apply_defaults()
        text = self.fallback.experimental_get_compiler_ir(*bound.args, **bound.kwargs)(stage="stablehlo")
        module = portable_module(text)
        if module is None:  # remembered, so that later processes do not lower it again for nothing
            self._write(key, b"", dict(key=key, unsupported=True))
            return False
        self.module = module
        self.meta = dict(key=key, weights=order, inputs=[_spec(t) for t in tf.nest.flatten(args)],
                         outputs=[_spec(o) for o in outputs])
        self._write(key, module, self.meta)
        return True

    def _write(self, key: str, module: bytes, meta: dict) -> None:
        path = self.path(key)
        if path is not None:
            try:
                atomic_write_bytes(path, _pack(module, meta))
                prune_programs(path.parent)
            except OSError:
                pass

    def _run(self, flat: List[tf.Tensor]):
        weights = self.model.weights
        values = [tf.convert_to_tensor(weights[i].value) for i in self.meta["weights"]]
        outs = self.meta["outputs"]
        return tuple(gen_xla_ops.xla_call_module(
            list(flat) + values, version=CALL_MODULE_VERSION, module=self.module,
            Sout=[shape for _, shape in outs], Tout=[dtype for dtype, _ in outs], platforms=["CPU"]))

    def __call__(self, *args):
        if self.failed or not tf.executing_eagerly():
            return self.fallback(*args)
        flat = [tf.convert_to_tensor(t) for t in tf.nest.flatten(args)]
        if self.module is None:
            key = program_key(self.model, self.options, self.shapes)
            loaded = self._load(key)
            if self.failed:
                return self.fallback(*args)
            if not (loaded and self._fits(flat)):
                self.module = None
                if not self._build(key, args):
                    self.failed = True
                    return self.fallback(*args)
            try:
                return self._run(flat)
            except (tf.errors.OpError, ValueError, TypeError, IndexError):  # module not runnable here
                self.failed = True
                self._write(key, b"", dict(key=key, unsupported=True))
                return self.fallback(*args)
        if not self._fits(flat):
            return self.fallback(*args)
        return self._run(flat)

    def _fits(self, flat) -> bool:
        """Whether the module takes these inputs and the model's weights (a stale file does not)."""
        meta, weights = self.meta, self.model.weights
        try:
            if [_spec(t) for t in flat] != meta["inputs"]:
                return False
            return all(0 <= i < len(weights) for i in meta["weights"])
        except (KeyError, TypeError):
            return False


def wrap(model, options, shapes, program):
    """``program`` (the traced ``tf.function``) kept between processes when tfgpt's XLA cache is on and
    the program runs on CPU; else ``program`` itself."""
    if programs_directory() is None or tf.config.list_logical_devices("GPU"):
        return program
    return PersistentProgram(model, options, shapes, program)
