"""Training helpers for ``model.fit``: presets, AdamW with GPT-1's schedule, metrics, callbacks, and the
``tfgpt train`` / ``tfgpt evaluate`` commands.

The models train on their own losses: ``model.compile(optimizer=create_optimizer(...),
metrics=default_metrics(model))`` then ``model.fit(dataset)`` with a pipeline from :mod:`tfgpt.data`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tfgpt.models.modeling import IGNORE_INDEX

# --- presets -----------------------------------------------------------------------------------------

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


# --- optimizer and schedule --------------------------------------------------------------------------

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


# --- metrics -----------------------------------------------------------------------------------------

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


@keras.saving.register_keras_serializable(package="tfgpt")
class TokenAccuracy(keras.metrics.Metric):
    """Next-token accuracy of an LM head over all counted tokens (labels in y or in the input dict)."""

    def __init__(self, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        target, top, _, keep = _token_stats(y_true, y_pred)
        hits = tf.cast(target >= top, tf.float32)  # the target has the highest logit
        self.correct.assign_add(tf.reduce_sum(hits * keep))
        self.count.assign_add(tf.reduce_sum(keep))

    def result(self):
        return self.correct / tf.maximum(self.count, 1.0)


@keras.saving.register_keras_serializable(package="tfgpt")
class Perplexity(keras.metrics.Metric):
    """exp(mean next-token cross-entropy) over all counted tokens seen since the last reset."""

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        target, _, lse, keep = _token_stats(y_true, y_pred)
        self.total.assign_add(tf.reduce_sum((lse - target) * keep))
        self.count.assign_add(tf.reduce_sum(keep))

    def result(self):
        return tf.exp(self.total / tf.maximum(self.count, 1.0))


def perplexity_from_loss(loss) -> float:
    """exp(mean token cross-entropy), capped so a diverged loss gives a large number, not inf."""
    return float(np.exp(min(float(loss), 80.0)))


class PerplexityFromLoss(keras.callbacks.Callback):
    """Add ``perplexity = exp(loss)`` (and ``val_perplexity``) to the logs: exact and free for packed
    LM windows, where every sequence has the same number of counted tokens (HF's run_clm reports the
    same). Put it before the callbacks that read the logs."""

    def _add(self, logs):
        if logs is None:
            return
        for key, name in (("loss", "perplexity"), ("val_loss", "val_perplexity")):
            if key in logs:
                logs[name] = perplexity_from_loss(logs[key])

    def on_train_batch_end(self, batch, logs=None):
        self._add(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._add(logs)

    def on_test_end(self, logs=None):
        self._add(logs)


def default_metrics(model, perplexity: bool = True):
    """Token accuracy and perplexity for LM heads, accuracy for the classification and choice heads.
    ``perplexity=False`` leaves it to :class:`PerplexityFromLoss` (saves a pass over the logits)."""
    from tfgpt.models.modeling import TFOpenAIGPTLMHeadModel

    if isinstance(model, TFOpenAIGPTLMHeadModel):
        return [TokenAccuracy(), Perplexity()] if perplexity else [TokenAccuracy()]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


# --- callbacks ---------------------------------------------------------------------------------------

class SavePretrainedCheckpoint(keras.callbacks.Callback):
    """Write ``save_pretrained`` checkpoints (config.json + weights, loadable by ``from_pretrained``
    and by HF transformers) during ``fit``.

    ``save_freq="epoch"`` writes ``{directory}/checkpoint-{step}`` after each epoch, an int every that
    many batches; ``keep`` keeps only the newest that many; a ``tokenizer`` is saved beside each
    checkpoint so every folder is self-contained.
    """

    def __init__(self, directory, save_freq="epoch", keep: Optional[int] = None, tokenizer=None,
                 safe_serialization: bool = True):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.directory = os.fspath(directory)
        self.save_freq = save_freq
        self.keep = keep
        self.tokenizer = tokenizer
        self.safe_serialization = safe_serialization
        self.saved = []

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _save(self):
        path = os.path.join(self.directory, f"checkpoint-{self._step()}")
        self.model.save_pretrained(path, safe_serialization=self.safe_serialization)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(path)
        if path not in self.saved:
            self.saved.append(path)
        while self.keep and len(self.saved) > self.keep:
            old = self.saved.pop(0)
            import shutil

            shutil.rmtree(old, ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and self._step() % self.save_freq == 0:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save()


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore for step-based training, with a note of what it restored.

    Back up at epoch ends (``save_freq="epoch"``): Keras resumes a restarted ``fit`` at the epoch
    after the last backup, with weights and optimizer state (including its step counter, hence the
    learning-rate schedule) restored, so a killed run finishes with the same number of steps as an
    uninterrupted one. Train by steps with ``steps_per_epoch`` = the backup interval.
    """

    def __init__(self, backup_dir, save_freq="epoch", **kwargs):
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.restored_epoch = None
        self.restored_step = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if os.path.exists(self._training_metadata_path):
            self.restored_epoch = self.model._initial_epoch
            self.restored_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            print(f"Resuming from the backup in {self.backup_dir}: epoch {self.restored_epoch}, "
                  f"step {self.restored_step}", flush=True)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        # Keras keeps _initial_epoch on the model; a later fit() must start from its own epoch 0.
        self.model._initial_epoch = None


class _ScalarSummaries:
    """``tf.summary`` with a ``scalar`` that needs no ``tensorboard`` package: it writes the same event
    TensorBoard's scalar plugin reads (plugin "scalars", a float32 scalar tensor)."""

    def __getattr__(self, name):
        return getattr(tf.summary, name)

    @staticmethod
    def scalar(name, data, step=None, description=None):
        from tensorflow.compat.v1 import SummaryMetadata

        metadata = SummaryMetadata()
        metadata.plugin_data.plugin_name = "scalars"
        if description:
            metadata.summary_description = description
        with tf.summary.experimental.summary_scope(name, "scalar_summary", values=[data, step]) as (tag, _):
            return tf.summary.write(tag=tag, tensor=tf.cast(data, tf.float32), step=step, metadata=metadata)


def _have_tensorboard() -> bool:
    try:
        import tensorboard.summary.v2  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback; writes loss and metric curves even where the ``tensorboard``
    package (needed only to view them) is not installed."""

    @property
    def summary(self):
        if self._summary_module is None:
            self._summary_module = tf.summary if _have_tensorboard() else _ScalarSummaries()
        return self._summary_module


class TimeLimit(keras.callbacks.Callback):
    """Stop training (after the current batch) once ``seconds`` of wall time have passed.

    With ``anneal=True`` and a :class:`WarmupCosineDecay` learning rate, the decay also follows the
    clock (see ``follow_time``): a run cut short by the deadline still ends with an annealed learning
    rate instead of stopping at its peak.
    """

    def __init__(self, seconds: float, anneal: bool = True):
        super().__init__()
        self.seconds = float(seconds)
        self.anneal = anneal
        self.stopped = False
        self._progress = None

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        inner = getattr(self.model.optimizer, "inner_optimizer", self.model.optimizer)
        schedule = getattr(inner, "_learning_rate", None)
        if self.anneal and isinstance(schedule, WarmupCosineDecay):
            new = schedule.time_progress is None
            self._progress = schedule.follow_time()
            self._progress.assign(0.0)
            if new and getattr(self.model, "train_function", None) is not None:
                self.model.make_train_function(force=True)  # trace again, reading the clock

    def on_train_batch_end(self, batch, logs=None):
        elapsed = time.monotonic() - self._start
        if self._progress is not None:
            self._progress.assign(min(elapsed / self.seconds, 1.0))
        if elapsed >= self.seconds:
            self.stopped = True
            self.model.stop_training = True


def _jsonable(logs):
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            continue
    return out


class JSONLog(keras.callbacks.Callback):
    """Append the training curve to a JSON file: every ``every`` steps the step's logs (Keras reports
    running means since the epoch began) and the learning rate, and every epoch's logs including
    validation. The file is rewritten after each epoch, so it is readable while training runs."""

    def __init__(self, path, every: int = 10, extra: Optional[dict] = None):
        super().__init__()
        self.path = os.fspath(path)
        self.every = max(int(every), 1)
        self.record = {"steps": [], "epochs": [], **(extra or {})}

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()
        if os.path.exists(self.path):  # resumed after an interruption: keep the curve so far
            try:
                with open(self.path, encoding="utf-8") as f:
                    old = json.load(f)
                self.record["steps"] = old.get("steps", [])
                self.record["epochs"] = old.get("epochs", [])
            except (OSError, ValueError):
                pass

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every == 0:
            entry = {"step": step, **_jsonable(logs),
                     "learning_rate": current_learning_rate(self.model.optimizer),
                     "elapsed_s": round(time.monotonic() - self._start, 2)}
            self.record["steps"].append(entry)

    def on_epoch_end(self, epoch, logs=None):
        self.record["epochs"].append({"epoch": epoch + 1, "step": self._step(), **_jsonable(logs),
                                      "elapsed_s": round(time.monotonic() - self._start, 2)})
        self.write()

    def on_train_end(self, logs=None):
        self.write()

    def write(self, **extra):
        self.record.update(extra)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.record, f, indent=1)
        os.replace(tmp, self.path)


# --- the `tfgpt train` and `tfgpt evaluate` commands ---------------------------------------------------

TASKS = ("lm", "classification", "multiple-choice")
# The default LM run (small preset): this many steps or minutes, whichever ends first; the learning
# rate anneals by the deadline either way (TimeLimit), so the CPU demo fits in 20 minutes.
DEFAULT_LM_STEPS = 2000
DEFAULT_LM_MINUTES = 18.0
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PAD_TOKEN = "<pad>"


def _add_data_args(p, train: bool):
    g = p.add_argument_group("data")
    g.add_argument("--task", choices=TASKS, default="lm",
                   help="lm: causal LM on text files; classification: sequence classification; "
                        "multiple-choice: DoubleHeads on COPA (default: lm)")
    g.add_argument("--train-file", nargs="+", metavar="PATH",
                   help="lm: text files, one document each (default: tiny-shakespeare, downloaded once "
                        "into the Keras cache); classification: TSV files 'label<TAB>text'")
    g.add_argument("--validation-file", nargs="+", metavar="PATH",
                   help="separate validation data (default: held out from the training data)")
    g.add_argument("--validation-fraction", type=float, default=0.1,
                   help="lm: the last fraction of every file is validation (default: 0.1)")
    g.add_argument("--document-per-line", action="store_true",
                   help="lm: every line is a document (default: every file)")
    g.add_argument("--cache-dir", help="Keras cache folder for the default corpus (default: $KERAS_HOME "
                                       "or ~/.keras; the file goes to datasets/tfgpt/)")
    g.add_argument("--class-files", nargs="+", metavar="PATH",
                   help="classification: one text per line, the label is the file's position "
                        "(e.g. rt-polarity.neg rt-polarity.pos)")
    g.add_argument("--holdout-every", type=int, default=10,
                   help="classification: every N-th line of each class is validation (default: 10)")
    g.add_argument("--copa-file", metavar="XML", help="multiple-choice: COPA / Balanced-COPA XML file")
    g.add_argument("--train-ids", default="1-400", help="multiple-choice: COPA ids to train on (default: 1-400)")
    g.add_argument("--validation-ids", default="401-500",
                   help="multiple-choice: COPA ids to validate on (default: 401-500)")
    g.add_argument("--seq-len", type=int, default=None,
                   help="tokens per sequence (default: 128 for lm, 64 otherwise)")
    g.add_argument("--batch-size", type=int, default=None,
                   help="sequences per batch (default: 8 for lm, 32 classification, 8 multiple-choice)")


def register_cli(subparsers):
    """Add ``train`` and ``evaluate`` to the ``tfgpt`` command."""
    p = subparsers.add_parser(
        "train", help="train or fine-tune a GPT-1 model with model.fit",
        description="Train a GPT-1 model with Keras fit on a tf.data pipeline; writes the checkpoint "
                    "(save_pretrained), the tokenizer files and train_log.json to --output.")
    _add_data_args(p, train=True)
    m = p.add_argument_group("model")
    m.add_argument("--tokenizer", help="tokenizer folder or hub id (default: the --init-from folder when "
                                       "it has tokenizer files, else 'openai-gpt')")
    m.add_argument("--model", choices=sorted(PRESETS), default="small",
                   help="preset for a new model: small (CPU demo) or gpt1 (12 x 768) (default: small)")
    m.add_argument("--init-from", metavar="DIR_OR_ID", help="start from this checkpoint instead of a preset")
    m.add_argument("--dropout", type=float, default=None,
                   help="dropout for a new model (default: the preset's, 0.1 as GPT-1); with --init-from "
                        "the checkpoint's")
    m.add_argument("--lm-coef", type=float, default=0.5,
                   help="multiple-choice: weight of the auxiliary LM loss (GPT-1: 0.5; 0 turns it off)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--steps", type=int, default=None,
                   help=f"optimizer steps (default for lm: {DEFAULT_LM_STEPS}; a new small model also "
                        f"stops after {DEFAULT_LM_MINUTES:g} minutes, see --max-minutes)")
    o.add_argument("--epochs", type=float, default=None, help="passes over the training data instead of --steps")
    o.add_argument("--eval-every", type=int, default=None,
                   help="steps between validations, backups and log records (default: 200 for lm, "
                        "an epoch otherwise); the steps are rounded up to whole intervals")
    o.add_argument("--validation-steps", type=int, default=None,
                   help="validate on at most this many batches (default: all of the validation data)")
    o.add_argument("--learning-rate", type=float, default=None,
                   help="peak learning rate (default: 1e-3 for a new small model, 2.5e-4 for gpt1, "
                        "6.25e-5 when fine-tuning, as GPT-1)")
    o.add_argument("--warmup-steps", type=int, default=None, help="linear warm-up (default: 5%% of steps)")
    o.add_argument("--min-lr-ratio", type=float, default=0.0, help="cosine decays to this x peak (default: 0)")
    o.add_argument("--weight-decay", type=float, default=None,
                   help="AdamW weight decay, not on biases and layer norms (default: 0.1 for a new "
                        "small model, else 0.01 as GPT-1)")
    o.add_argument("--clipnorm", type=float, default=1.0, help="global gradient norm clip (0: off)")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this much training time; the learning rate anneals by then")
    r = p.add_argument_group("runtime")
    r.add_argument("--output", default="runs/train", help="output folder (default: runs/train)")
    r.add_argument("--precision", choices=PRECISIONS, default="float32")
    r.add_argument("--jit-compile", dest="jit_compile", action="store_true", default=True,
                   help="compile train steps with XLA (default)")
    r.add_argument("--no-jit-compile", dest="jit_compile", action="store_false")
    r.add_argument("--checkpoint-every", type=int, default=None,
                   help="also save_pretrained into OUTPUT/checkpoints/checkpoint-STEP every N steps")
    r.add_argument("--no-backup", dest="backup", action="store_false", default=True,
                   help="no BackupAndRestore (default: back up at every --eval-every in OUTPUT/backup; a "
                        "killed run started again with the same command resumes there)")
    r.add_argument("--tensorboard", nargs="?", const="", default=None, metavar="DIR",
                   help="write TensorBoard logs (default folder: OUTPUT/tensorboard)")
    r.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras progress: 1 progress bar (default on a terminal), 2 one line per eval")
    p.set_defaults(func=train_command)

    e = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint (loss, perplexity, accuracy)",
        description="Evaluate a checkpoint on held-out data; prints a JSON object of metrics.")
    _add_data_args(e, train=False)
    e.add_argument("--model", dest="init_from", required=True, metavar="DIR_OR_ID",
                   help="checkpoint folder (as written by tfgpt train) or hub id")
    e.add_argument("--tokenizer", help="tokenizer folder or hub id (default: the checkpoint folder)")
    e.add_argument("--split", choices=("validation", "train", "all"), default="validation",
                   help="which part of the data to evaluate (default: validation)")
    e.add_argument("--precision", choices=PRECISIONS, default="float32")
    e.add_argument("--jit-compile", dest="jit_compile", action="store_true", default=True)
    e.add_argument("--no-jit-compile", dest="jit_compile", action="store_false")
    e.add_argument("--steps", type=int, default=None, help="evaluate at most this many batches")
    e.add_argument("--output-json", metavar="PATH", help="also write the metrics here")
    e.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None)
    e.set_defaults(func=evaluate_command, validation_file=None)


# --- command helpers ---------------------------------------------------------------------------------

_TOKENIZER_FILES = ("vocab.json", "encoder_bpe_40000.json")


def _has_tokenizer(folder) -> bool:
    return bool(folder) and os.path.isdir(folder) and any(
        os.path.isfile(os.path.join(folder, f)) for f in _TOKENIZER_FILES)


def _load_tokenizer(args):
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    source = args.tokenizer
    if source is None:
        source = args.init_from if _has_tokenizer(args.init_from) else "openai-gpt"
    return OpenAIGPTTokenizer.from_pretrained(source)


def _model_class(task):
    from tfgpt.models import modeling

    return {"lm": modeling.TFOpenAIGPTLMHeadModel,
            "classification": modeling.TFOpenAIGPTForSequenceClassification,
            "multiple-choice": modeling.TFOpenAIGPTDoubleHeadsModel}[task]


def _task_defaults(args):
    lm = args.task == "lm"
    if args.seq_len is None:
        args.seq_len = 128 if lm else 64
    if args.batch_size is None:
        args.batch_size = {"lm": 8, "classification": 32, "multiple-choice": 8}[args.task]


class _Data:
    """The pipelines of one run: train (repeating), validation (one pass) and their sizes."""

    def __init__(self, train, validation, train_batches=None, info=None):
        self.train, self.validation = train, validation
        self.train_batches = train_batches
        self.info = info or {}

    def limit_validation(self, steps=None):
        """Cut validation to ``steps`` batches and give it a known length (Keras then shows a full
        progress bar and does not warn that the data ran out)."""
        from tfgpt.data import count_batches

        if self.validation is None:
            return
        if steps:
            self.validation = self.validation.take(steps)
        n = int(self.validation.cardinality())
        if n < 0:
            n = count_batches(self.validation)
            self.validation = self.validation.apply(tf.data.experimental.assert_cardinality(n))
        self.info["validation_batches"] = n


def _lm_files(args):
    if args.train_file:
        return list(args.train_file)
    from tfgpt.data import get_tiny_shakespeare

    return [get_tiny_shakespeare(args.cache_dir)]


def _build_data(args, tokenizer, special, evaluate_split=None):
    """Pipelines for the task; ``evaluate_split`` builds only the (one-pass) evaluation pipeline."""
    from tfgpt import data

    seed = getattr(args, "seed", 0)
    b, s = args.batch_size, args.seq_len
    if args.task == "lm":
        files = _lm_files(args)
        val_files = args.validation_file
        frac = 0.0 if val_files else args.validation_fraction
        opts = dict(document_per_line=args.document_per_line)
        small = sum(os.path.getsize(f) for f in files if os.path.isfile(f)) < (256 << 20)
        info = {"files": files, "validation_files": val_files, "validation_fraction": frac}
        if evaluate_split is not None:
            split = evaluate_split
            src = files
            if val_files and split == "validation":
                src, split = val_files, "all"
            ev = data.lm_dataset(src, tokenizer, s, b, split=split, validation_fraction=frac, **opts)
            return _Data(None, ev, info=info)
        train = data.lm_dataset(files, tokenizer, s, b, "train", frac, seed=seed, cache=small, **opts)
        if val_files:
            val = data.lm_dataset(val_files, tokenizer, s, b, "all", **opts)
        elif frac > 0:
            val = data.lm_dataset(files, tokenizer, s, b, "validation", frac, **opts)
        else:
            val = None
        n_train = None
        if args.epochs is not None:
            once = data.lm_dataset(files, tokenizer, s, b, "train", frac, repeat=False, shuffle=False,
                                   drop_remainder=True, **opts)
            n_train = data.count_batches(once)
        return _Data(train, val, n_train, info=info)

    if args.task == "classification":
        if args.class_files:
            texts, labels = data.read_class_files(args.class_files)
            names = [os.path.basename(f) for f in args.class_files]
        elif args.train_file:
            texts, labels, names = [], [], None
            for f in args.train_file:
                t, l, n = data.read_tsv(f)
                if names is not None and n != names:
                    raise ValueError(f"{f} has labels {n}, the first file {names}")
                texts, labels, names = texts + t, labels + l, n
        else:
            raise ValueError("classification needs --class-files or --train-file (TSV)")
        if args.validation_file:
            vt, vl = [], []
            for f in args.validation_file:
                t, l, _ = data.read_tsv(f)
                vt, vl = vt + t, vl + l
            train_pairs, val_pairs = list(zip(texts, labels)), list(zip(vt, vl))
        else:
            train_pairs, val_pairs = data.holdout_every(list(zip(texts, labels)), args.holdout_every,
                                                        per_group=labels)
        if evaluate_split == "all":
            train_pairs, val_pairs = [], train_pairs + val_pairs
        elif evaluate_split == "train":
            train_pairs, val_pairs = [], train_pairs
        opts = dict(max_length=s, pad_id=special["pad"], start_id=special["_start_"],
                    classify_id=special["_classify_"])
        info = {"num_labels": len(names), "labels": names, "train_examples": len(train_pairs),
                "validation_examples": len(val_pairs)}

        def make(pairs, **kw):
            t, l = zip(*pairs) if pairs else ((), ())
            return data.classification_dataset(list(t), np.asarray(l, np.int32), tokenizer, b, **opts, **kw)

        val = make(val_pairs)
        if evaluate_split is not None:
            return _Data(None, val, info=info)
        train = make(train_pairs, shuffle=True, repeat=True, seed=seed, drop_remainder=True)
        return _Data(train, val, len(train_pairs) // b, info=info)

    # multiple choice
    if not args.copa_file:
        raise ValueError("multiple-choice needs --copa-file (a COPA / Balanced-COPA XML file)")
    train_items = data.read_copa(args.copa_file, data.parse_id_ranges(args.train_ids))
    val_items = data.read_copa(args.copa_file, data.parse_id_ranges(args.validation_ids))
    if evaluate_split == "train":
        val_items = train_items
    elif evaluate_split == "all":
        val_items = train_items + val_items
    opts = dict(start_id=special["_start_"], delimiter_id=special["_delimiter_"],
                classify_id=special["_classify_"], max_length=s, pad_id=special["pad"],
                batch_size=b)
    info = {"train_examples": len(train_items), "validation_examples": len(val_items)}
    val = data.multiple_choice_dataset(*data.copa_examples(val_items), tokenizer, **opts)
    if evaluate_split is not None:
        return _Data(None, val, info=info)
    train = data.multiple_choice_dataset(*data.copa_examples(train_items), tokenizer, **opts,
                                         shuffle=True, repeat=True, seed=seed, drop_remainder=True)
    return _Data(train, val, max(len(train_items) // b, 1), info=info)


def _special_tokens(task, tokenizer, model=None):
    """GPT-1's task tokens for the fine-tuning heads (added to the tokenizer and the token table)."""
    from tfgpt import data

    if task == "lm":
        return {}
    tokens = ("_start_", "_classify_") if task == "classification" else data.GPT1_SPECIAL_TOKENS
    return data.add_gpt1_special_tokens(tokenizer, model, tokens, pad_token=PAD_TOKEN)


def _build_model(args, tokenizer):
    cls = _model_class(args.task)
    kwargs = {}
    if args.task == "multiple-choice":
        kwargs["lm_coef"] = args.lm_coef
    if args.init_from:
        overrides = {}
        if args.task == "classification" and args.num_labels:
            overrides["num_labels"] = args.num_labels
        if args.task == "multiple-choice":
            overrides["num_labels"] = 1  # one score per choice
        if args.dropout is not None:
            overrides.update(resid_pdrop=args.dropout, embd_pdrop=args.dropout, attn_pdrop=args.dropout)
        model = cls.from_pretrained(args.init_from, **overrides, **kwargs)
    else:
        d = args.dropout
        n_positions = max(PRESETS[args.model]["n_positions"], args.seq_len)
        model = preset_model(cls, args.model, len(tokenizer), seed=args.seed, resid_pdrop=d,
                             embd_pdrop=d, attn_pdrop=d, n_positions=n_positions,
                             num_labels=getattr(args, "num_labels", None) or
                             (1 if args.task == "multiple-choice" else 2), **kwargs)
    if args.seq_len > model.config.n_positions:
        raise ValueError(f"--seq-len {args.seq_len} is longer than the model's n_positions="
                         f"{model.config.n_positions}")
    return model


def _set_precision(name):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(name)
    return previous


def _verbosity(args):
    if args.verbose is not None:
        return args.verbose
    return 1 if sys.stdout.isatty() else 2


def _num_labels(args):
    if args.task != "classification":
        return None
    if args.class_files:
        return len(args.class_files)
    if args.train_file:
        from tfgpt.data import read_tsv

        return len(read_tsv(args.train_file[0])[2])
    return None


def train_command(args) -> int:
    """``tfgpt train``: build data, model and optimizer, fit, and write the results to --output."""
    _task_defaults(args)
    lm = args.task == "lm"
    if args.steps is not None and args.epochs is not None:
        raise ValueError("give --steps or --epochs, not both")
    if args.steps is None and args.epochs is None:
        if lm:
            args.steps = DEFAULT_LM_STEPS
            if args.max_minutes is None and not args.init_from and args.model == "small":
                args.max_minutes = DEFAULT_LM_MINUTES
        else:
            args.epochs = 3.0
    recipe = {} if args.init_from else PRESET_OPTIMIZER.get(args.model, {})
    if args.learning_rate is None:
        args.learning_rate = recipe.get("learning_rate", 6.25e-5)
    if args.weight_decay is None:
        args.weight_decay = recipe.get("weight_decay", 0.01)
    keras.utils.set_random_seed(args.seed)
    previous_policy = _set_precision(args.precision)
    try:
        tokenizer = _load_tokenizer(args)
        args.num_labels = _num_labels(args)
        model = _build_model(args, tokenizer)
        special = _special_tokens(args.task, tokenizer, model)
        d = _build_data(args, tokenizer, special)
        d.limit_validation(args.validation_steps)
        if args.task == "classification":
            model.config.id2label = {i: str(n) for i, n in enumerate(d.info["labels"])}
            model.config.label2id = {str(n): i for i, n in enumerate(d.info["labels"])}
        if args.epochs is not None:
            if not d.train_batches:
                raise ValueError("the training data is smaller than one batch")
            total = max(int(round(args.epochs * d.train_batches)), 1)
        else:
            total = args.steps
        every = args.eval_every or (200 if lm else max(d.train_batches or 100, 1))
        every = max(1, min(every, total))
        epochs = math.ceil(total / every)
        total = epochs * every  # whole intervals, so backups and resumes line up
        warmup = args.warmup_steps if args.warmup_steps is not None else max(int(0.05 * total), 1)
        optimizer = create_optimizer(args.learning_rate, total, warmup, args.weight_decay,
                                     args.min_lr_ratio, args.clipnorm or None)
        model.compile(optimizer=optimizer, metrics=default_metrics(model, perplexity=not lm),
                      jit_compile=args.jit_compile)

        os.makedirs(args.output, exist_ok=True)
        log = JSONLog(os.path.join(args.output, "train_log.json"), every=max(1, min(10, every)), extra={
            "command": "tfgpt train " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train"] else None,
            "settings": {k: v for k, v in vars(args).items() if k != "func"},
            "total_steps": total, "warmup_steps": warmup, "data": d.info,
            "config": model.config.to_dict(),
        })
        callbacks = ([PerplexityFromLoss()] if lm else []) + [log, keras.callbacks.TerminateOnNaN()]
        if args.backup:
            callbacks.insert(0, BackupAndRestore(os.path.join(args.output, "backup")))
        if args.max_minutes:
            callbacks.append(TimeLimit(args.max_minutes * 60))
        if args.checkpoint_every:
            callbacks.append(SavePretrainedCheckpoint(os.path.join(args.output, "checkpoints"),
                                                      save_freq=args.checkpoint_every, keep=3,
                                                      tokenizer=tokenizer))
        if args.tensorboard is not None:
            callbacks.append(TensorBoard(
                args.tensorboard or os.path.join(args.output, "tensorboard"), update_freq=every))
        n_params = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
        print(f"tfgpt train: task={args.task}, {type(model).__name__} with {n_params / 1e6:.1f} M "
              f"parameters, {total} steps of {args.batch_size} x {args.seq_len} tokens, validating "
              f"every {every}; output in {args.output}", flush=True)
        start = time.monotonic()
        history = model.fit(d.train, validation_data=d.validation, epochs=epochs, steps_per_epoch=every,
                            callbacks=callbacks,
                            verbose=_verbosity(args), shuffle=False)
        elapsed = time.monotonic() - start
        step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        final = {k: float(v[-1]) for k, v in history.history.items() if v}
        if not final and log.record["epochs"]:
            final = {k: v for k, v in log.record["epochs"][-1].items() if k not in ("epoch", "elapsed_s")}
        nan = any(not np.isfinite(v) for k, v in final.items() if "loss" in k)

        model.save_pretrained(args.output, safe_serialization=True)
        tokenizer.save_pretrained(args.output)
        log.write(final=final, steps_done=step, train_seconds=round(elapsed, 1),
                  stopped_by_time_limit=any(isinstance(c, TimeLimit) and c.stopped for c in callbacks),
                  terminated_on_nan=nan)
        summary = ", ".join(f"{k} {v:.4f}" for k, v in final.items())
        print(f"tfgpt train: {step} steps in {elapsed / 60:.1f} min; {summary}", flush=True)
        print(f"tfgpt train: wrote the checkpoint, tokenizer and train_log.json to {args.output}",
              flush=True)
        return 1 if nan else 0
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def evaluate_command(args) -> int:
    """``tfgpt evaluate``: metrics of a checkpoint on held-out data, as JSON on stdout."""
    _task_defaults(args)
    previous_policy = _set_precision(args.precision)
    try:
        args.dropout, args.lm_coef, args.model = None, 0.5, "small"
        tokenizer = _load_tokenizer(args)
        args.num_labels = None
        cls = _model_class(args.task)
        model = cls.from_pretrained(args.init_from)
        special = _special_tokens(args.task, tokenizer, model)
        d = _build_data(args, tokenizer, special, evaluate_split=args.split)
        d.limit_validation(args.steps)
        lm = args.task == "lm"
        model.compile(optimizer=None, metrics=default_metrics(model, perplexity=not lm),
                      jit_compile=args.jit_compile)
        results = model.evaluate(d.validation, return_dict=True, verbose=_verbosity(args))
        results = {k: float(v) for k, v in results.items()}
        if lm:
            results["perplexity"] = perplexity_from_loss(results["loss"])
        results.update(task=args.task, split=args.split, model=args.init_from)
        text = json.dumps(results, indent=1)
        print(text, flush=True)
        if args.output_json:
            with open(args.output_json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return 0
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
