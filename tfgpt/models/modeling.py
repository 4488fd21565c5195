"""TFOpenAIGPTMainLayer and the four GPT-1 models (base, LM head, double heads, sequence classification).

Names, arguments and numerics follow HF transformers' ``TFOpenAIGPT*`` classes; the models are Keras 3
``keras.Model`` subclasses, so ``compile``/``fit``/``predict``/``save`` work as usual. One forward pass
serves training, scoring and cached decoding: ``cache``/``cache_index`` are optional arguments of the
same blocks.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from typing import Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from tfgpt import validation
from tfgpt.models.configuration import OpenAIGPTConfig
from tfgpt.models.layers import MASK_VALUE, Block, Dropout, no_remat, position_embedding, token_embedding
from tfgpt.models.outputs import (
    TFBaseModelOutput,
    TFCausalLMOutput,
    TFOpenAIGPTDoubleHeadsModelOutput,
    TFSequenceClassifierOutput,
)

IGNORE_INDEX = validation.IGNORE_INDEX

logger = logging.getLogger(__name__)

# Call parameters in signature order (HF's order; tfgpt's cache arguments last).
_MAIN_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask",
                "inputs_embeds", "output_attentions", "output_hidden_states", "return_dict", "training",
                "cache", "cache_index")


# --- input handling --------------------------------------------------------------------------------

def _is_tensor_like(x):
    return isinstance(x, (tf.Tensor, tf.Variable, np.ndarray, keras.KerasTensor)) or (
        hasattr(x, "shape") and hasattr(x, "dtype")
    )


def _is_input_list(first) -> bool:
    """A list/tuple of call arguments by position (HF): a tensor first, then tensors, None or bools."""
    return (isinstance(first, (list, tuple)) and len(first) > 0 and _is_tensor_like(first[0])
            and all(v is None or isinstance(v, bool) or _is_tensor_like(v) for v in first))


def _is_flag(value) -> bool:
    return value is None or isinstance(value, (bool, np.bool_))


def split_call_flags(call, args, kwargs):
    """Move the flags and ``None`` entries of a dict or list first argument into keyword arguments.

    HF lets ``model({"input_ids": ids, "output_attentions": True, "training": False})`` and
    ``model([ids, mask, None, ..., True])`` through; Keras' ``__call__`` accepts only tensors inside
    a positional argument, so the models' ``__call__`` splits them off first. List entries are named
    by ``call``'s signature. A flag also given as a different keyword raises a ValueError.
    """
    if not args:
        return args, kwargs
    first = args[0]
    if isinstance(first, (list, tuple)) and _is_input_list(first) and any(_is_flag(v) for v in first):
        names = list(inspect.signature(call).parameters)
        if len(first) > len(names):
            raise ValueError(f"got {len(first)} positional inputs, at most {len(names)} expected: {names}")
        first = dict(zip(names, first))
    if not isinstance(first, Mapping) or not any(_is_flag(v) for v in first.values()):
        return args, kwargs
    kwargs = dict(kwargs)
    for key, value in first.items():
        if value is None or not _is_flag(value):
            continue
        value = bool(value)
        if kwargs.get(key) is not None and kwargs[key] is not value and not (
                key == "training" and kwargs[key] is False):
            raise ValueError(f"input {key!r} given both in the inputs ({value}) and as a keyword ({kwargs[key]})")
        kwargs[key] = value
    tensors = {k: v for k, v in first.items() if not _is_flag(v)}
    return (tensors,) + tuple(args[1:]), kwargs


def _unset(name, value) -> bool:
    return value is None or (name == "training" and value is False)


def unpack_inputs(names, first, kwargs):
    """Merge a dict / list / tensor first argument with keyword arguments (HF's ``input_processing``).

    ``names`` are the call's parameters in signature order (``input_ids`` first, ``training`` and the
    cache arguments included), ``kwargs`` the values passed for the others. A dict is matched by key,
    a list or tuple by position; either may carry the flags (``output_attentions``,
    ``output_hidden_states``, ``return_dict``, ``training``) and ``None`` entries (unset). Anything
    else is ``names[0]``. An unknown key, or a value given twice with different values, raises a
    ValueError naming the input. Returns every name; ``training`` is a bool.
    """
    values = dict.fromkeys(names)
    for key, value in kwargs.items():
        if key not in values:
            raise TypeError(f"unexpected argument {key!r}; expected {list(names)}")
        values[key] = None if _unset(key, value) else value

    def put(key, value, where):
        if _unset(key, value):
            return
        if values[key] is not None:
            if isinstance(value, bool) and values[key] is value:
                return
            raise ValueError(f"input {key!r} given both in the input {where} and as a keyword")
        values[key] = value

    if isinstance(first, Mapping):
        for key, value in first.items():
            if key not in values:
                raise ValueError(f"unknown input {key!r}; expected one of {list(names)}")
            put(key, value, "dict")
    elif _is_input_list(first):
        if len(first) > len(names):
            raise ValueError(f"got {len(first)} positional inputs, at most {len(names)} expected: {list(names)}")
        for key, value in zip(names, first):
            put(key, value, "list")
    elif first is not None:
        if values[names[0]] is not None:
            raise ValueError(f"input {names[0]!r} given twice")
        values[names[0]] = first
    if "training" in values:
        values["training"] = bool(values["training"])
    return values


def _int_tensor(x, name, low=0, high=validation.INT32_LIMIT, what="int32 range", ignore=None):
    """int32 ids after the validation layer's checks (strings, fractions, range)."""
    return validation.checked_ids(x, name, low, high, what, ignore=ignore)


def positions_from_mask(mask):
    """Position ids [B, T] that count only real tokens (mask == 1), so left padding does not shift them.

    Padding after the last real token keeps counting (right padding gives ``range(T)``, as without a
    mask); padding before the first real token gets 0.
    """
    mask = tf.cast(mask, tf.int32)
    count = tf.cumsum(mask, axis=-1)
    leading = tf.reduce_sum(tf.cast(tf.equal(count, 0), tf.int32), axis=-1, keepdims=True)
    steps = tf.range(tf.shape(mask)[-1], dtype=tf.int32)[None, :]
    return tf.where(mask > 0, count - 1, tf.maximum(steps - leading, 0))


def _as_config(config) -> OpenAIGPTConfig:
    if isinstance(config, OpenAIGPTConfig):
        return config
    if isinstance(config, Mapping):
        return OpenAIGPTConfig.from_dict(dict(config))
    raise TypeError(f"config must be an OpenAIGPTConfig or a dict, got {type(config).__name__}")


def _flag(value, default):
    return default if value is None else bool(value)


# --- the main layer --------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="tfgpt")
class TFOpenAIGPTMainLayer(keras.layers.Layer):
    """Embeddings and the stack of post-LN blocks; returns hidden states (no final layer norm).

    Call with ``input_ids`` [..., S] (or ``inputs_embeds`` [..., S, E]); leading dims are flattened for
    the blocks and restored in the outputs. For cached decoding pass ``cache`` (a list of per-layer
    [B, 2, H, T, D] tensors or (keys, values) pairs of [B, H, T, D] tensors, or one stacked
    [L, B, 2, H, T, D] tensor; the updated cache comes back in the same form) and ``cache_index``
    (where this call's tokens go); ``attention_mask`` then covers the whole cache, [B, T].
    """

    _keras_serializable = True  # HF's @keras_serializable marker (its tests look for it)

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "transformer")
        super().__init__(**kwargs)
        self.config = _as_config(config)
        c = self.config
        self.num_hidden_layers = c.n_layer
        self.n_embd = c.n_embd
        with no_remat():
            self.tokens_embed = token_embedding(c.vocab_size, c.n_embd, c.initializer_range,
                                                self.dtype_policy)
            self.positions_embed = position_embedding(c.n_positions, c.n_embd, c.initializer_range,
                                                      self.dtype_policy)
            self.drop = Dropout(c.embd_pdrop, name="drop", dtype=self.dtype_policy)
        self.h = [Block(c, name=f"h_._{i}", dtype=self.dtype_policy) for i in range(c.n_layer)]

    def __call__(self, *args, **kwargs):
        # Keras refuses non-tensor positional arguments with a message that does not name the input.
        if args:
            validation.check_not_text(args[0], "input_ids")
        args, kwargs = split_call_flags(self.call, args, kwargs)
        return super().__call__(*args, **kwargs)

    def build(self, input_shape=None):
        self.tokens_embed.build((None, None))
        self.positions_embed.build((None, None))
        for block in self.h:
            block.build()
        self.built = True

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    def rematerialized_call(self, layer_call, *args, **kwargs):
        """Under ``keras.RematScope`` the blocks and their layers are rematerialized, not the whole
        stack (recomputing everything in the backward pass would keep every activation anyway)."""
        return layer_call

    def get_input_embeddings(self):
        return self.tokens_embed

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False, cache=None, cache_index=None):
        v = unpack_inputs(_MAIN_INPUTS, input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, training=training,
            cache=cache, cache_index=cache_index))
        return self._forward(**v)

    def _forward(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                 inputs_embeds, output_attentions, output_hidden_states, return_dict, training,
                 cache, cache_index):
        c = self.config
        output_attentions = _flag(output_attentions, c.output_attentions)
        output_hidden_states = _flag(output_hidden_states, c.output_hidden_states)
        return_dict = _flag(return_dict, c.return_dict)
        if input_ids is not None and inputs_embeds is not None:
            raise ValueError("pass either input_ids or inputs_embeds, not both")
        if input_ids is None and inputs_embeds is None:
            raise ValueError("pass input_ids or inputs_embeds")
        checks = []
        xla = validation.in_xla()
        row_ok = None  # under XLA: [B] bool, False on rows with out-of-range ids (they become NaN)
        if input_ids is not None:
            input_ids = _int_tensor(input_ids, "input_ids", 0, c.vocab_size, f"vocab_size={c.vocab_size}")
            if input_ids.shape.rank == 0:
                raise ValueError("input_ids must have at least one dimension [..., sequence]")
            input_shape = tf.shape(input_ids)
            static_shape = input_ids.shape
            ids = tf.reshape(input_ids, [-1, input_shape[-1]])  # (B, S)
            if xla:
                row_ok = validation.rows_in_range(ids, 0, c.vocab_size)
        else:
            inputs_embeds = tf.convert_to_tensor(inputs_embeds)
            if inputs_embeds.shape.rank is not None and inputs_embeds.shape.rank < 2:
                raise ValueError("inputs_embeds must have shape [..., sequence, n_embd]")
            if inputs_embeds.shape[-1] is not None and inputs_embeds.shape[-1] != c.n_embd:
                raise ValueError(f"inputs_embeds last dim is {inputs_embeds.shape[-1]}, expected n_embd={c.n_embd}")
            input_shape = tf.shape(inputs_embeds)[:-1]
            static_shape = inputs_embeds.shape[:-1]
            ids = None
        seq_len = input_shape[-1]
        source = "input_ids" if ids is not None else "inputs_embeds"
        checks += validation.check_positive_length(seq_len, static_shape[-1], source, "sequence dimension")
        flat = tf.stack([-1, seq_len])

        # Cached decoding: keys span the cache (T), queries are this call's S tokens at cache_index.
        stacked_cache = cache is not None and not isinstance(cache, (list, tuple))
        if cache is not None:
            layers_cache = tf.unstack(cache, num=c.n_layer, axis=0) if stacked_cache else list(cache)
            if len(layers_cache) != c.n_layer:
                raise ValueError(f"cache has {len(layers_cache)} layers, the model {c.n_layer}")
            pairs = isinstance(layers_cache[0], (tuple, list))  # (keys, values) [B, H, T, D] each
            first, t_axis = (layers_cache[0][0], 2) if pairs else (layers_cache[0], 3)
            key_len = tf.shape(first)[t_axis]
            static_keys = first.shape[t_axis]
            start = tf.zeros([], tf.int32) if cache_index is None else tf.cast(cache_index, tf.int32)
        else:
            layers_cache = [None] * c.n_layer
            key_len, static_keys, start = seq_len, static_shape[-1], tf.zeros([], tf.int32)
        if static_keys is not None and static_keys > c.n_positions:
            what = "cache length" if cache is not None else "sequence length"
            raise ValueError(f"{what} {static_keys} is longer than n_positions={c.n_positions}")
        if static_keys is None:
            checks += validation.graph_checks(lambda: [tf.debugging.assert_less_equal(
                key_len, c.n_positions, message=f"sequence longer than n_positions={c.n_positions}")])
            if xla and cache is None:
                row_ok = tf.logical_and(row_ok, key_len <= c.n_positions) if row_ok is not None else None

        if attention_mask is not None:
            attention_mask = validation.checked_mask(attention_mask)
            if cache is not None:
                mask = validation.with_checks(attention_mask, validation.check_shape(
                    attention_mask, tf.stack([tf.reduce_prod(input_shape[:-1]), key_len]),
                    "attention_mask", "[batch, cache length]"))
            else:
                attention_mask = validation.with_checks(attention_mask, validation.check_shape(
                    attention_mask, input_shape, "attention_mask", f"the {source} shape"))
                mask = tf.reshape(attention_mask, flat)  # (B, S)
            mask = tf.cast(mask, tf.float32)
            # expand_dims rather than [:, None, None, :]: the latter has no builtin TFLite kernel
            padding_bias = tf.expand_dims(tf.expand_dims((1.0 - mask) * MASK_VALUE, 1), 1)  # (B, 1, 1, T)
        else:
            padding_bias = None

        if position_ids is None:
            if attention_mask is not None:
                position_ids = positions_from_mask(mask)  # (B, T)
                if cache is not None:
                    position_ids = tf.slice(position_ids, tf.stack([0, start]), tf.stack([-1, seq_len]))
            else:
                position_ids = (start + tf.range(seq_len, dtype=tf.int32))[None, :]
        else:
            position_ids = _int_tensor(position_ids, "position_ids", 0, c.n_positions,
                                       f"n_positions={c.n_positions}")
            if cache is None:
                position_ids = validation.with_checks(position_ids, validation.check_like_input(
                    position_ids, static_shape, input_shape, "position_ids", f"the {source} shape"))
            position_ids = tf.reshape(position_ids, [-1, seq_len])
            if xla and row_ok is not None:
                row_ok = tf.logical_and(row_ok, validation.rows_in_range(position_ids, 0, c.n_positions))

        with tf.control_dependencies(checks):
            if ids is not None:
                inputs_embeds = self.tokens_embed(ids)  # (B, S, E)
            else:
                inputs_embeds = tf.cast(tf.reshape(inputs_embeds, [-1, seq_len, c.n_embd]),
                                        self.compute_dtype)
            hidden = inputs_embeds + self.positions_embed(position_ids)
        if token_type_ids is not None:
            token_type_ids = _int_tensor(token_type_ids, "token_type_ids", 0, c.vocab_size,
                                         "token types index the token table")
            if cache is None:
                token_type_ids = validation.with_checks(token_type_ids, validation.check_like_input(
                    token_type_ids, static_shape, input_shape, "token_type_ids", f"the {source} shape"))
            token_type_ids = tf.reshape(token_type_ids, [-1, seq_len])
            if xla and row_ok is not None:
                row_ok = tf.logical_and(row_ok, validation.rows_in_range(token_type_ids, 0, c.vocab_size))
            hidden = hidden + self.tokens_embed(token_type_ids)
        if row_ok is not None:
            hidden = validation.poison(hidden, row_ok)
        hidden = self.drop(hidden, training=training)  # (B, S, E)

        q_pos = start + tf.range(seq_len, dtype=tf.int32)
        k_pos = tf.range(key_len, dtype=tf.int32)
        causal = k_pos[None, :] <= q_pos[:, None]  # (S, T)

        if head_mask is not None:
            head_mask = tf.cast(validation.to_tensor(head_mask, "head_mask", allow_bool=True), tf.float32)
            validation.check_static_rank(head_mask, (1, 2), "head_mask",
                                         f"[n_head={c.n_head}] or [n_layer={c.n_layer}, n_head={c.n_head}]")
            want = [c.n_head] if head_mask.shape.rank == 1 else [c.n_layer, c.n_head]
            hm_checks = validation.check_shape(head_mask, want, "head_mask",
                                               f"n_layer={c.n_layer}, n_head={c.n_head}")
            head_mask = validation.with_checks(head_mask, hm_checks)
            if head_mask.shape.rank == 1:
                head_mask = tf.tile(head_mask[None, :], [c.n_layer, 1])
            head_mask = head_mask[:, None, :, None, None]  # (L, 1, H, 1, 1)

        out_shape = tf.concat([input_shape, [c.n_embd]], axis=0)
        all_hidden, all_attn, new_cache = [], [], []
        for i, block in enumerate(self.h):
            if output_hidden_states:
                all_hidden.append(tf.reshape(hidden, out_shape))
            hidden, probs, layer_cache = block(
                hidden, causal, padding_bias=padding_bias,
                head_mask=None if head_mask is None else head_mask[i],
                cache=layers_cache[i], cache_index=start, training=training)
            new_cache.append(layer_cache)
            if output_attentions:
                all_attn.append(probs)
        hidden = tf.reshape(hidden, out_shape)
        if output_hidden_states:
            all_hidden.append(hidden)
        if output_attentions:
            attn_shape = tf.concat([input_shape[:-1], tf.shape(all_attn[0])[1:]], axis=0)
            all_attn = [tf.reshape(a, attn_shape) for a in all_attn]
        if cache is not None:
            new_cache = tf.stack(new_cache, axis=0) if stacked_cache else tuple(new_cache)
        out = TFBaseModelOutput(
            last_hidden_state=hidden,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_attn) if output_attentions else None,
            cache=new_cache if cache is not None else None,
        )
        return out if return_dict else out.to_tuple()


# --- losses ------------------------------------------------------------------------------------------

def causal_lm_loss(labels, logits):
    """HF's LM loss: logits at t predict labels at t+1, -100 ignored, mean over counted tokens.

    The labels are shifted, not the logits (position t is scored against ``labels[t + 1]``, the last
    position against -100), so the [..., S, V] logits, a training step's largest tensor, are not
    copied into a slice.
    """
    vocab = logits.shape[-1]
    labels = validation.to_tensor(labels, "labels")
    checks = validation.check_shape(labels, tf.shape(logits)[:-1], "labels", "input_ids shape")
    checks += validation.check_positive_length(
        tf.shape(labels)[-1] - 1, None if labels.shape[-1] is None else labels.shape[-1] - 1,
        "labels", "sequence to predict (an LM loss needs at least 2 tokens)")
    labels = validation.with_checks(
        _int_tensor(labels, "labels", 0, vocab if vocab is not None else validation.INT32_LIMIT,
                    f"vocab_size={vocab}", ignore=IGNORE_INDEX), checks)
    last = tf.fill(tf.shape(labels[..., :1]), tf.constant(IGNORE_INDEX, labels.dtype))
    targets = tf.concat([labels[..., 1:], last], axis=-1)
    width = vocab if vocab is not None else tf.shape(logits)[-1]
    return masked_cross_entropy(tf.reshape(targets, [-1]), tf.reshape(logits, [-1, width]))


def masked_cross_entropy(labels, logits):
    """Mean softmax cross-entropy of ``logits`` [N, K] against class ids ``labels`` [N], skipping
    IGNORE_INDEX rows (0 when none counts); computed in float32 whatever the logits' dtype.

    The gradient (softmax - one-hot, scaled per counted row) is written out instead of taken from
    TensorFlow's sparse cross-entropy: the forward pass keeps exp(logits - row max), so each logit is
    exponentiated once, and the one-hot is a scatter into the N targets. For an LM head's [N, V]
    logits, loss and gradient take about half the time under XLA.
    """
    logits = tf.cast(logits, tf.float32)
    keep = tf.not_equal(labels, IGNORE_INDEX)
    safe = tf.where(keep, labels, tf.zeros_like(labels))
    weight = tf.cast(keep, tf.float32)
    count = tf.maximum(tf.reduce_sum(weight), 1.0)

    @tf.custom_gradient
    def mean_ce(x):
        top = tf.reduce_max(x, axis=-1, keepdims=True)
        top = tf.where(tf.math.is_finite(top), top, tf.zeros_like(top))  # as tf.reduce_logsumexp
        e = tf.exp(x - top)  # [N, K], kept for the gradient
        total = tf.reduce_sum(e, axis=-1)  # [N]
        lse = tf.math.log(total) + top[:, 0]
        picked = tf.gather(x, safe[:, None], batch_dims=1)[:, 0]  # the target's logit, [N]

        def grad(upstream):
            scale = upstream * weight / count  # [N]
            targets = tf.stack([tf.range(tf.shape(safe)[0], dtype=safe.dtype), safe], axis=1)
            return tf.tensor_scatter_nd_sub(e * (scale / total)[:, None], targets, scale)

        return tf.reduce_sum((lse - picked) * weight) / count, grad

    return mean_ce(logits)


def multiple_choice_loss(mc_labels, mc_logits):
    """The DoubleHeads model's choice loss: cross-entropy of ``mc_logits`` [B, C] against the chosen
    candidate ``mc_labels`` [B] (-100 ignored)."""
    return masked_cross_entropy(class_labels(mc_labels, mc_logits, "mc_labels", "choice"),
                                tf.reshape(mc_logits, [-1, tf.shape(mc_logits)[-1]]))


def class_labels(labels, logits, name, what):
    """Class-id labels [N] for logits [N, K] (any leading shape equal): ids in [0, K) or -100."""
    labels = validation.to_tensor(labels, name)
    k = logits.shape[-1]
    want = tf.shape(logits)[:-1]
    if labels.shape.rank is not None and logits.shape.rank is not None and (
            labels.shape.rank == logits.shape.rank and labels.shape[-1] == 1 and k != 1):
        labels = tf.squeeze(labels, -1)  # [N, 1] -> [N], as Keras' sparse losses accept
    checks = validation.check_shape(labels, want, name, f"one {what} per row of logits "
                                                         f"{list(logits.shape[:-1])}")
    ids = _int_tensor(labels, name, 0, k if k is not None else validation.INT32_LIMIT,
                      f"{k} {what}s", ignore=IGNORE_INDEX)
    return tf.reshape(validation.with_checks(ids, checks), [-1])


def classification_loss(labels, logits, num_labels, problem_type=None):
    """HF's sequence-classification loss: MSE (num_labels == 1), CE (int labels) or BCE (multi-label)."""
    logits = tf.cast(logits, tf.float32)
    labels = validation.to_tensor(labels, "labels", allow_bool=True)
    if problem_type is None:
        if num_labels == 1:
            problem_type = "regression"
        elif labels.dtype.is_integer:
            problem_type = "single_label_classification"
        else:
            problem_type = "multi_label_classification"
    if problem_type == "regression":
        labels = tf.cast(labels, tf.float32)
        if num_labels == 1:
            rows = tf.shape(logits)[:1]
            if labels.shape.rank is not None and labels.shape.rank == 2:
                checks = validation.check_shape(labels, tf.concat([rows, [1]], 0), "labels",
                                                "[batch] or [batch, 1] regression targets")
            else:
                checks = validation.check_shape(labels, rows, "labels",
                                                "[batch] or [batch, 1] regression targets")
            labels = validation.with_checks(labels, checks)
            return tf.reduce_mean(tf.square(tf.reshape(logits, [-1]) - tf.reshape(labels, [-1])))
        labels = validation.with_checks(labels, validation.check_shape(
            labels, tf.shape(logits), "labels", f"[batch, num_labels={num_labels}] regression targets"))
        return tf.reduce_mean(tf.square(logits - labels))
    if problem_type == "single_label_classification":
        return masked_cross_entropy(class_labels(labels, logits, "labels", "label"),
                                    tf.reshape(logits, [-1, num_labels]))
    labels = tf.cast(labels, tf.float32)
    labels = validation.with_checks(labels, validation.check_shape(
        labels, tf.shape(logits), "labels", f"[batch, num_labels={num_labels}] multi-label targets"))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


# --- the models --------------------------------------------------------------------------------------

class TFOpenAIGPTPreTrainedModel(keras.Model):
    """Shared plumbing: config handling, serialization, checkpoints, embeddings and Keras training."""

    main_input_name = "input_ids"
    config_class = OpenAIGPTConfig
    base_model_prefix = "transformer"
    _keys_to_ignore_on_load_missing = None
    _keys_to_ignore_on_load_unexpected = None
    _requires_load_weight_prefix = False
    # tfgpt decodes with a KV cache inside one XLA program (HF's TF GPT-1 has no cache: False there)
    supports_xla_generation = True

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(*inputs, **kwargs)
        self.config = _as_config(config)
        self.serving = tf.function(self.eager_serving, input_signature=[self.input_signature])

    def __call__(self, *args, **kwargs):
        # Keras refuses non-tensor positional arguments with a message that does not name the input.
        if args:
            validation.check_not_text(args[0], "input_ids")
        args, kwargs = split_call_flags(self.call, args, kwargs)
        return super().__call__(*args, **kwargs)

    # --- HF's TFPreTrainedModel API -------------------------------------------------------------------
    @property
    def framework(self) -> str:
        """"tf", as HF's TF models say."""
        return "tf"

    @property
    def name_or_path(self) -> str:
        """The folder or hub id the model was loaded from (the config's ``name_or_path``)."""
        return self.config.name_or_path

    def prune_heads(self, heads_to_prune):
        """HF's TF models do not prune heads (NotImplementedError); mask them with ``head_mask``."""
        raise NotImplementedError("prune_heads is not implemented for TF models; pass head_mask to mask heads")

    def get_output_layer_with_bias(self):
        """HF's (deprecated) LM-head-with-bias layer: GPT-1's tied head has no bias (None)."""
        return None

    def get_prefix_bias_name(self):
        """HF's (deprecated) name of the LM-head bias: None, there is none."""
        return None

    @classmethod
    def can_generate(cls) -> bool:
        """True for the classes with an LM head and ``generate`` (LM head and double heads)."""
        return callable(getattr(cls, "generate", None))

    @property
    def generation_config(self):
        """``generate``'s defaults (HF): read from generation_config.json by ``from_pretrained``, else
        the ones the model config implies; None for heads that cannot generate."""
        own = self.__dict__.get("_generation_config")
        if own is None and self.can_generate():
            from tfgpt.generation.config import GenerationConfig

            own = GenerationConfig.from_model_config(self.config)
            object.__setattr__(self, "_generation_config", own)  # outside Keras' tracking
        return own

    @generation_config.setter
    def generation_config(self, value):
        from tfgpt.generation.config import GenerationConfig

        if value is not None and not isinstance(value, GenerationConfig):
            raise TypeError(f"generation_config must be a GenerationConfig or None, got {type(value).__name__}")
        object.__setattr__(self, "_generation_config", value)

    def compute_transition_scores(self, sequences, scores, beam_indices=None, normalize_logits=False):
        """HF's transition scores: the score of each generated token [B, new] from ``generate``'s
        ``sequences`` and ``scores`` (and ``beam_indices`` for beams); see
        ``tfgpt.generation.compute_transition_scores``."""
        from tfgpt.generation.scores import compute_transition_scores

        return compute_transition_scores(sequences, scores, self.config.vocab_size, beam_indices, normalize_logits)

    @property
    def input_signature(self):
        """The serving inputs: ``input_ids`` and ``attention_mask`` [B, S], int32 (HF's rule)."""
        return {name: tf.TensorSpec((None, None), tf.int32, name=name)
                for name in ("input_ids", "attention_mask", "token_type_ids")}

    @property
    def dummy_inputs(self):
        """Ones of ``input_signature``'s shapes (batch 1, other free dims 2); token types are zeros."""
        dummies = {}
        for key, spec in self.input_signature.items():
            shape = [1] + [2 if d is None else d for d in spec.shape[1:]]
            fill = tf.zeros if key == "token_type_ids" else tf.ones
            dummies[key] = fill(shape, dtype=spec.dtype)
        return dummies

    def eager_serving(self, inputs):
        """The function behind ``serving``: call on the input dict, then ``serving_output``."""
        return self.serving_output(self.call(inputs))

    def serving_output(self, output):
        """HF's serving outputs: hidden states / attentions only when the config asks for them, and
        per-layer tuples stacked into one tensor [L, ...]."""
        if not isinstance(output, Mapping):
            return output
        keep = {}
        for key, value in output.items():
            if key.endswith("hidden_states") and not self.config.output_hidden_states:
                continue
            if key.endswith("attentions") and not self.config.output_attentions:
                continue
            if isinstance(value, (tuple, list)):
                value = tf.convert_to_tensor(value)
            keep[key] = value
        return type(output)(keep)

    def get_lm_head(self):
        """HF's separate LM-head layer: none, the head is the token table itself."""
        return None

    def get_bias(self):
        """HF's LM-head bias dict: GPT-1's head has no bias."""
        return None

    def build_in_name_scope(self):
        """Build every variable inside the model's name scope (HF); the models here build in
        ``__init__``, so a built model is left as it is."""
        if not self.built:
            with tf.name_scope(self.name):
                self.build()

    def push_to_hub(self, repo_id, **kwargs):
        """Upload config.json and the weights to the hub repo ``repo_id`` (see tfgpt.checkpoints.push)."""
        from tfgpt.checkpoints.push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    # Keras serialization: get_config mirrors __init__.
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "config": self.config.to_dict(),
            **({"quantized_layers": self.quantized_layers()} if self.quantized_layers() else {}),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """From ``get_config()``'s dict (Keras) or from an ``OpenAIGPTConfig`` (HF's ``from_config``)."""
        if isinstance(config, OpenAIGPTConfig):
            return cls(config)
        config = dict(config)
        quantized = config.pop("quantized_layers", None) or {}
        model = cls(**config)
        # Re-create the quantized variables, so a saved quantized model loads into the same layout.
        for mode in sorted(set(quantized.values())):
            wanted = {path for path, m in quantized.items() if m == mode}
            model.quantize(mode, filters=lambda layer: model._relative_path(layer) in wanted)
        return model

    def rematerialized_call(self, layer_call, *args, **kwargs):
        """Under ``keras.RematScope`` the blocks and their layers are rematerialized, not the whole
        stack (recomputing everything in the backward pass would keep every activation anyway)."""
        return layer_call

    def _build_all(self):
        """Create every variable now, so weights exist before the first call (loading, summary)."""
        self.build()

    # --- checkpoints -----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load config and weights from a folder or hub id (safetensors, tf_model.h5, original release)."""
        from tfgpt import checkpoints

        return checkpoints.from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory, saved_model=False, version=1, safe_serialization=False,
                        max_shard_size="10GB", **kwargs):
        """Write config.json + tf_model.h5 (HF's layout) or model.safetensors (PyTorch names), plus
        generation_config.json for models that generate; ``saved_model=True`` also writes a TF
        Serving SavedModel to ``saved_model/<version>/``."""
        from tfgpt import checkpoints

        return checkpoints.save_pretrained(self, save_directory, saved_model=saved_model, version=version,
                                           safe_serialization=safe_serialization,
                                           max_shard_size=max_shard_size, **kwargs)

    def hf_weight_map(self) -> "OrderedDict[str, keras.Variable]":
        """HF PyTorch parameter name -> variable (Keras layout), in the order HF's tf_model.h5 stores them.

        Derived from the one weight table, ``tfgpt.checkpoints.names``.
        """
        from tfgpt.checkpoints import names

        return OrderedDict((row.torch, names.value_of(self, row)) for row in names.model_table(self))

    # --- embeddings ------------------------------------------------------------------------------------
    def get_input_embeddings(self):
        return self.transformer.tokens_embed

    def get_output_embeddings(self):
        return None

    def set_input_embeddings(self, value):
        """HF's TF ``set_input_embeddings``: ``value`` is the new token table [V, n_embd] (array or
        variable); a new V resizes the table (and the tied head) first."""
        table = keras.ops.convert_to_numpy(value.embeddings if isinstance(value, keras.layers.Layer)
                                           and hasattr(value, "embeddings") else value)
        width = self.config.n_embd
        if table.ndim != 2 or table.shape[1] != width:
            raise ValueError(f"set_input_embeddings takes a token table of shape [vocab, n_embd={width}], got "
                             f"{list(table.shape)}")
        emb = self.resize_token_embeddings(int(table.shape[0]))
        emb.embeddings.assign(table.astype(keras.backend.standardize_dtype(emb.embeddings.dtype)))
        self._forget_compiled()

    def set_output_embeddings(self, value):
        """The LM head is the token table (tied), so this sets the table; heads without an LM head raise."""
        if self.get_output_embeddings() is None:
            raise ValueError(f"{type(self).__name__} has no output embeddings to set")
        self.set_input_embeddings(value)

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None):
        """Grow or shrink the token table (and the tied head); new rows ~ N(0, initializer_range)."""
        emb = self.transformer.tokens_embed
        if new_num_tokens is None or new_num_tokens == emb.input_dim:
            return emb
        if new_num_tokens <= 0:
            raise ValueError(f"new_num_tokens must be positive, got {new_num_tokens}")
        if self.config.pad_token_id is not None and self.config.pad_token_id >= new_num_tokens:
            # HF resizes all the same; the id simply never occurs in valid inputs
            logger.warning("pad_token_id %d lies outside the resized table of %d tokens",
                           self.config.pad_token_id, new_num_tokens)
        old = keras.ops.convert_to_numpy(emb.embeddings)
        rng = np.random.default_rng()
        new = rng.normal(0.0, self.config.initializer_range, (new_num_tokens, old.shape[1])).astype(old.dtype)
        n = min(new_num_tokens, old.shape[0])
        new[:n] = old[:n]
        # Rebuild the same layer at the new size, so the tied head and every reference stay valid.
        del emb._embeddings
        emb.input_dim, emb.built = new_num_tokens, False
        emb._tracker.unlock()
        try:
            emb.build((None, None))
        finally:
            emb._tracker.lock()
        emb.embeddings.assign(new)
        self.config.vocab_size = new_num_tokens
        # compiled step functions captured the old variable
        self.train_function = self.test_function = self.predict_function = None
        self._forget_compiled()
        return emb

    def _forget_compiled(self):
        for attr in ("_generate_cache",):
            if hasattr(self, attr):
                getattr(self, attr).clear()

    # --- Keras capabilities: quantization, LoRA, export ----------------------------------------------
    def _relative_path(self, layer) -> str:
        path = layer.path or ""
        return path.split("/", 1)[1] if "/" in path else path

    def _sublayers(self):
        return [layer for layer in self._flatten_layers(include_self=False) if layer.path]

    def quantize(self, mode=None, config=None, filters=None, **kwargs):
        """Keras' ``Model.quantize`` ("int8", "int4", "float8", ...) on the Dense and embedding layers.

        Compiled step and generate programs captured the float variables, so they are dropped.
        """
        super().quantize(mode, config=config, filters=filters, **kwargs)
        self.train_function = self.test_function = self.predict_function = None
        self._forget_compiled()

    def quantized_layers(self) -> dict:
        """Layer path (below the model) -> quantization mode, for every quantized layer."""
        return {self._relative_path(layer): layer.quantization_mode for layer in self._sublayers()
                if getattr(layer, "quantization_mode", None)}

    LORA_TARGETS = ("c_attn",)

    def enable_lora(self, rank: int, target_layer_names=None):
        """LoRA adapters on the named Dense layers, as on KerasHub backbones; all else is frozen.

        The default, ``c_attn``, is GPT's fused query/key/value projection: it holds the query and
        value projections KerasHub adapts by default. Names match layer names (``"c_proj"`` is both
        the attention and the MLP output projection). Only the adapters are trainable afterwards.
        """
        if not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        targets = tuple(self.LORA_TARGETS if target_layer_names is None else target_layer_names)
        if not targets or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"target_layer_names must be a list of layer names, got {target_layer_names!r}")
        if self.lora_layers():
            raise ValueError("LoRA is already enabled on this model")
        layers = [layer for layer in self._sublayers() if layer.name in targets]
        found = {layer.name for layer in layers}
        if set(targets) - found or not layers:
            raise ValueError(f"target_layer_names {sorted(set(targets) - found)} name no layer of "
                             f"{type(self).__name__} (e.g. c_attn, c_proj, c_fc)")
        bad = [layer.name for layer in layers if not isinstance(layer, keras.layers.Dense)]
        if bad:
            raise ValueError(f"LoRA applies to the Dense projections only, not {sorted(set(bad))}")
        self.trainable = True
        for layer in self._sublayers():
            layer.trainable = False
        for layer in layers:
            layer.trainable = True
            layer.enable_lora(rank)  # freezes the kernel, adds lora_kernel_a [in, r] / _b [r, out]
            layer.bias.trainable = False
        self.train_function = self.test_function = self.predict_function = None
        self._forget_compiled()

    def lora_layers(self) -> list:
        """The layers that carry LoRA adapters."""
        return [layer for layer in self._sublayers() if getattr(layer, "lora_enabled", False)]

    def save_lora_weights(self, filepath):
        """Write only the adapters (and their rank) to an HDF5 file ending in ``.lora.h5``."""
        import io

        import h5py

        from tfgpt.io import atomic_write_bytes

        layers = self.lora_layers()
        if not layers:
            raise ValueError("no LoRA adapters to save: call enable_lora(rank) first")
        if not str(filepath).endswith(".lora.h5"):
            raise ValueError(f"filepath must end in '.lora.h5', got {str(filepath)!r}")
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.attrs["rank"] = int(layers[0].lora_rank)
            f.attrs["alpha"] = float(layers[0].lora_alpha)
            for layer in layers:
                g = f.create_group(self._relative_path(layer))
                g["lora_kernel_a"] = keras.ops.convert_to_numpy(layer.lora_kernel_a)
                g["lora_kernel_b"] = keras.ops.convert_to_numpy(layer.lora_kernel_b)
        return atomic_write_bytes(filepath, buf.getvalue())

    def load_lora_weights(self, filepath):
        """Load adapters written by ``save_lora_weights``; enables LoRA on their layers if needed."""
        import h5py

        with h5py.File(filepath, "r") as f:
            rank = int(f.attrs["rank"])
            saved = {}

            def collect(name, obj):
                if isinstance(obj, h5py.Group) and "lora_kernel_a" in obj:
                    saved[name] = (obj["lora_kernel_a"][()], obj["lora_kernel_b"][()])

            f.visititems(collect)
        by_path = {self._relative_path(layer): layer for layer in self._sublayers()}
        unknown = sorted(set(saved) - set(by_path))
        if unknown:
            raise ValueError(f"{filepath}: adapters for layers this model does not have: {unknown}")
        if not self.lora_layers():
            self.enable_lora(rank, sorted({by_path[p].name for p in saved}))
        current = {self._relative_path(layer): layer for layer in self.lora_layers()}
        if set(current) != set(saved) or any(layer.lora_rank != rank for layer in current.values()):
            raise ValueError(f"{filepath} holds rank-{rank} adapters for {sorted(saved)}; the model has "
                             f"them on {sorted(current)} (rank {current and next(iter(current.values())).lora_rank})")
        for path, (a, b) in saved.items():
            current[path].lora_kernel_a.assign(a)
            current[path].lora_kernel_b.assign(b)

    def merge_lora(self):
        """A plain copy of this model with each adapter folded into its kernel (W + alpha/r * A @ B).

        ``save_pretrained`` writes merged kernels by itself; this is the model to export or serve.
        """
        from tfgpt.checkpoints import names

        plain = type(self).from_config(self.get_config())
        for row in names.model_table(self):
            names.value_of(plain, row).assign(names.value_of(self, row))
        return plain

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' ``Model.export``; without ``input_signature`` it takes ``input_ids`` of any batch size
        and length ([B, S], or [B, C, S] for the double-heads model). LoRA adapters are merged first."""
        if self.lora_layers():
            return self.merge_lora().export(filepath, format=format, verbose=verbose,
                                            input_signature=input_signature, **kwargs)
        if input_signature is None:
            rank = 3 if isinstance(self, TFOpenAIGPTDoubleHeadsModel) else 2
            input_signature = [tf.TensorSpec((None,) * rank, tf.int32, name="input_ids")]
        return super().export(filepath, format=format, verbose=verbose,
                              input_signature=input_signature, **kwargs)

    # --- Keras training: HF-style datasets --------------------------------------------------------------
    def prepare_tf_dataset(self, dataset, batch_size=8, shuffle=True, tokenizer=None, collate_fn=None,
                           collate_fn_args=None, drop_remainder=None, prefetch=True):
        """HF's ``prepare_tf_dataset``: a ``datasets.Dataset``-like object (or a dict of columns, a list
        of rows) as a tf.data.Dataset of ``(features, labels)`` for ``fit`` (see tfgpt.data.collate)."""
        from tfgpt.data.collate import prepare_tf_dataset

        return prepare_tf_dataset(self, dataset, batch_size=batch_size, shuffle=shuffle, tokenizer=tokenizer,
                                  collate_fn=collate_fn, collate_fn_args=collate_fn_args,
                                  drop_remainder=drop_remainder, prefetch=prefetch)

    # --- Keras training: data checks outside the XLA-compiled step -------------------------------------
    def check_data(self, x, y=None):
        """(x, y) with tfgpt's input checks applied outside the compiled step (``jit_compile``).

        XLA drops assert ops and clamps out-of-range gathers, so under ``jit_compile`` the ids,
        positions, masks and labels of every batch are checked here: a ``tf.data.Dataset`` gets a
        cheap checking map (InvalidArgumentError naming the input), arrays are checked now.
        """
        if not self.jit_compile or x is None:
            return x, y
        num_labels = self.num_labels if isinstance(self, TFOpenAIGPTForSequenceClassification) else None
        if isinstance(x, tf.data.Dataset):
            return validation.check_dataset(x, self.config, num_labels), y
        if isinstance(x, Mapping) or _is_tensor_like(x):
            validation.check_batch(self.config, x, y, num_labels=num_labels)
        return x, y

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        x, y = self.check_data(x, y)
        if isinstance(validation_data, tf.data.Dataset):
            validation_data, _ = self.check_data(validation_data)
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        x, y = self.check_data(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        x, _ = self.check_data(x)
        return super().predict(x, *args, **kwargs)

    def train_on_batch(self, x, y=None, *args, **kwargs):
        x, y = self.check_data(x, y)
        return super().train_on_batch(x, y, *args, **kwargs)

    def test_on_batch(self, x, y=None, *args, **kwargs):
        x, y = self.check_data(x, y)
        return super().test_on_batch(x, y, *args, **kwargs)

    def predict_on_batch(self, x):
        x, _ = self.check_data(x)
        return super().predict_on_batch(x)

    # --- Keras training: the model's own loss when compile() got none -----------------------------------
    def _primary_logits(self, y_pred):
        return y_pred["logits"] if isinstance(y_pred, Mapping) else y_pred

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if self._compile_loss is not None:
            return super().compute_loss(x, y, self._primary_logits(y_pred), sample_weight, training)
        if y is not None:
            loss = self.hf_compute_loss(y, y_pred)
        else:
            loss = self.training_objective(y_pred)
            if loss is None:
                raise ValueError(
                    "no labels: put them in the input dict (e.g. 'labels') or pass them as y, "
                    "or compile() with a loss"
                )
        if self.losses:
            loss = loss + tf.add_n([tf.cast(l, loss.dtype) for l in self.losses])
        # Keras sums gradients over replicas and reports loss x replicas (as for compiled losses).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return loss / replicas if replicas > 1 else loss

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Build metrics and optimizer state from one replica's batch. Keras averages the whole
        (x, y) structure over replicas for this, which MultiWorkerMirroredStrategy cannot do with dict
        inputs (keras-team/keras#20329); only shapes and dtypes are needed."""
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            local = self._distribute_strategy.experimental_local_results
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: local(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v,
                    next(it))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _primary_labels(self, x, y):
        """The labels compiled metrics compare with the primary logits: y, or those in the inputs."""
        if isinstance(y, Mapping):
            return y.get("labels")
        if y is None and isinstance(x, Mapping):
            return x.get("labels")
        return y

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        logs = super().compute_metrics(x, self._primary_labels(x, y), self._primary_logits(y_pred),
                                       sample_weight)
        strategy = tf.distribute.get_strategy()
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
                strategy.extended._in_multi_worker_mode()):
            # Keras averages step logs over workers along axis 0, which scalars lack.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def training_objective(self, outputs):
        """The scalar that fit() minimises when the labels came inside the inputs."""
        return outputs.get("loss") if isinstance(outputs, Mapping) else None

    def hf_compute_loss(self, labels, outputs):
        raise NotImplementedError(f"{type(self).__name__} has no loss of its own")

    def _finish(self, out, return_dict):
        return out if _flag(return_dict, self.config.return_dict) else out.to_tuple()


@keras.saving.register_keras_serializable(package="tfgpt")
class TFOpenAIGPTModel(TFOpenAIGPTPreTrainedModel):
    """The bare GPT-1 transformer: hidden states, no head."""

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.transformer = TFOpenAIGPTMainLayer(self.config, name="transformer", dtype=self.dtype_policy)
        self._build_all()

    def build(self, input_shape=None):
        self.transformer.build()
        self.built = True

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False, cache=None, cache_index=None):
        v = unpack_inputs(_MAIN_INPUTS, input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, training=training,
            cache=cache, cache_index=cache_index))
        v["return_dict"] = _flag(v["return_dict"], self.config.return_dict)
        return self.transformer(**v)


_LM_INPUTS = _MAIN_INPUTS[:9] + ("labels",) + _MAIN_INPUTS[9:]


@keras.saving.register_keras_serializable(package="tfgpt")
class TFOpenAIGPTLMHeadModel(TFOpenAIGPTPreTrainedModel):
    """GPT-1 with the language-modelling head tied to the token table (no bias)."""

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.transformer = TFOpenAIGPTMainLayer(self.config, name="transformer", dtype=self.dtype_policy)
        self._build_all()

    def build(self, input_shape=None):
        self.transformer.build()
        self.built = True

    def get_output_embeddings(self):
        return self.transformer.tokens_embed

    def prepare_inputs_for_generation(self, inputs, **kwargs):
        """HF's TF hook: the model inputs of one generation step (GPT-1's TF classes take the ids only)."""
        return {"input_ids": inputs}

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, labels=None, training=False, cache=None, cache_index=None):
        v = unpack_inputs(_LM_INPUTS, input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, labels=labels,
            training=training, cache=cache, cache_index=cache_index))
        labels, return_dict = v.pop("labels"), v.pop("return_dict")
        t = self.transformer(**v, return_dict=True)
        logits = tf.cast(self.transformer.tokens_embed(t.last_hidden_state, reverse=True),
                         tf.float32)  # (..., S, V)
        loss = causal_lm_loss(labels, logits) if labels is not None else None
        out = TFCausalLMOutput(loss=loss, logits=logits, hidden_states=t.hidden_states,
                               attentions=t.attentions, cache=t.cache)
        return self._finish(out, return_dict)

    def hf_compute_loss(self, labels, outputs):
        if isinstance(labels, Mapping):
            labels = labels["labels"]
        return causal_lm_loss(labels, outputs["logits"])

    def generate(self, input_ids=None, **kwargs):
        """Generate continuations with one XLA-compiled decode loop (see tfgpt.generation)."""
        from tfgpt.generation import generate

        return generate(self, input_ids, **kwargs)


@keras.saving.register_keras_serializable(package="tfgpt")
class SequenceSummary(keras.layers.Layer):
    """HF's SequenceSummary: pick (cls_index / last / first / mean), dropout, project, activate."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        c = _as_config(config)
        self.config = c
        self.summary_type = c.summary_type
        self.has_proj = bool(c.summary_use_proj)
        if self.has_proj:
            n = c.num_labels if (c.summary_proj_to_labels and c.num_labels > 0) else c.n_embd
            self.summary = keras.layers.Dense(
                n, kernel_initializer=keras.initializers.RandomNormal(stddev=c.initializer_range),
                name="summary", dtype=self.dtype_policy)
        act = c.summary_activation
        self.activation = None if act in (None, "linear") else keras.activations.get(
            {"gelu": "gelu"}.get(act, act))
        self.first_dropout = Dropout(c.summary_first_dropout or 0.0, name="first_dropout",
                                     dtype=self.dtype_policy)
        self.last_dropout = Dropout(getattr(c, "summary_last_dropout", 0.0) or 0.0,
                                    name="last_dropout", dtype=self.dtype_policy)

    def build(self, input_shape=None):
        if self.has_proj:
            self.summary.build((None, self.config.n_embd))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    def call(self, hidden, cls_index=None, training=False):
        # hidden (..., S, E); cls_index (...) or None
        if self.summary_type == "last":
            out = hidden[..., -1, :]
        elif self.summary_type == "first":
            out = hidden[..., 0, :]
        elif self.summary_type == "mean":
            out = tf.reduce_mean(hidden, axis=-2)
        else:  # cls_index
            seq_len = tf.shape(hidden)[-2]
            if cls_index is None:
                cls_index = tf.fill(tf.shape(hidden)[:-2], seq_len - 1)
            cls_index = _int_tensor(cls_index, "mc_token_ids")
            out = tf.gather(hidden, cls_index, batch_dims=cls_index.shape.rank, axis=cls_index.shape.rank)
        out = self.first_dropout(out, training=training)
        if self.has_proj:
            out = self.summary(out)
        if self.activation is not None:
            out = self.activation(out)
        return self.last_dropout(out, training=training)


_DH_INPUTS = _MAIN_INPUTS[:6] + ("mc_token_ids",) + _MAIN_INPUTS[6:9] + ("labels", "mc_labels") + _MAIN_INPUTS[9:]


@keras.saving.register_keras_serializable(package="tfgpt")
class TFOpenAIGPTDoubleHeadsModel(TFOpenAIGPTPreTrainedModel):
    """GPT-1 with an LM head and a multiple-choice head over [B, C, S] inputs.

    ``loss`` is the LM loss and ``mc_loss`` the multiple-choice loss, as in HF; ``fit`` minimises
    ``mc_loss + lm_coef * loss`` (GPT-1 fine-tuned with lm_coef = 0.5).
    """

    def __init__(self, config, *inputs, lm_coef: float = 0.5, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        # HF: one score per choice, so mc_logits is [B, C] (the config passed in is updated too)
        self.config.num_labels = 1
        self.lm_coef = float(lm_coef)
        self.transformer = TFOpenAIGPTMainLayer(self.config, name="transformer", dtype=self.dtype_policy)
        with no_remat():
            self.multiple_choice_head = SequenceSummary(self.config, name="multiple_choice_head",
                                                        dtype=self.dtype_policy)
        self._build_all()

    def build(self, input_shape=None):
        self.transformer.build()
        self.multiple_choice_head.build()
        self.built = True

    def get_config(self):
        return {**super().get_config(), "lm_coef": self.lm_coef}

    @property
    def input_signature(self):
        """HF's: input_ids / attention_mask [B, C, S] and mc_token_ids [B, C], int32."""
        return {
            "input_ids": tf.TensorSpec((None, None, None), tf.int32, name="input_ids"),
            "attention_mask": tf.TensorSpec((None, None, None), tf.int32, name="attention_mask"),
            "mc_token_ids": tf.TensorSpec((None, None), tf.int32, name="mc_token_ids"),
        }

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, mc_token_ids=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, mc_labels=None, training=False,
             cache=None, cache_index=None):
        v = unpack_inputs(_DH_INPUTS, input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, mc_token_ids=mc_token_ids,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
            return_dict=return_dict, labels=labels, mc_labels=mc_labels, training=training,
            cache=cache, cache_index=cache_index))
        mc_token_ids, labels, mc_labels = v.pop("mc_token_ids"), v.pop("labels"), v.pop("mc_labels")
        return_dict, training, cache = v.pop("return_dict"), v["training"], v["cache"]
        t = self.transformer(**v, return_dict=True)
        hidden = t.last_hidden_state  # (B, C, S, E)
        logits = tf.cast(self.transformer.tokens_embed(hidden, reverse=True), tf.float32)  # (B, C, S, V)
        if cache is not None:
            mc_logits = None
        else:
            if mc_token_ids is not None:
                static_len = hidden.shape[-2]
                high = static_len if static_len is not None else tf.shape(hidden)[-2]
                mc_token_ids = validation.to_tensor(mc_token_ids, "mc_token_ids")
                shape_checks = validation.check_shape(mc_token_ids, tf.shape(hidden)[:-2], "mc_token_ids",
                                                      "one index per choice, input_ids shape[:-1]")
                if isinstance(high, int):
                    mc_token_ids = _int_tensor(mc_token_ids, "mc_token_ids", 0, high,
                                               "must index a position of the sequence")
                else:
                    mc_token_ids = _int_tensor(mc_token_ids, "mc_token_ids")
                    shape_checks += validation.check_range(mc_token_ids, 0, high, "mc_token_ids",
                                                           "must index a position of the sequence")
                mc_token_ids = validation.with_checks(mc_token_ids, shape_checks)
            mc_logits = self.multiple_choice_head(hidden, mc_token_ids, training=training)
            mc_logits = tf.cast(tf.squeeze(mc_logits, -1) if mc_logits.shape[-1] == 1 else mc_logits,
                                tf.float32)  # (B, C)
        loss = causal_lm_loss(labels, logits) if labels is not None else None
        mc_loss = None
        if mc_labels is not None:
            mc_loss = multiple_choice_loss(mc_labels, mc_logits)
        out = TFOpenAIGPTDoubleHeadsModelOutput(loss=loss, mc_loss=mc_loss, logits=logits,
                                                mc_logits=mc_logits, hidden_states=t.hidden_states,
                                                attentions=t.attentions, cache=t.cache)
        return self._finish(out, return_dict)

    def _primary_logits(self, y_pred):
        return y_pred["mc_logits"] if isinstance(y_pred, Mapping) else y_pred

    def _primary_labels(self, x, y):
        if isinstance(y, Mapping):
            return y.get("mc_labels")
        if y is None and isinstance(x, Mapping):
            return x.get("mc_labels")
        return y

    def training_objective(self, outputs):
        lm, mc = outputs.get("loss"), outputs.get("mc_loss")
        if lm is not None and mc is not None:
            return mc + self.lm_coef * lm
        return mc if mc is not None else lm

    def hf_compute_loss(self, labels, outputs):
        if isinstance(labels, Mapping):
            total = None
            if labels.get("mc_labels") is not None:
                total = multiple_choice_loss(labels["mc_labels"], outputs["mc_logits"])
            if labels.get("labels") is not None:
                lm = causal_lm_loss(labels["labels"], outputs["logits"])
                total = lm if total is None else total + self.lm_coef * lm
            if total is None:
                raise ValueError("label dict needs 'mc_labels' and/or 'labels'")
            return total
        return multiple_choice_loss(labels, outputs["mc_logits"])

    def generate(self, input_ids=None, **kwargs):
        """Generate with the LM head (see tfgpt.generation)."""
        from tfgpt.generation import generate

        return generate(self, input_ids, **kwargs)


_SC_INPUTS = _MAIN_INPUTS[:9] + ("labels", "training")


@keras.saving.register_keras_serializable(package="tfgpt")
class TFOpenAIGPTForSequenceClassification(TFOpenAIGPTPreTrainedModel):
    """GPT-1 with a bias-free linear ``score`` on the last non-pad token (left padding included)."""

    def __init__(self, config, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = self.config.num_labels
        self.transformer = TFOpenAIGPTMainLayer(self.config, name="transformer", dtype=self.dtype_policy)
        with no_remat():
            self.score = keras.layers.Dense(
                self.num_labels, use_bias=False, name="score", dtype=self.dtype_policy,
                kernel_initializer=keras.initializers.RandomNormal(stddev=self.config.initializer_range))
        self._build_all()

    def build(self, input_shape=None):
        self.transformer.build()
        self.score.build((None, self.config.n_embd))
        self.built = True


    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, labels=None, training=False):
        v = unpack_inputs(_SC_INPUTS, input_ids, dict(
            attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            head_mask=head_mask, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, return_dict=return_dict, labels=labels,
            training=training))
        labels, return_dict, training = v.pop("labels"), v.pop("return_dict"), v["training"]
        t = self.transformer(**v, return_dict=True)
        hidden = t.last_hidden_state  # (B, S, E)
        seq_len = tf.shape(hidden)[1]
        pad = self.config.pad_token_id
        checks = []
        if v["input_ids"] is not None and pad is not None:
            ids = tf.reshape(_int_tensor(v["input_ids"], "input_ids"), tf.shape(hidden)[:2])
            steps = tf.range(seq_len, dtype=tf.int32)[None, :]
            last = tf.argmax(steps * tf.cast(tf.not_equal(ids, pad), tf.int32), axis=-1,
                             output_type=tf.int32)  # (B,)
        else:
            if v["input_ids"] is not None:
                batch = hidden.shape[0]
                if batch is not None and batch > 1:
                    raise ValueError("cannot pool batch size > 1 without config.pad_token_id: set "
                                     "pad_token_id so the last real token of each row can be found")
                if batch is None:
                    checks += validation.graph_checks(lambda: [tf.debugging.assert_less_equal(
                        tf.shape(hidden)[0], 1,
                        message="cannot pool batch size > 1 without config.pad_token_id")])
            last = tf.fill([tf.shape(hidden)[0]], seq_len - 1)
        with tf.control_dependencies(checks):
            pooled = tf.gather(hidden, last, batch_dims=1, axis=1)  # (B, E)
        logits = tf.cast(self.score(pooled), tf.float32)  # (B, num_labels)
        loss = None
        if labels is not None:
            loss = classification_loss(labels, logits, self.num_labels, self.config.problem_type)
        out = TFSequenceClassifierOutput(loss=loss, logits=logits, hidden_states=t.hidden_states,
                                         attentions=t.attentions)
        return self._finish(out, return_dict)

    def hf_compute_loss(self, labels, outputs):
        if isinstance(labels, Mapping):
            labels = labels["labels"]
        return classification_loss(labels, outputs["logits"], self.num_labels, self.config.problem_type)

