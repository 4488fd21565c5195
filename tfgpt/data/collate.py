"""HF-style datasets into tf.data: collators and ``prepare_tf_dataset``.

``prepare_tf_dataset`` is HF's ``TFPreTrainedModel.prepare_tf_dataset`` without the ``datasets``
dependency: it takes a ``datasets.Dataset`` or anything with the part of its interface used here
(``column_names``, ``__len__``, ``__getitem__`` with a list of indices), a dict of columns or a list of
rows, keeps the columns the model's ``call`` takes, collates batches (padding with the tokenizer as
HF's ``DataCollatorWithPadding``) and yields ``(features, labels)`` that ``fit`` takes.
"""

import inspect
from collections.abc import Mapping, Sequence
from typing import Callable, Dict, List, Optional

import numpy as np
import tensorflow as tf

# Columns HF's collators rename to "labels".
LABEL_ALIASES = ("label", "label_ids")
# call() arguments that are switches or generation state, not data columns.
_NOT_COLUMNS = ("training", "return_dict", "output_attentions", "output_hidden_states", "cache",
                "cache_index")


def _label_array(values, column):
    first = values[0]
    if isinstance(first, (list, tuple, np.ndarray, str, bytes)) or hasattr(first, "shape"):
        return _column_array(values, column)
    dtype = np.int64 if isinstance(first, (int, np.integer)) and not isinstance(first, bool) else np.float32
    return np.asarray(values, dtype=dtype)


def _column_array(values, column):
    """``values`` (one per row) stacked into one array; a clear error for ragged or unusable values."""
    try:
        if hasattr(values[0], "numpy") and callable(values[0].numpy):
            values = [v.numpy() for v in values]
        array = np.asarray(values)
    except ValueError as err:
        raise ValueError(f"column '{column}' holds rows of different lengths; pass a tokenizer (its pad "
                         "pads the model inputs) or a collate_fn that pads them") from err
    return array


def default_data_collator(features: List[dict]) -> Dict[str, np.ndarray]:
    """HF's ``DefaultDataCollator(return_tensors="np")``: rows of equal-length values into arrays;
    ``label`` / ``label_ids`` become ``labels`` (int64 for ints, float32 otherwise); None and strings
    are left out."""
    if not features:
        raise ValueError("no rows to collate")
    first = features[0]
    if not isinstance(first, Mapping):
        raise TypeError(f"collators take rows as dicts, got {type(first).__name__}")
    batch = {}
    for alias in LABEL_ALIASES:
        if alias in first and first[alias] is not None:
            batch["labels"] = _label_array([f[alias] for f in features], alias)
    for key, value in first.items():
        if key in LABEL_ALIASES or value is None or isinstance(value, str):
            continue
        batch[key] = _column_array([f[key] for f in features], key)
    return batch


class DataCollatorWithPadding:
    """HF's ``DataCollatorWithPadding``: ``tokenizer.pad`` over the rows (numpy arrays out), then
    ``label`` / ``label_ids`` renamed to ``labels``."""

    def __init__(self, tokenizer, padding=True, max_length: Optional[int] = None,
                 pad_to_multiple_of: Optional[int] = None, return_tensors: str = "np"):
        if return_tensors not in ("np", "tf"):
            raise ValueError(f"return_tensors must be 'np' or 'tf', got {return_tensors!r}")
        self.tokenizer = tokenizer
        self.padding = padding
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_tensors = return_tensors

    def __call__(self, features: List[dict]):
        batch = dict(self.tokenizer.pad(list(features), padding=self.padding, max_length=self.max_length,
                                        pad_to_multiple_of=self.pad_to_multiple_of,
                                        return_tensors=self.return_tensors))
        for alias in LABEL_ALIASES:
            if alias in batch:
                batch["labels"] = batch.pop(alias)
        return batch


def model_columns(model) -> List[str]:
    """The data columns ``model.call`` takes, in its order (labels included)."""
    return [name for name in inspect.signature(model.call).parameters if name not in _NOT_COLUMNS]


def label_columns(model) -> List[str]:
    """HF's ``find_labels``: the ``call`` arguments whose name holds "label"."""
    return [name for name in model_columns(model) if "label" in name]


class _Rows:
    """One view over the accepted dataset kinds: ``len``, column names and rows by index."""

    def __init__(self, dataset):
        self.columns_of = None
        if isinstance(dataset, tf.data.Dataset):
            raise TypeError("prepare_tf_dataset takes a datasets.Dataset, a dict of columns or a list of row "
                            "dicts, not a tf.data.Dataset (that one can go to fit() as it is)")
        if isinstance(dataset, Mapping):
            columns = {str(k): list(v) if not isinstance(v, np.ndarray) else v for k, v in dataset.items()}
            lengths = {k: len(v) for k, v in columns.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"the dataset's columns differ in length: {lengths}")
            self.names = list(columns)
            self.length = next(iter(lengths.values()), 0)
            self.fetch = lambda idx: [{k: columns[k][i] for k in self.names} for i in idx]
        elif isinstance(dataset, Sequence) and not isinstance(dataset, (str, bytes)) and (
                not dataset or isinstance(dataset[0], Mapping)):
            rows = list(dataset)
            for i, row in enumerate(rows):
                if not isinstance(row, Mapping) or set(row) != set(rows[0]):
                    raise ValueError(f"dataset[{i}] has keys {sorted(row) if isinstance(row, Mapping) else row!r}; "
                                     f"every row must have the keys {sorted(rows[0])}")
            self.names = list(rows[0]) if rows else []
            self.length = len(rows)
            self.fetch = lambda idx: [dict(rows[i]) for i in idx]
        elif hasattr(dataset, "column_names") and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
            names = dataset.column_names
            if isinstance(names, Mapping):  # a DatasetDict gives names per split
                raise TypeError(f"the dataset holds the splits {list(names)}; pass one of them, e.g. "
                                f"dataset[{next(iter(names))!r}]")
            self.names = list(names)
            self.length = len(dataset)

            def fetch(idx):
                batch = dataset[[int(i) for i in idx]]
                if isinstance(batch, Mapping):  # HF: a dict of columns
                    return [{k: batch[k][j] for k in batch} for j in range(len(idx))]
                return [dict(row) for row in batch]

            self.fetch = fetch
        else:
            raise TypeError("dataset must be a datasets.Dataset (or an object with its column_names, __len__ and "
                            f"__getitem__), a dict of columns or a list of row dicts, got {type(dataset).__name__}")
        if self.length == 0:
            raise ValueError("the dataset is empty")


def _numeric(batch: Dict[str, np.ndarray], columns, sources: Dict[str, str]) -> Dict[str, np.ndarray]:
    """Only ``columns`` of the collated ``batch``, each checked to be numbers (errors name the dataset's
    column: ``sources`` maps renamed columns to it)."""
    out = {}
    for name in columns:
        array = np.asarray(batch[name].numpy() if hasattr(batch[name], "numpy") else batch[name])
        if array.dtype == bool:
            array = array.astype(np.int64)
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            kind = {"U": "str", "S": "bytes"}.get(array.dtype.kind) or (
                type(np.ravel(array)[0]).__name__ if array.size else str(array.dtype))
            raise TypeError(f"column '{sources.get(name, name)}' holds {kind} values ({array.dtype}); the model takes numbers "
                            "(tokenize text columns first, map string labels to ids)")
        if np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.int64)
        elif array.dtype != np.float32:
            array = array.astype(np.float32)
        out[name] = array
    return out


def prepare_tf_dataset(model, dataset, batch_size: int = 8, shuffle: bool = True, tokenizer=None,
                       collate_fn: Optional[Callable] = None, collate_fn_args: Optional[dict] = None,
                       drop_remainder: Optional[bool] = None, prefetch: bool = True) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of ``(features, labels)`` batches for ``model.fit`` (HF's rules).

    Columns ``model.call`` does not take are dropped first (``label`` / ``label_ids`` kept); batches are
    collated by ``collate_fn(rows, **collate_fn_args)``, else by ``DataCollatorWithPadding(tokenizer)``
    with a tokenizer, else by ``default_data_collator``. Of the collated columns the model's label
    arguments (``labels``, ``mc_labels``) become the labels, the other inputs the features; one column
    comes as a tensor, several as a dict, and without labels the dataset yields the features alone.
    ``drop_remainder`` defaults to ``shuffle``; shuffling draws a new order every epoch.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if collate_fn is None:
        collate_fn = default_data_collator if tokenizer is None else DataCollatorWithPadding(tokenizer)
    elif not callable(collate_fn):
        raise TypeError(f"collate_fn must be callable, got {type(collate_fn).__name__}")
    if collate_fn_args is None:
        collate_fn_args = {}
    elif not isinstance(collate_fn_args, Mapping):
        raise TypeError(f"collate_fn_args must be a dict, got {type(collate_fn_args).__name__}")
    if drop_remainder is None:
        drop_remainder = shuffle
    rows = _Rows(dataset)
    inputs = model_columns(model)
    labels = label_columns(model)
    kept = [name for name in rows.names if name in inputs or name in LABEL_ALIASES]
    if drop_remainder and rows.length < batch_size:
        raise ValueError(f"the dataset has {rows.length} rows, fewer than batch_size={batch_size}, and "
                         "drop_remainder=True would drop them all")

    def collate(indices) -> Dict[str, np.ndarray]:
        picked = [{k: row[k] for k in kept} for row in rows.fetch(indices)]
        batch = collate_fn(picked, **collate_fn_args)
        if not isinstance(batch, Mapping):
            raise TypeError(f"collate_fn must return a dict of columns, got {type(batch).__name__}")
        return batch

    # Collate one batch now for the column names, dtypes and ranks (HF infers its signature this way).
    sample = collate(np.arange(min(batch_size, rows.length)))
    feature_cols = [k for k in sample if k in inputs and k not in labels]
    label_cols = [k for k in sample if k in labels]
    if not feature_cols:
        raise ValueError(f"no column the model takes: the dataset has {rows.names}, the model takes {inputs}")
    order = feature_cols + label_cols
    sources = {"labels": next((a for a in LABEL_ALIASES if a in kept), "labels")}
    sample = _numeric(sample, order, sources)
    specs = [tf.TensorSpec([batch_size if drop_remainder else None] + [None] * (sample[k].ndim - 1),
                           tf.as_dtype(sample[k].dtype), name=k) for k in order]

    def load(indices):
        batch = _numeric(collate(indices), order, sources)
        for spec, name in zip(specs, order):
            if batch[name].dtype != spec.dtype.as_numpy_dtype or batch[name].ndim != spec.shape.rank:
                raise TypeError(f"column '{name}' changed from {spec.dtype.name} of rank {spec.shape.rank} to "
                                f"{batch[name].dtype} of rank {batch[name].ndim} between batches")
        return [batch[name] for name in order]

    def to_example(indices):
        tensors = tf.numpy_function(load, [indices], [s.dtype for s in specs], stateful=False)
        for tensor, spec in zip(tensors, specs):
            tensor.set_shape(spec.shape)
        named = dict(zip(order, tensors))
        features = {k: named[k] for k in feature_cols}
        features = features[feature_cols[0]] if len(feature_cols) == 1 else features
        if not label_cols:
            return features
        targets = {k: named[k] for k in label_cols}
        return features, (targets[label_cols[0]] if len(label_cols) == 1 else targets)

    ds = tf.data.Dataset.range(rows.length)
    if shuffle:
        ds = ds.shuffle(rows.length, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).map(to_example)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds
