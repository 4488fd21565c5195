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

import tensorflow as tf

from tfgpt import validation
from tfgpt.generation.loop import outputs

DEFAULT_CHUNK_SIZE = 8  # steps per compiled chunk: the cost of a chunk boundary is then < 1-2 %


def check_streaming_args(mode: str, streamer=None, host_criteria=(), stream_chunk_size=None) -> int:
    """Validate the streaming arguments for a decode ``mode``; returns the chunk size.

    ``host_criteria`` are the call's host-side stopping criteria (``max_time``: ``MaxTimeCriteria``).
    """
    if streamer is not None and not (callable(getattr(streamer, "put", None))
                                     and callable(getattr(streamer, "end", None))):
        raise TypeError(f"streamer must have put(value) and end() methods, got {type(streamer).__name__}")
    if stream_chunk_size is None:
        chunk = DEFAULT_CHUNK_SIZE
    else:
        chunk = validation.as_int(stream_chunk_size, "stream_chunk_size")
        if chunk < 1:
            raise ValueError(f"stream_chunk_size must be >= 1, got {chunk}")
    if (streamer is not None or host_criteria) and mode not in ("greedy", "sample"):
        what = "streamer" if streamer is not None else "max_time"
        if mode == "beam":
            raise ValueError(f"`{what}` cannot be used with beam search; set num_beams to 1 "
                             f"(greedy search or sampling decode in chunks)")
        raise ValueError(f"`{what}` works with greedy search and sampling (chunked decoding), not with "
                         f"{mode} decoding")
    return chunk


def run_chunked(program, args, streamer=None, host_criteria=(), chunk_size: int = DEFAULT_CHUNK_SIZE):
    """Run the sequential ``program`` (a compiled ``build_sequential_program``) in chunks.

    ``args`` are the program's ``(prompt_ids, prompt_mask, new_slots, max_new, params)`` tensors.
    Returns what the single run returns, ``(tokens [B, N], steps, *score / logit buffers)``: new
    tokens ``tokens[:, :steps]``, fewer than ``max_new`` when every row finished or a host-side
    criterion (``MaxTimeCriteria.expired()``) ended the batch. The streamer (when given) receives each
    new step's tokens [B] as int32 arrays; ``put(prompt)`` and ``end()`` are left to the caller.
    """
    prompt_ids, _, _, max_new, _ = args
    P = prompt_ids.shape[1]
    limit = int(max_new)
    state = program(*args, stop_at=tf.constant(1, tf.int32))  # prefill + the first token
    sent = 0
    while True:
        step = int(state.step)
        if streamer is not None and step > sent:  # host copies, no eager ops: ~1 ms per chunk in all
            new = state.sequences.numpy()[:, P + sent:P + step]  # (B, step - sent)
            for i in range(new.shape[1]):
                streamer.put(new[:, i])
            sent = step
        if step >= limit or state.done.numpy().all() or any(c.expired() for c in host_criteria):
            break
        state = program(*args, resume=state, stop_at=tf.constant(min(step + chunk_size, limit), tf.int32))
    return outputs(state, P)
