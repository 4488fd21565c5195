"""The one validation layer: argument, tensor and weight checks shared by models, generation,
checkpoints, export and data.

Tensor checks work in three modes. Eagerly they raise a ``ValueError`` / ``TypeError`` at once,
naming the argument and the first bad value. In a ``tf.function`` (and in SavedModel signatures)
static facts are checked while tracing and the rest become assert ops that raise
``InvalidArgumentError`` naming the argument. XLA drops assert ops, so while compiling for XLA the
``checked_*`` functions add none; ``poison`` then turns a bad row's values into NaN so the result is
visibly wrong instead of plausibly wrong, and ``check_batch`` validates a whole input batch outside
the compiled program (``fit`` / ``evaluate`` / ``predict`` run it on their data first).
"""

from __future__ import annotations

import math
import re
import numbers
from typing import Mapping

import numpy as np
import tensorflow as tf

IGNORE_INDEX = -100  # label value that the losses skip (HF's convention)
INT32_LIMIT = 2 ** 31  # ids are int32 in every program


# --- graph modes ---------------------------------------------------------------------------------------

def in_xla() -> bool:
    """True while tracing for XLA (jit_compile), where assert ops are dropped with a warning."""
    try:
        from tensorflow.python.framework import ops
        from tensorflow.python.ops import control_flow_util

        return bool(control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph()))
    except Exception:  # pragma: no cover - TensorFlow moved its private API
        return False


def graph_checks(make) -> list:
    """Run-time check ops from ``make()``, or none while compiling for XLA."""
    return [] if in_xla() else make()


def with_checks(x, checks):
    """``x``, computed only after ``checks`` passed (a no-op eagerly or without checks)."""
    if not checks or tf.executing_eagerly():
        return x
    with tf.control_dependencies(checks):
        return tf.identity(x)


def _op_name(name) -> str:
    return "check_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _eager_value(x):
    """The numpy value of an eager tensor, else None (symbolic)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (tf.Tensor, tf.Variable)) and tf.executing_eagerly() and hasattr(x, "numpy"):
        return x.numpy()
    return None


# --- Python arguments ----------------------------------------------------------------------------------

def as_int(value, name, minimum=None, maximum=None) -> int:
    """``value`` as a Python int (ints, integer numpy scalars, whole floats); TypeError otherwise."""
    if isinstance(value, (tf.Tensor, np.ndarray)) and np.ndim(value) == 0:
        value = np.asarray(value).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def as_float(value, name, finite=True) -> float:
    """``value`` as a Python float; TypeError for non-numbers, ValueError for NaN/inf when ``finite``."""
    if isinstance(value, (tf.Tensor, np.ndarray)) and np.ndim(value) == 0:
        value = np.asarray(value).item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if finite and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def check_token_id(value, vocab_size, name) -> int:
    """A single token id in [0, vocab_size)."""
    value = as_int(value, name)
    if not 0 <= value < vocab_size:
        raise ValueError(f"{name} {value} outside [0, vocab_size={vocab_size})")
    return value


def stop_string_list(value, name="stop_strings") -> tuple:
    """HF's ``stop_strings`` (one string or a non-empty list of them, none empty) as a tuple of str."""
    strings = [value] if isinstance(value, str) else value
    if not isinstance(strings, (list, tuple)) or not strings or any(not isinstance(s, str) or not s for s in strings):
        raise ValueError(f"{name} must be a non-empty string or list of them, got {value!r}")
    return tuple(strings)


# --- tensors -------------------------------------------------------------------------------------------

def check_not_text(x, name):
    """Strings, None and lists holding them where token ids are expected: a TypeError naming ``name``."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be numeric token ids, got a string {x!r:.40}; tokenize it first")
    if isinstance(x, (list, tuple)):
        if any(hasattr(v, "shape") and hasattr(v, "dtype") for v in x):
            return  # a list of tensors (None for inputs left out): HF's list-of-inputs convention
        stack = list(x)
        while stack:
            v = stack.pop()
            if isinstance(v, (list, tuple)):
                stack.extend(v)
            elif v is None:
                raise TypeError(f"{name} holds None where a token id is expected")
            elif isinstance(v, (str, bytes)):
                raise TypeError(f"{name} must be numeric token ids, got the string {v!r:.40}")
            elif not isinstance(v, numbers.Number):
                return  # a list of tensors: HF's list-of-inputs convention
        try:
            np.asarray(x)
        except ValueError:
            raise TypeError(f"{name} must be a rectangular array of token ids; rows of different "
                            f"lengths need padding (and an attention_mask)") from None


def to_tensor(x, name, allow_bool=False):
    """``x`` as a numeric tensor; strings, None entries and ragged lists raise a TypeError naming it."""
    check_not_text(x, name)
    try:
        t = x if isinstance(x, (tf.Tensor, tf.Variable)) else tf.convert_to_tensor(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{name} must be a rectangular array of numbers, got {type(x).__name__} "
                        f"({str(e).splitlines()[0][:120]})") from None
    if t.dtype == tf.string:
        raise TypeError(f"{name} must be numeric token ids, got strings; tokenize them first")
    if t.dtype == tf.bool and not allow_bool:
        raise TypeError(f"{name} must be integer ids, got dtype bool")
    if not (t.dtype.is_integer or t.dtype.is_floating or t.dtype == tf.bool):
        raise TypeError(f"{name} must be integer ids, got dtype {t.dtype.name}")
    return t


def check_range(x, low, high, name, what, ignore=None) -> list:
    """Values of ``x`` must lie in [low, high) (or equal ``ignore``): ValueError eagerly, assert ops
    in a graph, nothing under XLA."""
    arr = _eager_value(x)
    if arr is not None:
        if arr.size and not (arr.min() >= low and arr.max() < high):  # min/max: no mask when all good
            bad = (arr < low) | (arr >= high)
            if ignore is not None:
                bad &= arr != ignore
            if bad.any():
                value = arr[bad].ravel()[0]
                value = int(value) if float(value).is_integer() else float(value)
                also = f" or {ignore}" if ignore is not None else ""
                raise ValueError(f"{name} holds {value}, outside [{low}, {high}){also} ({what})")
        return []

    def make():
        x_ = tf.convert_to_tensor(x)
        ok = tf.ones_like(x_, tf.bool)
        # a bound outside the dtype's range holds trivially (and would wrap if cast)
        if not x_.dtype.is_integer or low > x_.dtype.min:
            ok = tf.logical_and(ok, x_ >= tf.cast(low, x_.dtype))
        if not x_.dtype.is_integer or not isinstance(high, int) or high <= x_.dtype.max:
            ok = tf.logical_and(ok, x_ < tf.cast(high, x_.dtype))
        if ignore is not None:
            ok = tf.logical_or(ok, tf.equal(x_, tf.cast(ignore, x_.dtype)))
        return [tf.debugging.Assert(tf.reduce_all(ok), [
            f"{name} outside [{low}, {high}) ({what}); first bad value:",
            tf.boolean_mask(x_, tf.logical_not(ok))[:1]], name=_op_name(name))]
    return graph_checks(make)


def check_whole(x, name) -> list:
    """Float ``x`` must hold whole numbers (float ids would be truncated)."""
    if not (x.dtype.kind == "f" if isinstance(x, np.ndarray) else x.dtype.is_floating):
        return []
    arr = _eager_value(x)
    if arr is not None:
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            raise ValueError(f"{name} holds {arr[bad].ravel()[0]}, not a whole number "
                             f"(ids must be integers; a float id would be truncated)")
        return []
    return graph_checks(lambda: [tf.debugging.assert_equal(
        x, tf.round(x), message=f"{name} holds a value that is not a whole number")])


def checked_ids(x, name, low=0, high=INT32_LIMIT, what="int32 range", ignore=None):
    """``x`` as int32 ids, after checking dtype (no strings, whole numbers), range [low, high) (or
    ``ignore``) on the original dtype, so int64 values past int32 cannot wrap."""
    if x is None:
        return None
    t = to_tensor(x, name)
    checks = check_whole(t, name) + check_range(t, low, high, name, what, ignore=ignore)
    if t.dtype != tf.int32:
        t = tf.cast(t, tf.int32)
    return with_checks(t, checks)


def checked_mask(x, name="attention_mask"):
    """An attention mask: only 0 (padding) and 1 (token), as ints, floats or bools."""
    t = to_tensor(x, name, allow_bool=True)
    if t.dtype == tf.bool:
        return t
    arr = _eager_value(t)
    if arr is not None:
        _check_mask_values(arr, name)
        return t
    return with_checks(t, graph_checks(lambda: [tf.debugging.Assert(
        tf.reduce_all(tf.logical_or(tf.equal(t, 0), tf.equal(t, 1))),
        [f"{name} must hold only 0 (padding) and 1 (real token)"], name=_op_name(name))]))


def _check_mask_values(arr, name):
    if arr.size and not (arr.min() >= 0 and arr.max() <= 1 and arr.dtype.kind in "iub"):
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            raise ValueError(f"{name} holds {arr[bad].ravel()[0]}; it must hold only 0 (padding) "
                             f"and 1 (real token)")


def check_shape(x, expected, name, expected_name) -> list:
    """``x`` must have the shape ``expected`` (a list or 1-D int tensor); static check first."""
    want = tf.get_static_value(expected) if isinstance(expected, tf.Tensor) else expected
    if x.shape.is_fully_defined() and want is not None and all(w is not None for w in want):
        want = [int(v) for v in want]
        if list(x.shape) != want:
            raise ValueError(f"{name} has shape {list(x.shape)}, expected {want} ({expected_name})")
        return []
    if x.shape.rank is not None and want is not None and len(want) != x.shape.rank:
        raise ValueError(f"{name} has rank {x.shape.rank}, expected shape {list(want)} ({expected_name})")
    return graph_checks(lambda: [tf.debugging.assert_equal(
        tf.shape(x), tf.cast(expected, tf.int32),
        message=f"{name} shape does not match {expected_name}")])


def check_like_input(x, ref_static, ref_shape, name, ref_name) -> list:
    """``x`` must have the input's shape ``ref`` or be one row [1, S] shared by the batch (HF adds
    such position / token-type embeddings by broadcasting)."""
    if x.shape.is_fully_defined() and ref_static.is_fully_defined():
        shape, ref = list(x.shape), list(ref_static)
        if shape != ref and not (shape and shape[-1] == ref[-1] and int(np.prod(shape[:-1])) == 1):
            raise ValueError(f"{name} has shape {shape}, expected {ref} ({ref_name}) or [1, {ref[-1]}]")
        return []

    def make():
        shape = tf.shape(x)
        rows, ref_rows = tf.reduce_prod(shape[:-1]), tf.reduce_prod(ref_shape[:-1])
        ok = tf.logical_and(tf.equal(shape[-1], ref_shape[-1]),
                            tf.logical_or(tf.equal(rows, ref_rows), tf.equal(rows, 1)))
        return [tf.debugging.Assert(ok, [f"{name} shape does not match {ref_name}:", shape, ref_shape],
                                    name=_op_name(name + "_shape"))]
    return graph_checks(make)


def check_static_rank(x, ranks, name, what):
    """``x``'s rank (when known) must be one of ``ranks``."""
    if x.shape.rank is not None and x.shape.rank not in ranks:
        raise ValueError(f"{name} has rank {x.shape.rank} (shape {list(x.shape)}), expected {what}")


def check_positive_length(length, static_length, name, what) -> list:
    """A sequence dimension must not be empty (an empty one gives empty logits and a 0 loss)."""
    if static_length is not None:
        if static_length < 1:
            raise ValueError(f"{name} has an empty {what} (length 0): pass at least one token")
        return []
    return graph_checks(lambda: [tf.debugging.assert_positive(
        length, message=f"{name} has an empty {what} (length 0)")])


def poison(x, ok):
    """``x`` with NaN wherever the batch row ``ok`` [B] is False: under XLA, where asserts vanish,
    a bad row then shows as NaN instead of clamped, plausible numbers. x [B, ...] float."""
    shape = tf.concat([tf.shape(ok), tf.ones([tf.rank(x) - 1], tf.int32)], 0)
    bias = tf.where(tf.reshape(ok, shape), 0.0, float("nan"))
    return x + tf.cast(bias, x.dtype)


def rows_in_range(x, low, high):
    """[B] bool: every value of row b of the 2-D ``x`` lies in [low, high)."""
    return tf.reduce_all(tf.logical_and(x >= low, x < high), axis=-1)


# --- whole batches (outside compiled programs) -----------------------------------------------------------

def batch_rules(config) -> dict:
    """Input name -> (low, high, what, ignore) for the id-valued model inputs of ``config``."""
    v, p = int(config.vocab_size), int(config.n_positions)
    return {
        "input_ids": (0, v, f"vocab_size={v}", None),
        "token_type_ids": (0, v, "token types index the token table", None),
        "position_ids": (0, p, f"n_positions={p}", None),
        "labels": (0, v, f"vocab_size={v}", IGNORE_INDEX),
    }


def check_batch(config, x, y=None, num_labels=None):
    """Check one batch (dict / tensor inputs, optional labels) with assert ops or eagerly.

    Used on the data of ``fit`` / ``evaluate`` / ``predict`` when the step is XLA-compiled: ids in
    the vocabulary, positions and sequence lengths within n_positions, masks of 0/1, labels in range.
    Returns the checks (empty eagerly: bad values raise at once).
    """
    rules = batch_rules(config)
    if num_labels is not None:
        rules["labels"] = (0, int(num_labels), f"num_labels={num_labels}", IGNORE_INDEX)
    checks = []
    items = dict(x) if isinstance(x, Mapping) else ({"input_ids": x} if x is not None else {})
    if y is not None and not isinstance(y, Mapping):
        y = {"labels": y}
    for key, value in list(items.items()) + list((y or {}).items()):
        if value is None or not hasattr(value, "dtype") and not isinstance(value, (list, np.ndarray)):
            continue
        if key == "attention_mask":
            if isinstance(value, np.ndarray) and value.dtype.kind in "iufb":
                _check_mask_values(value, key)
            else:
                t = checked_mask(value)
                checks += [t] if not tf.executing_eagerly() else []
            continue
        if key not in rules or (key == "labels" and getattr(config, "problem_type", None) in (
                "regression", "multi_label_classification")):
            continue
        t = value if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" else to_tensor(value, key)
        is_float = t.dtype.kind == "f" if isinstance(t, np.ndarray) else t.dtype.is_floating
        if key == "labels" and num_labels is not None and (num_labels == 1 or is_float):
            continue  # regression / multi-label targets are not class ids
        low, high, what, ignore = rules[key]
        checks += check_whole(t, key) + check_range(t, low, high, key, what, ignore=ignore)
        if key == "input_ids" and (t.ndim if isinstance(t, np.ndarray) else t.shape.rank):
            length = t.shape[-1]
            n = int(config.n_positions)
            if length is not None and length > n:
                raise ValueError(f"input_ids: sequence length {length} is longer than n_positions={n}")
            if length is None:
                checks.append(tf.debugging.assert_less_equal(
                    tf.shape(t)[-1], n, message=f"input_ids: sequence longer than n_positions={n}"))
    return checks


def check_dataset(dataset, config, num_labels=None):
    """``dataset`` with every element passed through ``check_batch`` (a cheap map, outside XLA)."""
    def check(*element):
        x, y = element[0], (element[1] if len(element) > 1 else None)
        checks = check_batch(config, x, y, num_labels=num_labels)
        with tf.control_dependencies(checks):
            out = tf.nest.map_structure(tf.identity, element)
        return out if len(out) > 1 else out[0]

    return dataset.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


# --- weights -------------------------------------------------------------------------------------------

def check_finite_weights(name, value, source, allow=False):
    """A weight array must hold only finite numbers (NaN/inf would load silently and poison every
    output): a ValueError naming the tensor unless ``allow``."""
    if allow:
        return
    arr = np.asarray(value)
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return
    finite = np.isfinite(arr)
    if not finite.all():
        count = int(arr.size - finite.sum())
        first = arr[~finite].ravel()[0]
        raise ValueError(f"{name} in the {source} holds {count} non-finite value(s) (first: {first}); "
                         f"the checkpoint is corrupt. Pass allow_nonfinite_weights=True to load it anyway")
