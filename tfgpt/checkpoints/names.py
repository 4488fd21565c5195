"""The one table of GPT-1 weight names: HF PyTorch name, HF TF (tf_model.h5) name, tfgpt variable, transform.

Every reader and writer derives from it: the safetensors / torch readers and writers use the PyTorch
names, the tf_model.h5 reader and writer the TF names, OpenAI's release the block order, and
``load_state_dict`` / ``save_pretrained`` the variable each row names (``layer`` is the attribute path
from the model to the Keras layer, ``attr`` the layer's variable).

Transforms: ``transpose`` rows are PyTorch ``nn.Linear`` weights [out, in] whose Keras kernel is
[in, out]; ``tf_row`` rows are GPT "Conv1D" biases that HF's TF classes store as [1, n].
"""

from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple


class WeightName(NamedTuple):
    """One GPT-1 weight under every naming it has."""

    torch: str  # HF PyTorch name, e.g. "transformer.h.0.attn.c_attn.weight"
    tf: str  # HF TF name after the model name, without ":0", e.g. "transformer/h_._0/attn/c_attn/weight"
    layer: Tuple  # attribute path from the model to the Keras layer, e.g. ("transformer", "h", 0, "attn", "c_attn")
    attr: str  # the layer's variable: kernel, bias, gamma, beta or embeddings
    transpose: bool = False  # PyTorch [out, in] <-> Keras [in, out]
    tf_row: bool = False  # tf_model.h5 stores this bias as [1, n]


# The embeddings in HF's TF order (PyTorch registers tokens_embed first; OpenAI's release and the
# h5 file put positions first): (torch leaf, tf leaf, layer, attr).
EMBEDDINGS = (
    ("positions_embed.weight", "positions_embed/embeddings", "positions_embed", "embeddings"),
    ("tokens_embed.weight", "tokens_embed/weight", "tokens_embed", "embeddings"),
)
# The 12 tensors of one block, in HF's TF order, which is also OpenAI's release order:
# (torch leaf, tf leaf, layer path inside the block, attr, tf_row), from each layer's tensors:
# a Conv1D's and a LayerNorm's (torch name, tf name, attr, tf_row).
_CONV1D = (("weight", "weight", "kernel", False), ("bias", "bias", "bias", True))
_LAYER_NORM = (("weight", "gamma", "gamma", False), ("bias", "beta", "beta", False))
BLOCK = tuple(
    (".".join(path + (torch,)), "/".join(path + (tf,)), path, attr, tf_row)
    for path, tensors in ((("attn", "c_attn"), _CONV1D), (("attn", "c_proj"), _CONV1D), (("ln_1",), _LAYER_NORM),
                          (("mlp", "c_fc"), _CONV1D), (("mlp", "c_proj"), _CONV1D), (("ln_2",), _LAYER_NORM))
    for torch, tf, attr, tf_row in tensors
)
BLOCK_TORCH_LEAVES = tuple(row[0] for row in BLOCK)
# Heads: top-level layer -> rows (torch, tf, layer path, attr, transpose).
HEADS = {
    "multiple_choice_head": (
        ("multiple_choice_head.summary.weight", "multiple_choice_head/summary/kernel",
         ("multiple_choice_head", "summary"), "kernel", True),
        ("multiple_choice_head.summary.bias", "multiple_choice_head/summary/bias",
         ("multiple_choice_head", "summary"), "bias", False),
    ),
    "score": (("score.weight", "score/kernel", ("score",), "kernel", True),),
}
# TF names other writers used for the embeddings (the Keras variable leaf instead of HF's).
TF_ALIASES = {
    "transformer/tokens_embed/embeddings": "transformer.tokens_embed.weight",
    "transformer/positions_embed/weight": "transformer.positions_embed.weight",
}

# HF's four TF classes: the model name in front of every h5 variable (Keras 2's default layer name)
# and the top-level layers in creation order (that is the tf_model.h5 order).
HF_TF_MODEL_NAMES = {
    "TFOpenAIGPTModel": "tf_open_aigpt_model",
    "TFOpenAIGPTLMHeadModel": "tf_open_aigptlm_head_model",
    "TFOpenAIGPTDoubleHeadsModel": "tf_open_aigpt_double_heads_model",
    "TFOpenAIGPTForSequenceClassification": "tf_open_aigpt_for_sequence_classification",
}
HF_TF_LAYERS = {
    "TFOpenAIGPTModel": ("transformer",),
    "TFOpenAIGPTLMHeadModel": ("transformer",),
    "TFOpenAIGPTDoubleHeadsModel": ("transformer", "multiple_choice_head"),
    "TFOpenAIGPTForSequenceClassification": ("score", "transformer"),
}

# Old PyTorch checkpoints carry the causal-mask buffer; the LM head is tied to the token table.
IGNORED_SUFFIXES = (".attn.bias", "attn.masked_bias")
IGNORED_NAMES = ("lm_head.weight",)

_BODY_RE = re.compile(r"^(transformer\.)?(tokens_embed|positions_embed|h\.\d+)\.")
_TF_BLOCK_RE = re.compile(r"^transformer/h_\._(\d+)/(.+)$")
_TF_LEAF_TO_TORCH = {row[1]: row[0] for row in BLOCK}
_TF_TO_TORCH = {**{f"transformer/{tf}": f"transformer.{pt}" for pt, tf, _, _ in EMBEDDINGS},
                **TF_ALIASES,
                **{row[1]: row[0] for rows in HEADS.values() for row in rows}}
_TORCH_TO_ROW_KIND = {**{row[0]: ("bias" if row[4] else "plain") for row in BLOCK}}
_TRANSPOSED = {row[0] for rows in HEADS.values() for row in rows if row[4]}


def hf_class_name(model) -> str:
    """The one of HF's four TF class names that ``model`` is (a subclass counts as its base)."""
    for klass in type(model).__mro__:
        if klass.__name__ in HF_TF_MODEL_NAMES:
            return klass.__name__
    raise TypeError(f"{type(model).__name__} is not one of the GPT-1 model classes")


def weight_table(n_layer: int, heads=(), root: bool = False) -> List[WeightName]:
    """Every weight of a model with ``n_layer`` blocks and the given head layers, in HF's TF order.

    ``root``: the bare model, whose PyTorch names have no ``transformer.`` prefix.
    """
    prefix = "" if root else "transformer."
    rows = [WeightName(prefix + pt, "transformer/" + tf, ("transformer", layer), attr)
            for pt, tf, layer, attr in EMBEDDINGS]
    for i in range(n_layer):
        rows += [WeightName(f"{prefix}h.{i}.{pt}", f"transformer/h_._{i}/{tf}",
                            ("transformer", "h", i) + path, attr, tf_row=tf_row)
                 for pt, tf, path, attr, tf_row in BLOCK]
    for head in heads:
        rows += [WeightName(pt, tf, path, attr, transpose=tr) for pt, tf, path, attr, tr in HEADS[head]]
    return rows


def model_table(model) -> List[WeightName]:
    """The table rows of ``model``'s weights (its blocks and the head layers it has)."""
    heads = []
    summary = getattr(model, "multiple_choice_head", None)
    if summary is not None and summary.has_proj:
        heads.append("multiple_choice_head")
    if getattr(model, "score", None) is not None:
        heads.append("score")
    return weight_table(model.config.n_layer, heads, root=hf_class_name(model) == "TFOpenAIGPTModel")


def layer_of(model, row: WeightName):
    """The Keras layer a row names."""
    obj = model
    for step in row.layer:
        obj = obj[step] if isinstance(step, int) else getattr(obj, step)
    return obj


def value_of(model, row: WeightName):
    """The row's current value in Keras layout (a LoRA layer's kernel comes merged: W + s * A @ B)."""
    return getattr(layer_of(model, row), row.attr)


def is_body(name: str) -> bool:
    """A transformer weight (embeddings or block), as opposed to a head weight."""
    return bool(_BODY_RE.match(name))


def is_transposed(torch_name: str) -> bool:
    """PyTorch stores this weight [out, in], the Keras kernel is [in, out]."""
    return torch_name in _TRANSPOSED


def is_tf_name(name: str) -> bool:
    """HF's TF variable names use '/' (and usually end in ':0'); PyTorch names use '.'."""
    return "/" in name or name.endswith(":0")


def tf_to_pt_name(tf_name: str) -> Tuple[Optional[str], str]:
    """HF TF variable name (with or without model name and ':0') -> (PyTorch name, conversion).

    The conversion is "plain", "bias" (TF [1, n] -> [n]) or "kernel" (transpose); the name is None
    when the variable is not a GPT-1 weight.
    """
    name = re.sub(r":\d+$", "", tf_name)
    parts = name.split("/")
    candidates = [name] + (["/".join(parts[1:])] if len(parts) > 1 else [])  # any model name loads
    for cand in candidates:
        pt = _TF_TO_TORCH.get(cand)
        if pt is not None:
            return pt, "kernel" if pt in _TRANSPOSED else "plain"
        m = _TF_BLOCK_RE.match(cand)
        if m and m[2] in _TF_LEAF_TO_TORCH:
            leaf = _TF_LEAF_TO_TORCH[m[2]]
            return f"transformer.h.{m[1]}.{leaf}", _TORCH_TO_ROW_KIND[leaf]
    return None, "plain"


def canonical(name: str, model_names) -> str:
    """Map a checkpoint name onto the model's naming (with or without the 'transformer.' prefix)."""
    if name in model_names:
        return name
    if name.startswith("transformer.") and name[len("transformer."):] in model_names:
        return name[len("transformer."):]
    if "transformer." + name in model_names:
        return "transformer." + name
    return name


def torch_order(rows: List[WeightName]) -> List[WeightName]:
    """Rows in PyTorch's module order: tokens_embed before positions_embed, then blocks and heads."""
    emb = [r for r in rows if r.layer in (("transformer", "tokens_embed"),)]
    emb += [r for r in rows if r.layer in (("transformer", "positions_embed"),)]
    return emb + [r for r in rows if r not in emb]


def tf_layer_order(model) -> Dict[str, List]:
    """The empty top-level groups of ``model``'s tf_model.h5, in HF's order."""
    return {layer: [] for layer in HF_TF_LAYERS[hf_class_name(model)]}
