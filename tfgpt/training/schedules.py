"""GPT-1's learning-rate schedule: linear warm-up, then cosine annealing."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfgpt")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """GPT-1's schedule: linear warm-up from 0 to ``peak_learning_rate`` over ``warmup_steps``, then
    cosine annealing to ``min_ratio * peak_learning_rate`` at ``total_steps`` (held there after).

    ``step`` is the optimizer's iteration count (0 for the first update), so the first update uses
    ``peak / warmup_steps`` rather than 0.
    """

    def __init__(self, peak_learning_rate, total_steps, warmup_steps=0, min_ratio=0.0):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if warmup_steps < 0 or warmup_steps > total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.min_ratio = float(min_ratio)
        self.time_progress = None

    def follow_time(self):
        """Let a :class:`TimeLimit` drive the decay too: progress becomes max(step fraction, elapsed
        fraction of the time budget), so the cosine ends at the deadline if that comes first. Call
        before the first training step (the train function reads the variable)."""
        if self.time_progress is None:
            with tf.init_scope():
                self.time_progress = tf.Variable(0.0, trainable=False, dtype=tf.float32,
                                                 name="time_progress")
        return self.time_progress

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.constant(self.peak_learning_rate, tf.float32)
        warm = peak * (step + 1.0) / max(self.warmup_steps, 1)
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
        if self.time_progress is not None:
            progress = tf.maximum(progress, tf.clip_by_value(self.time_progress, 0.0, 1.0))
        cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
        decayed = peak * (self.min_ratio + (1.0 - self.min_ratio) * cosine)
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "min_ratio": self.min_ratio}


