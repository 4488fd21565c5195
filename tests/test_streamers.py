"""Streamers: HF's word buffering with the real GPT-1 tokenizer, printing and iterating from a thread."""

import queue
import threading

import numpy as np
import pytest
import tensorflow as tf

from tfgpt.generation.streamers import TextIteratorStreamer, TextStreamer


def _pieces(gpt_tokenizer, text):
    ids = gpt_tokenizer.encode(text)
    return ids[:3], ids[3:]


def test_text_streamer_prints_whole_words(gpt_tokenizer, capsys):
    prompt, new = _pieces(gpt_tokenizer, "the cat sat on the mat and looked around")
    streamer = TextStreamer(gpt_tokenizer)
    streamer.put(tf.constant([prompt]))  # generate's first put: the prompt, [1, n]
    assert capsys.readouterr().out == "the cat "  # "sat" may still grow
    printed = []
    for t in new:
        streamer.put(np.array([t]))
        printed.append(capsys.readouterr().out)
    assert printed == ["sat ", "on ", "the ", "mat ", "and ", "looked "]
    streamer.end()
    assert capsys.readouterr().out == "around\n"


def test_text_streamer_skip_prompt_and_subword_tokens(gpt_tokenizer, capsys):
    ids = gpt_tokenizer.encode("hello antidisestablishmentarianism")
    assert len(ids) == 8  # the long word is seven BPE pieces
    streamer = TextStreamer(gpt_tokenizer, skip_prompt=True)
    streamer.put([ids[:1]])
    assert capsys.readouterr().out == ""
    outs = []
    for t in ids[1:]:
        streamer.put([t])
        outs.append(capsys.readouterr().out)
    assert "".join(outs) == ""  # no space yet: the word is not finished
    streamer.end()
    assert capsys.readouterr().out == "antidisestablishmentarianism\n"
    # after end() the next put is a prompt again
    streamer.put([ids[:1]])
    streamer.put([ids[1]])
    streamer.end()
    assert capsys.readouterr().out == gpt_tokenizer.decode([ids[1]]) + "\n"


def test_text_streamer_flushes_at_newline_and_cjk():
    class Chars:  # a tokenizer whose ids are code points
        def decode(self, ids, **kwargs):
            return "".join(chr(i) for i in ids)

    got = []

    class Recorder(TextStreamer):
        def on_finalized_text(self, text, stream_end=False):
            got.append((text, stream_end))

    s = Recorder(Chars())
    for ch in "ab c\nd中":
        s.put([ord(ch)])
    s.end()
    assert got == [("", False), ("", False), ("ab ", False), ("", False), ("c\n", False), ("", False),
                   ("d中", False), ("", True)]
    assert s.token_cache == [] and s.print_len == 0


def test_text_streamer_refuses_batches(gpt_tokenizer):
    with pytest.raises(ValueError, match="one sequence"):
        TextStreamer(gpt_tokenizer).put(np.zeros((2, 3), np.int32))
    with pytest.raises(TypeError, match="integers"):
        TextStreamer(gpt_tokenizer).put(np.array([1.5]))


def test_iterator_streamer_from_another_thread(gpt_tokenizer):
    text = "the cat sat on the mat"
    ids = gpt_tokenizer.encode(text)
    streamer = TextIteratorStreamer(gpt_tokenizer, skip_prompt=True, timeout=30)

    def produce():
        streamer.put([ids[:2]])
        for t in ids[2:]:
            streamer.put([t])
        streamer.end()

    worker = threading.Thread(target=produce)
    worker.start()
    pieces = list(streamer)
    worker.join()
    assert pieces == ["", "sat ", "on ", "the ", "mat"]
    assert "".join(pieces) == gpt_tokenizer.decode(ids[2:])


def test_iterator_streamer_timeout(gpt_tokenizer):
    streamer = TextIteratorStreamer(gpt_tokenizer, timeout=0.01)
    with pytest.raises(queue.Empty):
        next(streamer)
