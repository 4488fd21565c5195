"""Serving options of the text signatures: a run-time repetition_penalty, export-time
no_repeat_ngram_size and stop_strings, and beam_text (num_beams at export) give in-process generate's
texts in a fresh process (tensorflow + tensorflow_text)."""

import numpy as np
import pytest

from conftest import left_pad, tiny_model
from test_export import PROMPTS, run_check, saved_signatures
from tfgpt import export

pytestmark = pytest.mark.slow  # three exports and a fresh process: minutes

STOP_MODES = {  # text signature -> the generate options it decodes with
    "generate_text": {},
    "sample_text": dict(do_sample=True, top_k=0, temperature=0.8, top_p=0.9, seed=7),
    "beam_text": dict(num_beams=2),
}
STOP_NEW = 12


def reference_texts(model, tok, prompts, max_new, **kwargs):
    """(texts, completions) of in-process generate, UTF-8 bytes (random weights make any text)."""
    rows = [tok.encode(p) for p in prompts]
    ids, mask = left_pad(rows)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, **kwargs).numpy()
    width = ids.shape[1]
    texts = [tok.decode(row[width - len(r):].tolist()).encode("utf-8") for row, r in zip(out, rows)]
    completions = [tok.decode(row[width:].tolist()).encode("utf-8") for row in out]
    return np.array(texts), np.array(completions)


def new_tokens(model, tok, prompts, max_new, **kwargs):
    """(left-padded prompt width, each row's new tokens) of in-process generate."""
    ids, mask = left_pad([tok.encode(p) for p in prompts])
    out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, **kwargs).numpy()
    return ids.shape[1], [row[ids.shape[1]:].tolist() for row in out]


def pick_stop_strings(tok, plain):
    """Per decoding, a word of its first row's continuation (before the last tokens) that no other
    continuation holds: the first rows stop early, the second ones run to the end."""
    texts = [tok.decode(row) for rows in plain.values() for row in rows]
    picks = []
    for rows in plain.values():
        others = " ".join(t for t in texts if t != tok.decode(rows[0]))
        words = [w for w in tok.decode(rows[0][:STOP_NEW - 4]).split()
                 if w.isalpha() and len(w) >= 3 and w not in others]
        assert words, (tok.decode(rows[0]), others)
        picks.append(words[0])
    return picks


def stopped_texts(model, tok, prompts, stops, **kwargs):
    """(texts, completions, new tokens per row) of in-process generate with ``stop_strings``: a row ends
    with the first token after which its decoded continuation holds a stop string (later columns are
    padding, which the texts drop)."""
    rows = [tok.encode(p) for p in prompts]
    _, news = new_tokens(model, tok, prompts, STOP_NEW, stop_strings=stops, tokenizer=tok, **kwargs)
    texts, completions, ends = [], [], []
    for prompt, new in zip(rows, news):
        end = next((n for n in range(1, len(new) + 1) if any(s in tok.decode(new[:n]) for s in stops)), len(new))
        assert set(new[end:]) <= {0}, (new, end)  # generate pads the rest (pad id 0: the config has none)
        texts.append(tok.decode(prompt + new[:end]).encode("utf-8"))
        completions.append(tok.decode(new[:end]).encode("utf-8"))
        ends.append(end)
    return np.array(texts), np.array(completions), ends


@pytest.fixture(scope="module")
def report(tmp_path_factory, gpt_tokenizer_session):
    tok = gpt_tokenizer_session
    root = tmp_path_factory.mktemp("export_options")
    lm = tiny_model("lm", seed=3, vocab_size=len(tok), n_positions=64, initializer_range=0.1)
    plain = export.export_saved_model(lm, root / "plain" / "1", tokenizer=tok, num_beams=3)
    ngram = export.export_saved_model(lm, root / "ngram" / "1", tokenizer=tok, no_repeat_ngram_size=2)
    plain_new = {sig: new_tokens(lm, tok, PROMPTS[:2], STOP_NEW, **kw)[1] for sig, kw in STOP_MODES.items()}
    stops = pick_stop_strings(tok, plain_new)
    stopped = export.export_saved_model(lm, root / "stop" / "1", tokenizer=tok, num_beams=2, stop_strings=stops)
    prompts = np.array(PROMPTS, dtype=bytes)
    arrays, cases = {}, []

    def add(name, folder, signature, inputs, want, **extra):
        for k, v in inputs.items():
            arrays[f"{name}/in/{k}"] = v
        arrays[f"{name}/out/texts"], arrays[f"{name}/out/completions"] = want
        cases.append(dict(name=name, dir=str(folder), signature=signature, inputs=sorted(inputs),
                          outputs=["completions", "texts"], atol=None, **extra))

    base = dict(prompts=prompts, max_new_tokens=np.int32(8))
    add("penalty", plain, "penalty_text", dict(base, repetition_penalty=np.float32(1.8)),
        reference_texts(lm, tok, PROMPTS, 8, repetition_penalty=1.8))
    add("penalty_one", plain, "penalty_text", dict(base, repetition_penalty=np.float32(1.0)),
        reference_texts(lm, tok, PROMPTS, 8))
    add("penalty_method", plain, "generate_text", dict(base, repetition_penalty=np.float32(0.6)),
        reference_texts(lm, tok, PROMPTS, 8, repetition_penalty=0.6), method=True)
    sample = dict(base, temperature=np.float32(0.8), top_p=np.float32(0.9), seed=np.int32(7))
    add("penalty_sample", plain, "penalty_sample_text", dict(sample, repetition_penalty=np.float32(1.4)),
        reference_texts(lm, tok, PROMPTS, 8, do_sample=True, top_k=0, temperature=0.8, top_p=0.9, seed=7,
                        repetition_penalty=1.4))
    add("beam", plain, "beam_text", base, reference_texts(lm, tok, PROMPTS, 8, num_beams=3))
    add("ngram", ngram, "generate_text", base, reference_texts(lm, tok, PROMPTS, 8, no_repeat_ngram_size=2))
    add("ngram_penalty", ngram, "penalty_text", dict(base, repetition_penalty=np.float32(1.3)),
        reference_texts(lm, tok, PROMPTS, 8, no_repeat_ngram_size=2, repetition_penalty=1.3))
    stop_inputs = dict(prompts=prompts[:2], max_new_tokens=np.int32(STOP_NEW))
    stop_ends = {}
    for sig, kw in STOP_MODES.items():
        inputs = dict(stop_inputs)
        if kw.get("do_sample"):
            inputs.update(temperature=np.float32(kw["temperature"]), top_p=np.float32(kw["top_p"]),
                          seed=np.int32(kw["seed"]))
        texts, completions, stop_ends[sig] = stopped_texts(lm, tok, PROMPTS[:2], stops, **kw)
        add(f"stop_{sig}", stopped, sig, inputs, (texts, completions))
    add("bad_penalty", plain, "penalty_text", dict(base, repetition_penalty=np.float32(0.0)), ("", ""),
        error="repetition_penalty must be > 0")
    arrays.pop("bad_penalty/out/texts"), arrays.pop("bad_penalty/out/completions")
    out = run_check(cases, arrays, tmp_path_factory.mktemp("check_options"), threads=2)
    return dict(out=out, plain=plain, ngram=ngram, stopped=stopped, lm=lm, tok=tok, plain_new=plain_new,
                stop_ends=stop_ends)


def test_signatures(report):
    assert saved_signatures(report["plain"]) >= {"generate_text", "sample_text", "lookup_text", "penalty_text",
                                                 "penalty_sample_text", "beam_text"}
    ngram = saved_signatures(report["ngram"])
    assert "lookup_text" not in ngram and "beam_text" not in ngram  # no lookup with processors; beams asked for
    stopped = saved_signatures(report["stopped"])
    assert stopped >= {"generate_text", "sample_text", "penalty_text", "penalty_sample_text", "beam_text"}
    assert "lookup_text" not in stopped  # prompt lookup runs no stopping criteria


@pytest.mark.parametrize("name", ["penalty", "penalty_one", "penalty_method", "penalty_sample", "beam", "ngram",
                                  "ngram_penalty", "bad_penalty", "stop_generate_text", "stop_sample_text",
                                  "stop_beam_text"])
def test_fresh_process_matches_generate(report, name):
    out = report["out"]
    assert not out["tfgpt_imported"]
    case = next(c for c in out["cases"] if c["name"] == name)
    assert case["ok"], case


def test_the_penalty_changes_the_text(report):
    a = reference_texts(report["lm"], report["tok"], PROMPTS, 8)[1]
    b = reference_texts(report["lm"], report["tok"], PROMPTS, 8, repetition_penalty=1.8)[1]
    assert list(a) != list(b)  # the case above is not the plain program by accident


@pytest.mark.parametrize("signature", sorted(STOP_MODES))
def test_stop_strings_end_one_row_early(report, signature):
    """The stop-string cases above compare a batch whose first row stops early and whose second does not."""
    first, second = report["stop_ends"][signature]
    assert first < STOP_NEW and second == STOP_NEW


@pytest.mark.parametrize("stop_strings,match", [([], "stop_strings"), (["ok", ""], "stop_strings"),
                                                ([3], "stop_strings"), ("", "stop_strings")])
def test_bad_stop_strings(tmp_path, gpt_tokenizer, stop_strings, match):
    lm = tiny_model("lm", vocab_size=len(gpt_tokenizer))
    with pytest.raises(ValueError, match=match):
        export.export_saved_model(lm, tmp_path / "1", tokenizer=gpt_tokenizer, stop_strings=stop_strings)
    assert not (tmp_path / "1").exists()


def test_stop_strings_need_the_tokenizer(tmp_path):
    with pytest.raises(ValueError, match="stop_strings needs the tokenizer"):
        export.export_saved_model(tiny_model("lm"), tmp_path / "1", stop_strings=["the"])
