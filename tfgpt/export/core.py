"""Deployment exports: a TF Serving SavedModel (token ids -> logits, and string prompt -> text) and a
TFLite file for on-device decoding.

``export_saved_model(model, "export/gpt/1", tokenizer=tok)`` writes TF Serving's versioned layout
atomically. The SavedModel holds the weights, the in-graph tokenizer (its tables tracked) and traced
signatures only, so it loads with ``tf.saved_model.load`` in a process that imports ``tensorflow`` and
``tensorflow_text`` but never tfgpt:

==================  ========================================================  =====================
signature           inputs                                                    outputs
==================  ========================================================  =====================
serving_default     input_ids, attention_mask: int32 [batch, seq]             logits (model's own)
serving_int64       the same, int64                                           the same
generate_text       prompts: string [batch], max_new_tokens: int32 []         texts, completions
sample_text         prompts, max_new_tokens, temperature, top_p, seed         texts, completions
==================  ========================================================  =====================

The logits signatures return what the model class returns: ``logits`` [B, S, V] (LM head),
``logits`` + ``mc_logits`` (double heads; inputs [B, C, S] plus ``mc_token_ids`` [B, C]), class
``logits`` [B, num_labels] (sequence classification), ``last_hidden_state`` (base model). The text
signatures (models with an LM head, given a tokenizer) run the tokenizer, the library's XLA-compiled
decode loop with its KV cache (``tfgpt.generation``, greedy or sampling) and the detokenizer;
``texts`` is prompt + continuation (``tok.decode(model.generate(...))``), ``completions`` the new text.

``export_tflite(model, "export/gpt.tflite")`` writes a TFLite flatbuffer with builtin ops only and the
signatures ``logits``, ``prefill`` (the prompt, [1, S] -> last logits + the filled cache) and
``decode_step`` (one token, its cache index and the cache -> logits + the updated cache), optionally
with dynamic-range int8 weights.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

# Smallest prompt / new-token buckets of the compiled decode programs (tfgpt.generation's values;
# a test checks that the in-graph bucketing below agrees with generation.cache_lengths).
_MIN_PROMPT_BUCKET = 8
_MIN_NEW_BUCKET = 16
_SEED_MODULUS = 2**31 - 1  # generation reduces seeds modulo this


# --- versioned folders ---------------------------------------------------------------------------------

def resolve_version_dir(path, version: Optional[int] = None):
    """(base folder, version) for ``path``: ``export/gpt/3`` -> (export/gpt, 3); ``export/gpt`` with
    ``version=N`` -> (export/gpt, N); ``export/gpt`` alone -> the next free version (1 when none)."""
    path = Path(os.fspath(path))
    numeric = path.name.isdigit()
    if version is not None:
        version = int(version)
        if version < 0:
            raise ValueError(f"version must be >= 0, got {version}")
        if numeric:
            if int(path.name) != version:
                raise ValueError(f"{path} already names version {path.name}; version={version} disagrees")
            return path.parent, version
        return path, version
    if numeric:
        return path.parent, int(path.name)
    existing = [int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit()] if path.is_dir() else []
    return path, max(existing, default=0) + 1


def _refuse_existing(target: Path, overwrite: bool):
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")


def _atomic_write(target: Path, overwrite: bool, write):
    """Run ``write(tmp)`` on a temporary path beside ``target``, then move it into place.

    Readers (TF Serving polls the base folder) never see a half-written export: the temporary name
    is not a version number, and the final rename is atomic on one file system.
    """
    target = Path(target)
    _refuse_existing(target, overwrite)  # checked again: the export may have taken a while
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    old = None
    try:
        write(tmp)
        if target.exists():
            old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink()
    return target


# --- the model's own forward pass as signatures ----------------------------------------------------------

def _model_kind(model) -> str:
    from tfgpt.models import modeling

    if isinstance(model, modeling.TFOpenAIGPTDoubleHeadsModel):
        return "double_heads"
    if isinstance(model, modeling.TFOpenAIGPTForSequenceClassification):
        return "seqcls"
    if isinstance(model, modeling.TFOpenAIGPTLMHeadModel):
        return "lm"
    if isinstance(model, modeling.TFOpenAIGPTModel):
        return "base"
    raise TypeError(f"cannot export {type(model).__name__}: expected one of the four tfgpt GPT-1 models")


def _has_lm_head(model) -> bool:
    return _model_kind(model) in ("lm", "double_heads")


def _forward_fn(model, dtype, name, batch=None):
    """A tf.function ``name`` with the model's serving inputs and outputs for ``dtype`` ids."""
    kind = _model_kind(model)
    if kind == "double_heads":
        ids_spec = tf.TensorSpec([batch, None, None], dtype, name="input_ids")
        spec = [ids_spec, tf.TensorSpec([batch, None, None], dtype, name="attention_mask"),
                tf.TensorSpec([batch, None], dtype, name="mc_token_ids")]

        def forward(input_ids, attention_mask, mc_token_ids):
            out = model(input_ids, attention_mask=attention_mask, mc_token_ids=mc_token_ids,
                        training=False, return_dict=True)
            return {"logits": out["logits"], "mc_logits": out["mc_logits"]}
    else:
        spec = [tf.TensorSpec([batch, None], dtype, name="input_ids"),
                tf.TensorSpec([batch, None], dtype, name="attention_mask")]
        key = "last_hidden_state" if kind == "base" else "logits"

        def forward(input_ids, attention_mask):
            out = model(input_ids, attention_mask=attention_mask, training=False, return_dict=True)
            return {key: out[key]}
    forward.__name__ = name  # TFLite takes signature names from the function names
    return tf.function(forward, input_signature=spec)


# --- in-graph generation ----------------------------------------------------------------------------------

def _bucket(n, minimum):
    """Smallest ``minimum * 2**k`` >= n (generation.bucket, for a scalar int32 tensor)."""
    return tf.while_loop(lambda b: b < n, lambda b: b * 2, [tf.constant(minimum, tf.int32)])[0]


def cache_lengths_tf(prompt_len, new_tokens, n_positions: int):
    """generation.cache_lengths for scalar int32 tensors: the bucketed (prompt, new) lengths."""
    p = _bucket(prompt_len, _MIN_PROMPT_BUCKET)
    n = _bucket(new_tokens, _MIN_NEW_BUCKET)
    n = tf.where(p + n > n_positions, tf.maximum(new_tokens, n_positions - p), n)
    p = tf.where(p + n > n_positions, n_positions - n, p)
    return p, n


def _decode_program(model, opts):
    """The library's decode loop (prefill + one cached step per token), compiled by XLA.

    The batch, prompt and new-token lengths are read from the shapes of ``ids`` and ``slots``: XLA
    compiles one program per shape combination (bucketed, so few) and keeps it.
    """
    from tfgpt import generation

    @tf.function(jit_compile=True)
    def program(ids, mask, slots, max_new, params):
        batch, prompt_len = tf.shape(ids)[0], tf.shape(ids)[1]
        new_len = tf.shape(slots)[0]
        run = generation._build_sequential(model, batch, prompt_len, new_len, opts)
        return run(ids, mask, max_new, params)

    return program


class _TextGenerator:
    """String prompts -> generated strings: tokenizer, compiled decode loop, detokenizer."""

    def __init__(self, model, tokenizer, top_k=0, eos_token_id=None, pad_token_id=None):
        cfg = model.config
        self.tokenizer = tokenizer
        self.n_positions = int(cfg.n_positions)
        eos = eos_token_id if eos_token_id is not None else getattr(cfg, "eos_token_id", None)
        self.eos = [] if eos is None else ([int(eos)] if np.ndim(eos) == 0 else [int(e) for e in eos])
        pad = pad_token_id if pad_token_id is not None else cfg.pad_token_id
        self.pad = int(pad) if pad is not None else (self.eos[0] if self.eos else 0)
        self.top_k = min(int(top_k or 0), int(cfg.vocab_size))
        base = dict(top_k=0, top_p=False, repetition_penalty=False, n_eos=len(self.eos), num_beams=1,
                    early_stopping=False)
        self.greedy = _decode_program(model, dict(base, mode="greedy"))
        self.sample = _decode_program(model, dict(base, mode="sample", top_k=self.top_k))
        self.sample_top_p = _decode_program(model, dict(base, mode="sample", top_k=self.top_k, top_p=True))

    def __call__(self, prompts, max_new_tokens, temperature=None, top_p=None, seed=None):
        sampling = temperature is not None
        prompts = tf.reshape(prompts, [-1])
        max_new = tf.cast(tf.reshape(max_new_tokens, []), tf.int32)
        ids = self.tokenizer(prompts)  # (B, (n)) ragged
        ids = tf.cast(ids, tf.int32)
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # (B,)
        batch = tf.shape(lengths)[0]
        prompt_len = tf.reduce_max(tf.concat([lengths, [1]], 0))
        checks = [
            tf.debugging.assert_positive(max_new, message="max_new_tokens must be positive"),
            tf.debugging.assert_positive(lengths, message="every prompt must encode to at least one token"),
            tf.debugging.assert_less_equal(
                prompt_len + max_new, self.n_positions,
                message=f"longest prompt + max_new_tokens exceeds n_positions={self.n_positions}"),
        ]
        if sampling:
            checks += [
                tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
                tf.debugging.assert_positive(top_p, message="top_p must be in (0, 1]"),
                tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]"),
            ]
        with tf.control_dependencies(checks):
            P, N = cache_lengths_tf(prompt_len, max_new, self.n_positions)
        # Left-pad to the bucketed width P: column c of row b holds token c - (P - length_b).
        right = ids.to_tensor(default_value=0, shape=tf.stack([batch, P]))
        src = tf.range(P)[None, :] - (P - lengths)[:, None]  # (B, P)
        real = src >= 0
        dense = tf.where(real, tf.gather(right, tf.maximum(src, 0), batch_dims=1), 0)
        mask = tf.cast(real, tf.int32)
        params = {
            "temperature": tf.constant(1.0) if temperature is None else tf.cast(temperature, tf.float32),
            "top_p": tf.constant(1.0) if top_p is None else tf.cast(top_p, tf.float32),
            "repetition_penalty": tf.constant(1.0),
            "length_penalty": tf.constant(1.0),
            "eos": tf.constant(self.eos or [0], tf.int32),
            "pad": tf.constant(self.pad, tf.int32),
            "seed": tf.constant(0) if seed is None else tf.math.floormod(tf.cast(seed, tf.int32), _SEED_MODULUS),
        }
        slots = tf.zeros(tf.reshape(N, [1]), tf.int32)  # its shape carries N into the compiled program
        args = (dense, mask, slots, max_new, params)
        if not sampling:
            out, steps = self.greedy(*args)
        else:
            out, steps = tf.cond(params["top_p"] < 1.0, lambda: self.sample_top_p(*args),
                                 lambda: self.sample(*args))
        new = out[:, :steps]  # (B, steps)
        new_len = tf.fill([batch], steps)
        if self.eos:  # a row ends with its first eos token (later columns hold padding)
            hit = tf.reduce_any(tf.equal(new[:, :, None], tf.constant(self.eos)[None, None, :]), -1)
            first = tf.argmax(tf.cast(hit, tf.int32), axis=1, output_type=tf.int32)
            new_len = tf.where(tf.reduce_any(hit, 1), first + 1, new_len)
        new = tf.RaggedTensor.from_tensor(new, lengths=new_len)
        full = tf.concat([ids, new], axis=1)
        return {"texts": _as_strings(self.tokenizer.detokenize(full)),
                "completions": _as_strings(self.tokenizer.detokenize(new))}


def _as_strings(x):
    return tf.reshape(x, [-1])


def _tf_tokenizer(tokenizer):
    """The in-graph tokenizer layer for ``tokenizer`` (a Python tokenizer is converted)."""
    if hasattr(tokenizer, "detokenize") and callable(tokenizer):
        return tokenizer
    from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

    return TFOpenAIGPTTokenizer.from_tokenizer(tokenizer)


# --- the SavedModel ---------------------------------------------------------------------------------------

class ServingModule(tf.Module):
    """What the SavedModel holds: the model's variables, the tokenizer layer and the signatures."""

    def __init__(self, model, tokenizer=None, top_k: int = 0, eos_token_id=None, pad_token_id=None):
        super().__init__(name="tfgpt_serving")
        # The variables themselves (not the Keras objects) make the SavedModel self-contained.
        self.model_variables = [v.value if hasattr(v, "value") else v for v in model.variables]
        self.serving_default = _forward_fn(model, tf.int32, "serving_default")
        self.serving_int64 = _forward_fn(model, tf.int64, "serving_int64")
        self.signature_names = ["serving_default", "serving_int64"]
        if tokenizer is not None and _has_lm_head(model):
            self.tokenizer = _tf_tokenizer(tokenizer)
            gen = _TextGenerator(model, self.tokenizer, top_k=top_k, eos_token_id=eos_token_id,
                                 pad_token_id=pad_token_id)

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompts"),
                                          tf.TensorSpec([], tf.int32, name="max_new_tokens")])
            def generate_text(prompts, max_new_tokens):
                return gen(prompts, max_new_tokens)

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompts"),
                                          tf.TensorSpec([], tf.int32, name="max_new_tokens"),
                                          tf.TensorSpec([], tf.float32, name="temperature"),
                                          tf.TensorSpec([], tf.float32, name="top_p"),
                                          tf.TensorSpec([], tf.int32, name="seed")])
            def sample_text(prompts, max_new_tokens, temperature=1.0, top_p=1.0, seed=0):
                return gen(prompts, max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)

            self.generate_text = generate_text
            self.sample_text = sample_text
            self.signature_names += ["generate_text", "sample_text"]
        elif tokenizer is not None:
            raise ValueError(f"{type(model).__name__} has no LM head: text generation needs "
                             f"TFOpenAIGPTLMHeadModel or TFOpenAIGPTDoubleHeadsModel (omit tokenizer)")

    def signature_functions(self):
        return {name: getattr(self, name) for name in self.signature_names}


def export_saved_model(model, path, tokenizer=None, version: Optional[int] = None, overwrite: bool = False,
                       top_k: int = 0, eos_token_id=None, pad_token_id=None) -> str:
    """Write ``model`` as a SavedModel at ``<base>/<version>`` (TF Serving's layout); returns that path.

    ``path`` is the versioned folder (``export/gpt/1``) or, with ``version`` (or neither: the next
    free version), the base folder. An existing version is replaced only with ``overwrite=True``.
    With ``tokenizer`` (``OpenAIGPTTokenizer`` or ``TFOpenAIGPTTokenizer``) an LM model also gets the
    ``generate_text`` (greedy) and ``sample_text`` signatures; ``top_k`` (0 = off) is fixed for
    sampling, ``eos_token_id`` / ``pad_token_id`` default to the config's.
    """
    base, version = resolve_version_dir(path, version)
    _refuse_existing(base / str(version), overwrite)
    module = ServingModule(model, tokenizer, top_k=top_k, eos_token_id=eos_token_id,
                           pad_token_id=pad_token_id)
    signatures = module.signature_functions()
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)

    def write(tmp):
        tf.saved_model.save(module, os.fspath(tmp), signatures=signatures, options=options)

    return os.fspath(_atomic_write(base / str(version), overwrite, write))


# --- TFLite ---------------------------------------------------------------------------------------------

class TFLiteModule(tf.Module):
    """Concrete functions for the TFLite converter: logits, prefill and decode_step (batch 1).

    The cache is one float32 tensor [L, 1, 2, H, T, D] with T = ``max_length``; ``decode_step`` writes
    the token's keys and values at ``index`` and attends over positions <= index.
    """

    def __init__(self, model, max_length: Optional[int] = None):
        super().__init__(name="tfgpt_tflite")
        cfg = model.config
        self.model_variables = [v.value if hasattr(v, "value") else v for v in model.variables]
        T = int(max_length or cfg.n_positions)
        if not 0 < T <= cfg.n_positions:
            raise ValueError(f"max_length must be in [1, n_positions={cfg.n_positions}], got {max_length}")
        self.max_length = T
        self.cache_shape = [cfg.n_layer, 1, 2, cfg.n_head, T, cfg.n_embd // cfg.n_head]
        self.logits = _forward_fn(model, tf.int32, "logits")
        self.signature_names = ["logits"]
        if not _has_lm_head(model):
            return
        transformer = model.transformer
        cache_spec = tf.TensorSpec(self.cache_shape, tf.float32, name="cache")
        dtype = transformer.compute_dtype

        def last_logits(ids, cache, index):
            out = transformer(ids, cache=cache, cache_index=index, return_dict=True, training=False)
            last = out["last_hidden_state"][:, -1, :]  # (1, E)
            logits = tf.cast(transformer.tokens_embed(last, reverse=True), tf.float32)  # (1, V)
            return {"logits": logits, "cache": tf.cast(out["cache"], tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name="input_ids")])
        def prefill(input_ids):
            return last_logits(input_ids, tf.zeros(self.cache_shape, dtype), 0)

        @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.int32, name="token"),
                                      tf.TensorSpec([], tf.int32, name="index"), cache_spec])
        def decode_step(token, index, cache):
            return last_logits(token, tf.cast(cache, dtype), index)

        self.prefill = prefill
        self.decode_step = decode_step
        self.signature_names += ["prefill", "decode_step"]


def export_tflite(model, path, max_length: Optional[int] = None, quantize: bool = False,
                  overwrite: bool = False, allow_select_tf_ops: bool = False) -> str:
    """Write a .tflite with the ``logits``, ``prefill`` and ``decode_step`` signatures; returns the path.

    ``max_length`` (default n_positions) is the cache length T of ``prefill`` / ``decode_step``;
    ``quantize`` stores the weights as int8 (dynamic-range quantisation). Only builtin TFLite ops
    are used unless ``allow_select_tf_ops``.
    """
    path = Path(os.fspath(path))
    _refuse_existing(path, overwrite)
    module = TFLiteModule(model, max_length)
    fns = [getattr(module, n).get_concrete_function() for n in module.signature_names]
    converter = tf.lite.TFLiteConverter.from_concrete_functions(fns, module)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if allow_select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()

    def write(tmp):
        Path(tmp).write_bytes(flatbuffer)

    return os.fspath(_atomic_write(path, overwrite, write))


# --- command line -----------------------------------------------------------------------------------------

def register_cli(subparsers):
    """Add ``tfgpt export --model DIR --out export/NAME [--version N] [--tflite] [--quantize]``."""
    p = subparsers.add_parser(
        "export", help="export a model for TF Serving (SavedModel) and TFLite",
        description="Write a SavedModel at OUT/VERSION (TF Serving's layout) with logits and, when the "
                    "model folder has tokenizer files, text generation signatures; optionally a "
                    "TFLite file OUT.tflite (OUT.int8.tflite with --quantize).")
    p.add_argument("--model", required=True, help="model folder (save_pretrained output) or hub id")
    p.add_argument("--out", required=True, help="export base folder, e.g. export/gpt")
    p.add_argument("--version", type=int, help="version number (default: the next free one)")
    p.add_argument("--tokenizer", help="tokenizer folder (default: the model folder when it has one)")
    p.add_argument("--head", choices=["lm", "base", "double-heads", "seqcls"],
                   help="model class (default: from config.json's architectures, else lm)")
    p.add_argument("--tflite", action="store_true", help="also write OUT.tflite")
    p.add_argument("--quantize", action="store_true",
                   help="write the TFLite file with int8 weights (dynamic range) as OUT.int8.tflite")
    p.add_argument("--max-length", type=int, help="TFLite cache length (default n_positions)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version / file")
    p.set_defaults(func=_cli_export)
    return p


def _cli_export(args):
    from tfgpt import checkpoints

    folder = args.model if os.path.isdir(args.model) else None
    cls = checkpoints.model_class(args.head, folder)
    print(f"loading {args.model} ({cls.__name__}) ...", file=sys.stderr, flush=True)
    model = cls.from_pretrained(args.model)
    tokenizer = None
    tok_source = args.tokenizer or (folder if _has_tokenizer_files(folder) else None)
    if tok_source is not None and _has_lm_head(model):
        from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

        tokenizer = OpenAIGPTTokenizer.from_pretrained(tok_source)
    print("writing the SavedModel ...", file=sys.stderr, flush=True)
    out = export_saved_model(model, args.out, tokenizer=tokenizer, version=args.version,
                             overwrite=args.overwrite)
    print(out)
    if args.tflite or args.quantize:
        base = os.fspath(resolve_version_dir(out)[0])  # export/gpt/1 -> export/gpt
        target = base + (".int8.tflite" if args.quantize else ".tflite")
        print(f"converting to TFLite{' (int8 weights)' if args.quantize else ''} ...", file=sys.stderr,
              flush=True)
        print(export_tflite(model, target, max_length=args.max_length, quantize=args.quantize,
                            overwrite=args.overwrite))
    return 0


def _has_tokenizer_files(folder) -> bool:
    return bool(folder) and any(os.path.isfile(os.path.join(folder, f))
                                for f in ("vocab.json", "encoder_bpe_40000.json"))
