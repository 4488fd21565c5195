"""Generation: one XLA-compiled decode loop with a static KV cache (greedy, sampling, beams)."""

from tfgpt.generation.decoding import (  # noqa: F401
    NEG_INF,
    trace_count,
    bucket,
    cache_lengths,
    generate,
)
