"""``generate(model, input_ids, ...)``, what ``model.generate`` calls, and the compiled programs.

The arguments are prepared in Python (``prepare_request``), then one ``tf.function(jit_compile=True)``
prefills the prompt into a KV cache and decodes one token per ``tf.while_loop`` step through the
model's own blocks. Shapes are static: the cache is allocated once at its final length and written
in place; prompt lengths and new-token counts are rounded up to buckets so that varied calls reuse
the compiled programs, which are kept on the model in ``model._generate_cache``.

Conventions follow HF transformers: the result holds the prompt and the new tokens; prompts are
left-padded (``attention_mask`` marks real tokens) and every row continues exactly as if it were
generated alone (positions come from the mask, so padding does not shift them).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from tfgpt.generation import program_cache
from tfgpt.generation.beam import build_beam_program
from tfgpt.generation.contrastive import build_contrastive_program
from tfgpt.generation.loop import build_sequential_program
from tfgpt.generation.program import DecodeOptions
from tfgpt.generation.request import prepare_request
from tfgpt.generation.speculative import speculative_generate, speculative_options


def compile_program(model, options: DecodeOptions):
    """A new XLA-compiled decode program of ``model`` for ``options`` (beam or sequential).

    Called as ``program(prompt_ids [B, P], prompt_mask [B, P], new_slots [N], max_new [],
    params)`` (see ``build_sequential_program`` / ``build_beam_program``). B, P and N are read from
    the input shapes, so a call with new shapes traces and compiles once more and is kept; inside
    another ``tf.function`` (the exported signatures) XLA compiles per shape at run time.
    """
    build = {"beam": build_beam_program, "contrastive": build_contrastive_program}.get(
        options.mode, build_sequential_program)
    return tf.function(build(model, options), jit_compile=True, autograph=False)


def cached_program(model, options: DecodeOptions, batch: int, prompt_bucket: int, new_bucket: int):
    """The compiled program of ``model`` for ``options`` and these shapes, from the model's cache or new.

    One ``tf.function`` per shape: each traces once (no retracing warnings across buckets). With
    tfgpt's XLA cache on, it is kept between processes (``program_cache``): a later process loads it
    without tracing.
    """
    cache = getattr(model, "_generate_cache", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_generate_cache", cache)  # plain dict, outside Keras tracking
    key = (batch, prompt_bucket, new_bucket, model.config.vocab_size, model.transformer.compute_dtype, options)
    program = cache.get(key)
    if program is None:
        program = cache[key] = program_cache.wrap(model, options, key[:3], compile_program(model, options))
    return program


def generate(model, input_ids, attention_mask=None, max_new_tokens: Optional[int] = None,
             max_length: Optional[int] = None, do_sample: bool = False, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, num_beams: int = 1, repetition_penalty: float = 1.0,
             eos_token_id: Union[int, Sequence[int], None] = None, pad_token_id: Optional[int] = None,
             seed: Optional[int] = None, length_penalty: float = 1.0,
             early_stopping: Union[bool, str] = False, num_return_sequences: int = 1,
             penalty_alpha: Optional[float] = None,
             prompt_lookup_num_tokens: Optional[int] = None, max_matching_ngram_size: Optional[int] = None,
             assistant_model=None, num_assistant_tokens: Optional[int] = None,
             num_assistant_tokens_schedule: Optional[str] = None):
    """Generate continuations of ``input_ids`` [B, S] (or [B, C, S]); returns int32 [B', S + new].

    ``B' = B * num_return_sequences``. The prompt is included (left-aligned when a right-padded mask
    was given); rows that emitted an eos token continue with ``pad_token_id``; the result stops at
    the last step any row needed (HF's convention). Greedy by default; ``do_sample`` samples with
    ``temperature`` / ``top_k`` / ``top_p`` from a stateless generator seeded by ``seed``
    (reproducible); ``num_beams > 1`` runs beam search with ``length_penalty`` / ``early_stopping``
    (True, False or "never"), beam sampling with ``do_sample``; ``penalty_alpha > 0`` with
    ``top_k > 1`` runs contrastive search over ``top_k`` candidates. ``repetition_penalty`` divides (multiplies if negative) the scores of
    tokens already in the row. ``max_new_tokens`` or ``max_length`` (prompt included; 20 when
    neither is given) bound the length; the real prompt plus new tokens must fit ``n_positions``.
    ``prompt_lookup_num_tokens`` (with ``max_matching_ngram_size``) or ``assistant_model`` (with
    ``num_assistant_tokens`` / ``num_assistant_tokens_schedule``) decode speculatively
    (``tfgpt.generation.speculative``): the same greedy tokens, the same sampling distribution.
    """
    r = prepare_request(model, input_ids, attention_mask, max_new_tokens, max_length, do_sample,
                        temperature, top_k, top_p, num_beams, repetition_penalty, eos_token_id,
                        pad_token_id, seed, length_penalty, early_stopping, num_return_sequences,
                        penalty_alpha)
    speculative = speculative_options(model, prompt_lookup_num_tokens, max_matching_ngram_size, assistant_model,
                                      num_assistant_tokens, num_assistant_tokens_schedule)
    if speculative is not None:
        result = speculative_generate(model, r, speculative, assistant_model)
    else:
        ids, mask = r.bucketed_prompts()  # (B, P)
        new_slots = tf.zeros([r.new_bucket], tf.int32)  # (N,): its length is the program's N
        program = cached_program(model, r.options, r.batch, r.prompt_bucket, r.new_bucket)
        result = program(tf.constant(ids), tf.constant(mask), new_slots, tf.constant(r.max_new_tokens, tf.int32),
                         r.params.as_tensors())
    prompt = r.ids.astype(np.int32)
    if r.options.mode == "beam":
        hypotheses, lengths, _ = (t.numpy() for t in result)  # (B, K, N), (B, K)
        n = r.num_return_sequences
        new = int(lengths[:, :n].max())
        tokens = hypotheses[:, :n, :new].reshape(r.batch * n, new)
        prompt = np.repeat(prompt, n, axis=0)
    else:
        out, steps = result  # (B, N), []
        tokens = out.numpy()[:, : int(steps)]
    full = np.concatenate([prompt, tokens], axis=1)
    if r.lead_shape is not None:
        full = full.reshape(r.lead_shape[0], -1, full.shape[-1])
    return tf.constant(full, tf.int32)
