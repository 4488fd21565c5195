"""Model output objects: dicts with attribute access, as HF's ``ModelOutput``.

Only fields that are set (not None) are keys, in declaration order; ``out.loss`` is None when no loss
was computed, ``out["logits"]`` and ``out[0]`` both work, ``to_tuple()`` gives the set values in order.
They are registered as tree nodes for Keras (``predict``, functional models) and are plain Mappings
for ``tf.nest`` (``tf.function`` outputs).
"""

from __future__ import annotations

from collections import OrderedDict

import optree


class ModelOutput(OrderedDict):
    _fields: tuple = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        items = {}
        if args:
            if len(args) != 1:
                raise TypeError(f"{type(self).__name__} takes keyword fields or one mapping")
            src = args[0]
            items.update(src.items() if hasattr(src, "items") else src)
        items.update(kwargs)
        unknown = set(items) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        for name in self._fields:
            value = items.get(name)
            if value is not None:
                super().__setitem__(name, value)

    def __getattr__(self, name):
        if name in type(self)._fields:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name in type(self)._fields:
            if value is None:
                self.pop(name, None)
            else:
                self[name] = value
        else:
            super().__setattr__(name, value)

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self.keys())

    def __reduce__(self):
        return (type(self), (dict(self),))


def _flatten(out):
    keys = tuple(out.keys())
    return tuple(out[k] for k in keys), keys, keys


def _register(cls):
    optree.register_pytree_node(
        cls, _flatten, lambda keys, children: cls(dict(zip(keys, children))), namespace="keras"
    )
    return cls


@_register
class TFBaseModelOutput(ModelOutput):
    _fields = ("last_hidden_state", "hidden_states", "attentions", "cache")


@_register
class TFCausalLMOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions", "cache")


@_register
class TFOpenAIGPTDoubleHeadsModelOutput(ModelOutput):
    _fields = ("loss", "mc_loss", "logits", "mc_logits", "hidden_states", "attentions", "cache")


@_register
class TFSequenceClassifierOutput(ModelOutput):
    _fields = ("loss", "logits", "hidden_states", "attentions")


@_register
class GenerateDecoderOnlyOutput(ModelOutput):
    """``generate(..., return_dict_in_generate=True)`` of greedy, sampling and contrastive search:
    ``sequences`` [B, S + n]; ``scores`` / ``logits``: tuples of n [B, V] processed scores / raw logits."""

    _fields = ("sequences", "scores", "logits", "attentions", "hidden_states", "past_key_values")


@_register
class GenerateBeamDecoderOnlyOutput(ModelOutput):
    """``generate(..., return_dict_in_generate=True)`` of beam search: ``sequences`` [B * r, S + n],
    ``sequences_scores`` [B * r] (length-normalised), ``scores`` / ``logits``: tuples of n [B * K, V]
    processed log-probs / raw logits of the running beams, ``beam_indices`` [B * r, n] (-1 after the end)."""

    _fields = ("sequences", "sequences_scores", "scores", "logits", "beam_indices", "attentions",
               "hidden_states", "past_key_values")
