"""``generate`` inside a ``tf.function``: the decode program built into the caller's graph.

HF's XLA pattern, ``tf.function(model.generate, jit_compile=True)(input_ids=..., attention_mask=...,
max_new_tokens=...)``, and any ``model.generate`` call while a function is traced, come here: the
prompts are symbolic, so the eager request path (numpy, one compiled program per bucket) cannot run.
``max_new_tokens`` must be a Python int. The options are validated as in the eager path
(``plan_generation`` on a stand-in prompt of the same shape, 1 for an unknown dimension) and select
the same program. With a static prompt shape it is called on the prompts padded to the eager path's
buckets, so each shape traces once. A batch or length unknown at trace time (an ``input_signature``
with None) is read with ``tf.shape``: an unknown length needs ``max_new_tokens`` and runs at the
actual width P = S with N = ``max_new_tokens`` (the programs are left-padding safe); an outer
``jit_compile=True`` function compiles per concrete shape at run time. Either way the tokens equal
eager ``generate``'s.

The result is int32 [B', S + max_new_tokens] (prompt left-aligned, as eager): a symbolic call
cannot trim to the longest row, so rows that finished early hold ``pad_token_id`` after their eos.
``return_dict_in_generate`` gives the output object with ``sequences`` only. ``seed`` may be a
scalar tensor (one trace for every seed); the other options are Python values. Processors, stop
strings and stopping criteria run in the program as in eager ``generate``; ``streamer``,
``max_time``, speculative decoding and ``output_scores`` / ``output_logits`` need the eager call.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfgpt.generation.program import SEED_MODULUS
from tfgpt.models.outputs import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput


def _known_rank(x, name):
    """The shape of ``x`` as a list (None for a dimension unknown at trace time); the rank must be known."""
    shape = x.shape
    if shape.rank is None:
        raise ValueError(f"{name} needs a known rank inside tf.function, got {shape}")
    return [None if d is None else int(d) for d in shape]


def left_align_graph(ids, mask):
    """In-graph ``left_align``: each row's real tokens (mask 1) moved to the right end, in order."""
    order = tf.argsort(tf.cast(tf.equal(mask, 1), tf.int32), axis=1, stable=True)  # pads first
    return tf.gather(ids, order, batch_dims=1), tf.gather(mask, order, batch_dims=1)


@tf.autograph.experimental.do_not_convert
def symbolic_generate(model, input_ids=None, attention_mask=None, generation_config=None, logits_processor=None,
                      stopping_criteria=None, streamer=None, **kwargs):
    """``generate`` for symbolic ``input_ids`` (see the module docstring); the same arguments."""
    from tfgpt.generation.api import cached_program, plan_generation, resolve_generation_config

    if streamer is not None:
        raise ValueError("streamer is not supported when generate runs inside a tf.function (the host cannot "
                         "receive tokens while the graph runs): call generate eagerly to stream")
    for name, value in kwargs.items():
        if tf.is_tensor(value) and name != "seed":
            raise TypeError(f"{name} must be a Python value inside tf.function (it fixes the program's shapes "
                            f"or options), got a tensor")
    seed = kwargs.pop("seed", None)
    plan_seed = None if tf.is_tensor(seed) else seed
    if input_ids is None:
        input_ids = kwargs.pop("inputs", None)
    if input_ids is None:  # HF's bos start: the plan makes the prompt
        plan = plan_generation(model, None, None, generation_config, logits_processor, stopping_criteria,
                               seed=plan_seed, **kwargs)
        ids = tf.constant(plan.request.ids, tf.int32)
        shape = list(ids.shape)
    else:
        ids = tf.convert_to_tensor(input_ids)
        if not ids.dtype.is_integer:
            raise TypeError(f"input_ids must hold integer ids, got dtype {ids.dtype.name}")
        shape = _known_rank(ids, "input_ids")
        if len(shape) not in (1, 2, 3) or 0 in shape:
            raise ValueError(f"input_ids must be [batch, length] (or [batch, choices, length]), got shape {shape}")
        if shape[-1] is None and resolve_generation_config(model, generation_config, dict(kwargs))[0].max_new_tokens \
                is None:
            raise ValueError("input_ids of unknown length inside tf.function need max_new_tokens (max_length "
                             "would make the number of new tokens depend on the run-time length)")
        # The eager validation on a stand-in prompt of this shape (1 for an unknown dimension): the same
        # errors, options and, for a known length, buckets.
        plan = plan_generation(model, np.ones([d or 1 for d in shape], np.int64), None, generation_config,
                               logits_processor, stopping_criteria, seed=plan_seed, **kwargs)
    r = plan.request
    for what, bad in (("max_time", plan.host_criteria), ("speculative decoding", plan.speculative is not None),
                      ("output_scores", r.options.output_scores), ("output_logits", r.options.output_logits)):
        if bad:
            raise ValueError(f"{what} is not supported when generate runs inside a tf.function "
                             f"(call generate eagerly for it)")
    lead = shape[:2] if len(shape) == 3 else None
    width_known, batch_known = shape[-1] is not None, all(d is not None for d in shape[:-1])
    ids, dims = tf.cast(ids, tf.int32), tf.shape(ids)
    S = shape[-1] if width_known else dims[-1]
    B = int(np.prod(shape[:-1])) if batch_known else tf.reduce_prod(dims[:-1])
    ids = tf.reshape(ids, tf.stack([B, S]))
    if attention_mask is None:
        mask = tf.ones_like(ids)
    else:
        mask = tf.convert_to_tensor(attention_mask)
        if not mask.shape.is_compatible_with(shape):
            raise ValueError(f"attention_mask shape {mask.shape} differs from input_ids shape {shape}")
        mask = tf.reshape(tf.cast(mask, tf.int32), tf.shape(ids))
    params = r.params.as_tensors()
    if tf.is_tensor(seed):
        params = params._replace(seed=tf.math.floormod(tf.cast(tf.reshape(seed, []), tf.int32), SEED_MODULUS))
    ids, mask = left_align_graph(ids, mask)
    if r.options.mode == "sample" and r.num_return_sequences > 1:  # each prompt repeated, as eager
        ids, mask = (tf.repeat(x, r.num_return_sequences, axis=0) for x in (ids, mask))
    new = r.max_new_tokens
    if width_known:  # left-padded with masked zeros to the eager bucket: (B', P)
        P, N = r.prompt_bucket, r.new_bucket
        pad = [[0, 0], [P - S, 0]]
        prompt_ids, prompt_mask = tf.pad(ids, pad), tf.pad(mask, pad)
    else:  # the actual width (the programs are left-padding safe), a cache of S + max_new_tokens
        N, limit = new, model.config.n_positions
        prompt_ids, prompt_mask = ids, mask
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                S + new, limit, message=f"prompt length + max_new_tokens={new} exceeds n_positions={limit}")]):
            prompt_ids = tf.identity(prompt_ids)
    program = cached_program(model, r.options, r.batch if batch_known else None, P if width_known else None, N,
                             "graph")
    result = program(prompt_ids, prompt_mask, tf.zeros([N], tf.int32), tf.constant(new, tf.int32), params)
    if r.options.mode == "beam":
        n = r.num_return_sequences
        tokens = tf.reshape(result[0][:, :n, :new], [-1, new])  # (B * n, new): best first; pad after each length
        ids = tf.repeat(ids, n, axis=0)
    else:
        tokens = result[0][:, :new]  # (B', new): pad after the end of each row
    full = tf.concat([ids, tokens], axis=1)
    if lead is not None:
        full = tf.reshape(full, tf.stack([lead[0] if lead[0] is not None else dims[0], -1, S + new]))
    if not plan.return_dict:
        return full
    cls = GenerateBeamDecoderOnlyOutput if r.options.mode == "beam" else GenerateDecoderOnlyOutput
    return cls(sequences=full)
