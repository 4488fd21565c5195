"""Serving options of the text signatures: a run-time repetition_penalty, an export-time
no_repeat_ngram_size and beam_text (num_beams at export) give in-process generate's texts in a fresh process (tensorflow + tensorflow_text)."""

import numpy as np
import pytest

from conftest import left_pad, tiny_model
from test_export import PROMPTS, run_check, saved_signatures
from tfgpt import export

pytestmark = pytest.mark.slow  # two exports and a fresh process: minutes


def reference_texts(model, tok, prompts, max_new, **kwargs):
    """(texts, completions) of in-process generate, UTF-8 bytes (random weights make any text)."""
    rows = [tok.encode(p) for p in prompts]
    ids, mask = left_pad(rows)
    out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new, **kwargs).numpy()
    width = ids.shape[1]
    texts = [tok.decode(row[width - len(r):].tolist()).encode("utf-8") for row, r in zip(out, rows)]
    completions = [tok.decode(row[width:].tolist()).encode("utf-8") for row in out]
    return np.array(texts), np.array(completions)


@pytest.fixture(scope="module")
def report(tmp_path_factory, gpt_tokenizer_session):
    tok = gpt_tokenizer_session
    root = tmp_path_factory.mktemp("export_options")
    lm = tiny_model("lm", seed=3, vocab_size=len(tok), n_positions=64, initializer_range=0.1)
    plain = export.export_saved_model(lm, root / "plain" / "1", tokenizer=tok, num_beams=3)
    ngram = export.export_saved_model(lm, root / "ngram" / "1", tokenizer=tok, no_repeat_ngram_size=2)
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
    add("bad_penalty", plain, "penalty_text", dict(base, repetition_penalty=np.float32(0.0)), ("", ""),
        error="repetition_penalty must be > 0")
    arrays.pop("bad_penalty/out/texts"), arrays.pop("bad_penalty/out/completions")
    out = run_check(cases, arrays, tmp_path_factory.mktemp("check_options"), threads=2)
    return dict(out=out, plain=plain, ngram=ngram, lm=lm, tok=tok)


def test_signatures(report):
    assert saved_signatures(report["plain"]) >= {"generate_text", "sample_text", "lookup_text", "penalty_text",
                                                 "penalty_sample_text", "beam_text"}
    ngram = saved_signatures(report["ngram"])
    assert "lookup_text" not in ngram and "beam_text" not in ngram  # no lookup with processors; beams asked for


@pytest.mark.parametrize("name", ["penalty", "penalty_one", "penalty_method", "penalty_sample", "beam", "ngram",
                                  "ngram_penalty", "bad_penalty"])
def test_fresh_process_matches_generate(report, name):
    out = report["out"]
    assert not out["tfgpt_imported"]
    case = next(c for c in out["cases"] if c["name"] == name)
    assert case["ok"], case


def test_the_penalty_changes_the_text(report):
    a = reference_texts(report["lm"], report["tok"], PROMPTS, 8)[1]
    b = reference_texts(report["lm"], report["tok"], PROMPTS, 8, repetition_penalty=1.8)[1]
    assert list(a) != list(b)  # the case above is not the plain program by accident
