"""Model-size presets for new models (``small`` for a CPU demo, ``gpt1`` as OpenAI trained it) and the
training recipe that goes with each."""

from __future__ import annotations

from typing import Optional

import numpy as np

PRESETS = {
    # A CPU demo model: the tied 40478 x 128 token table is most of its 6.4 M parameters, and the LM
    # head over it most of the compute, so six layers cost about what four do and model the text
    # better (tinyshakespeare validation 5.28 nats/token after 18 minutes against 5.31 with four).
    # Its init is wider than GPT-1's 0.02 (about 0.55 / sqrt(n_embd), as 0.02 is for 768): from
    # scratch with 0.02 it stays on the unigram plateau for hundreds of steps.
    "small": dict(n_embd=128, n_layer=6, n_head=4, n_positions=256, initializer_range=0.05,
                  resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1),
    # GPT-1 as OpenAI trained it: 12 layers, 768 wide, 12 heads, 512 positions (116.5 M parameters).
    "gpt1": dict(n_embd=768, n_layer=12, n_head=12, n_positions=512),
}


# Training recipe beyond the config: the token table's init for a new model of a preset. A wider
# token table keeps the token-specific part of the inputs large next to the shared "frequency"
# direction the tied LM head writes into it, so a small model leaves the unigram plateau sooner.
PRESET_TOKEN_INIT = {"small": 0.1}
# Optimizer defaults of ``tfgpt train`` for a new model of a preset (GPT-1's for gpt1).
PRESET_OPTIMIZER = {"small": dict(learning_rate=1e-3, weight_decay=0.1),
                    "gpt1": dict(learning_rate=2.5e-4, weight_decay=0.01)}


def preset_config(name: str, vocab_size: int = 40478, **overrides):
    """An :class:`OpenAIGPTConfig` for a named preset (``small`` or ``gpt1``), with overrides."""
    from tfgpt.models.configuration import OpenAIGPTConfig

    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    kwargs = dict(PRESETS[name], vocab_size=vocab_size)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    return OpenAIGPTConfig(**kwargs)


def preset_model(cls, name: str, vocab_size: int = 40478, seed: Optional[int] = None, **overrides):
    """A new model of class ``cls`` (e.g. TFOpenAIGPTLMHeadModel) from a preset, initialised for
    training from scratch (``PRESET_TOKEN_INIT``); model constructor options (``lm_coef``) pass on."""
    model_kwargs = {k: overrides.pop(k) for k in ("lm_coef", "name", "dtype") if k in overrides}
    model = cls(preset_config(name, vocab_size, **overrides), **model_kwargs)
    std = PRESET_TOKEN_INIT.get(name)
    if std:
        table = model.transformer.tokens_embed.embeddings
        rng = np.random.default_rng(seed)
        table.assign(rng.normal(0.0, std, tuple(table.shape)).astype(table.dtype))
    return model

