"""Generation: one XLA-compiled decode loop with a static KV cache (greedy, sampling, beams).

The flow is one-way: ``api`` (HF's ``generate`` arguments -> the effective ``config.GenerationConfig``,
its ``processors`` and ``stopping`` criteria) -> ``request`` (Python: validate, resolve eos / pad,
bucket with ``buckets``) -> ``api`` (pick the compiled program for the request) -> ``loop`` (greedy / sampling), ``beam`` (beam
search and beam sampling) or ``contrastive`` (contrastive search),
both built from ``program`` (options, parameters, the cached forward pass, score processors) and,
for the sequential loop, ``sampling``; ``speculative`` (prompt lookup, assisted decoding) verifies
several drafted tokens per pass with the same pieces. ``tfgpt.export`` builds its text signatures from the same
public pieces.
"""

from tfgpt.generation.api import (  # noqa: F401
    GenerationPlan,
    cached_program,
    compile_program,
    default_generation_config,
    finish_generation,
    generate,
    plan_generation,
    resolve_generation_config,
    run_program,
)
from tfgpt.generation.beam import BeamState, build_beam_program  # noqa: F401
from tfgpt.generation.buckets import MIN_NEW_BUCKET, MIN_PROMPT_BUCKET, bucket, cache_lengths  # noqa: F401
from tfgpt.generation.contrastive import ContrastiveState, build_contrastive_program  # noqa: F401
from tfgpt.generation.loop import SequentialState, build_sequential_program  # noqa: F401
from tfgpt.generation.program import (  # noqa: F401
    NEG_INF,
    SEED_MODULUS,
    CachedForward,
    DecodeOptions,
    DecodeParams,
    ScoreProcessors,
    StopCheck,
    repetition_penalty,
    trace_count,
)
from tfgpt.generation.request import (  # noqa: F401
    DEFAULT_MAX_LENGTH,
    GenerationRequest,
    SpecialIds,
    left_align,
    left_pad_ragged,
    prepare_request,
    resolve_special_ids,
)
from tfgpt.generation.scores import compute_transition_scores  # noqa: F401
from tfgpt.generation.sampling import (  # noqa: F401
    GreedySampler,
    MultinomialSampler,
    make_sampler,
    sample_categorical,
    sample_without_replacement,
)
from tfgpt.generation.speculative import (  # noqa: F401
    SpeculativeOptions,
    SpeculativeStats,
    build_speculative_program,
    prompt_lookup_drafts,
    run_speculative,
    speculative_options,
)
