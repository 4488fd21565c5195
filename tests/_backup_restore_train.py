"""Train a tiny LM with tfgpt.training.BackupAndRestore (run by test_training as a subprocess).

usage: _backup_restore_train.py BACKUP_DIR STEP_LOG EPOCHS STEPS_PER_EPOCH SLEEP_PER_STEP

Appends the optimizer step after every batch to STEP_LOG and sleeps SLEEP_PER_STEP seconds (so the
test can kill it mid-run); prints a JSON summary as its last line.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfgpt  # noqa: E402
from tfgpt import training  # noqa: E402


def main():
    backup, step_log, epochs, steps, sleep = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    keras.utils.set_random_seed(0)
    cfg = tfgpt.OpenAIGPTConfig(vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    model.compile(optimizer=training.create_optimizer(1e-3, total_steps=epochs * steps, warmup_steps=2))
    ids = np.random.default_rng(0).integers(0, 50, (16, 8)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, ids)).batch(4).repeat()
    seen = []

    class Steps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            step = int(model.optimizer.iterations.numpy())
            seen.append(step)
            with open(step_log, "a") as f:
                f.write(f"{step}\n")
            time.sleep(sleep)

    restore = training.BackupAndRestore(backup)
    hist = model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[restore, Steps()])
    print(json.dumps({"restored_epoch": restore.restored_epoch, "restored_step": restore.restored_step,
                      "first_step": seen[0], "final_step": int(model.optimizer.iterations.numpy()),
                      "epochs_run": len(hist.history["loss"])}))


if __name__ == "__main__":
    main()
