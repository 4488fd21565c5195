"""tfgpt.pipeline("text-generation"): HF's output format, full / new text, several sequences, batching
with left padding (each prompt as if alone), loading from a folder, and its errors."""

import numpy as np
import pytest

import tfgpt
from conftest import tiny_model

PROMPTS = ["the king said", "a", "once upon a time there was"]


@pytest.fixture(scope="module")
def tokenizer(gpt_tokenizer_session):
    return gpt_tokenizer_session


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_model(seed=2, vocab_size=len(tokenizer), n_positions=48)


def expected_text(model, tokenizer, text, full=True, **kwargs):
    """HF's postprocess of one prompt generated alone: decode(prompt + new)[len(decode(prompt)):]."""
    ids = tokenizer.encode(text)
    out = model.generate(np.array([ids]), **kwargs).numpy()
    texts = []
    for row in out:
        whole = tokenizer.decode(row.tolist(), skip_special_tokens=True)
        new = whole[len(tokenizer.decode(ids, skip_special_tokens=True)):]
        texts.append(text + new if full else new)
    return texts


def test_one_string_full_and_new_text(model, tokenizer):
    pipe = tfgpt.pipeline("text-generation", model=model, tokenizer=tokenizer)
    out = pipe("the king said", max_new_tokens=6)
    (want,) = expected_text(model, tokenizer, "the king said", max_new_tokens=6)
    assert out == [{"generated_text": want}]
    assert want.startswith("the king said") and len(want) > len("the king said")
    new = pipe("the king said", max_new_tokens=6, return_full_text=False)
    assert new == [{"generated_text": want[len("the king said"):]}]
    ids = pipe("the king said", max_new_tokens=6, return_tensors=True)[0]["generated_token_ids"]
    prompt = tokenizer.encode("the king said")
    assert ids[:len(prompt)] == prompt and len(ids) == len(prompt) + 6
    assert tokenizer.decode(ids) == tokenizer.decode(prompt) + want[len("the king said"):]


def test_list_batched_with_left_padding_equals_alone(model, tokenizer):
    pipe = tfgpt.pipeline("text-generation", model=model, tokenizer=tokenizer, batch_size=3)
    out = pipe(PROMPTS, max_new_tokens=5, penalty_alpha=0.5, top_k=3)
    assert len(out) == 3
    for text, records in zip(PROMPTS, out):
        assert records == [{"generated_text": t}
                           for t in expected_text(model, tokenizer, text, max_new_tokens=5, penalty_alpha=0.5,
                                                  top_k=3)]
    # a batch size of 2 splits the list; the texts do not change
    assert pipe(PROMPTS, max_new_tokens=5, penalty_alpha=0.5, top_k=3, batch_size=2) == out


def test_num_return_sequences(model, tokenizer):
    pipe = tfgpt.pipeline("text-generation", model=model, tokenizer=tokenizer, batch_size=2)
    out = pipe(PROMPTS[:2], max_new_tokens=4, num_beams=3, num_return_sequences=2)
    for text, records in zip(PROMPTS[:2], out):
        want = expected_text(model, tokenizer, text, max_new_tokens=4, num_beams=3, num_return_sequences=2)
        assert records == [{"generated_text": t} for t in want]
        assert len(records) == 2 and records[0] != records[1]
    sampled = pipe("the king said", max_new_tokens=4, do_sample=True, seed=3, num_return_sequences=3)
    assert sampled == [{"generated_text": t} for t in expected_text(
        model, tokenizer, "the king said", max_new_tokens=4, do_sample=True, seed=3, num_return_sequences=3)]


def test_eos_ends_the_text(model, tokenizer):
    pipe = tfgpt.pipeline("text-generation", model=model, tokenizer=tokenizer)
    ids = tokenizer.encode("the king said")
    free = model.generate(np.array([ids]), max_new_tokens=6).numpy()[0, len(ids):].tolist()
    eos = free[2]
    out = pipe("the king said", max_new_tokens=6, eos_token_id=eos, return_tensors=True)[0]["generated_token_ids"]
    assert out == ids + free[:free.index(eos) + 1]  # stops at the first eos; no padding after it


def test_from_folder(model, tokenizer, tmp_path):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    pipe = tfgpt.pipeline("text-generation", model=str(tmp_path))
    assert pipe("the king said", max_new_tokens=5) == tfgpt.pipeline(
        "text-generation", model=model, tokenizer=tokenizer)("the king said", max_new_tokens=5)
    assert isinstance(pipe, tfgpt.TextGenerationPipeline)


def test_default_length_fills_the_window(model, tokenizer):
    out = tfgpt.pipeline("text-generation", model=model, tokenizer=tokenizer, return_tensors=True)
    ids = out("a")[0]["generated_token_ids"]
    assert len(ids) == model.config.n_positions  # 256 new tokens, capped by the 48 positions


def test_errors(model, tokenizer):
    with pytest.raises(ValueError, match="'summarization'"):
        tfgpt.pipeline("summarization", model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="tokenizer"):
        tfgpt.pipeline("text-generation", model=model)
    pipe = tfgpt.pipeline("text-generation", model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="return_full_text is mutually exclusive with return_tensors"):
        pipe("a", max_new_tokens=2, return_full_text=False, return_tensors=True)
    with pytest.raises(TypeError, match="text_inputs"):
        pipe(123)
    with pytest.raises(ValueError, match="batch_size"):
        pipe("a", batch_size=0)
