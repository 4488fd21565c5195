"""Shared test helpers: paths to ../shared, tiny configs, quiet TF."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
HF_FIXTURES = FIXTURES / "hf"
GPT_VOCAB = SHARED / "data" / "openai-gpt"


def tiny_config(**overrides):
    import tfgpt

    kwargs = dict(vocab_size=99, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0,
                  embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0)
    kwargs.update(overrides)
    return tfgpt.OpenAIGPTConfig(**kwargs)


@pytest.fixture
def shared_dir():
    return SHARED
