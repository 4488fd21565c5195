"""Training with ``model.fit``: presets, AdamW with GPT-1's schedule, metrics and callbacks.

The models train on their own losses: ``model.compile(optimizer=create_optimizer(...),
metrics=default_metrics(model))`` then ``model.fit(dataset)`` with a pipeline from :mod:`tfgpt.data`.
The ``tfgpt train`` / ``tfgpt evaluate`` commands that drive them live in :mod:`tfgpt.cli`.
"""

from tfgpt.training.callbacks import (  # noqa: F401
    BackupAndRestore,
    JSONLog,
    PerplexityFromLoss,
    SavePretrainedCheckpoint,
    TensorBoard,
    TimeLimit,
)
from tfgpt.training.metrics import Perplexity, TokenAccuracy, default_metrics, perplexity_from_loss  # noqa: F401
from tfgpt.training.optimizers import NO_DECAY_PATTERN, AdamW, create_optimizer, current_learning_rate  # noqa: F401
from tfgpt.training.presets import (  # noqa: F401
    PRESET_OPTIMIZER,
    PRESET_TOKEN_INIT,
    PRESETS,
    preset_config,
    preset_model,
)
from tfgpt.training.schedules import WarmupCosineDecay  # noqa: F401
