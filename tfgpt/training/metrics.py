"""Metrics of an LM head (token accuracy, perplexity) and the default metric set per head."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfgpt.models.modeling import IGNORE_INDEX, TFOpenAIGPTLMHeadModel


def _token_stats(y_true, y_pred):
    """Per-token statistics of an LM head, shared by the metrics below (identical ops, which XLA
    computes once): the target's logit, the row max and the log-sum-exp, and which tokens count.
    Logits at t predict labels at t + 1 (HF's shift); -100 labels are ignored."""
    labels = tf.cast(y_true, tf.int32)[..., 1:]
    logits = tf.cast(y_pred, tf.float32)[..., :-1, :]
    keep = tf.not_equal(labels, IGNORE_INDEX)
    safe = tf.where(keep, labels, 0)
    target = tf.gather(logits, safe[..., None], batch_dims=logits.shape.rank - 1)[..., 0]
    top = tf.reduce_max(logits, axis=-1)
    lse = top + tf.math.log(tf.reduce_sum(tf.exp(logits - top[..., None]), axis=-1))
    return target, top, lse, tf.cast(keep, tf.float32)


class _TokenSum(keras.metrics.Metric):
    """A sum of one per-token value over the counted tokens, and their count: the state both LM
    metrics keep. Subclasses name the sum (``SUM``) and say what a token adds (``per_token``)."""

    SUM = "total"

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.sum = self.add_variable(shape=(), initializer="zeros", name=self.SUM)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def per_token(self, target, top, lse):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        target, top, lse, keep = _token_stats(y_true, y_pred)
        self.sum.assign_add(tf.reduce_sum(self.per_token(target, top, lse) * keep))
        self.count.assign_add(tf.reduce_sum(keep))

    def mean(self):
        return self.sum / tf.maximum(self.count, 1.0)


@keras.saving.register_keras_serializable(package="tfgpt")
class TokenAccuracy(_TokenSum):
    """Next-token accuracy of an LM head over all counted tokens (labels in y or in the input dict)."""

    SUM = "correct"

    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def per_token(self, target, top, lse):
        return tf.cast(target >= top, tf.float32)  # the target has the highest logit

    def result(self):
        return self.mean()


@keras.saving.register_keras_serializable(package="tfgpt")
class Perplexity(_TokenSum):
    """exp(mean next-token cross-entropy) over all counted tokens seen since the last reset."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)

    def per_token(self, target, top, lse):
        return lse - target  # cross-entropy

    def result(self):
        return tf.exp(self.mean())


def perplexity_from_loss(loss) -> float:
    """exp(mean token cross-entropy), capped so a diverged loss gives a large number, not inf."""
    return float(np.exp(min(float(loss), 80.0)))


def default_metrics(model, perplexity: bool = True):
    """Token accuracy and perplexity for LM heads, accuracy for the classification and choice heads.
    ``perplexity=False`` leaves it to :class:`PerplexityFromLoss` (saves a pass over the logits)."""
    if isinstance(model, TFOpenAIGPTLMHeadModel):
        return [TokenAccuracy(), Perplexity()] if perplexity else [TokenAccuracy()]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

