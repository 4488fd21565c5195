"""Multiple choice for the DoubleHeads model: COPA / Balanced-COPA files and their tf.data pipeline.

Elements are ``({"input_ids", "attention_mask"}: [B, C, S], "mc_token_ids": [B, C]},
{"mc_labels": [B], "labels": [B, C, S]})``; each choice is ``_start_ context _delimiter_ choice
_classify_`` (GPT-1's input transformation), and ``labels`` drive the auxiliary LM loss.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfgpt.data.classification import batch_and_encode
from tfgpt.data.tokens import as_graph_tokenizer, pad_ragged, tokenize_batch
from tfgpt.models.modeling import IGNORE_INDEX


def read_copa(path, ids: Optional[Iterable[int]] = None) -> List[dict]:
    """COPA / Balanced-COPA items: ``{"id", "premise", "choices": [a1, a2], "label": 0|1, "asks_for"}``.

    ``ids`` keeps only those item ids (e.g. ``range(1, 401)``), in file order.
    """
    keep = None if ids is None else set(int(i) for i in ids)
    items = []
    for node in ET.parse(path).getroot().iter("item"):
        idx = int(node.get("id"))
        if keep is not None and idx not in keep:
            continue
        items.append({
            "id": idx,
            "premise": node.findtext("p").strip(),
            "choices": [node.findtext("a1").strip(), node.findtext("a2").strip()],
            "label": int(node.get("most-plausible-alternative")) - 1,
            "asks_for": node.get("asks-for"),
        })
    if not items:
        raise ValueError(f"no COPA items{' with the requested ids' if keep else ''} in {path}")
    return items


def copa_examples(items: Sequence[dict]):
    """(contexts, choices, labels) for :func:`multiple_choice_dataset`: the context is the premise with
    the question as a connective ("... because" for a cause, "... so" for an effect)."""
    contexts, choices, labels = [], [], []
    for it in items:
        premise = it["premise"].rstrip(".")
        contexts.append(f"{premise} {'because' if it['asks_for'] == 'cause' else 'so'}")
        choices.append(list(it["choices"]))
        labels.append(int(it["label"]))
    return contexts, choices, labels


def parse_id_ranges(spec: str) -> List[int]:
    """"1-400,1001-1400" -> [1, ..., 400, 1001, ..., 1400]."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += list(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def multiple_choice_dataset(contexts: Sequence[str], choices: Sequence[Sequence[str]], labels,
                            tokenizer, start_id: int, delimiter_id: int, classify_id: int,
                            batch_size: int = 8, max_length: int = 64, pad_id: int = 0,
                            lm_labels: bool = True, shuffle: bool = False, repeat: bool = False,
                            seed: int = 0, drop_remainder: bool = False) -> tf.data.Dataset:
    """DoubleHeads batches: each choice as ``_start_ context _delimiter_ choice _classify_``.

    Features: ``input_ids`` and ``attention_mask`` [B, C, max_length] (right padded with ``pad_id``),
    ``mc_token_ids`` [B, C] (the classify token). Labels: ``{"mc_labels": [B], "labels": [B, C, S]}``,
    the latter the inputs with padding set to -100 (GPT-1's auxiliary LM loss; ``lm_labels=False``
    leaves only ``mc_labels``). Contexts are cut from the front and choices from the end when a
    sequence would exceed ``max_length``.
    """
    num_choices = {len(c) for c in choices}
    if len(num_choices) != 1:
        raise ValueError(f"every example needs the same number of choices, got {sorted(num_choices)}")
    c = num_choices.pop()
    if not (len(contexts) == len(choices) == len(labels)):
        raise ValueError("contexts, choices and labels must have the same length")
    if max_length < 5:
        raise ValueError(f"max_length={max_length} is too short for start, delimiter and classify tokens")
    tok = as_graph_tokenizer(tokenizer)
    room = max_length - 3

    def column(n, value):
        return tf.RaggedTensor.from_tensor(tf.fill([n, 1], tf.constant(value, tf.int32)))

    def encode(context, choice, label):
        b = tf.shape(context)[0]
        ctx = tokenize_batch(tok, context)  # (B, None)
        ch = tokenize_batch(tok, tf.reshape(choice, [-1]))[:, : (room + 1) // 2 if room > 1 else 1]  # (B*C, None)
        ctx = tf.gather(ctx, tf.repeat(tf.range(b), c))  # (B*C, None)
        budget = room - ch.row_lengths()  # context tokens that fit, per sequence
        ctx_len = ctx.row_lengths()
        positions = tf.ragged.range(ctx_len)
        ctx = tf.ragged.boolean_mask(ctx, positions >= (ctx_len - budget)[:, None])  # keep the end
        n = b * c
        ids = tf.concat([column(n, start_id), ctx, column(n, delimiter_id), ch, column(n, classify_id)],
                        axis=1)
        dense, mask = pad_ragged(ids, pad_id, max_length)
        shape = tf.stack([b, c, max_length])
        features = {
            "input_ids": tf.reshape(dense, shape),
            "attention_mask": tf.reshape(mask, shape),
            "mc_token_ids": tf.reshape(tf.cast(ids.row_lengths() - 1, tf.int32), tf.stack([b, c])),
        }
        targets = {"mc_labels": label}
        if lm_labels:
            targets["labels"] = tf.where(features["attention_mask"] > 0, features["input_ids"],
                                         IGNORE_INDEX)
        return features, targets

    ds = tf.data.Dataset.from_tensor_slices((tf.constant(list(contexts), tf.string),
                                             tf.constant([list(x) for x in choices], tf.string),
                                             np.asarray(labels, np.int32)))
    return batch_and_encode(ds, len(contexts), encode, batch_size, shuffle=shuffle, repeat=repeat, seed=seed,
                            drop_remainder=drop_remainder)
