"""Train a tiny LM under tf.distribute (run by test_distribute as a subprocess).

    _distribute_train.py mirrored OUT.json
        One process, 2 logical CPU devices: the same steps on one device and under MirroredStrategy
        over both; writes both loss curves and final weights' checksums.
    _distribute_train.py multiworker OUT.json   (TF_CONFIG set by the caller)
        One MultiWorkerMirroredStrategy worker: trains a few steps, writes its losses and checksum.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH, SEQ, STEPS = 4, 8, 5


def _model_and_data(strategy, sharded=False):
    import keras

    import tfgpt
    from tfgpt import training

    keras.utils.set_random_seed(0)
    with strategy.scope():
        cfg = tfgpt.OpenAIGPTConfig(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                    resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
        # A small clip norm so that clipping is active: it must see the whole batch's gradient.
        opt = training.create_optimizer(3e-3, total_steps=STEPS, warmup_steps=1, weight_decay=0.1,
                                        clipnorm=0.5)
        if os.environ.get("PLAIN_KERAS_ADAMW"):
            opt = keras.optimizers.AdamW(3e-3, weight_decay=0.1, global_clipnorm=0.5)
        model.compile(optimizer=opt, metrics=training.default_metrics(model), jit_compile=False)
    # Learnable rows (counting from a random start) so that the loss falls.
    starts = np.random.default_rng(0).integers(0, 64, (GLOBAL_BATCH * STEPS, 1))
    ids = ((starts + np.arange(SEQ)) % 64).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, ids)).batch(GLOBAL_BATCH)
    if sharded:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        ds = ds.with_options(options)
    return model, ds


def _train(strategy, **kw):
    model, ds = _model_and_data(strategy, **kw)
    # One step per epoch: each epoch's "loss" is that step's loss.
    hist = model.fit(ds, epochs=STEPS, steps_per_epoch=1, verbose=0).history
    weights = [np.asarray(v.numpy(), np.float64) for v in model.trainable_variables]
    return {"loss": hist["loss"], "perplexity": hist["perplexity"],
            "checksum": float(sum(np.abs(w).sum() for w in weights)),
            "steps": int(model.optimizer.iterations.numpy()),
            "replicas": strategy.num_replicas_in_sync}


def mirrored(out):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    single = _train(tf.distribute.OneDeviceStrategy(devices[0]))
    multi = _train(tf.distribute.MirroredStrategy(devices))
    with open(out, "w") as f:
        json.dump({"devices": devices, "single": single, "mirrored": multi}, f)


def multiworker(out):
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    result = _train(strategy, sharded=True)
    result["task"] = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    {"mirrored": mirrored, "multiworker": multiworker}[mode](out)
    sys.stdout.flush()
    os._exit(0)  # collective-op threads can keep the interpreter from exiting on its own
