"""The TFLite file for on-device decoding: builtin ops only, optionally with int8 weights.

``export_tflite(model, "export/gpt.tflite")`` writes a flatbuffer with the signatures ``logits``
(the model's forward pass), ``prefill`` (the prompt, [1, S] -> last logits + the filled cache) and
``decode_step`` (one token, its cache index and the cache -> logits + the updated cache), so an app
runs the same cached decode loop as ``tfgpt.generation`` one step per call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import tensorflow as tf

from tfgpt.export.saved_model import forward_function
from tfgpt.generation import CachedForward
from tfgpt.io import atomic_write_bytes
from tfgpt.models.registry import entry_for


class TFLiteModule(tf.Module):
    """Concrete functions for the TFLite converter: logits, prefill and decode_step (batch 1).

    The cache is one float32 tensor [L, 1, 2, H, T, D] with T = ``max_length``; ``decode_step`` writes
    the token's keys and values at ``index`` and attends over positions <= index.
    """

    def __init__(self, model, max_length: Optional[int] = None):
        super().__init__(name="tfgpt_tflite")
        cfg = model.config
        self.model_variables = [v.value if hasattr(v, "value") else v for v in model.variables]
        T = cfg.n_positions if max_length is None else int(max_length)
        if not 0 < T <= cfg.n_positions:
            raise ValueError(f"max_length must be in [1, n_positions={cfg.n_positions}], got {max_length}")
        self.max_length = T
        self.cache_shape = [cfg.n_layer, 1, 2, cfg.n_head, T, cfg.n_embd // cfg.n_head]
        self.logits = forward_function(model, tf.int32, "logits")
        self.signature_names = ["logits"]
        if not entry_for(model).has_lm_head:
            return
        forward = CachedForward(model)
        cache_spec = tf.TensorSpec(self.cache_shape, tf.float32, name="cache")

        def last_logits(ids, cache, index):
            logits, cache = forward.next_logits(ids, None, cache, index)  # (1, V), [L, 1, 2, H, T, D]
            return {"logits": logits, "cache": tf.cast(cache, tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name="input_ids")])
        def prefill(input_ids):
            return last_logits(input_ids, tf.zeros(self.cache_shape, forward.dtype), 0)

        @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.int32, name="token"),
                                      tf.TensorSpec([], tf.int32, name="index"), cache_spec])
        def decode_step(token, index, cache):
            return last_logits(token, tf.cast(cache, forward.dtype), index)

        self.prefill = prefill
        self.decode_step = decode_step
        self.signature_names += ["prefill", "decode_step"]


def export_tflite(model, path, max_length: Optional[int] = None, quantize: bool = False,
                  overwrite: bool = False, allow_select_tf_ops: bool = False) -> str:
    """Write a .tflite with the ``logits``, ``prefill`` and ``decode_step`` signatures; returns the path.

    ``max_length`` (default n_positions; 1 to n_positions) is the cache length T of ``prefill`` /
    ``decode_step``; ``quantize`` stores the weights as int8 (dynamic-range quantisation). Only builtin
    TFLite ops are used unless ``allow_select_tf_ops``. An existing file is replaced only with
    ``overwrite=True``.
    """
    path = Path(os.fspath(path))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")
    module = TFLiteModule(model, max_length)
    fns = [getattr(module, n).get_concrete_function() for n in module.signature_names]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(fns, module)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return atomic_write_bytes(path, converter.convert())
