"""Callbacks for ``model.fit``: save_pretrained checkpoints, step-based BackupAndRestore, TensorBoard
without the tensorboard package, a wall-clock limit that also anneals the schedule, a JSON log and
perplexity from the loss."""

from __future__ import annotations

import os
import shutil
import time
from typing import Optional

import keras
import tensorflow as tf

from tfgpt.io import atomic_write_json, fsync_file, read_json
from tfgpt.training.metrics import perplexity_from_loss
from tfgpt.training.optimizers import current_learning_rate
from tfgpt.training.schedules import WarmupCosineDecay


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
            shutil.rmtree(self.saved.pop(0), ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq != "epoch" and self._step() % self.save_freq == 0:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save()


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore for step-based training, with backups that survive a kill.

    Back up at epoch ends (``save_freq="epoch"``): Keras resumes a restarted ``fit`` at the epoch
    after the last backup, with weights and optimizer state (including its step counter, hence the
    learning-rate schedule) restored, so a killed run finishes with the same number of steps as an
    uninterrupted one. Train by steps with ``steps_per_epoch`` = the backup interval.

    Keras writes ``latest.weights.h5`` in place, so a kill inside ``save_weights`` leaves a truncated
    file that no restart can open. Here each backup is written to a temporary file and renamed into
    place, the one before it is kept as ``previous.weights.h5``, and the metadata records the step
    the weights hold; a restart takes the newest pair that opens and agrees, and says which it used.
    """

    PREVIOUS_WEIGHTS = "previous.weights.h5"
    PREVIOUS_METADATA = "previous_training_metadata.json"

    def __init__(self, backup_dir, save_freq="epoch", **kwargs):
        super().__init__(backup_dir, save_freq=save_freq, **kwargs)
        self.backup_dir = os.fspath(backup_dir)
        self._prev_weights_path = os.path.join(self.backup_dir, self.PREVIOUS_WEIGHTS)
        self._prev_training_metadata_path = os.path.join(self.backup_dir, self.PREVIOUS_METADATA)
        self.restored_epoch = None
        self.restored_step = None
        self.restored_from = None
        self.skipped = []  # (path, reason) of backups that could not be used

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs=None):
        self._load_model()
        if self.restored_from is not None:
            print(f"Resuming from the backup in {self.backup_dir}: epoch {self.restored_epoch}, "
                  f"step {self.restored_step}", flush=True)

    def _load_model(self):
        """Restore the newest backup whose weights open and whose metadata names the same step."""
        weights = [p for p in (self._weights_path, self._prev_weights_path) if os.path.exists(p)]
        if not weights:
            return
        if not self.model.built:
            raise ValueError("BackupAndRestore needs a built model: call it on a batch before fit()")
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        metadata = []
        for path in (self._training_metadata_path, self._prev_training_metadata_path):
            try:
                meta = read_json(path, "backup metadata") if os.path.exists(path) else None
            except ValueError as e:
                self.skipped.append((path, str(e)))
                meta = None
            if isinstance(meta, dict) and isinstance(meta.get("epoch"), int):
                metadata.append(meta)
        for path in weights:
            try:
                self.model.load_weights(path)
            except (OSError, ValueError, KeyError) as e:
                self._skip(path, f"cannot be read ({type(e).__name__}: {e})")
                continue
            step = self._step()
            meta = next((m for m in metadata if m.get("step", step) == step), None)
            if meta is None:
                self._skip(path, f"holds step {step}, which no metadata file describes")
                continue
            self.model._initial_epoch = meta["epoch"]
            self.restored_epoch, self.restored_step, self.restored_from = meta["epoch"], step, path
            return
        raise ValueError(f"no usable backup in {self.backup_dir}: "
                         + "; ".join(f"{p} {why}" for p, why in self.skipped)
                         + ". Delete the folder to start the run again from step 0.")

    def _skip(self, path, why):
        self.skipped.append((path, why))
        print(f"BackupAndRestore: the backup {path} {why}; trying the one before it", flush=True)

    def _save_model(self):
        """Write the new backup beside the current one, then rename: a kill leaves a usable pair."""
        os.makedirs(self.backup_dir, exist_ok=True)
        tmp = os.path.join(self.backup_dir, f".tmp-{os.getpid()}-latest.weights.h5")
        self.model.save_weights(tmp, overwrite=True)
        fsync_file(tmp)
        if os.path.exists(self._weights_path) and os.path.exists(self._training_metadata_path):
            os.replace(self._training_metadata_path, self._prev_training_metadata_path)
            os.replace(self._weights_path, self._prev_weights_path)
        os.replace(tmp, self._weights_path)
        atomic_write_json(self._training_metadata_path,
                          {"epoch": self._current_epoch, "batch": self._last_batch_seen, "step": self._step()})

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
                old = read_json(self.path, "training log")
            except (OSError, ValueError):
                old = None
            if isinstance(old, dict):
                self.record["steps"] = old.get("steps", [])
                self.record["epochs"] = old.get("epochs", [])

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
        atomic_write_json(self.path, self.record, indent=1, sort_keys=False)

