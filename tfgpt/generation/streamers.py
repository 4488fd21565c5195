"""Streamers: receive tokens while ``generate`` runs (HF's protocol ``put(ids)``, ``end()``).

``generate`` calls ``put`` once with the prompt, then with each new batch of tokens (between
compiled decode chunks), and ``end`` when it is done. :class:`TextStreamer` prints text as soon as
whole words are formed; :class:`TextIteratorStreamer` queues it for another thread to iterate.
"""

from __future__ import annotations

from queue import Queue
from typing import List, Optional

import numpy as np

from tfgpt.tokenizers.normalization import is_cjk_codepoint


class BaseStreamer:
    """What ``generate`` calls: ``put(value)`` with token ids, ``end()`` once at the end."""

    def put(self, value) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement put(value)")

    def end(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement end()")


def _row_ids(value) -> List[int]:
    """Ids of a [n] or [1, n] value (tensor, array or list); a larger batch is refused."""
    if hasattr(value, "numpy"):
        value = value.numpy()
    arr = np.asarray(value)
    if arr.ndim > 1 and arr.shape[0] > 1:
        raise ValueError(f"streamers handle one sequence at a time; got ids of shape {arr.shape}")
    if arr.ndim > 1:
        arr = arr[0]
    if arr.ndim > 1:
        raise ValueError(f"streamer ids must be [n] or [1, n], got shape {np.asarray(value).shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"streamer ids must be integers, got dtype {arr.dtype}")
    return [int(t) for t in np.atleast_1d(arr)]


class TextStreamer(BaseStreamer):
    """Print the text to stdout as soon as whole words are formed (HF's buffering rules).

    Text is printed up to the last space, a line is flushed at a newline, and CJK characters are
    printed at once; ``end`` prints the rest and a newline. ``skip_prompt`` drops the first ``put``
    (the prompt); ``decode_kwargs`` go to ``tokenizer.decode``.
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, **decode_kwargs):
        self.tokenizer = tokenizer
        self.skip_prompt = skip_prompt
        self.decode_kwargs = decode_kwargs
        self.token_cache: List[int] = []
        self.print_len = 0
        self.next_tokens_are_prompt = True

    def put(self, value) -> None:
        ids = _row_ids(value)
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(ids)
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\n"):  # a finished line: print it and start over
            printable = text[self.print_len:]
            self.token_cache = []
            self.print_len = 0
        elif text and is_cjk_codepoint(ord(text[-1])):
            printable = text[self.print_len:]
            self.print_len += len(printable)
        else:  # up to the last space: the last word may still grow
            printable = text[self.print_len:text.rfind(" ") + 1]
            self.print_len += len(printable)
        self.on_finalized_text(printable)

    def end(self) -> None:
        if self.token_cache:
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            printable = text[self.print_len:]
            self.token_cache = []
            self.print_len = 0
        else:
            printable = ""
        self.next_tokens_are_prompt = True
        self.on_finalized_text(printable, stream_end=True)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        """Where finished text goes: stdout here, a newline at the end of the stream."""
        print(text, flush=True, end=None if stream_end else "")


class TextIteratorStreamer(TextStreamer):
    """Queue the text for iteration from another thread: ``for piece in streamer: ...``.

    ``timeout`` (seconds) bounds each wait on the queue; on expiry the reader gets ``queue.Empty``
    (so a failed ``generate`` in another thread does not hang it).
    """

    def __init__(self, tokenizer, skip_prompt: bool = False, timeout: Optional[float] = None,
                 **decode_kwargs):
        super().__init__(tokenizer, skip_prompt, **decode_kwargs)
        self.text_queue: Queue = Queue()
        self.stop_signal = None
        self.timeout = timeout

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.text_queue.put(text, timeout=self.timeout)
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if value is self.stop_signal:
            raise StopIteration
        return value
