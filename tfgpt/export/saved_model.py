"""The TF Serving SavedModel: token ids -> the model's outputs, and string prompts -> generated text.

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
lookup_text         prompts, max_new_tokens, prompt_lookup_num_tokens (*)     texts, completions
sample_text         prompts, max_new_tokens, temperature, top_p, seed         texts, completions
penalty_text        prompts, max_new_tokens, repetition_penalty               texts, completions
penalty_sample_text sample_text's inputs + repetition_penalty                 texts, completions
beam_text           prompts, max_new_tokens (export with num_beams)           texts, completions
==================  ========================================================  =====================

(*) not with ``no_repeat_ngram_size`` or ``stop_strings`` (see below).

The logits signatures return what the model class returns: ``logits`` [B, S, V] (LM head),
``logits`` + ``mc_logits`` (double heads; inputs [B, C, S] plus ``mc_token_ids`` [B, C]), class
``logits`` [B, num_labels] (sequence classification), ``last_hidden_state`` (base model). The text
signatures (models with an LM head, given a tokenizer) run the tokenizer, the library's XLA-compiled
decode loop with its KV cache (``tfgpt.generation``'s programs and buckets, greedy or sampling) and
the detokenizer; ``texts`` is prompt + continuation (``tok.decode(model.generate(...))``),
``completions`` the new text. ``lookup_text`` is ``generate_text`` decoded by prompt lookup
(``prompt_lookup_num_tokens`` in [1, 10], n-grams up to 2 as HF): the same texts, fewer passes over
the weights when the continuation repeats the prompt; the ``generate_text`` function of the loaded
object takes it as an optional argument too. ``penalty_text`` / ``penalty_sample_text`` add HF's
``repetition_penalty`` (a run-time value: 1.0 runs the plain program), also an optional argument of
the loaded ``generate_text`` / ``sample_text`` functions.

Export-time options (shapes or constants of the compiled programs) apply to every text signature:
``top_k`` (sampling), ``no_repeat_ngram_size``, ``stop_strings`` (a row ends with the token that
completes one, matched in-graph by ``generate``'s ``StopStringCriteria``; its texts end there) and
``num_beams`` (adds ``beam_text``). ``lookup_text`` (and the loaded ``generate_text``'s
``prompt_lookup_num_tokens``) is exported only without ``no_repeat_ngram_size`` and ``stop_strings``:
prompt lookup verifies its drafts with the basic processors and no stopping criteria.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

import tensorflow as tf

from tfgpt import generation, validation
from tfgpt.generation.processors import NoRepeatNGramLogitsProcessor
from tfgpt.generation.stopping import StopStringCriteria
from tfgpt.io import atomic_write_dir
from tfgpt.models.registry import entry_for

PROMPT_LOOKUP_MAX_TOKENS = 10  # the compiled verification width of lookup_text, minus one


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


# --- the model's own forward pass as a signature ----------------------------------------------------------

def forward_function(model, dtype, name: str, batch: Optional[int] = None):
    """A ``tf.function`` named ``name`` with the model's serving inputs (``dtype`` ids) and outputs.

    Double heads take input_ids / attention_mask [B, C, S] and mc_token_ids [B, C] and return
    logits + mc_logits; the base model returns last_hidden_state; the other heads logits.
    ``batch`` fixes the batch dimension (None: any).
    """
    head = entry_for(model).head
    if head == "double-heads":
        spec = [tf.TensorSpec([batch, None, None], dtype, name="input_ids"),
                tf.TensorSpec([batch, None, None], dtype, name="attention_mask"),
                tf.TensorSpec([batch, None], dtype, name="mc_token_ids")]

        def forward(input_ids, attention_mask, mc_token_ids):
            out = model(input_ids, attention_mask=attention_mask, mc_token_ids=mc_token_ids,
                        training=False, return_dict=True)
            return {"logits": out["logits"], "mc_logits": out["mc_logits"]}
    else:
        spec = [tf.TensorSpec([batch, None], dtype, name="input_ids"),
                tf.TensorSpec([batch, None], dtype, name="attention_mask")]
        key = "last_hidden_state" if head == "base" else "logits"

        def forward(input_ids, attention_mask):
            out = model(input_ids, attention_mask=attention_mask, training=False, return_dict=True)
            return {key: out[key]}
    forward.__name__ = name  # TFLite takes signature names from the function names
    return tf.function(forward, input_signature=spec)


# --- in-graph generation ----------------------------------------------------------------------------------

class _TextGenerator:
    """String prompts -> generated strings: tokenizer, the compiled decode programs, detokenizer."""

    def __init__(self, model, tokenizer, top_k=0, eos_token_id=None, pad_token_id=None, no_repeat_ngram_size=None,
                 num_beams=None, stop_strings=None, python_tokenizer=None):
        cfg = model.config
        self.tokenizer = tokenizer
        self.n_positions = int(cfg.n_positions)
        self.vocab_size = int(cfg.vocab_size)
        special = generation.resolve_special_ids(cfg, eos_token_id, pad_token_id)
        self.eos, self.pad = list(special.eos_token_ids), special.pad_token_id
        top_k = min(int(top_k or 0), int(cfg.vocab_size))
        # Export-time processors (compile-time in the programs), applied after the repetition penalty as HF.
        processors = None
        if no_repeat_ngram_size:
            processors = (NoRepeatNGramLogitsProcessor(no_repeat_ngram_size),)
        # Stop strings: the criterion generate builds, compiled into every program (HF's matching).
        self.stop = None if stop_strings is None else StopStringCriteria(python_tokenizer, stop_strings)
        stopping = None if self.stop is None else (self.stop,)
        greedy = generation.DecodeOptions(mode="greedy", n_eos=len(self.eos))
        sample = generation.DecodeOptions(mode="sample", top_k=top_k, n_eos=len(self.eos))
        sample_top_p = dataclasses.replace(sample, use_top_p=True)
        self.programs = {}  # (name, penalty on) -> compiled program; the penalty is a run-time value
        for name, options in (("greedy", greedy), ("sample", sample), ("sample_top_p", sample_top_p)):
            options = dataclasses.replace(options, processors=processors, stopping=stopping)
            for penalty in (False, True):
                self.programs[name, penalty] = generation.compile_program(
                    model, dataclasses.replace(options, use_repetition_penalty=penalty))
        self.beam = None
        if num_beams is not None:  # HF's beam search defaults: length_penalty 1, early_stopping False
            num_beams = validation.as_int(num_beams, "num_beams")
            if num_beams < 2:
                raise ValueError(f"num_beams must be >= 2 for the beam_text signature, got {num_beams}")
            self.beam = generation.compile_program(model, generation.DecodeOptions(
                mode="beam", num_beams=num_beams, n_eos=len(self.eos), processors=processors, stopping=stopping))
        self.lookup = None
        if processors is None and stopping is None:  # prompt lookup: the basic processors, no criteria
            lookup = generation.SpeculativeOptions("prompt_lookup", PROMPT_LOOKUP_MAX_TOKENS)
            self.lookup = tf.function(generation.build_speculative_program(model, greedy, lookup),
                                      jit_compile=True, autograph=False)

    def __call__(self, prompts, max_new_tokens, temperature=None, top_p=None, seed=None,
                 prompt_lookup_num_tokens=None, repetition_penalty=None, beams=False):
        sampling = temperature is not None
        penalty = tf.constant(1.0) if repetition_penalty is None else tf.cast(tf.reshape(repetition_penalty, []),
                                                                             tf.float32)
        prompts = tf.reshape(prompts, [-1])
        max_new = tf.cast(tf.reshape(max_new_tokens, []), tf.int32)
        ids = tf.cast(self.tokenizer(prompts), tf.int32)  # (B, (n)) ragged
        # The decode programs are XLA-compiled (asserts dropped, gathers clamped): check ids here.
        ids = ids.with_flat_values(validation.checked_ids(
            ids.flat_values, "prompt token ids", 0, self.vocab_size,
            f"the tokenizer's ids must fit the model's vocab_size={self.vocab_size}"))
        lengths = tf.cast(ids.row_lengths(), tf.int32)  # (B,)
        prompt_len = tf.reduce_max(tf.concat([lengths, [1]], 0))
        checks = [
            tf.debugging.assert_positive(max_new, message="max_new_tokens must be positive"),
            tf.debugging.assert_positive(lengths, message="every prompt must encode to at least one token"),
            tf.debugging.assert_less_equal(
                prompt_len + max_new, self.n_positions,
                message=f"longest prompt + max_new_tokens exceeds n_positions={self.n_positions}"),
        ]
        if repetition_penalty is not None:
            checks.append(tf.debugging.assert_positive(penalty, message="repetition_penalty must be > 0"))
        if prompt_lookup_num_tokens is not None:
            if self.lookup is None:
                raise ValueError("prompt lookup is not exported with no_repeat_ngram_size or stop_strings")
            lookup = tf.cast(tf.reshape(prompt_lookup_num_tokens, []), tf.int32)
            checks += [
                tf.debugging.assert_positive(lookup, message="prompt_lookup_num_tokens must be >= 1"),
                tf.debugging.assert_less_equal(
                    lookup, PROMPT_LOOKUP_MAX_TOKENS,
                    message=f"prompt_lookup_num_tokens must be <= {PROMPT_LOOKUP_MAX_TOKENS}"),
            ]
        if sampling:
            checks += [
                tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
                tf.debugging.assert_positive(top_p, message="top_p must be in (0, 1]"),
                tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1]"),
            ]
        with tf.control_dependencies(checks):
            P, N = generation.cache_lengths(prompt_len, max_new, self.n_positions)
        dense, mask = generation.left_pad_ragged(ids, P)  # (B, P)
        params = generation.DecodeParams(
            temperature=1.0 if temperature is None else temperature,
            top_p=1.0 if top_p is None else top_p, repetition_penalty=penalty,
            eos_token_ids=self.eos, pad_token_id=self.pad,
            seed=0 if seed is None else tf.math.floormod(tf.cast(seed, tf.int32), generation.SEED_MODULUS),
        ).as_tensors()
        new_slots = tf.zeros(tf.reshape(N, [1]), tf.int32)  # (N,): its length is the program's N
        args = (dense, mask, new_slots, max_new, params)
        def run(name):  # the program with the penalty only when one is asked for (1.0: the plain one)
            if repetition_penalty is None:
                return self.programs[name, False](*args)[:2]
            return tf.cond(penalty != 1.0, lambda: self.programs[name, True](*args)[:2],
                           lambda: self.programs[name, False](*args)[:2])

        new_len = None  # (B,): each row's real end
        if beams:  # the best hypothesis of each row, its generated length (eos or stop token included)
            finished, lengths = self.beam(*args)[:2]  # (B, K, N), (B, K)
            out, new_len = finished[:, 0, :], lengths[:, 0]
            steps = tf.reduce_max(new_len)
        elif prompt_lookup_num_tokens is not None:
            if repetition_penalty is not None:
                raise ValueError("prompt_lookup_num_tokens and repetition_penalty are separate signatures")
            out, steps = self.lookup(*args, lookup)[:2]
        elif not sampling:
            out, steps = run("greedy")
        else:
            out, steps = tf.cond(params.top_p < 1.0, lambda: run("sample_top_p"), lambda: run("sample"))
        new = out[:, :steps]  # (B, steps)
        if new_len is None:
            new_len = self.row_ends(dense, mask, new, steps)
        new = tf.RaggedTensor.from_tensor(new, lengths=new_len)
        full = tf.concat([ids, new], axis=1)
        return {"texts": tf.reshape(self.tokenizer.detokenize(full), [-1]),
                "completions": tf.reshape(self.tokenizer.detokenize(new), [-1])}

    def row_ends(self, prompt_ids, prompt_mask, new, steps):
        """(B,) new tokens per row: up to its first eos token or the token that completed a stop
        string (later columns hold padding), else all ``steps``."""
        hit = tf.zeros(tf.shape(new), tf.bool)  # (B, steps): the row has ended at this token
        if self.eos:
            hit |= tf.reduce_any(tf.equal(new[:, :, None], tf.constant(self.eos)[None, None, :]), -1)
        if self.stop is not None:  # the criterion of the programs, judged after each new token
            buffer = tf.concat([prompt_ids, new], axis=1)  # (B, P + steps)
            real = tf.concat([prompt_mask > 0, tf.ones(tf.shape(new), tf.bool)], axis=1)
            width = tf.shape(prompt_ids)[1]
            stops = tf.map_fn(lambda n: self.stop(buffer, None, width + n, real), tf.range(1, steps + 1),
                              fn_output_signature=tf.bool)  # (steps, B)
            hit |= tf.transpose(stops)
        first = tf.argmax(tf.cast(hit, tf.int32), axis=1, output_type=tf.int32)
        return tf.where(tf.reduce_any(hit, 1), first + 1, tf.fill(tf.shape(first), steps))


def _tf_tokenizer(tokenizer):
    """The in-graph tokenizer layer for ``tokenizer`` (a Python tokenizer is converted)."""
    if hasattr(tokenizer, "detokenize") and callable(tokenizer):
        return tokenizer
    from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

    return TFOpenAIGPTTokenizer.from_tokenizer(tokenizer)


# --- the SavedModel ---------------------------------------------------------------------------------------

class ServingModule(tf.Module):
    """What the SavedModel holds: the model's variables, the tokenizer layer and the signatures."""

    def __init__(self, model, tokenizer=None, top_k: int = 0, eos_token_id=None, pad_token_id=None,
                 no_repeat_ngram_size=None, num_beams=None, stop_strings=None):
        super().__init__(name="tfgpt_serving")
        if stop_strings is not None:  # checked before the slow tracing
            stop_strings = validation.stop_string_list(stop_strings)
            if tokenizer is None:
                raise ValueError("stop_strings needs the tokenizer: they are matched on the decoded text")
        # The variables themselves (not the Keras objects) make the SavedModel self-contained.
        self.model_variables = [v.value if hasattr(v, "value") else v for v in model.variables]
        self.serving_default = forward_function(model, tf.int32, "serving_default")
        self.serving_int64 = forward_function(model, tf.int64, "serving_int64")
        self.signature_names = ["serving_default", "serving_int64"]
        if tokenizer is None:
            return
        if not entry_for(model).has_lm_head:
            raise ValueError(f"{type(model).__name__} has no LM head: text generation needs "
                             f"TFOpenAIGPTLMHeadModel or TFOpenAIGPTDoubleHeadsModel (omit tokenizer)")
        self.tokenizer = _tf_tokenizer(tokenizer)
        gen = _TextGenerator(model, self.tokenizer, top_k=top_k, eos_token_id=eos_token_id,
                             pad_token_id=pad_token_id, no_repeat_ngram_size=no_repeat_ngram_size,
                             num_beams=num_beams, stop_strings=stop_strings,
                             python_tokenizer=getattr(self.tokenizer, "python_tokenizer", tokenizer))

        text_specs = [tf.TensorSpec([None], tf.string, name="prompts"),
                      tf.TensorSpec([], tf.int32, name="max_new_tokens")]
        lookup_spec = tf.TensorSpec([], tf.int32, name="prompt_lookup_num_tokens")
        penalty_spec = tf.TensorSpec([], tf.float32, name="repetition_penalty")
        sample_specs = [tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.float32, name="top_p"),
                        tf.TensorSpec([], tf.int32, name="seed")]

        @tf.function
        def generate_text(prompts, max_new_tokens, prompt_lookup_num_tokens=None, repetition_penalty=None):
            return gen(prompts, max_new_tokens, prompt_lookup_num_tokens=prompt_lookup_num_tokens,
                       repetition_penalty=repetition_penalty)

        @tf.function
        def sample_text(prompts, max_new_tokens, temperature=1.0, top_p=1.0, seed=0, repetition_penalty=None):
            return gen(prompts, max_new_tokens, temperature=temperature, top_p=top_p, seed=seed,
                       repetition_penalty=repetition_penalty)

        # One trace per signature; the loaded functions take any of these calls (Python defaults apply).
        self.generate_text_plain = generate_text.get_concrete_function(*text_specs)
        self.penalty_text = generate_text.get_concrete_function(*text_specs, repetition_penalty=penalty_spec)
        self.sample_text_plain = sample_text.get_concrete_function(*text_specs, *sample_specs)
        self.penalty_sample_text = sample_text.get_concrete_function(*text_specs, *sample_specs, penalty_spec)
        self.generate_text = generate_text
        self.sample_text = sample_text
        self.signature_names += ["generate_text", "sample_text", "penalty_text", "penalty_sample_text"]
        if gen.lookup is not None:
            self.lookup_text = generate_text.get_concrete_function(*text_specs, lookup_spec)
            self.signature_names.append("lookup_text")
        if gen.beam is not None:
            @tf.function(input_signature=text_specs)
            def beam_text(prompts, max_new_tokens):
                return gen(prompts, max_new_tokens, beams=True)

            self.beam_text = beam_text
            self.signature_names.append("beam_text")

    def signature_functions(self):
        functions = {name: getattr(self, name) for name in self.signature_names}
        for name in ("generate_text", "sample_text"):
            if name in functions:
                functions[name] = getattr(self, f"{name}_plain")
        return functions


def export_saved_model(model, path, tokenizer=None, version: Optional[int] = None, overwrite: bool = False,
                       top_k: int = 0, eos_token_id=None, pad_token_id=None,
                       no_repeat_ngram_size: Optional[int] = None, num_beams: Optional[int] = None,
                       stop_strings=None) -> str:
    """Write ``model`` as a SavedModel at ``<base>/<version>`` (TF Serving's layout); returns that path.

    ``path`` is the versioned folder (``export/gpt/1``) or, with ``version`` (or neither: the next
    free version), the base folder. An existing version is replaced only with ``overwrite=True``.
    With ``tokenizer`` (``OpenAIGPTTokenizer`` or ``TFOpenAIGPTTokenizer``) an LM model also gets the
    ``generate_text`` (greedy), ``lookup_text`` (greedy by prompt lookup) and ``sample_text``
    signatures, and ``penalty_text`` / ``penalty_sample_text`` (the same with a run-time
    ``repetition_penalty`` input, HF's); ``top_k`` (0 = off) is fixed for sampling, ``eos_token_id`` /
    ``pad_token_id`` default to the config's; ``no_repeat_ngram_size`` (HF's, fixed at export: it is
    a shape of the programs) bans repeated n-grams in every text signature (``lookup_text`` is then
    not exported). ``num_beams`` (>= 2) adds ``beam_text`` (prompts, max_new_tokens): HF's beam search
    with that many beams (length_penalty 1, early_stopping False), the best hypothesis of each prompt.
    ``stop_strings`` (HF's: a string or a non-empty list of them, fixed at export, needs ``tokenizer``)
    ends each row of every text signature once its decoded text ends a stop string, with the token
    that completed it, as ``generate(..., stop_strings=, tokenizer=)`` (``lookup_text`` is then not
    exported).
    """
    base, version = resolve_version_dir(path, version)
    target = base / str(version)
    if target.exists() and not overwrite:  # before the (slow) tracing; atomic_write_dir checks again
        raise FileExistsError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
    module = ServingModule(model, tokenizer, top_k=top_k, eos_token_id=eos_token_id,
                           pad_token_id=pad_token_id, no_repeat_ngram_size=no_repeat_ngram_size,
                           num_beams=num_beams, stop_strings=stop_strings)
    signatures = module.signature_functions()
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)

    def write(tmp):
        tf.saved_model.save(module, os.fspath(tmp), signatures=signatures, options=options)

    return os.fspath(atomic_write_dir(target, write, overwrite=overwrite))
