"""Decoding in compiled chunks: tokens reach a streamer while the KV cache stays on the device.

``run_chunked`` drives the sequential program (greedy or sampling) in pieces: one call prefills the
prompt and emits the first token, then each call runs up to ``chunk_size`` more steps inside one XLA
``tf.while_loop`` and returns the loop state (step, last token, done rows, token buffer, cache),
which the next call resumes from. The chunk calls are traces of the same ``tf.function`` as the
single-run program (one more trace per bucket), and the step index seeds each sampling draw, so the
tokens equal those of one uninterrupted run. Between chunks the host hands the new tokens to the
streamer (HF's protocol: ``put(prompt)`` once, ``put(tokens [B])`` per step, ``end()``) and checks
``max_time`` (HF's: seconds since the call began, checked between steps; here between chunks).
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import tensorflow as tf

from tfgpt import validation

DEFAULT_CHUNK_SIZE = 8  # steps per compiled chunk: the cost of a chunk boundary is then < 1-2 %


def check_streaming_args(mode: str, streamer=None, max_time=None, stream_chunk_size=None):
    """Validate the streaming arguments for a decode ``mode``; returns (max_time or None, chunk size)."""
    if streamer is not None and not (callable(getattr(streamer, "put", None))
                                     and callable(getattr(streamer, "end", None))):
        raise TypeError(f"streamer must have put(value) and end() methods, got {type(streamer).__name__}")
    if max_time is not None:
        if isinstance(max_time, bool) or not isinstance(max_time, (int, float, np.integer, np.floating)):
            raise TypeError(f"max_time must be a number of seconds, got {max_time!r}")
        max_time = float(max_time)
        if not max_time > 0:
            raise ValueError(f"max_time must be a positive number of seconds, got {max_time}")
    if stream_chunk_size is None:
        chunk = DEFAULT_CHUNK_SIZE
    else:
        chunk = validation.as_int(stream_chunk_size, "stream_chunk_size")
        if chunk < 1:
            raise ValueError(f"stream_chunk_size must be >= 1, got {chunk}")
    if (streamer is not None or max_time is not None) and mode not in ("greedy", "sample"):
        what = "streamer" if streamer is not None else "max_time"
        if mode == "beam":
            raise ValueError(f"`{what}` cannot be used with beam search; set num_beams=1 "
                             f"(greedy search or sampling decode in chunks)")
        raise ValueError(f"`{what}` works with greedy search and sampling (chunked decoding), not with "
                         f"{mode} decoding")
    return max_time, chunk


def run_chunked(program, args, streamer=None, max_time: Optional[float] = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE, started: Optional[float] = None):
    """Run the sequential ``program`` (a compiled ``build_sequential_program``) in chunks.

    ``args`` are the program's ``(prompt_ids, prompt_mask, new_slots, max_new, params)`` tensors.
    Returns what the single run returns, ``(tokens [B, N], steps)``: new tokens ``tokens[:, :steps]``,
    fewer than ``max_new`` when every row finished or ``max_time`` ran out. The streamer (when given)
    receives each new step's tokens [B] as int32 arrays; ``end()`` is left to the caller.
    ``started`` is when the call began (``time.time()``; default now), the origin of ``max_time``.
    """
    started = time.time() if started is None else started
    prompt_ids, _, _, max_new, _ = args
    P = prompt_ids.shape[1]
    limit = int(max_new)
    state = program(*args, stop=tf.constant(1, tf.int32))  # prefill + the first token
    sent = 0
    while True:
        step = int(state.step)
        if streamer is not None and step > sent:  # host copies, no eager ops: ~1 ms per chunk in all
            new = state.sequences.numpy()[:, P + sent:P + step]  # (B, step - sent)
            for i in range(new.shape[1]):
                streamer.put(new[:, i])
            sent = step
        if step >= limit or state.done.numpy().all():
            break
        if max_time is not None and time.time() - started > max_time:
            break
        state = program(*args, resume=state, stop=tf.constant(min(step + chunk_size, limit), tf.int32))
    return state.sequences[:, P:], state.step
