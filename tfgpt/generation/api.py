"""``generate(model, input_ids, ...)``, what ``model.generate`` calls, and the compiled programs.

The arguments are prepared in Python (``prepare_request``), then one ``tf.function(jit_compile=True)``
prefills the prompt into a KV cache and decodes one token per ``tf.while_loop`` step through the
model's own blocks. Shapes are static: the cache is allocated once at its final length and written
in place; prompt lengths and new-token counts are rounded up to buckets so that varied calls reuse
the compiled programs, which are kept on the model in ``model._generate_cache``.

Conventions follow HF transformers: the result holds the prompt and the new tokens; prompts are
left-padded (``attention_mask`` marks real tokens) and every row continues exactly as if it were
generated alone (positions come from the mask, so padding does not shift them).

The options are HF's ``GenerationConfig`` (``resolve_generation_config``: the model's own config or
the one passed, updated with the keyword arguments). Temperature, top-k, top-p and the repetition
penalty run as run-time values of the basic programs; any other logits processor (or a user one, or
``output_scores``) compiles a program that applies HF's whole processor list (``build_processors``)
in the loop. Stop strings and user stopping criteria also run inside the program.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfgpt.generation import processors as P
from tfgpt.generation import program_cache
from tfgpt.generation.beam import build_beam_program
from tfgpt.generation.config import DEFAULTS, GenerationConfig
from tfgpt.generation.contrastive import build_contrastive_program
from tfgpt.generation.loop import build_sequential_program
from tfgpt.generation.program import DecodeOptions
from tfgpt.generation.request import GenerationRequest, prepare_request
from tfgpt.generation.speculative import speculative_generate, speculative_options
from tfgpt.generation.stopping import (
    EosTokenCriteria,
    MaxLengthCriteria,
    StoppingCriteria,
    build_stopping_criteria,
)
from tfgpt.generation.streaming import check_streaming_args, run_chunked
from tfgpt.models.outputs import GenerateBeamDecoderOnlyOutput, GenerateDecoderOnlyOutput


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


def cached_program(model, options: DecodeOptions, batch: int, prompt_bucket: int, new_bucket: int,
                   use: str = "run"):
    """The compiled program of ``model`` for ``options`` and these shapes, from the model's cache or new.

    One ``tf.function`` per shape and ``use`` ("run": one call per generate; "chunks": the chunked
    calls of ``streaming``; "graph": calls from inside other functions): each traces once or twice
    (no retracing warnings across buckets).
    The plain programs ("run", no logits processors or stopping criteria: their options are values,
    never user code) are kept between processes with tfgpt's XLA cache on (``program_cache``): a later
    process loads them without tracing.
    """
    cache = getattr(model, "_generate_cache", None)
    if cache is None:
        cache = {}
        object.__setattr__(model, "_generate_cache", cache)  # plain dict, outside Keras tracking
    key = (batch, prompt_bucket, new_bucket, model.config.vocab_size, model.transformer.compute_dtype, options, use)
    program = cache.get(key)
    if program is None:
        program = compile_program(model, options)
        if use == "run" and options.processors is None and not options.stopping:
            program = program_cache.wrap(model, options, key[:3], program)
        cache[key] = program
    return program


# generate() arguments that are neither GenerationConfig fields nor model inputs
GENERATE_ONLY = ("seed", "tokenizer", "assistant_model", "inputs", "stream_chunk_size")

# model inputs HF's generate forwards to the model, which tfgpt's decode programs do not take
UNSUPPORTED_MODEL_INPUTS = ("token_type_ids", "position_ids", "inputs_embeds", "past_key_values", "head_mask")

# processors the basic programs run from DecodeOptions / DecodeParams (no processor list compiled in)
BASIC_PROCESSORS = (P.RepetitionPenaltyLogitsProcessor, P.TemperatureLogitsWarper, P.TopKLogitsWarper,
                    P.TopPLogitsWarper)


def default_generation_config(model) -> GenerationConfig:
    """The model's ``generation_config`` (read from generation_config.json by ``from_pretrained``), else
    the one its config implies (HF's ``GenerationConfig.from_model_config``)."""
    own = getattr(model, "generation_config", None)
    return own if own is not None else GenerationConfig.from_model_config(model.config)


def resolve_generation_config(model, generation_config=None, kwargs=None) -> Tuple[GenerationConfig, dict]:
    """(the effective config of a ``generate`` call, its generate-only arguments).

    A copy of ``generation_config`` (its unset special tokens taken from the model's, as HF) or of
    the model's, updated with the config fields among ``kwargs``; ``seed``, ``tokenizer`` and
    ``assistant_model`` are returned apart. Any other key raises a ValueError naming it (HF's
    ``_validate_model_kwargs``). The config is not validated here: ``generate`` checks the values.
    """
    kwargs = dict(kwargs or {})
    base = default_generation_config(model)
    if generation_config is None:
        gc = copy.deepcopy(base)
    else:
        if not isinstance(generation_config, GenerationConfig):
            raise TypeError(f"generation_config must be a GenerationConfig, got {type(generation_config).__name__}")
        gc = copy.deepcopy(generation_config)
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(gc, name) is None:
                setattr(gc, name, copy.deepcopy(getattr(base, name)))
    extras = {k: kwargs.pop(k) for k in GENERATE_ONLY if k in kwargs}
    inputs = sorted(k for k in UNSUPPORTED_MODEL_INPUTS if kwargs.get(k) is not None)
    if inputs:
        raise ValueError(f"generate does not take {', '.join(inputs)}: the decode programs compute positions "
                         f"from attention_mask and keep their own cache")
    for k in UNSUPPORTED_MODEL_INPUTS:
        kwargs.pop(k, None)
    unused = gc.update(validate=False, **kwargs)
    if unused:
        raise ValueError(f"The following `model_kwargs` are not used by the model: {sorted(unused)} (note: typos "
                         f"in the generate arguments will also show up in this list)")
    return gc, extras


def _refuse_unsupported(gc: GenerationConfig) -> None:
    """A ValueError naming the set options that tfgpt's generate cannot honour.

    Cache and compilation choices (``use_cache``, ``cache_implementation``, ``compile_config``, ...) are
    accepted with any value: they do not change what the programs compute (always a static cache, XLA).
    ``max_time`` is honoured by the chunked decoding (``streaming``).
    """
    bad = []
    if gc.prefill_chunk_size is not None:
        bad.append("prefill_chunk_size")
    if gc.assistant_early_exit is not None:
        bad.append("assistant_early_exit")
    if gc.generation_kwargs:
        bad.append("generation_kwargs")
    if bad:
        raise ValueError(f"generate does not support {', '.join(bad)}")


def _user_set(gc: GenerationConfig, name: str):
    """``gc.<name>`` when it differs from HF's default, else None (the speculative options' "not given")."""
    value = getattr(gc, name)
    return None if value == DEFAULTS[name] else value


class GenerationPlan(NamedTuple):
    """A prepared ``generate`` call: the request with its program's options and parameters."""

    request: GenerationRequest
    config: GenerationConfig        # the effective config, eos / pad / lengths resolved
    return_dict: bool
    speculative: object             # SpeculativeOptions or None
    assistant_model: object
    host_criteria: tuple = ()       # host-side stopping criteria (max_time), checked between decode chunks
    stream_chunk_size: Optional[int] = None  # steps per compiled chunk of the chunked decoding


def plan_generation(model, input_ids=None, attention_mask=None, generation_config=None, logits_processor=None,
                    stopping_criteria=None, **kwargs) -> GenerationPlan:
    """Validate a ``generate`` call and choose its program (``request.options``) and run-time values.

    The streaming generation builds its programs from the same plan.
    """
    gc, extras = resolve_generation_config(model, generation_config, kwargs)
    if input_ids is None:
        input_ids = extras.get("inputs")
    if input_ids is None:  # HF: start every row from bos
        bos = gc.bos_token_id if gc.bos_token_id is not None else model.config.bos_token_id
        if bos is None:
            raise ValueError("`bos_token_id` has to be defined when no `input_ids` are provided.")
        input_ids = np.array([[bos]], np.int64)
    cfg = model.config
    r = prepare_request(
        model, input_ids, attention_mask, gc.max_new_tokens, gc.max_length, gc.do_sample, gc.temperature, gc.top_k,
        gc.top_p, gc.num_beams, gc.repetition_penalty,
        gc.eos_token_id if gc.eos_token_id != cfg.eos_token_id else None,  # None: the config's (named so)
        gc.pad_token_id if gc.pad_token_id != cfg.pad_token_id else None, extras.get("seed"), gc.length_penalty,
        gc.early_stopping, gc.num_return_sequences, gc.penalty_alpha)
    assistant = extras.get("assistant_model")
    speculative = speculative_options(model, gc.prompt_lookup_num_tokens, gc.max_matching_ngram_size, assistant,
                                      _user_set(gc, "num_assistant_tokens"),
                                      _user_set(gc, "num_assistant_tokens_schedule"))
    gc.validate()
    _refuse_unsupported(gc)

    # the resolved values, as the processors and criteria see them
    gc.eos_token_id = list(r.params.eos_token_ids) or None
    gc.pad_token_id = int(r.params.pad_token_id)
    gc.max_new_tokens = r.max_new_tokens
    return_dict = bool(gc.return_dict_in_generate)
    output_scores = return_dict and bool(gc.output_scores)
    output_logits = return_dict and bool(gc.output_logits)
    output_attentions = return_dict and bool(gc.output_attentions)
    output_hidden_states = return_dict and bool(gc.output_hidden_states)

    procs = P.build_processors(gc, input_length=r.width, logits_processor=logits_processor)
    user_criteria = list(stopping_criteria or ())
    criteria = build_stopping_criteria(gc, tokenizer=extras.get("tokenizer"), stopping_criteria=user_criteria)
    n_built = len(criteria) - len(user_criteria)
    in_graph, host = [], []
    for i, c in enumerate(criteria):
        if i < n_built and isinstance(c, (MaxLengthCriteria, EosTokenCriteria)):
            continue  # the programs stop on max_new and the eos ids themselves
        (host if isinstance(c, StoppingCriteria) and c.host_side else in_graph).append(c)

    options, params = r.options, r.params
    full = output_scores or any(not isinstance(p, BASIC_PROCESSORS) for p in procs)
    if speculative is not None and (full or in_graph or output_logits or output_attentions or output_hidden_states):
        raise ValueError("speculative decoding (prompt_lookup_num_tokens, assistant_model) supports temperature, "
                         "top_k, top_p and repetition_penalty only: not other logits processors, stopping "
                         "criteria, stop_strings, output_scores, output_logits, output_attentions or "
                         "output_hidden_states")
    if full:  # the whole list in the program; the sampler only draws
        options = dataclasses.replace(options, processors=tuple(procs), use_top_p=False, use_repetition_penalty=False,
                                      top_k=options.top_k if options.mode == "contrastive" else 0)
        params = params._replace(temperature=1.0, top_p=1.0, repetition_penalty=1.0)
    options = dataclasses.replace(options, stopping=tuple(in_graph) or None, output_scores=output_scores,
                                  output_logits=output_logits, output_attentions=output_attentions,
                                  output_hidden_states=output_hidden_states)
    r = dataclasses.replace(r, options=options, params=params)
    return GenerationPlan(r, gc, return_dict, speculative, assistant, tuple(host), extras.get("stream_chunk_size"))


def run_program(model, r: GenerationRequest, run=None):
    """Run the compiled program of a prepared request: its raw result tuple (see the programs).

    ``run(program, args)`` (the chunked loop of ``streaming``) replaces the single call ``program(*args)``.
    """
    ids, mask = r.bucketed_prompts()  # (B, P)
    new_slots = tf.zeros([r.new_bucket], tf.int32)  # (N,): its length is the program's N
    program = cached_program(model, r.options, r.batch, r.prompt_bucket, r.new_bucket,
                             "run" if run is None else "chunks")
    args = (tf.constant(ids), tf.constant(mask), new_slots, tf.constant(r.max_new_tokens, tf.int32),
            r.params.as_tensors())
    return program(*args) if run is None else run(program, args)


def generate(model, input_ids=None, attention_mask=None, generation_config=None, logits_processor=None,
             stopping_criteria=None, streamer=None, **kwargs):
    """Generate continuations of ``input_ids`` [B, S] (or [B, C, S]); returns int32 [B', S + new].

    HF's signature: the options are ``generation_config`` (default: the model's
    ``generation_config``, read from generation_config.json, else the one its config implies) updated
    with the ``GenerationConfig`` fields among ``kwargs``; ``seed`` seeds sampling (reproducible),
    ``tokenizer`` is needed by ``stop_strings``, ``assistant_model`` decodes speculatively. Any other
    keyword raises a ValueError naming it. ``logits_processor`` / ``stopping_criteria`` are lists of
    tfgpt processors / criteria or TF callables ``(input_ids [B, L] int32, scores [B, V], cur_len)``
    returning scores / a [B] bool, run inside the compiled program (``input_ids`` is the program's
    static buffer: the left-padded, bucketed prompt then the new tokens; ``cur_len`` its filled width).

    ``B' = B * num_return_sequences``. The prompt is included (left-aligned when a right-padded mask
    was given); rows that finished (an eos token or a stopping criterion) continue with
    ``pad_token_id``; the result stops at the last step any row needed (HF's convention). Greedy by
    default; ``do_sample`` samples (HF's defaults: ``top_k=50``); ``num_beams > 1`` runs beam search
    (beam sampling with ``do_sample``); ``penalty_alpha > 0`` with ``top_k > 1`` runs contrastive
    search; ``prompt_lookup_num_tokens`` or ``assistant_model`` decode speculatively (the same
    greedy tokens, the same sampling distribution). Without ``input_ids`` every row starts from
    ``bos_token_id``. ``return_dict_in_generate=True`` returns a ``GenerateDecoderOnlyOutput`` (beam
    search: ``GenerateBeamDecoderOnlyOutput``) with ``scores`` (``output_scores``), ``logits``
    (``output_logits``) and, except in contrastive search, HF's per-step ``attentions`` /
    ``hidden_states`` (``output_attentions`` / ``output_hidden_states``). A ``streamer`` gets ``put(prompt)``, then ``put(tokens [B])`` per step while
    greedy search or sampling decodes in compiled chunks of ``stream_chunk_size`` steps (default 8,
    the KV cache kept on the device between them), then ``end()``; ``max_time`` (seconds, HF's) is
    checked between those chunks and ends the call with what it generated.

    Inside a ``tf.function`` (symbolic ``input_ids``) the program is built into that graph
    (``tfgpt.generation.graph``): a Python ``max_new_tokens``, static or run-time batch and length,
    and the result is [B', S + max_new_tokens] with ``pad_token_id`` after each row's end.
    """
    if not tf.executing_eagerly():
        from tfgpt.generation.graph import symbolic_generate

        return symbolic_generate(model, input_ids, attention_mask, generation_config, logits_processor,
                                 stopping_criteria, streamer, **kwargs)
    plan = plan_generation(model, input_ids, attention_mask, generation_config, logits_processor,
                           stopping_criteria, **kwargs)
    r = plan.request
    chunk_size = check_streaming_args("speculative" if plan.speculative is not None else r.options.mode,
                                      streamer, plan.host_criteria, plan.stream_chunk_size)
    if streamer is not None:  # HF: the prompt once, before any new token
        prompt = r.ids.astype(np.int32)
        streamer.put(prompt[::r.num_return_sequences] if r.options.mode == "sample" else prompt)
    if plan.speculative is not None:
        result = speculative_generate(model, r, plan.speculative, plan.assistant_model)
    elif streamer is not None or plan.host_criteria:
        result = run_program(model, r, lambda program, args: run_chunked(program, args, streamer, plan.host_criteria,
                                                                         chunk_size))
    else:
        result = run_program(model, r)
    out = finish_generation(r, result, plan.return_dict)
    if streamer is not None:
        streamer.end()
    return out


def _step_outputs(r: GenerationRequest, prefill, log, steps: int, attention: bool, beams: int = 1) -> tuple:
    """HF's per-step ``attentions`` / ``hidden_states`` from a sequential program's buffers.

    ``prefill`` [L, B, H, P, T] / [L + 1, B, P, E], ``log`` [N, L, B, H, T] / [N, L + 1, B, E]. The
    bucketed prompt is cut back to the request's ``w`` columns: step 0 is L x [B, H, w, w] /
    (L + 1) x [B, w, E], step j L x [B, H, 1, w + j] / (L + 1) x [B, 1, E]. In beam search the
    prefill's rows are repeated ``beams`` times (B * K rows, as the steps').
    """
    P = r.prompt_bucket
    w = min(P, r.width)
    prefill, log = np.repeat(prefill.numpy(), beams, axis=1), log.numpy()
    if attention:
        first = tuple(tf.constant(a[:, :, P - w:P, P - w:P]) for a in prefill)
        later = [tuple(tf.constant(a[:, :, None, P - w:P + j]) for a in log[j]) for j in range(1, steps)]
    else:
        first = tuple(tf.constant(h[:, P - w:, :]) for h in prefill)
        later = [tuple(tf.constant(h[:, None, :]) for h in log[j]) for j in range(1, steps)]
    return (first, *later)


def finish_generation(r: GenerationRequest, result, return_dict: bool = False):
    """The ``generate`` result of a program's raw ``result``: int32 ids, or the HF output object."""
    prompt = r.ids.astype(np.int32)
    o = r.options
    extra = {}
    if o.mode == "beam":
        hypotheses, lengths, finished_scores = (t.numpy() for t in result[:3])  # (B, K, N), (B, K), (B, K)
        n = r.num_return_sequences
        new = int(lengths[:, :n].max())
        tokens = hypotheses[:, :n, :new].reshape(r.batch * n, new)
        prompt = np.repeat(prompt, n, axis=0)
        rest = list(result[3:])
        if rest:
            steps = int(rest.pop(0))
        if o.output_scores:
            indices, log = rest.pop(0).numpy(), rest.pop(0)
            extra["beam_indices"] = tf.constant(indices[:, :n, :new].reshape(r.batch * n, new))
            extra["sequences_scores"] = tf.constant(finished_scores[:, :n].reshape(-1))
            extra["scores"] = tuple(log[:, j, :] for j in range(steps))
        if o.output_logits:
            log = rest.pop(0)
            extra["logits"] = tuple(log[:, j, :] for j in range(steps))
        if o.output_attentions:  # the running beams', as HF (the prompt's repeated for each beam)
            extra["attentions"] = _step_outputs(r, rest.pop(0), rest.pop(0), steps, True, o.num_beams)
        if o.output_hidden_states:
            extra["hidden_states"] = _step_outputs(r, rest.pop(0), rest.pop(0), steps, False, o.num_beams)
    else:
        out, steps = result[0], int(result[1])  # (B, N), []
        tokens = out.numpy()[:, :steps]
        rest = list(result[2:])
        if o.output_scores:
            log = rest.pop(0)
            extra["scores"] = tuple(log[:, j, :] for j in range(steps))
        if o.output_logits:
            log = rest.pop(0)
            extra["logits"] = tuple(log[:, j, :] for j in range(steps))
        if o.output_attentions:
            extra["attentions"] = _step_outputs(r, rest.pop(0), rest.pop(0), steps, attention=True)
        if o.output_hidden_states:
            extra["hidden_states"] = _step_outputs(r, rest.pop(0), rest.pop(0), steps, attention=False)
    full = np.concatenate([prompt, tokens], axis=1)
    if r.lead_shape is not None:
        full = full.reshape(r.lead_shape[0], -1, full.shape[-1])
    sequences = tf.constant(full, tf.int32)
    if not return_dict:
        return sequences
    cls = GenerateBeamDecoderOnlyOutput if o.mode == "beam" else GenerateDecoderOnlyOutput
    return cls(sequences=sequences, **extra)
