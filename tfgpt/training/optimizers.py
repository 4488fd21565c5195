"""AdamW without weight decay on biases and layer norms, and the ``create_optimizer`` recipe."""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from tfgpt.training.schedules import WarmupCosineDecay

# Variables that take no weight decay: biases and the layer norms' gain (gamma) and shift (beta).
NO_DECAY_PATTERN = r"^(bias|gamma|beta)$"


@keras.saving.register_keras_serializable(package="tfgpt")
class AdamW(keras.optimizers.AdamW):
    """Keras AdamW that skips weight decay on biases and layer norms, and clips by the global norm of
    the gradient of the whole batch under ``tf.distribute``.

    Keras clips each replica's share of the gradient before summing them; here the gradients are
    summed first (one extra all-reduce, only when clipping with several replicas), so N replicas
    update exactly as one device on the same global batch.
    """

    def __init__(self, *args, no_decay_pattern: Optional[str] = NO_DECAY_PATTERN, **kwargs):
        super().__init__(*args, **kwargs)
        self.no_decay_pattern = no_decay_pattern
        if no_decay_pattern:
            self.exclude_from_weight_decay(var_names=[no_decay_pattern])

    def get_config(self):
        return {**super().get_config(), "no_decay_pattern": self.no_decay_pattern}

    def _clip_gradients(self, grads):
        ctx = tf.distribute.get_replica_context()
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if (self.global_clipnorm and self.global_clipnorm > 0 and ctx is not None and replicas > 1
                and tf.distribute.has_strategy()):
            present = [g for g in grads if g is not None]
            summed = iter(ctx.all_reduce(tf.distribute.ReduceOp.SUM, present))
            total = [None if g is None else next(summed) for g in grads]
            clipped = super()._clip_gradients(total)
            # The optimizer sums the replicas' gradients next: hand it 1/N of the clipped total each.
            return [None if g is None else g / replicas for g in clipped]
        return super()._clip_gradients(grads)


def create_optimizer(learning_rate: float = 2.5e-4, total_steps: Optional[int] = None,
                     warmup_steps: int = 0, weight_decay: float = 0.01, min_lr_ratio: float = 0.0,
                     clipnorm: Optional[float] = 1.0, beta_1: float = 0.9, beta_2: float = 0.999,
                     epsilon: float = 1e-8) -> AdamW:
    """AdamW with decoupled weight decay (off for biases and layer norms), global-norm clipping and,
    when ``total_steps`` is given, linear warm-up + cosine decay (GPT-1 pre-training: lr 2.5e-4,
    2000 warm-up steps, annealed to 0; weight decay 0.01)."""
    lr = learning_rate
    if total_steps:
        warmup_steps = min(int(warmup_steps), int(total_steps))
        lr = WarmupCosineDecay(learning_rate, total_steps, warmup_steps, min_lr_ratio)
    return AdamW(learning_rate=lr, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                 epsilon=epsilon, global_clipnorm=clipnorm or None)


def current_learning_rate(optimizer) -> float:
    """The learning rate the next update will use (works for schedules and loss-scale wrappers)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner._learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        return float(lr(inner.iterations))
    return float(keras.ops.convert_to_numpy(inner.learning_rate))

