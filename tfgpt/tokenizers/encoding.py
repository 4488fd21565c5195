"""From token ids to model inputs, as Hugging Face's slow tokenizers do it: special tokens, truncation
(with overflow and stride), padding, attention masks, token types and tensors.

:class:`ModelInputsMixin` gives a tokenizer HF's ``__call__``, ``encode``, ``encode_plus``,
``batch_encode_plus``, ``prepare_for_model`` and ``pad``. The host class supplies the text side:
``text_to_ids(text, is_split_into_words, split_special_tokens)`` and ``convert_tokens_to_ids``, plus
the special-token attributes (``pad_token``, ``pad_token_id``, ``all_special_ids``) and the settings
``model_max_length``, ``padding_side``, ``truncation_side``, ``model_input_names``.

HF's rules kept exactly (transformers 4.57): ``max_length`` alone (no ``padding``, ``truncation``
unset) truncates ``"longest_first"``; asking to pad without a pad token raises even when no row needs
padding; in ``encode_plus`` ``length`` counts the padded sequence, in a batch the unpadded one; a text
longer than ``model_max_length`` without truncation logs "Token indices sequence length is longer
than the specified maximum sequence length ..." once per tokenizer. Where HF only logs an error (a
sequence too short to truncate by the requested amount, ``"only_second"`` without a pair), a
``ValueError`` is raised instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)

PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")
TRUNCATION_STRATEGIES = ("only_first", "only_second", "longest_first", "do_not_truncate")
TENSOR_TYPES = ("np", "tf")
# model_max_length above this means "no limit" (HF's VERY_LARGE_INTEGER is 1e30)
LARGE_INTEGER = int(1e20)
LENGTH_WARNING_KEY = "sequence-length-is-longer-than-the-specified-maximum"
NO_PAD_TOKEN_MESSAGE = (
    "Asking to pad but the tokenizer does not have a padding token. Please select a token to use as "
    "`pad_token` `(tokenizer.pad_token = tokenizer.eos_token e.g.)` or add a new pad token via "
    "`tokenizer.add_special_tokens({'pad_token': '[PAD]'})`."
)
TEXT_INPUT_MESSAGE = (
    "text input must be of type `str` (single example), `list[str]` (batch or single pretokenized "
    "example) or `list[list[str]]` (batch of pretokenized examples)."
)


class BatchEncoding(dict):
    """``dict`` of model inputs with attribute access (``enc.input_ids``), HF's ``.data`` and slicing."""

    def __init__(self, data=None, tensor_type: Optional[str] = None, prepend_batch_axis: bool = False):
        super().__init__(data or {})
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type, prepend_batch_axis=prepend_batch_axis)

    def __getattr__(self, item):
        try:
            return self[item]
        except KeyError:
            raise AttributeError(item) from None

    def __getitem__(self, item):
        if isinstance(item, str):
            return super().__getitem__(item)
        if isinstance(item, slice):
            return {key: value[item] for key, value in self.items()}
        raise KeyError(f"invalid key {item!r}: a slow tokenizer's encoding takes a string key or a slice")

    @property
    def data(self) -> dict:
        return dict(self)

    @property
    def is_fast(self) -> bool:
        """False: a slow tokenizer's encoding has no token-to-text alignment (HF)."""
        return False

    @property
    def encodings(self):
        """None: only fast tokenizers keep Rust ``Encoding`` objects (HF)."""
        return None

    @property
    def n_sequences(self):
        """None for a slow tokenizer's encoding (HF)."""
        return None

    def __getstate__(self):
        return dict(self)

    def __setstate__(self, state):
        self.update(state)

    def convert_to_tensors(self, tensor_type: Optional[str] = None, prepend_batch_axis: bool = False) -> "BatchEncoding":
        """Turn every value into a numpy array (``"np"``, int64) or a tf tensor (``"tf"``, int32), in place."""
        if tensor_type is None:
            return self
        check_tensor_type(tensor_type)
        for key, value in list(self.items()):
            if prepend_batch_axis:
                value = [value]
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                continue
            try:
                self[key] = as_tensor(value, tensor_type)
            except ValueError:
                if key == "overflowing_tokens":
                    raise ValueError("Unable to create tensor returning overflowing tokens of different "
                                     "lengths.") from None
                raise ValueError(
                    "Unable to create tensor, you should probably activate truncation and/or padding with "
                    f"'padding=True' 'truncation=True' to have batched tensors with the same length (`{key}` "
                    "has rows of different lengths)."
                ) from None
        return self


def _fast_only(name):
    def method(self, *args, **kwargs):
        raise ValueError(f"{name}() is not available when using non-fast tokenizers (e.g. instance of a "
                         "`XxxTokenizerFast` class).")

    method.__name__ = name
    method.__doc__ = f"HF's fast-tokenizer alignment method {name}(): a slow tokenizer raises ValueError."
    return method


# HF's alignment methods need a fast tokenizer's offsets; a slow tokenizer's encoding raises for them.
for _name in ("tokens", "words", "word_ids", "sequence_ids", "token_to_sequence", "token_to_word",
              "token_to_chars", "word_to_tokens", "word_to_chars", "char_to_token", "char_to_word"):
    setattr(BatchEncoding, _name, _fast_only(_name))
del _name


def check_tensor_type(kind) -> None:
    if kind not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be None, 'np' or 'tf', got {kind!r}")


def as_tensor(value, kind: str):
    """A rectangular nested list of ints as a numpy (int64) or tf (int32) tensor."""
    import numpy as np

    if not _is_rectangular(value):
        raise ValueError("rows of different lengths")
    array = np.asarray(value)
    if array.size and array.dtype.kind not in "iub":  # floats (regression labels), strings: as they are
        if kind == "np":
            return array
        import tensorflow as tf

        return tf.constant(array.astype(np.float32) if array.dtype.kind == "f" else array)
    array = array.astype(np.int64)
    if kind == "np":
        return array
    import tensorflow as tf

    return tf.constant(array.astype(np.int32))


def _is_rectangular(value) -> bool:
    if not isinstance(value, (list, tuple)):
        return True
    if not value or not isinstance(value[0], (list, tuple)):
        return not any(isinstance(v, (list, tuple)) for v in value)
    n = len(value[0])
    return all(isinstance(v, (list, tuple)) and len(v) == n and _is_rectangular(v) for v in value)


def resolve_padding(padding) -> str:
    """HF's padding argument as a strategy name: True -> "longest", False/None -> "do_not_pad"."""
    if padding is True:
        return "longest"
    if padding is False or padding is None:
        return "do_not_pad"
    value = getattr(padding, "value", padding)  # HF's PaddingStrategy enum
    if value not in PADDING_STRATEGIES:
        raise ValueError(f"{padding!r} is not a valid padding strategy (padding), please select one of "
                         f"{list(PADDING_STRATEGIES)}")
    return value


def resolve_truncation(truncation) -> str:
    """HF's truncation argument as a strategy name: True -> "longest_first", False/None -> "do_not_truncate"."""
    if truncation is True:
        return "longest_first"
    if truncation is False or truncation is None:
        return "do_not_truncate"
    value = getattr(truncation, "value", truncation)
    if value not in TRUNCATION_STRATEGIES:
        raise ValueError(f"{truncation!r} is not a valid truncation strategy (truncation), please select one of "
                         f"{list(TRUNCATION_STRATEGIES)}")
    return value


def _check_count(name: str, value, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _is_text(t) -> bool:
    return isinstance(t, (str, bytes))


def is_valid_text_input(t) -> bool:
    """HF's accepted text inputs: a string, a list of strings, or a list of lists of strings."""
    if _is_text(t):
        return True
    if isinstance(t, (list, tuple)):
        if len(t) == 0 or _is_text(t[0]):
            return True
        if isinstance(t[0], (list, tuple)):
            return len(t[0]) == 0 or _is_text(t[0][0])
    return False


@dataclass
class EncodeOptions:
    """The options of ``__call__``, ``encode``, ``encode_plus``, ``batch_encode_plus`` and
    ``prepare_for_model``, with HF's names and defaults.

    padding: ``False``/``"do_not_pad"``, ``True``/``"longest"`` or ``"max_length"`` (needs a pad token:
        GPT-1 has none; set ``tok.pad_token`` or add one with ``add_special_tokens``).
    truncation: ``True``/``"longest_first"``, ``"only_first"``, ``"only_second"`` or ``False``; unset
        with ``max_length`` (and no padding) means ``"longest_first"``.
    max_length, stride: the length to truncate or pad to; tokens repeated in ``overflowing_tokens``.
    is_split_into_words: the text is a list of words, each tokenized on its own.
    pad_to_multiple_of, padding_side: round the padded length up; ``"right"`` or ``"left"``.
    return_tensors: ``None`` (lists), ``"np"`` (int64) or ``"tf"`` (int32); tensors need equal lengths.
    return_*: which outputs to add (``token_type_ids``, ``attention_mask``, ``overflowing_tokens`` with
        ``num_truncated_tokens``, ``special_tokens_mask``, ``length``; offsets are not available).
    verbose: log HF's warnings. split_special_tokens: treat added tokens as text.
    pad_to_max_length: HF's deprecated spelling of ``padding="max_length"``.
    """

    add_special_tokens: bool = True
    padding: Union[bool, str] = False
    truncation: Union[bool, str, None] = None
    max_length: Optional[int] = None
    stride: int = 0
    is_split_into_words: bool = False
    pad_to_multiple_of: Optional[int] = None
    padding_side: Optional[str] = None
    return_tensors: Optional[str] = None
    return_token_type_ids: Optional[bool] = None
    return_attention_mask: Optional[bool] = None
    return_overflowing_tokens: bool = False
    return_special_tokens_mask: bool = False
    return_offsets_mapping: bool = False
    return_length: bool = False
    verbose: bool = True
    split_special_tokens: Optional[bool] = None
    pad_to_max_length: bool = False


def encode_options(method: str, options: dict) -> EncodeOptions:
    """``options`` checked against :class:`EncodeOptions`; an unknown name raises TypeError naming it."""
    unknown = sorted(set(options) - set(EncodeOptions.__dataclass_fields__))
    if unknown:
        raise TypeError(f"{method}() got unsupported argument(s) {unknown}")
    return EncodeOptions(**options)


class ModelInputsMixin:
    """HF's slow-tokenizer encoding API on top of ``text_to_ids`` (see the module docstring)."""

    is_fast = False
    pad_token_type_id = 0
    model_input_names = ["input_ids", "attention_mask"]

    # ------------------------------------------------------------------ special tokens (none for GPT-1)
    def build_inputs_with_special_tokens(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None
                                         ) -> List[int]:
        """The model input of one sequence or a pair: GPT-1 adds no special tokens, so the concatenation."""
        if token_ids_1 is None:
            return list(token_ids_0)
        return list(token_ids_0) + list(token_ids_1)

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None
                                             ) -> List[int]:
        """0 for the first sequence, 1 for the second (HF's default)."""
        if token_ids_1 is None:
            return [0] * len(token_ids_0)
        return [0] * len(token_ids_0) + [1] * len(token_ids_1)

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        """1 where ``build_inputs_with_special_tokens`` put a special token (never, for GPT-1), else 0.

        With ``already_has_special_tokens=True`` the ids are marked by whether they are special ids.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("You should not supply a second sequence if the provided sequence of ids is "
                                 "already formatted with special tokens for the model.")
            special = set(self.all_special_ids)
            return [1 if t in special else 0 for t in token_ids_0]
        return [0] * (len(token_ids_0) + (len(token_ids_1) if token_ids_1 else 0))

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many tokens ``build_inputs_with_special_tokens`` adds (0 for GPT-1)."""
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    # ------------------------------------------------------------------ strategies
    def _strategies(self, padding=False, truncation=None, max_length=None, pad_to_multiple_of=None,
                    verbose: bool = True, pad_to_max_length: bool = False) -> Tuple[str, str, Optional[int]]:
        """HF's ``_get_padding_truncation_strategies``: (padding, truncation, max_length)."""
        _check_count("max_length", max_length, 0)
        _check_count("pad_to_multiple_of", pad_to_multiple_of, 1)
        if pad_to_max_length and padding is False:
            if verbose:
                self._warn_once("pad-to-max-length", "The `pad_to_max_length` argument is deprecated; use "
                                "`padding='max_length'` (or `padding=True` without max_length).")
            padding = "longest" if max_length is None else "max_length"
        if max_length is not None and padding is False and truncation is None:
            if verbose:
                self._warn_once(
                    "Truncation-not-explicitly-activated",
                    "Truncation was not explicitly activated but `max_length` is provided a specific value, please "
                    "use `truncation=True` to explicitly truncate examples to max length. Defaulting to "
                    "'longest_first' truncation strategy.")
            truncation = "longest_first"
        pad = resolve_padding(padding)
        if padding is True and verbose and max_length is not None and truncation in (None, False, "do_not_truncate"):
            logger.warning("`max_length` is ignored when `padding`=`True` and there is no truncation strategy. "
                           "To pad to max length, use `padding='max_length'`.")
        trunc = resolve_truncation(truncation)
        if max_length is None and (pad == "max_length" or trunc != "do_not_truncate"):
            if self.model_max_length > LARGE_INTEGER:
                logger.warning("Asking to pad or truncate to max_length but no maximum length is provided and the "
                               "model has no predefined maximum length. Default to no padding to max_length and no "
                               "truncation.")
                pad = "do_not_pad" if pad == "max_length" else pad
                trunc = "do_not_truncate"
            else:
                max_length = self.model_max_length
        if pad != "do_not_pad" and (self.pad_token is None or self.pad_token_id is None or self.pad_token_id < 0):
            raise ValueError(NO_PAD_TOKEN_MESSAGE)
        if (trunc != "do_not_truncate" and pad != "do_not_pad" and pad_to_multiple_of is not None
                and max_length is not None and max_length % pad_to_multiple_of != 0):
            raise ValueError(f"Truncation and padding are both activated but truncation length ({max_length}) is "
                             f"not a multiple of pad_to_multiple_of ({pad_to_multiple_of}).")
        return pad, trunc, max_length

    def _warn_once(self, key: str, message: str) -> None:
        warned = self.__dict__.setdefault("deprecation_warnings", {})
        if not warned.get(key, False):
            logger.warning(message)
        warned[key] = True

    # ------------------------------------------------------------------ text -> ids
    def _input_ids(self, text, is_split_into_words: bool, split_special_tokens: Optional[bool], name: str):
        """HF's ``get_input_ids``: a text is tokenized, a list of strings is tokens (or words), ints are ids."""
        if _is_text(text) or hasattr(text, "numpy"):
            return self.text_to_ids(text, split_special_tokens=split_special_tokens)
        if isinstance(text, (list, tuple)) and len(text) > 0 and _is_text(text[0]):
            if is_split_into_words:
                ids: List[int] = []
                for word in text:
                    ids.extend(self.text_to_ids(word, split_special_tokens=split_special_tokens))
                return ids
            return self.convert_tokens_to_ids(list(text))
        if isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], int) and not is_split_into_words:
            if any(isinstance(i, bool) or not isinstance(i, int) for i in text):
                raise ValueError(f"{name} mixes token ids with other values: {list(text)[:10]!r}")
            return list(text)
        if isinstance(text, (list, tuple)) and len(text) == 0:
            return []
        if is_split_into_words:
            raise ValueError(f"Input {text!r} is not valid ({name}). Should be a string or a list/tuple of strings "
                             "when `is_split_into_words=True`.")
        raise ValueError(f"Input {text!r} is not valid ({name}). Should be a string, a list/tuple of strings or a "
                         "list/tuple of integers.")

    # ------------------------------------------------------------------ truncation
    def truncate_sequences(self, ids: List[int], pair_ids: Optional[List[int]] = None, num_tokens_to_remove: int = 0,
                           truncation_strategy: str = "longest_first", stride: int = 0
                           ) -> Tuple[List[int], Optional[List[int]], List[int]]:
        """Remove ``num_tokens_to_remove`` tokens: (ids, pair_ids, overflowing tokens with ``stride`` context)."""
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = resolve_truncation(truncation_strategy)
        side = self.truncation_side
        if side not in ("left", "right"):
            raise ValueError(f"invalid truncation side: {side!r}, use 'left' or 'right'.")
        overflowing: List[int] = []
        if strategy == "only_first" or (strategy == "longest_first" and pair_ids is None):
            ids, overflowing = _cut(ids, num_tokens_to_remove, stride, side, "first", strategy, "only_second")
        elif strategy == "longest_first":
            logger.warning("Be aware, overflowing tokens are not returned for the setting you have chosen, i.e. "
                           "sequence pairs with the 'longest_first' truncation strategy. So the returned list will "
                           "always be empty even if some tokens have been removed.")
            first_remove = min(abs(len(pair_ids) - len(ids)), num_tokens_to_remove)
            second_remove = num_tokens_to_remove - first_remove
            if len(ids) > len(pair_ids):
                ids_to_move = first_remove + second_remove // 2
                pair_to_move = second_remove - second_remove // 2
            else:
                ids_to_move = second_remove // 2
                pair_to_move = first_remove + second_remove - second_remove // 2
            if side == "right":
                ids = ids[:-ids_to_move] if ids_to_move > 0 else ids
                pair_ids = pair_ids[:-pair_to_move] if pair_to_move > 0 else pair_ids
            else:
                ids, pair_ids = ids[ids_to_move:], pair_ids[pair_to_move:]
        elif strategy == "only_second":
            if pair_ids is None:
                raise ValueError("truncation='only_second' needs a second sequence (text_pair)")
            pair_ids, overflowing = _cut(pair_ids, num_tokens_to_remove, stride, side, "second", strategy,
                                         "only_first")
        return ids, pair_ids, overflowing

    # ------------------------------------------------------------------ one sequence (or pair) of ids
    def _prepare(self, ids: List[int], pair_ids: Optional[List[int]], add_special_tokens: bool, trunc: str,
                 max_length: Optional[int], stride: int, return_token_type_ids: bool,
                 return_overflowing_tokens: bool, return_special_tokens_mask: bool, verbose: bool) -> dict:
        """Truncate and add special tokens (no padding): HF's ``prepare_for_model`` up to ``pad``."""
        pair = pair_ids is not None
        if return_overflowing_tokens and trunc == "longest_first" and pair:
            raise ValueError("Not possible to return overflowing tokens for pair of sequences with the "
                             "`longest_first`. Please select another truncation strategy than `longest_first`, "
                             "for instance `only_second` or `only_first`.")
        out = {}
        total = len(ids) + (len(pair_ids) if pair else 0) + (self.num_special_tokens_to_add(pair) if add_special_tokens
                                                              else 0)
        overflowing: List[int] = []
        if trunc != "do_not_truncate" and max_length and total > max_length:
            ids, pair_ids, overflowing = self.truncate_sequences(ids, pair_ids, total - max_length, trunc, stride)
        elif trunc == "only_second" and not pair:
            raise ValueError("truncation='only_second' needs a second sequence (text_pair)")
        if return_overflowing_tokens:
            out["overflowing_tokens"] = overflowing
            out["num_truncated_tokens"] = total - max_length if max_length is not None else 0
        if add_special_tokens:
            sequence = self.build_inputs_with_special_tokens(ids, pair_ids)
            token_type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids) if return_token_type_ids else None
        else:
            sequence = ids + pair_ids if pair else list(ids)
            token_type_ids = [0] * len(sequence) if return_token_type_ids else None
        out["input_ids"] = sequence
        if return_token_type_ids:
            out["token_type_ids"] = token_type_ids
        if return_special_tokens_mask:
            out["special_tokens_mask"] = (self.get_special_tokens_mask(ids, pair_ids) if add_special_tokens
                                          else [0] * len(sequence))
        if (max_length is None and verbose and self.model_max_length and len(sequence) > self.model_max_length):
            self._warn_once(LENGTH_WARNING_KEY,
                            "Token indices sequence length is longer than the specified maximum sequence length for "
                            f"this model ({len(sequence)} > {self.model_max_length}). Running this sequence through "
                            "the model will result in indexing errors")
        return out

    def _check_flags(self, o: "EncodeOptions") -> bool:
        """Whether to return token type ids; the combinations HF refuses raise."""
        if o.return_offsets_mapping:
            raise NotImplementedError("return_offsets_mapping is not available with this (Python) tokenizer: it "
                                      "keeps no character offsets.")
        if o.return_token_type_ids and not o.add_special_tokens:
            raise ValueError("Asking to return token_type_ids while setting add_special_tokens to False results in "
                             "an undefined behavior. Please set add_special_tokens to True or set "
                             "return_token_type_ids to None.")
        if o.return_token_type_ids is None:
            return "token_type_ids" in self.model_input_names
        return bool(o.return_token_type_ids)

    def prepare_for_model(self, ids: List[int], pair_ids: Optional[List[int]] = None,
                          prepend_batch_axis: bool = False, **options) -> BatchEncoding:
        """Model inputs from token ids (one sequence or a pair): truncation, special tokens, padding, masks.

        ``options`` are :class:`EncodeOptions` (``is_split_into_words`` and ``split_special_tokens``
        do not apply to ids).
        """
        o = encode_options("prepare_for_model", options)
        if o.is_split_into_words or o.split_special_tokens is not None:
            raise ValueError("prepare_for_model takes token ids: is_split_into_words and split_special_tokens do "
                             "not apply")
        pad, trunc, max_length = self._strategies(o.padding, o.truncation, o.max_length, o.pad_to_multiple_of,
                                                  o.verbose, o.pad_to_max_length)
        _check_count("stride", o.stride, 0)
        return_token_type_ids = self._check_flags(o)
        return_attention_mask = o.return_attention_mask
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        ids = self._input_ids(ids, False, None, "ids")
        pair_ids = self._input_ids(pair_ids, False, None, "pair_ids") if pair_ids is not None else None
        out = self._prepare(ids, pair_ids, o.add_special_tokens, trunc, max_length, o.stride, return_token_type_ids,
                            o.return_overflowing_tokens, o.return_special_tokens_mask, o.verbose)
        if pad != "do_not_pad" or return_attention_mask:
            out = self._pad(out, max_length, pad, o.pad_to_multiple_of, o.padding_side, return_attention_mask)
        if o.return_length:
            out["length"] = len(out["input_ids"])
        return BatchEncoding(out, tensor_type=o.return_tensors, prepend_batch_axis=prepend_batch_axis)

    # ------------------------------------------------------------------ public encoders
    def encode(self, text, text_pair=None, **options):
        """Token ids of a text (or a pair), with ``encode_plus``'s options; ``return_tensors`` gives ``[1, T]``."""
        encode_options("encode", options)
        return self.encode_plus(text, text_pair, **options)["input_ids"]

    def encode_plus(self, text, text_pair=None, **options) -> BatchEncoding:
        """Model inputs of one text (or text pair); ``options`` are :class:`EncodeOptions`."""
        o = encode_options("encode_plus", options)
        if text is None:
            raise TypeError("text must be a string, a list of strings (tokens or words) or a list of ids, got None")
        first = self._input_ids(text, o.is_split_into_words, o.split_special_tokens, "text")
        second = (self._input_ids(text_pair, o.is_split_into_words, o.split_special_tokens, "text_pair")
                  if text_pair is not None else None)
        pad, trunc, max_length = self._strategies(o.padding, o.truncation, o.max_length, o.pad_to_multiple_of,
                                                  o.verbose, o.pad_to_max_length)
        resolved = {k: v for k, v in options.items() if k not in ("is_split_into_words", "split_special_tokens")}
        resolved.update(padding=pad, truncation=trunc, max_length=max_length, pad_to_max_length=False)
        return self.prepare_for_model(first, second, prepend_batch_axis=True, **resolved)

    def batch_encode_plus(self, batch_text_or_text_pairs, **options) -> BatchEncoding:
        """Model inputs of a batch of texts or ``(text, text_pair)`` tuples, padded together."""
        o = encode_options("batch_encode_plus", options)
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError("batch_text_or_text_pairs must be a list of texts or (text, text_pair) pairs, got "
                            f"{type(batch_text_or_text_pairs).__name__}")
        pad, trunc, max_length = self._strategies(o.padding, o.truncation, o.max_length, o.pad_to_multiple_of,
                                                  o.verbose, o.pad_to_max_length)
        _check_count("stride", o.stride, 0)
        return_token_type_ids = self._check_flags(o)
        split_words, split_special = o.is_split_into_words, o.split_special_tokens
        columns: Dict[str, list] = {}
        # No truncation and nothing but ids to build (GPT-1 adds no special tokens): rows are the ids.
        plain = (trunc == "do_not_truncate" and not (o.return_overflowing_tokens or return_token_type_ids
                                                      or o.return_special_tokens_mask)
                 and (not o.add_special_tokens or self.num_special_tokens_to_add(True) == 0))
        for i, item in enumerate(batch_text_or_text_pairs):
            if plain and _is_text(item):
                columns.setdefault("input_ids", []).append(self.text_to_ids(item, split_special_tokens=split_special))
                continue
            if not isinstance(item, (list, tuple)):
                text, pair = item, None
            elif split_words and not (item and isinstance(item[0], (list, tuple))):
                text, pair = item, None
            elif len(item) != 2:
                raise ValueError(f"batch_text_or_text_pairs[{i}] must be a text or a (text, text_pair) pair, got "
                                 f"{len(item)} elements")
            else:
                text, pair = item
            if text is None:
                raise TypeError(f"batch_text_or_text_pairs[{i}] is None; expected a text")
            ids = self._input_ids(text, split_words, split_special, f"batch_text_or_text_pairs[{i}]")
            pair_ids = (self._input_ids(pair, split_words, split_special, f"batch_text_or_text_pairs[{i}] (pair)")
                        if pair is not None else None)
            row = self._prepare(ids, pair_ids, o.add_special_tokens, trunc, max_length, o.stride,
                                return_token_type_ids, o.return_overflowing_tokens, o.return_special_tokens_mask,
                                o.verbose)
            if o.return_length and not plain:
                row["length"] = len(row["input_ids"])
            for key, value in row.items():
                columns.setdefault(key, []).append(value)
        if not columns:
            columns["input_ids"] = []
        if plain:
            rows = columns["input_ids"]
            longest = max(map(len, rows), default=0)
            if o.verbose and max_length is None and self.model_max_length and longest > self.model_max_length:
                self._prepare(next(r for r in rows if len(r) == longest), None, False, trunc, None, 0, False, False,
                              False, o.verbose)  # logs the too-long warning
            if o.return_length:
                columns["length"] = [len(r) for r in rows]
        out = self._pad_batch(columns, max_length, pad, o.pad_to_multiple_of, o.padding_side, o.return_attention_mask)
        return BatchEncoding(out, tensor_type=o.return_tensors)

    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None, **options
                 ) -> BatchEncoding:
        """Encode one text, a pair, or a batch (``input_ids``, ``attention_mask``, ...; lists, numpy or tf).

        ``options`` are :class:`EncodeOptions`. ``text_target`` (and ``text_pair_target``) are encoded
        the same way and returned as ``labels``.
        """
        o = encode_options("__call__", options)
        if text is None and text_target is None:
            raise ValueError("You need to specify either `text` or `text_target` (got text=None).")
        encodings = self._call_one(text, text_pair, "text", o.is_split_into_words, options) if text is not None else None
        if text_target is not None:
            targets = self._call_one(text_target, text_pair_target, "text_target", o.is_split_into_words, options)
            if encodings is None:
                return targets
            encodings["labels"] = targets["input_ids"]
        return encodings

    def _call_one(self, text, text_pair, name: str, is_split_into_words: bool, options: dict) -> BatchEncoding:
        if not is_valid_text_input(text) and not hasattr(text, "numpy"):
            raise ValueError(f"{TEXT_INPUT_MESSAGE} Got {name}={text!r:.80}")
        if text_pair is not None and not is_valid_text_input(text_pair):
            raise ValueError(f"{TEXT_INPUT_MESSAGE} Got {name.replace('text', 'text_pair')}={text_pair!r:.80}")
        if is_split_into_words:
            batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            batched = isinstance(text, (list, tuple))
        if not batched:
            return self.encode_plus(text, text_pair, **options)
        if _is_text(text_pair):
            raise TypeError("when tokenizing batches of text, `text_pair` must be a list or tuple with the same "
                            "length as `text`.")
        if text_pair is not None and len(text) != len(text_pair):
            raise ValueError(f"batch length of `text`: {len(text)} does not match batch length of `text_pair`: "
                             f"{len(text_pair)}.")
        items = list(zip(text, text_pair)) if text_pair is not None else list(text)
        return self.batch_encode_plus(items, **options)

    # ------------------------------------------------------------------ padding
    def pad(self, encoded_inputs, padding: Union[bool, str] = True, max_length: Optional[int] = None,
            pad_to_multiple_of: Optional[int] = None, padding_side: Optional[str] = None,
            return_attention_mask: Optional[bool] = None, return_tensors: Optional[str] = None,
            verbose: bool = True) -> BatchEncoding:
        """Pad one encoding, a batch of them (dict of lists) or a list of encodings, as collators use it.

        Lists come back as lists; numpy or tf values come back as tensors of the same kind unless
        ``return_tensors`` says otherwise.
        """
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], dict):
            keys = list(encoded_inputs[0].keys())
            for i, example in enumerate(encoded_inputs):
                if not isinstance(example, dict) or set(example) != set(keys):
                    raise ValueError(f"encoded_inputs[{i}] has keys {sorted(example) if isinstance(example, dict) else example!r}; "
                                     f"every encoding must have the keys {sorted(keys)}")
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in keys}
        if not isinstance(encoded_inputs, dict):
            raise TypeError("encoded_inputs must be a BatchEncoding, a dict of lists or a list of dicts, got "
                            f"{type(encoded_inputs).__name__}")
        main = self.model_input_names[0]
        if main not in encoded_inputs:
            raise ValueError("You should supply an encoding or a list of encodings to this method that includes "
                             f"{main}, but you provided {list(encoded_inputs.keys())}")
        encoded_inputs = dict(encoded_inputs)
        required = encoded_inputs[main]
        if required is None or (hasattr(required, "__len__") and len(required) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs)
        if return_tensors is None:
            return_tensors = _tensor_kind(required)
        encoded_inputs = {key: _to_python(value) for key, value in encoded_inputs.items()}
        pad, _, max_length = self._strategies(padding, False, max_length, pad_to_multiple_of, verbose)
        required = encoded_inputs[main]
        if required and not isinstance(required[0], (list, tuple)):
            return BatchEncoding(self._pad(encoded_inputs, max_length, pad, pad_to_multiple_of, padding_side,
                                           return_attention_mask), tensor_type=return_tensors)
        return BatchEncoding(self._pad_batch(encoded_inputs, max_length, pad, pad_to_multiple_of, padding_side,
                                             return_attention_mask), tensor_type=return_tensors)

    def _pad_batch(self, columns: Dict[str, list], max_length, pad: str, pad_to_multiple_of, padding_side,
                   return_attention_mask) -> Dict[str, list]:
        main = self.model_input_names[0]
        rows = columns[main]
        for key, value in columns.items():
            if len(value) != len(rows):
                raise ValueError(f"`{key}` holds {len(value)} rows but `{main}` holds {len(rows)}")
        if pad == "longest":
            max_length = max((len(r) for r in rows), default=0)
            pad = "max_length"
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        target = max_length
        if target is not None and pad_to_multiple_of is not None and target % pad_to_multiple_of != 0:
            target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
        if pad == "do_not_pad" or target is None or all(len(r) >= target for r in rows):
            out = dict(columns)  # nothing to pad: only the attention mask to add
            if return_attention_mask and "attention_mask" not in out:
                out["attention_mask"] = [[1] * len(r) for r in rows]
            return out
        out: Dict[str, list] = {key: [] for key in columns}
        for i in range(len(rows)):
            padded = self._pad({key: value[i] for key, value in columns.items()}, max_length, pad,
                               pad_to_multiple_of, padding_side, return_attention_mask)
            for key, value in padded.items():
                out.setdefault(key, []).append(value)
        return out

    def _pad(self, encoded: dict, max_length: Optional[int], pad: str, pad_to_multiple_of: Optional[int],
             padding_side: Optional[str], return_attention_mask: Optional[bool]) -> dict:
        """HF's ``_pad`` of one encoding: ids with ``pad_token_id``, mask 0, token types ``pad_token_type_id``,
        special-tokens mask 1."""
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        main = self.model_input_names[0]
        required = encoded[main]
        if pad == "longest":
            max_length = len(required)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of != 0:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if return_attention_mask and "attention_mask" not in encoded:
            encoded["attention_mask"] = [1] * len(required)
        if pad != "do_not_pad" and max_length is not None and len(required) < max_length:
            n = max_length - len(required)
            side = padding_side if padding_side is not None else self.padding_side
            if side not in ("left", "right"):
                raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
            fills = {main: self.pad_token_id, "attention_mask": 0, "token_type_ids": self.pad_token_type_id,
                     "special_tokens_mask": 1}
            for key, fill in fills.items():
                if key in encoded and (key != "attention_mask" or return_attention_mask):
                    values = list(encoded[key])
                    encoded[key] = values + [fill] * n if side == "right" else [fill] * n + values
        return encoded


def _cut(seq: List[int], n: int, stride: int, side: str, which: str, strategy: str, other: str):
    """(``seq`` without ``n`` tokens on ``side``, the removed tokens plus ``stride`` of context)."""
    if len(seq) <= n:
        raise ValueError(f"We need to remove {n} to truncate the input but the {which} sequence has a length "
                         f"{len(seq)}. Please select another truncation strategy than {strategy}, for instance "
                         f"'longest_first' or '{other}'.")
    window = min(len(seq), stride + n)
    if side == "left":
        return seq[n:], seq[:window]
    return seq[:-n], seq[-window:]


def _tensor_kind(value) -> Optional[str]:
    """``"tf"`` or ``"np"`` when ``value`` (or its first row) is a tensor of that kind, else None."""
    first = value
    if isinstance(value, (list, tuple)) and value:
        first = next((v for v in value if not isinstance(v, (list, tuple)) or len(v)), value[0])
    if isinstance(first, (int, list, tuple)):
        return None
    module = type(first).__module__
    if module.startswith("tensorflow"):
        return "tf"
    if module.startswith("numpy"):
        return "np"
    raise ValueError(f"type of {first!r:.40} unknown: {type(first).__name__}. Should be a python list, a numpy "
                     "array or a tensorflow tensor.")


def _to_python(value):
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_python(v) for v in value]
    return value
