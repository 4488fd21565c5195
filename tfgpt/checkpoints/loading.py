"""Loading: find the checkpoint in a folder (or fetch it from the hub), read it, assign it.

Every format is first turned into one PyTorch-style state dict (see ``readers``); the weight table
(``names``) then says which Keras variable each name fills. All checks (names, shapes, config
agreement) run before the first variable is assigned, so a failed load never leaves a half-loaded
model behind.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Dict, Optional, Tuple

import keras
import numpy as np

from tfgpt.checkpoints import names
from tfgpt.checkpoints.formats import (
    CANDIDATES,
    HUB_STAGES,
    ORIGINAL_SHAPES_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    CheckpointNotFoundError,
)
from tfgpt.hub import resolve_dir
from tfgpt.checkpoints.original import original_config, read_original_release
from tfgpt.checkpoints.readers import (
    as_array,
    read_h5,
    read_safetensors,
    read_sharded,
    read_torch_bin,
    to_pt_state,
    torch_available,
)
from tfgpt.generation.config import GENERATION_CONFIG_NAME, GenerationConfig
from tfgpt.models.configuration import CONFIG_NAME, OpenAIGPTConfig
from tfgpt.validation import check_finite_weights

logger = logging.getLogger(__name__)

_LAYER_RE = re.compile(r"^(?:transformer\.)?h\.(\d+)\.")

# Keyword arguments of from_pretrained that go to the model's constructor, not the config.
_MODEL_KWARGS = ("name", "dtype", "lm_coef", "trainable")
_HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token")
# HF loader options that have no meaning here; kept out of the config overrides.
_HF_NO_OP_KWARGS = ("from_pt", "from_tf", "force_download", "resume_download", "proxies",
                    "trust_remote_code", "mirror", "_from_auto", "_from_pipeline")

def find_checkpoint(folder, use_safetensors: Optional[bool] = None) -> Tuple[str, str, bool]:
    """(entry file, kind, sharded) of the checkpoint ``from_pretrained`` would read in ``folder``."""
    for name, kind, sharded in CANDIDATES:
        if use_safetensors is True and kind != "safetensors":
            continue
        if use_safetensors is False and kind == "safetensors":
            continue
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return name, kind, sharded
        if os.path.lexists(path):
            raise CheckpointNotFoundError(f"{path} is {_not_a_file(path)}, not a weights file; "
                                          f"replace it with the checkpoint file")
    try:
        present = sorted(os.listdir(folder))
    except OSError:
        present = []
    hint = ""
    if any(p.endswith(".keras") or p.endswith(".weights.h5") for p in present):
        hint = (" It holds Keras-native files: use keras.models.load_model(...) for .keras, or "
                "model.load_weights(...) for .weights.h5.")
    elif any(p.endswith(".index") and ".ckpt" in p for p in present):
        hint = " TF1/TF2 tf.train checkpoints are not a supported format."
    elif use_safetensors is True:
        hint = " use_safetensors=True was given; pass use_safetensors=None to accept other formats."
    shown = present[:12] + (["..."] if len(present) > 12 else [])
    raise CheckpointNotFoundError(
        f"no GPT-1 weights in {folder}: expected {SAFE_WEIGHTS_NAME}, {TF2_WEIGHTS_NAME}, "
        f"{WEIGHTS_NAME} (each possibly sharded with an .index.json) or OpenAI's "
        f"{ORIGINAL_SHAPES_NAME} + params_*.npy; found {shown}.{hint}")


def _not_a_file(path) -> str:
    """What stands at ``path`` instead of a regular file (for error messages)."""
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as e:
            if getattr(e, "errno", None) == 40:  # ELOOP
                return f"a symlink loop ({os.readlink(path)!r})"
            return f"a dangling symlink to {os.readlink(path)!r}"
    if os.path.isdir(path):
        return "a directory"
    return "not a regular file"


def check_config_shapes(config, state, ignore_mismatched_sizes=False, source="checkpoint"):
    """Compare the config's sizes with the checkpoint's tensor shapes (from the file headers) before
    a model is built, so a crafted config (n_positions=10**8 beside a 128-position checkpoint)
    cannot make the loader allocate a huge model. Embedding sizes may differ only with
    ``ignore_mismatched_sizes``; n_embd and the block sizes must always agree."""
    def find(key):
        for name in (f"transformer.{key}", key):
            if name in state:
                return name, tuple(np.shape(state[name]))
        return key, None

    e = int(config.n_embd)
    wanted = {"tokens_embed.weight": ((int(config.vocab_size), e), "vocab_size, n_embd", True),
              "positions_embed.weight": ((int(config.n_positions), e), "n_positions, n_embd", True),
              "h.0.attn.c_attn.weight": ((e, 3 * e), "n_embd, 3 * n_embd", False),
              "h.0.mlp.c_fc.weight": ((e, 4 * e), "n_embd, 4 * n_embd", False),
              "h.0.ln_1.weight": ((e,), "n_embd", False)}
    for key, (want, fields, resizable) in wanted.items():
        name, got = find(key)
        if got is None or got == want or (resizable and ignore_mismatched_sizes and got[-1:] == want[-1:]):
            continue
        if key.startswith("h.0.") and got == want[::-1]:  # stored as nn.Linear [out, in]
            continue
        raise CheckpointError(
            f"config.json disagrees with the {source}: {name} has shape {got}, the config "
            f"({fields}) asks for {want}. Fix config.json (or the overrides) so it matches the "
            f"weights" + ("" if not resizable else
                          "; pass ignore_mismatched_sizes=True to resize that embedding"))


def read_checkpoint(folder, use_safetensors: Optional[bool] = None):
    """Read the preferred checkpoint of ``folder`` -> (PyTorch-style state dict, kind, file name, dims).

    ``dims`` is the inferred size dict for OpenAI's release and None otherwise.
    """
    name, kind, sharded = find_checkpoint(folder, use_safetensors)
    path = os.path.join(folder, name)
    dims = None
    if kind == "original":
        state, dims = read_original_release(folder)
        return state, kind, name, dims
    reader = {"safetensors": read_safetensors, "h5": read_h5, "bin": read_torch_bin}[kind]
    raw = read_sharded(folder, name, reader) if sharded else reader(path)
    if not raw:
        raise CheckpointError(f"{path} holds no tensors")
    return to_pt_state(raw), kind, name, dims


def _config_mismatch_message(model, state_names, missing, unexpected) -> str:
    cfg = model.config
    layers = sorted({int(m[1]) for m in map(_LAYER_RE.match, state_names) if m})
    if layers and len(layers) != cfg.n_layer:
        what = (f"the checkpoint has {len(layers)} transformer blocks (h.{layers[0]}..h.{layers[-1]}) "
                f"but the config says n_layer={cfg.n_layer}")
    else:
        what = "the checkpoint and the config describe different transformers"
    parts = [what]
    if missing:
        parts.append(f"weights the model needs but the checkpoint lacks: {missing[:8]}"
                     + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""))
    if unexpected:
        parts.append(f"transformer weights the model has no place for: {unexpected[:8]}"
                     + (f" (+{len(unexpected) - 8} more)" if len(unexpected) > 8 else ""))
    return "; ".join(parts) + ". Fix config.json (or the overrides) so it matches the weights."


def load_state_dict(model, state: Dict[str, np.ndarray], ignore_mismatched_sizes: bool = False,
                    source: str = "checkpoint", allow_nonfinite_weights: bool = False) -> Dict[str, list]:
    """Assign arrays named by HF PyTorch names (PyTorch shapes) to ``model``.

    Every name and shape is checked before any variable changes. Head weights may be missing (they
    keep their fresh initialisation) or unexpected (a head the model does not have); transformer
    weights must match the config exactly. A shape mismatch raises, naming the tensor and both shapes,
    unless ``ignore_mismatched_sizes`` (the variable then keeps its initialisation). Returns HF's
    loading-info dict: missing_keys, unexpected_keys, mismatched_keys [(name, ckpt, model)], error_msgs.
    Only the tensors the model takes are read (a ``LazyTensor``'s data otherwise stays on disk); a
    weight holding NaN or inf raises, naming it, unless ``allow_nonfinite_weights``.
    """
    targets = {row.torch: row for row in names.model_table(model)}
    pending: Dict[str, np.ndarray] = {}
    origin: Dict[str, str] = {}
    unexpected, mismatched = [], []
    for name, value in state.items():
        if name.endswith(names.IGNORED_SUFFIXES) or name in names.IGNORED_NAMES:
            continue
        key = names.canonical(name, targets)
        if key not in targets:
            unexpected.append(name)
            continue
        if key in origin:
            raise CheckpointError(f"{source} holds {key!r} twice (as {origin[key]!r} and {name!r})")
        origin[key] = name
        row = targets[key]
        stored = tuple(np.shape(value))
        wanted_shape = stored[::-1] if row.transpose and len(stored) == 2 else stored
        var = names.value_of(model, row)
        if wanted_shape != tuple(var.shape):
            ckpt_shape = tuple(np.shape(state[name]))
            # both shapes in the checkpoint's (PyTorch) convention
            model_shape = tuple(var.shape)[::-1] if row.transpose else tuple(var.shape)
            if ignore_mismatched_sizes:
                mismatched.append((name, ckpt_shape, model_shape))
                continue
            raise CheckpointError(
                f"{name}: the {source} has shape {ckpt_shape}, the model expects {model_shape} "
                f"(config and weights disagree; pass ignore_mismatched_sizes=True to keep that "
                f"weight freshly initialised, e.g. for a new number of labels or a new vocabulary)")
        dtype = getattr(value, "dtype", None)
        dtype = np.asarray(value).dtype if dtype is None else (None if dtype == "bfloat16" else np.dtype(dtype))
        if dtype is not None and dtype.kind not in "fV" and "float" not in dtype.name:
            raise CheckpointError(f"{name}: the {source} stores dtype {dtype}, expected floats")
        pending[key] = name
    mismatched_keys = {names.canonical(m[0], targets) for m in mismatched}
    missing = [k for k in targets if k not in pending and k not in mismatched_keys]
    if not pending and not mismatched:
        shown = list(state)[:5]
        raise CheckpointError(
            f"none of the {len(state)} tensors in the {source} is a weight of "
            f"{type(model).__name__} (first names: {shown}); is it an OpenAI GPT checkpoint?")
    body_missing = [k for k in missing if names.is_body(k)]
    body_unexpected = [n for n in unexpected if names.is_body(n)]
    if body_missing or body_unexpected:
        raise CheckpointError(_config_mismatch_message(model, list(state), body_missing, body_unexpected))
    variables = {key: _assignable(model, targets[key]) for key in pending}
    arrays = {}
    for key, name in pending.items():
        value = as_array(state[name])
        check_finite_weights(name, value, source, allow=allow_nonfinite_weights)
        arrays[key] = value.T if targets[key].transpose and value.ndim == 2 else value
    for key, value in arrays.items():
        variables[key].assign(value.astype(np.dtype(variables[key].dtype), copy=False))
    return {"missing_keys": missing, "unexpected_keys": unexpected,
            "mismatched_keys": mismatched, "error_msgs": []}


def _assignable(model, row):
    """The float variable a row fills; LoRA-enabled and quantized layers cannot take plain weights."""
    layer = names.layer_of(model, row)
    value = getattr(layer, row.attr)
    if getattr(layer, "lora_enabled", False) and row.attr == "kernel":
        raise CheckpointError(f"{row.torch}: load weights before enable_lora(); {layer.path} has LoRA adapters")
    if not isinstance(value, keras.Variable) or not np.issubdtype(np.dtype(value.dtype), np.floating):
        mode = getattr(layer, "quantization_mode", None)
        raise CheckpointError(f"{row.torch}: {layer.path} is quantized ({mode}); load weights before quantize()")
    return value


def _report(model, info, where):
    cls = type(model).__name__
    if info["missing_keys"]:
        logger.warning("%s: weights not in %s, newly initialised: %s", cls, where, info["missing_keys"])
    if info["unexpected_keys"]:
        logger.warning("%s: weights in %s that the model does not use: %s",
                       cls, where, info["unexpected_keys"])
    if info["mismatched_keys"]:
        shown = [f"{n} (checkpoint {a}, model {b})" for n, a, b in info["mismatched_keys"]]
        logger.warning("%s: weights in %s newly initialised because the shapes did not match: %s",
                       cls, where, shown)


def resolve_checkpoint_dir(path_or_id, use_safetensors=None, subfolder: str = "", **hub_kwargs) -> str:
    """A local folder for ``path_or_id`` (its ``subfolder`` when given); a hub id downloads one format
    only (the first it has), of that subfolder only.

    Formats are tried in the loader's order, each a snapshot_download restricted to that format's
    files, so a hub repo with safetensors, h5 and bin does not fetch all three. Offline, each stage
    looks in the huggingface_hub cache only; without a cached copy resolve_dir raises HubError.
    """
    path = os.fspath(path_or_id)
    subfolder = os.fspath(subfolder or "")
    if subfolder and (os.path.isabs(subfolder) or ".." in subfolder.replace("\\", "/").split("/")):
        raise ValueError(f"subfolder must be a relative path inside the model folder, got {subfolder!r}")
    if os.path.isdir(path):
        folder = os.path.join(path, subfolder) if subfolder else path
        if not os.path.isdir(folder):
            raise CheckpointNotFoundError(f"{path} has no subfolder {subfolder!r}")
        return folder
    prefix = f"{subfolder.strip('/')}/" if subfolder else ""
    inside = (lambda root: os.path.join(root, subfolder)) if subfolder else (lambda root: root)
    folder = None
    for kind, patterns in HUB_STAGES:
        if use_safetensors is True and kind != "safetensors":
            continue
        if use_safetensors is False and kind == "safetensors":
            continue
        if kind == "bin" and not torch_available():
            continue  # it could not be read; do not download hundreds of MB for nothing
        folder = inside(resolve_dir(path, allow_patterns=[prefix + p for p in (CONFIG_NAME, GENERATION_CONFIG_NAME,
                                                                                *patterns)],
                                    **hub_kwargs))
        try:
            found_kind = find_checkpoint(folder, use_safetensors)[1]
        except CheckpointNotFoundError:
            continue
        if found_kind == kind or kind == "original":
            return folder
    if folder is None:
        folder = inside(resolve_dir(path, allow_patterns=[prefix + CONFIG_NAME], **hub_kwargs))
    return folder


def from_pretrained(cls, path_or_id, *model_args, config=None, **kwargs):
    """Build ``cls`` from a folder or hub id and load its weights (see the module docstring).

    Keyword arguments: ``ignore_mismatched_sizes``, ``output_loading_info`` (then returns
    ``(model, info)``), ``subfolder`` (the model lies in that folder of the repo or directory),
    ``use_safetensors`` (None: any format; False: skip safetensors; True: only
    safetensors), hub options ``revision``/``cache_dir``/``local_files_only``/``token``, model
    constructor options ``name``/``dtype``/``lm_coef``; ``allow_nonfinite_weights`` (default False:
    a weight holding NaN/inf raises, naming it); everything else overrides config fields
    (e.g. ``num_labels=5``, ``n_head=12`` for OpenAI's release without config.json).
    HF loader options without meaning here (``from_pt``, ``from_tf``, ``force_download``,
    ``proxies``, ...) are accepted and ignored (every format loads).
    """
    ignore_mismatched_sizes = bool(kwargs.pop("ignore_mismatched_sizes", False))
    allow_nonfinite_weights = bool(kwargs.pop("allow_nonfinite_weights", False))
    output_loading_info = bool(kwargs.pop("output_loading_info", False))
    use_safetensors = kwargs.pop("use_safetensors", None)
    subfolder = kwargs.pop("subfolder", "") or ""
    for key in _HF_NO_OP_KWARGS:
        if key in kwargs:
            value = kwargs.pop(key)
            if key in ("force_download", "proxies") and value:
                logger.warning("from_pretrained ignores %s=%r (huggingface_hub's cache decides)", key, value)
    hub_kwargs = {k: kwargs.pop(k) for k in _HUB_KWARGS if k in kwargs}
    if "use_auth_token" in kwargs:
        hub_kwargs.setdefault("token", kwargs.pop("use_auth_token"))
    model_kwargs = {k: kwargs.pop(k) for k in _MODEL_KWARGS if k in kwargs}
    overrides = kwargs

    folder = resolve_checkpoint_dir(path_or_id, use_safetensors=use_safetensors, subfolder=subfolder,
                                    **hub_kwargs)
    entry, kind, _ = find_checkpoint(folder, use_safetensors)
    config_path = os.path.join(folder, CONFIG_NAME)
    if config is None and kind != "original" and not os.path.isfile(config_path):
        raise CheckpointNotFoundError(
            f"no {CONFIG_NAME} in {folder}: the weights alone do not say n_head and the other "
            f"hyper-parameters; add config.json or pass config=OpenAIGPTConfig(...)")
    state, _, _, dims = read_checkpoint(folder, use_safetensors)
    if config is None:
        if kind == "original":
            config = original_config(folder, dims, overrides)
        else:
            config = OpenAIGPTConfig.from_json_file(config_path, **overrides)
    elif isinstance(config, (str, os.PathLike)):
        config = OpenAIGPTConfig.from_pretrained(config, **overrides)
    elif isinstance(config, dict):
        config = OpenAIGPTConfig.from_dict(config, **overrides)
    elif overrides:
        config = OpenAIGPTConfig.from_dict(config.to_dict(), **overrides)

    where = os.path.join(folder, entry) if os.path.isdir(os.fspath(path_or_id)) else \
        f"{os.fspath(path_or_id)} ({os.path.join(subfolder, entry) if subfolder else entry})"
    check_config_shapes(config, state, ignore_mismatched_sizes, source=where)
    model = cls(config, *model_args, **model_kwargs)
    info = load_state_dict(model, state, ignore_mismatched_sizes=ignore_mismatched_sizes, source=where,
                           allow_nonfinite_weights=allow_nonfinite_weights)
    if model.can_generate() and os.path.isfile(os.path.join(folder, GENERATION_CONFIG_NAME)):
        model.generation_config = GenerationConfig.from_pretrained(folder)  # generate's defaults (HF)
    _report(model, info, where)
    return (model, info) if output_loading_info else model
