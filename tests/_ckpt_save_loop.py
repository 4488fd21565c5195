"""Helper for the kill-during-save test: a process that saves two weight sets, alternately, forever.

``python tests/_ckpt_save_loop.py FOLDER VOCAB`` builds a small GPT-1 with a large vocabulary (so each
save takes a while), then saves weight set 2, 1, 2, 1, ... into FOLDER, cycling through the formats
(h5, sharded safetensors, sharded h5, safetensors, each twice in a row so same-name shards replace each
other). After each finished save it writes the count to FOLDER/../progress. The test kills it with
SIGKILL in the middle of a save.
"""

import os
import sys

import numpy as np

FORMATS = (
    {"safe_serialization": False},
    {"safe_serialization": False},
    {"safe_serialization": True, "max_shard_size": "4MB"},
    {"safe_serialization": True, "max_shard_size": "4MB"},
    {"safe_serialization": False, "max_shard_size": "4MB"},
    {"safe_serialization": False, "max_shard_size": "4MB"},
    {"safe_serialization": True},
    {"safe_serialization": True},
)


def build(vocab):
    import tfgpt

    cfg = tfgpt.OpenAIGPTConfig(vocab_size=vocab, n_positions=16, n_embd=64, n_layer=1, n_head=4)
    return tfgpt.TFOpenAIGPTLMHeadModel(cfg)


def weight_set(model, seed):
    """Deterministic arrays for every weight (HF PyTorch name -> array in the variable's shape)."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(tuple(var.shape)).astype(np.float32)
            for name, var in model.hf_weight_map().items()}


def assign(model, arrays):
    for name, var in model.hf_weight_map().items():
        var.assign(arrays[name])


def main(folder, vocab):
    model = build(vocab)
    sets = {seed: weight_set(model, seed) for seed in (1, 2)}
    progress = os.path.join(os.path.dirname(os.path.abspath(folder)), "progress")
    i = 0
    while True:
        assign(model, sets[2 if i % 2 == 0 else 1])
        model.save_pretrained(folder, **FORMATS[i % len(FORMATS)])
        i += 1
        with open(progress + ".tmp", "w") as f:
            f.write(str(i))
        os.replace(progress + ".tmp", progress)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
