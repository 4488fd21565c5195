"""Shared test scaffolding: paths to ../shared, the GPT-1 tokenizer, tiny models per head, left padding,
the environment for subprocesses. Tests marked ``slow`` (notebooks, distribute, SIGKILL, 8,000 merges)
run in ``.ci/run`` too; ``-m "not slow"`` skips them locally.
"""

import copy
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Compiled XLA programs of this test run go to a folder of its own, not the user's Keras cache.
if "TFGPT_XLA_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["TFGPT_XLA_CACHE_DIR"] = tempfile.mkdtemp(prefix="tfgpt-test-xla-")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
HF_FIXTURES = FIXTURES / "hf"
GENERATE_FIXTURES = HF_FIXTURES / "generate"
GPT_VOCAB = SHARED / "data" / "openai-gpt"
CORPUS = SHARED / "data" / "corpus" / "tinyshakespeare.txt"
LABELLED = SHARED / "data" / "labelled"

# --head name -> class name, as tfgpt.models.registry spells them
HEAD_CLASSES = {
    "base": "TFOpenAIGPTModel",
    "lm": "TFOpenAIGPTLMHeadModel",
    "double-heads": "TFOpenAIGPTDoubleHeadsModel",
    "seqcls": "TFOpenAIGPTForSequenceClassification",
}


def tiny_config(**overrides):
    """A two-layer, 32-wide config without dropout: builds and runs in milliseconds."""
    import tfgpt

    kwargs = dict(vocab_size=99, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0,
                  embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0)
    kwargs.update(overrides)
    return tfgpt.OpenAIGPTConfig(**kwargs)


def tiny_model(head="lm", seed=0, **overrides):
    """A built tiny model of ``head`` (lm, base, double-heads, seqcls) with seeded weights."""
    import keras

    import tfgpt

    keras.utils.set_random_seed(seed)
    model = getattr(tfgpt, HEAD_CLASSES[head])(tiny_config(**overrides))
    model(np.zeros((1, 2, 4) if head == "double-heads" else (1, 4), np.int32))
    return model


def left_pad(rows, pad=0):
    """Left-pad lists of ids to one width: (ids [B, W] int32, attention_mask [B, W] int32)."""
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad, np.int32)
    mask = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return ids, mask


def subprocess_env(with_repo=True, **extra):
    """Environment for a child Python: quiet TF, this checkout importable (or not, ``with_repo=False``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if with_repo:
        env["PYTHONPATH"] = str(REPO)
    env.update({k: str(v) for k, v in extra.items()})
    return env


PYTHON = sys.executable


@pytest.fixture(scope="session")
def gpt_tokenizer_session():
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    return OpenAIGPTTokenizer.from_pretrained(str(GPT_VOCAB))


@pytest.fixture
def gpt_tokenizer(gpt_tokenizer_session):
    """GPT-1's real tokenizer (40,478 tokens), loaded once per session; each test gets its own copy."""
    return copy.deepcopy(gpt_tokenizer_session)


@pytest.fixture
def shared_dir():
    return SHARED
