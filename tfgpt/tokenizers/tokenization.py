"""OpenAI GPT (GPT-1) BPE tokenizer in Python, identical to Hugging Face's ``OpenAIGPTTokenizer``.

Pipeline (the same as transformers 4.57):

1. ``tokenize`` lowercases the text one character at a time (``str.lower`` per character, so there is
   no final-sigma context), except where a special token (or a normalized added token) occurs verbatim.
2. The lowered text is split on added/special tokens (longest match at the earliest position); those
   pieces map straight to their ids.
3. Every other piece is pre-tokenized (:mod:`tfgpt.tokenizers.normalization`): with ``ftfy`` and
   ``spaCy`` both importable (and ``pretokenizer="auto"``) as OpenAI did, otherwise with BERT's
   BasicTokenizer.
4. Each word is BPE-encoded with the merge ranks (:mod:`tfgpt.tokenizers.bpe`). Results are cached.

Policies (where HF has no error or an unhelpful one):

* Unknown pieces map to ``unk_token``'s id. A ``unk_token`` missing from the vocabulary is added
  after it (as HF adds every special token); with ``unk_token=None``, encoding a text that needs it
  raises ``ValueError``.
* ``decode`` maps ids outside the vocabulary to ``unk_token`` (HF's behaviour), so they read ``<unk>``
  (and are dropped with ``skip_special_tokens=True``); without an unknown token they read as "".
* Bytes input is decoded as UTF-8 with ``errors="replace"``; the U+FFFD characters this produces are
  dropped by the pre-tokenizer, like any U+FFFD in the text.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from tfgpt.io import atomic_write_json, atomic_write_text, read_json
from tfgpt.tokenizers import chat, normalization
from tfgpt.tokenizers.bpe import (
    END_OF_WORD,
    TOKENIZER_JSON,
    VOCAB_FILES_NAMES,
    bpe_merge,
    check_merges,
    check_vocab,
    find_vocab_files,
    load_merges,
    load_tokenizer_json,
    load_vocab,
    merges_in_rank_order,
    merges_text,
    word_symbols,
)
from tfgpt.tokenizers.encoding import ModelInputsMixin
from tfgpt.tokenizers.normalization import basic_tokenize, lower_per_character, text_standardize

logger = logging.getLogger(__name__)

SPECIAL_TOKENS_ATTRIBUTES = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)
# decode's optional clean-up (HF's clean_up_tokenization): (old, new) replacements, in order.
CLEAN_UP_REPLACEMENTS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
    (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)
# the files from_pretrained reads (and downloads from the hub)
TOKENIZER_FILE_PATTERNS = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                           "added_tokens.json", "encoder_bpe_*.json", "vocab_*.bpe", TOKENIZER_JSON,
                           chat.CHAT_TEMPLATE_FILE, chat.ADDITIONAL_TEMPLATES_DIR + "/*.jinja")
_CACHE_MAX_WORD = 128    # longer words are not cached
_CACHE_MAX_SIZE = 1_000_000


# ----------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------

@dataclass
class AddedToken:
    """A token added after the vocabulary (or a special token), as HF stores it."""

    content: str
    special: bool = False
    normalized: bool = True
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False

    def __str__(self) -> str:
        return self.content

    def to_dict(self) -> dict:
        return {"content": self.content, "lstrip": self.lstrip, "normalized": self.normalized,
                "rstrip": self.rstrip, "single_word": self.single_word, "special": self.special}


def _regex_alternation(tokens: Iterable[str]) -> str:
    return "|".join(re.escape(t) for t in tokens)


class OpenAIGPTTokenizer(ModelInputsMixin):
    """GPT-1 BPE tokenizer with Hugging Face's API and ids.

    Args:
        vocab_file, merges_file: paths (HF ``vocab.json``/``merges.txt`` or OpenAI's files).
        unk_token: the unknown token (``"<unk>"``, id 0 in GPT-1).
        vocab, merges: the same data in memory (``dict`` token -> id, list of ``(left, right)``),
            instead of files.
        tokenizer_file: a fast-tokenizer ``tokenizer.json`` to read the vocabulary and merges from,
            instead of files.
        pretokenizer: ``"auto"`` (spaCy + ftfy when both are importable, as HF), ``"basic"`` (always
            BERT's BasicTokenizer) or ``"spacy"`` (require spaCy + ftfy).
        padding_side, truncation_side: ``"right"`` or ``"left"``.
        model_max_length: used by ``truncation=True`` / ``padding="max_length"`` without ``max_length``.
        clean_up_tokenization_spaces: default of ``decode``'s clean-up (``False``, as HF's openai-gpt).
        split_special_tokens: default of ``tokenize``'s option to treat added tokens as plain text.
        added_tokens_decoder: ``{id: AddedToken or dict}`` restored from a saved tokenizer.
        verbose: log HF's warnings (long sequences, deprecated options).
        **kwargs: special tokens (``bos_token``, ``pad_token``, ``cls_token``, ...,
            ``additional_special_tokens``), ``do_lower_case=True`` (it always lowercases), and the
            metadata HF stores (``name_or_path``, ``tokenizer_class``); anything else raises ``TypeError``.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: Optional[str] = None,
        merges_file: Optional[str] = None,
        unk_token: Optional[Union[str, AddedToken]] = "<unk>",
        *,
        vocab: Optional[Dict[str, int]] = None,
        merges: Optional[Sequence[Tuple[str, str]]] = None,
        tokenizer_file: Optional[str] = None,
        pretokenizer: str = "auto",
        padding_side: str = "right",
        truncation_side: str = "right",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        added_tokens_decoder: Optional[Dict[int, Union[AddedToken, dict, str]]] = None,
        verbose: bool = True,
        chat_template: Optional[Union[str, Dict[str, str]]] = None,
        **kwargs,
    ):
        special_kwargs = {k: kwargs.pop(k) for k in list(kwargs)
                          if k in SPECIAL_TOKENS_ATTRIBUTES or k == "additional_special_tokens"}
        metadata = {k: kwargs.pop(k) for k in list(kwargs) if k in _INIT_METADATA}
        if kwargs:
            raise TypeError(f"OpenAIGPTTokenizer got unsupported argument(s) {sorted(kwargs)}")
        _check_metadata(metadata)
        vocab, merges, file_added = _vocab_and_merges(vocab_file, merges_file, tokenizer_file, vocab, merges)
        if added_tokens_decoder is None and file_added:
            added_tokens_decoder = file_added  # a tokenizer.json's own added tokens
        self.encoder: Dict[str, int] = vocab
        self.decoder: Dict[int, str] = {v: k for k, v in vocab.items()}
        self.bpe_ranks: Dict[Tuple[str, str], int] = {}
        for rank, pair in enumerate(merges):
            if pair in self.bpe_ranks:
                logger.warning("merge %r appears more than once; its last rank (%d) is used", pair, rank)
            self.bpe_ranks[pair] = rank
        self.cache: Dict[str, str] = {}
        self._word_cache: Dict[str, Tuple[int, ...]] = {}

        if pretokenizer not in ("auto", "basic", "spacy"):
            raise ValueError(f"pretokenizer must be 'auto', 'basic' or 'spacy', got {pretokenizer!r}")
        self.pretokenizer = pretokenizer
        loaded = None if pretokenizer == "basic" else normalization.load_spacy_ftfy()
        if loaded is None and pretokenizer == "spacy":
            raise ImportError("pretokenizer='spacy' needs both spacy and ftfy installed")
        if loaded is None:
            self.nlp, self.fix_text = None, None
        else:
            self.nlp, self.fix_text = loaded

        if padding_side not in ("right", "left"):
            raise ValueError(f"Padding side should be selected between 'right' and 'left', current value: "
                             f"{padding_side!r} (padding_side)")
        if truncation_side not in ("right", "left"):
            raise ValueError(f"Truncation side should be selected between 'right' and 'left', current value: "
                             f"{truncation_side!r} (truncation_side)")
        if (isinstance(model_max_length, bool) or not isinstance(model_max_length, (int, float))
                or not math.isfinite(model_max_length) or model_max_length < 0):
            raise ValueError(f"model_max_length must be a finite number >= 0, got {model_max_length!r}")
        for name, flag in (("clean_up_tokenization_spaces", clean_up_tokenization_spaces),
                           ("split_special_tokens", split_special_tokens), ("verbose", verbose)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        self.model_max_length = int(model_max_length) if model_max_length == int(model_max_length) else model_max_length
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.split_special_tokens = split_special_tokens
        self.verbose = verbose
        self.chat_template = chat.check_template(chat_template)
        self.deprecation_warnings: Dict[str, bool] = {}
        self.name_or_path = metadata.get("name_or_path", "")
        if metadata.get("model_input_names") is not None:
            self.model_input_names = list(metadata["model_input_names"])
        self.init_inputs = ()
        self.init_kwargs = {
            "vocab_file": vocab_file, "merges_file": merges_file, "unk_token": unk_token, "vocab": vocab if
            vocab_file is None and tokenizer_file is None else None, "merges": merges if merges_file is None and
            tokenizer_file is None else None, "tokenizer_file": tokenizer_file, "pretokenizer": pretokenizer,
            "padding_side": padding_side, "truncation_side": truncation_side, "model_max_length": model_max_length,
            "clean_up_tokenization_spaces": clean_up_tokenization_spaces, "split_special_tokens": split_special_tokens,
            "added_tokens_decoder": added_tokens_decoder, "verbose": verbose, "chat_template": chat_template,
            **special_kwargs, **metadata,
        }

        self._special_tokens_map: Dict[str, Union[str, List[str], None]] = {a: None for a in SPECIAL_TOKENS_ATTRIBUTES}
        self._special_tokens_map["additional_special_tokens"] = []
        self._added_tokens_decoder: Dict[int, AddedToken] = {}
        self._added_tokens_encoder: Dict[str, int] = {}
        if added_tokens_decoder:
            if not isinstance(added_tokens_decoder, dict):
                raise TypeError("added_tokens_decoder must be a dict {id: AddedToken or dict}, got "
                                f"{type(added_tokens_decoder).__name__}")
            for idx, tok in sorted(((_token_id(k), v) for k, v in added_tokens_decoder.items()), key=lambda kv: kv[0]):
                tok = _added_token(tok, f"added_tokens_decoder[{idx}]")
                base = self.decoder.get(idx)
                if (base is not None and base != tok.content) or vocab.get(tok.content, idx) != idx:
                    raise ValueError(f"added_tokens_decoder[{idx}] = {tok.content!r} conflicts with the vocabulary "
                                     f"(id {idx} is {base!r}, {tok.content!r} is id {vocab.get(tok.content)})")
                if tok.content in self._added_tokens_encoder:
                    raise ValueError(f"added_tokens_decoder gives {tok.content!r} two ids: "
                                     f"{self._added_tokens_encoder[tok.content]} and {idx}")
                self._added_tokens_decoder[idx] = tok
                self._added_tokens_encoder[tok.content] = idx
        given: Dict[str, Union[str, AddedToken]] = {}  # token text -> what was passed (AddedToken keeps its flags)
        for attr, value in [("unk_token", unk_token)] + [(k, v) for k, v in special_kwargs.items()
                                                          if k != "additional_special_tokens"]:
            if value is not None:
                value = _special_value(value, attr)
                self._special_tokens_map[attr] = str(value)
                given.setdefault(str(value), value)
        extra = special_kwargs.get("additional_special_tokens")
        if extra is not None:
            if isinstance(extra, (str, AddedToken)) or not isinstance(extra, (list, tuple)):
                raise TypeError(f"additional_special_tokens must be a list of strings, got {type(extra).__name__}")
            extra = [_special_value(t, "additional_special_tokens") for t in extra]
            self._special_tokens_map["additional_special_tokens"] = [str(t) for t in extra]
            for t in extra:
                given.setdefault(str(t), t)
        # Register special tokens as added tokens, in HF's order (those in the vocabulary keep their id).
        self._add_tokens([given.get(t, t) for t in self.all_special_tokens if t not in self._added_tokens_encoder],
                         special_tokens=True)
        self._refresh()

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *init_inputs,
                        **kwargs) -> "OpenAIGPTTokenizer":
        """Load from a folder or a Hugging Face hub id (``"openai-community/openai-gpt"``).

        The folder holds ``vocab.json`` + ``merges.txt``, OpenAI's ``encoder_bpe_40000.json`` +
        ``vocab_40000.bpe``, or only the fast tokenizer's ``tokenizer.json`` (its ``model.vocab`` and
        ``model.merges``); ``tokenizer_config.json`` / ``special_tokens_map.json`` /
        ``added_tokens.json`` are read when present. Keyword arguments override saved settings.
        """
        from tfgpt.hub import resolve_dir

        if init_inputs:
            raise TypeError(f"from_pretrained takes keyword arguments only after the path, got {len(init_inputs)} "
                            "more positional argument(s)")
        hub_kwargs = {k: kwargs.pop(k) for k in ("revision", "cache_dir", "local_files_only", "token") if k in kwargs}
        directory = resolve_dir(pretrained_model_name_or_path, allow_patterns=TOKENIZER_FILE_PATTERNS, **hub_kwargs)
        init: Dict[str, object] = {"name_or_path": os.fspath(pretrained_model_name_or_path)}
        try:
            init["vocab_file"], init["merges_file"] = find_vocab_files(directory)
        except FileNotFoundError:
            fast = os.path.join(directory, TOKENIZER_JSON)
            if not os.path.isfile(fast):
                raise
            init["tokenizer_file"] = fast
        init.update(read_tokenizer_config(directory))
        init.update(kwargs)
        if any(k in kwargs for k in ("vocab", "merges", "tokenizer_file")):
            # data passed in memory (or another tokenizer.json) replaces the folder's files
            for key in ("vocab_file", "merges_file", "tokenizer_file"):
                if key not in kwargs:
                    init.pop(key, None)
        return cls(**init)

    def push_to_hub(self, repo_id, **kwargs):
        """Upload the tokenizer files to the hub repo ``repo_id`` (see tfgpt.checkpoints.push)."""
        from tfgpt.checkpoints.push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    def save_pretrained(self, save_directory: Union[str, os.PathLike], legacy_format: Optional[bool] = None,
                        filename_prefix: Optional[str] = None, push_to_hub: bool = False) -> List[str]:
        """Write ``vocab.json``, ``merges.txt``, ``tokenizer_config.json`` and ``special_tokens_map.json``
        (and ``chat_template.jinja`` / ``additional_chat_templates/`` when the tokenizer has templates).

        Files are written atomically (temporary file + ``os.replace``) in HF's layout, so HF's
        ``OpenAIGPTTokenizer.from_pretrained`` reads them too. Returns the written paths. HF's
        ``legacy_format=False`` (a fast tokenizer's tokenizer.json only), ``filename_prefix`` and
        ``push_to_hub`` are not supported and raise.
        """
        if legacy_format is False:
            raise ValueError("legacy_format=False writes only a fast tokenizer's tokenizer.json; this tokenizer "
                             "writes vocab.json + merges.txt (legacy_format=None or True)")
        if filename_prefix is not None:
            raise ValueError(f"filename_prefix={filename_prefix!r} is not supported: the files keep HF's names")
        if push_to_hub:
            raise ValueError("push_to_hub=True is not supported by OpenAIGPTTokenizer.save_pretrained")
        save_directory = os.fspath(save_directory)
        os.makedirs(save_directory, exist_ok=True)
        vocab_path = os.path.join(save_directory, VOCAB_FILES_NAMES["vocab_file"])
        merges_path = os.path.join(save_directory, VOCAB_FILES_NAMES["merges_file"])
        config_path = os.path.join(save_directory, "tokenizer_config.json")
        special_path = os.path.join(save_directory, "special_tokens_map.json")
        special_map = self.special_tokens_map
        config = {
            "added_tokens_decoder": {str(i): t.to_dict() for i, t in sorted(self._added_tokens_decoder.items())},
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "extra_special_tokens": {},
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "tokenizer_class": "OpenAIGPTTokenizer",
            **special_map,
        }
        vocab_path, merges_path = self.save_vocabulary(save_directory)
        atomic_write_json(config_path, config)
        atomic_write_json(special_path, special_map)
        return [vocab_path, merges_path, config_path, special_path] + chat.write_templates(
            save_directory, self.chat_template)

    def save_vocabulary(self, save_directory: Union[str, os.PathLike],
                        filename_prefix: Optional[str] = None) -> Tuple[str, str]:
        """Write only ``vocab.json`` and ``merges.txt`` (HF's names, after ``filename_prefix-``) into the
        existing folder ``save_directory``; returns their paths. Added tokens are not in them."""
        save_directory = os.fspath(save_directory)
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory")
        if filename_prefix is not None and not isinstance(filename_prefix, str):
            raise TypeError(f"filename_prefix must be a string, got {type(filename_prefix).__name__}")
        prefix = filename_prefix + "-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["vocab_file"])
        merges_path = os.path.join(save_directory, prefix + VOCAB_FILES_NAMES["merges_file"])
        atomic_write_json(vocab_path, self.encoder)
        atomic_write_text(merges_path, merges_text(merges_in_rank_order(self.bpe_ranks)))
        return vocab_path, merges_path

    # ------------------------------------------------------------------ chat templates
    def get_chat_template(self, chat_template: Optional[str] = None, tools=None) -> str:
        """The template source ``apply_chat_template`` renders: ``chat_template`` (a template, or the
        name of one of this tokenizer's), else the tokenizer's own (its "default" of several)."""
        return chat.select_template(self.chat_template, chat_template)

    def apply_chat_template(self, conversation, tools=None, documents=None, chat_template: Optional[str] = None,
                            add_generation_prompt: bool = False, continue_final_message: bool = False,
                            tokenize: bool = True, padding=False, truncation=None,
                            max_length: Optional[int] = None, return_tensors: Optional[str] = None,
                            return_dict: bool = False, return_assistant_tokens_mask: bool = False,
                            tokenizer_kwargs: Optional[dict] = None, **kwargs):
        """HF's ``apply_chat_template``: render a conversation (a list of ``{"role", "content"}``
        dicts) or a batch of them with the chat template, then tokenize it unless ``tokenize=False``.

        Returns the text (a list for a batch), the ids, or with ``return_dict`` the whole encoding.
        Extra keyword arguments go to the template. The rendered text already holds the template's
        special tokens, so none are added when tokenizing.
        """
        if return_assistant_tokens_mask:
            raise ValueError("`return_assistant_tokens_mask` is not possible with slow tokenizers: it needs a fast "
                             "tokenizer's character offsets")
        if tokenizer_kwargs is not None and not isinstance(tokenizer_kwargs, dict):
            raise TypeError(f"tokenizer_kwargs must be a dict, got {type(tokenizer_kwargs).__name__}")
        source = self.get_chat_template(chat_template, tools)
        batched = isinstance(conversation, (list, tuple)) and bool(conversation) and (
            isinstance(conversation[0], (list, tuple)) or hasattr(conversation[0], "messages"))
        conversations = list(conversation) if batched else [conversation]
        rendered = chat.render(source, conversations, add_generation_prompt=add_generation_prompt,
                               continue_final_message=continue_final_message, tools=tools, documents=documents,
                               **{**self.special_tokens_map, **kwargs})
        if not batched:
            rendered = rendered[0]
        if not tokenize:
            return rendered
        out = self(rendered, padding=padding, truncation=truncation, max_length=max_length,
                   add_special_tokens=False, return_tensors=return_tensors, **(tokenizer_kwargs or {}))
        return out if return_dict else out["input_ids"]

    # ------------------------------------------------------------------ vocabulary
    @property
    def do_lower_case(self) -> bool:
        return True

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return len(self.encoder)

    def __len__(self) -> int:
        """Size of the full vocabulary, added tokens included."""
        return len(self.get_vocab())

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.encoder, **self._added_tokens_encoder)

    @property
    def added_tokens_encoder(self) -> Dict[str, int]:
        return {t.content: i for i, t in sorted(self._added_tokens_decoder.items())}

    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    def get_added_vocab(self) -> Dict[str, int]:
        return dict(self._added_tokens_encoder)

    @property
    def special_tokens_map(self) -> Dict[str, Union[str, List[str]]]:
        out = {}
        for attr in SPECIAL_TOKENS_ATTRIBUTES + ("additional_special_tokens",):
            value = self._special_tokens_map.get(attr)
            if value:
                out[attr] = list(value) if isinstance(value, list) else value
        return out

    def _extended(self, token: str) -> Union[str, AddedToken]:
        """The AddedToken registered for ``token`` (its flags), else the string."""
        idx = self._added_tokens_encoder.get(token)
        return self._added_tokens_decoder.get(idx, token) if idx is not None else token

    @property
    def special_tokens_map_extended(self) -> Dict[str, Union[str, AddedToken, List[Union[str, AddedToken]]]]:
        """``special_tokens_map`` with each token as its AddedToken where one is registered (HF)."""
        return {attr: [self._extended(t) for t in value] if isinstance(value, list) else self._extended(value)
                for attr, value in self.special_tokens_map.items()}

    @property
    def all_special_tokens_extended(self) -> List[Union[str, AddedToken]]:
        """``all_special_tokens`` as AddedTokens where registered, in the same order (HF)."""
        return [self._extended(t) for t in self.all_special_tokens]

    @property
    def all_special_tokens(self) -> List[str]:
        out: List[str] = []
        for value in self.special_tokens_map.values():
            for tok in (value if isinstance(value, list) else [value]):
                if tok not in out:
                    out.append(tok)
        return out

    @property
    def all_special_ids(self) -> List[int]:
        return [self.convert_tokens_to_ids(t) for t in self.all_special_tokens]

    @property
    def additional_special_tokens(self) -> Optional[List[str]]:
        """Extra special tokens (a new list each time); None after ``tok.additional_special_tokens = None``."""
        value = self._special_tokens_map["additional_special_tokens"]
        return None if value is None else list(value)

    @additional_special_tokens.setter
    def additional_special_tokens(self, value) -> None:
        """Set the list of extra special tokens (HF: no vocabulary change; use ``add_special_tokens`` to add)."""
        if value is not None:
            if isinstance(value, (str, AddedToken)) or not isinstance(value, (list, tuple)):
                raise ValueError(f"additional_special_tokens must be a list of strings, got {type(value).__name__}")
            value = [str(_special_value(v, "additional_special_tokens")) for v in value]
        self._special_tokens_map["additional_special_tokens"] = value
        self._refresh()

    @property
    def additional_special_tokens_ids(self) -> Optional[List[int]]:
        tokens = self.additional_special_tokens
        return None if tokens is None else self.convert_tokens_to_ids(tokens)

    @additional_special_tokens_ids.setter
    def additional_special_tokens_ids(self, values) -> None:
        if values is not None:
            ids = _to_id_list(values, "additional_special_tokens_ids")
            values = [self.convert_ids_to_tokens(i) for i in ids]
        self.additional_special_tokens = values

    def _additional(self) -> List[str]:
        """The extra special tokens as a list to extend in place (created if unset)."""
        if self._special_tokens_map["additional_special_tokens"] is None:
            self._special_tokens_map["additional_special_tokens"] = []
        return self._special_tokens_map["additional_special_tokens"]

    def _special_getter(attr):  # noqa: N805 - property factory
        def get(self):
            return self._special_tokens_map.get(attr)

        def set_(self, value):
            self._special_tokens_map[attr] = None if value is None else str(_special_value(value, attr))
            self._refresh()

        return property(get, set_, doc=f"The {attr.replace('_', ' ')} (None when unset); setting it adds nothing "
                                      "to the vocabulary, as in HF.")

    def _special_id_getter(attr):  # noqa: N805 - property factory
        def get(self):
            token = self._special_tokens_map.get(attr)
            return None if token is None else self.convert_tokens_to_ids(token)

        def set_(self, value):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    value = _to_id_list(value, f"{attr}_id")
                    if len(value) != 1:
                        raise TypeError(f"{attr}_id must be one token id, got {len(value)}")
                    value = value[0]
                value = self.convert_ids_to_tokens(value)
            self._special_tokens_map[attr] = value
            self._refresh()

        return property(get, set_, doc=f"The id of the {attr.replace('_', ' ')} (None when unset).")

    bos_token = _special_getter("bos_token")
    eos_token = _special_getter("eos_token")
    unk_token = _special_getter("unk_token")
    sep_token = _special_getter("sep_token")
    pad_token = _special_getter("pad_token")
    cls_token = _special_getter("cls_token")
    mask_token = _special_getter("mask_token")
    bos_token_id = _special_id_getter("bos_token")
    eos_token_id = _special_id_getter("eos_token")
    unk_token_id = _special_id_getter("unk_token")
    sep_token_id = _special_id_getter("sep_token")
    pad_token_id = _special_id_getter("pad_token")
    cls_token_id = _special_id_getter("cls_token")
    mask_token_id = _special_id_getter("mask_token")
    del _special_getter, _special_id_getter

    def add_tokens(self, new_tokens: Union[str, AddedToken, Sequence[Union[str, AddedToken]]],
                   special_tokens: bool = False) -> int:
        """Add tokens after the vocabulary; returns how many new ids were created.

        Non-special tokens are lowercased (the tokenizer lowercases its input) and matched
        case-insensitively; tokens already in the vocabulary keep their id but are never split again.
        """
        if isinstance(new_tokens, (str, AddedToken)):
            new_tokens = [new_tokens]
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def add_special_tokens(self, special_tokens_dict: Dict[str, Union[str, AddedToken, Sequence[str]]],
                           replace_additional_special_tokens: bool = True) -> int:
        """Set special tokens (``cls_token``, ``pad_token``, ..., ``additional_special_tokens``).

        Tokens not in the vocabulary get the next free ids (GPT-1 fine-tuning added ``_start_``,
        ``_delimiter_`` and ``_classify_`` this way: 40478, 40479, 40480). Returns how many were added.
        """
        if not isinstance(special_tokens_dict, dict):
            raise TypeError(f"special_tokens_dict must be a dict, got {type(special_tokens_dict).__name__}")
        to_add: List[Union[str, AddedToken]] = []
        for key, value in special_tokens_dict.items():
            if key == "additional_special_tokens":
                values = [value] if isinstance(value, (str, AddedToken)) else list(value)
                values = [_special_value(v, "additional_special_tokens") for v in values]
                names = [str(v) for v in values]
                if replace_additional_special_tokens:
                    self._special_tokens_map["additional_special_tokens"] = names
                else:
                    current = self._additional()
                    current.extend(n for n in names if n not in current)
                to_add.extend(values)
            elif key in SPECIAL_TOKENS_ATTRIBUTES:
                value = _special_value(value, key)
                self._special_tokens_map[key] = str(value)
                to_add.append(value)
            else:
                raise ValueError(f"unknown special token key {key!r}; use one of "
                                 f"{list(SPECIAL_TOKENS_ATTRIBUTES) + ['additional_special_tokens']}")
        return self._add_tokens(to_add, special_tokens=True)

    def _add_tokens(self, new_tokens: List[Union[str, AddedToken]], special_tokens: bool = False) -> int:
        added = 0
        vocab = self.get_vocab()
        next_id = max(vocab.values()) + 1 if vocab else 0
        next_id = max(next_id, len(vocab))
        specials = set(self.all_special_tokens)
        for token in new_tokens:
            if not isinstance(token, (str, AddedToken)):
                raise TypeError(f"token {token!r} is not a string but a {type(token).__name__}")
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                is_special = token in specials or special_tokens
                token = AddedToken(token, special=is_special, normalized=not is_special)
            else:
                if token.single_word:
                    raise ValueError(f"AddedToken {token.content!r}: single_word=True is not supported")
                token = AddedToken(**token.to_dict())
                if special_tokens:
                    token.special = True
            if any(t == token for t in self._added_tokens_decoder.values()):
                continue
            if not token.special and token.normalized:
                token.content = token.content.lower()
            if token.content in vocab:
                idx = vocab[token.content]
            else:
                idx = next_id
                next_id += 1
                vocab[token.content] = idx
                added += 1
            if token.special and token.content not in self.all_special_tokens:
                self._additional().append(token.content)
            self._added_tokens_decoder[idx] = token
            self._added_tokens_encoder[token.content] = idx
        self._refresh()
        return added

    def _refresh(self) -> None:
        """Rebuild the regexes that find special/added tokens."""
        specials = self.all_special_tokens
        protected = list(specials) + [t.content for t in self._added_tokens_decoder.values()
                                      if not t.special and t.normalized and t.content not in specials]
        # Lowercasing only needs protection for tokens that per-character lowercasing would change.
        needs = any(lower_per_character(t) != t for t in protected)
        self._lowercase_protected = protected if needs else []
        self._protect_re = re.compile(_regex_alternation(protected), re.DOTALL) if self._lowercase_protected else None
        # Like HF's trie: only tokens registered as added tokens (special ones included) are split off.
        self._split_tokens = sorted(self._added_tokens_encoder, key=lambda t: (-len(t), t))
        self._split_re = re.compile(_regex_alternation(self._split_tokens)) if self._split_tokens else None
        unk = self._special_tokens_map.get("unk_token")
        self._unk_id = self.encoder.get(unk) if unk is not None else None
        if self._unk_id is None and unk is not None:
            self._unk_id = self._added_tokens_encoder.get(unk)

    @property
    def split_tokens(self) -> List[str]:
        """Added and special tokens that the text is split on, in matching order (longest first)."""
        return list(self._split_tokens)

    @property
    def lowercase_protected_tokens(self) -> List[str]:
        """Tokens that lowercasing leaves as they are (empty when lowercasing changes none of them)."""
        return list(self._lowercase_protected)

    @property
    def legacy_added_tokens(self) -> set:
        """Tokens that ``decode`` keeps apart from the text around them (HF's ``legacy_added_tokens``):
        non-special added tokens, and additional special tokens outside the base vocabulary."""
        specials = set(self.all_special_tokens)
        return (set(self._added_tokens_encoder) - specials) | {
            t for t in (self.additional_special_tokens or []) if (self.convert_tokens_to_ids(t) or 0) >= self.vocab_size
        }

    def convert_tokens_to_ids(self, tokens: Union[str, Sequence[str], None]):
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str) -> Optional[int]:
        idx = self._added_tokens_encoder.get(token)
        if idx is not None:
            return idx
        return self.encoder.get(token, self._unk_id)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int) or (hasattr(ids, "ndim") and getattr(ids, "ndim", 1) == 0):
            return self._id_to_token(int(ids))
        special_ids = set(self.all_special_ids) if skip_special_tokens else ()
        out = []
        for idx in _to_id_list(ids):
            if skip_special_tokens and idx in special_ids:
                continue
            out.append(self._id_to_token(idx))
        return out

    def _id_to_token(self, idx: int) -> str:
        tok = self._added_tokens_decoder.get(idx)
        if tok is not None:
            return tok.content
        found = self.decoder.get(idx)
        if found is not None:
            return found
        return self.unk_token if self.unk_token is not None else ""

    # ------------------------------------------------------------------ tokenization
    def bpe(self, token: str) -> str:
        """BPE of one word as HF returns it: pieces joined by spaces, the last ending in ``</w>``."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        word = word_symbols(token)
        if len(word) == 1:
            return token + END_OF_WORD
        out = " ".join(bpe_merge(word, self.bpe_ranks))
        if out == "\n  </w>":
            out = "\n</w>"
        if len(self.cache) < _CACHE_MAX_SIZE:
            self.cache[token] = out
        return out

    def _lower(self, text: str) -> str:
        """HF's per-character lowercasing, leaving special (and normalized added) tokens as they are."""
        if self._protect_re is None:
            return lower_per_character(text)
        out, pos = [], 0
        for m in self._protect_re.finditer(text):
            out.append(lower_per_character(text[pos:m.start()]))
            out.append(m.group(0))
            pos = m.end()
        out.append(lower_per_character(text[pos:]))
        return "".join(out)

    def _split_added(self, text: str) -> List[Tuple[str, bool]]:
        """Split on added/special tokens: ``[(piece, is_added_token), ...]``."""
        if self._split_re is None:
            return [(text, False)]
        out, pos = [], 0
        for m in self._split_re.finditer(text):
            if m.start() > pos:
                out.append((text[pos:m.start()], False))
            out.append((m.group(0), True))
            pos = m.end()
        if pos < len(text):
            out.append((text[pos:], False))
        return out

    def _words(self, piece: str) -> List[str]:
        """Pre-tokenized words of a piece of (already lowered) text."""
        if self.nlp is None:
            return basic_tokenize(piece)
        return [t.text.lower() for t in self.nlp(text_standardize(self.fix_text(piece)))]

    def tokenize(self, text: Union[str, bytes], split_special_tokens: Optional[bool] = None,
                 is_split_into_words: bool = False, add_special_tokens: bool = True) -> List[str]:
        """BPE tokens (strings) of one text; added/special tokens come out whole.

        ``split_special_tokens=True`` treats them as plain text. ``is_split_into_words`` and
        ``add_special_tokens`` change nothing for GPT-1 (a word is tokenized alone either way, and no
        special tokens are added) and are accepted as HF's ``tokenize`` accepts them.
        """
        text = _as_text(text, "text")
        tokens: List[str] = []
        for piece, is_added in self._pieces(text, split_special_tokens):
            if is_added:
                tokens.append(piece)
            else:
                for w in self._words(piece):
                    if w:
                        tokens.extend(self.bpe(w).split(" "))
        return tokens

    def _pieces(self, text: str, split_special_tokens: Optional[bool]) -> List[Tuple[str, bool]]:
        lowered = self._lower(text)
        if split_special_tokens is None:
            split_special_tokens = self.split_special_tokens
        return [(lowered, False)] if split_special_tokens else self._split_added(lowered)

    def _word_ids(self, word: str) -> Tuple[int, ...]:
        ids = self._word_cache.get(word)
        if ids is not None:
            return ids
        if self.nlp is None:
            pieces = bpe_merge(word_symbols(word), self.bpe_ranks)
        else:
            pieces = self.bpe(word).split(" ") if word else []
        encoder, unk = self.encoder, self._unk_id
        out = []
        for p in pieces:
            idx = encoder.get(p, unk)
            if idx is None:
                raise ValueError(f"BPE piece {p!r} is not in the vocabulary and the tokenizer has no "
                                 f"unknown token (unk_token=None)")
            out.append(idx)
        ids = tuple(out)
        if len(word) <= _CACHE_MAX_WORD:
            if len(self._word_cache) >= _CACHE_MAX_SIZE:
                self._word_cache.clear()
            self._word_cache[word] = ids
        return ids

    def text_to_ids(self, text: Union[str, bytes], split_special_tokens: Optional[bool] = None) -> List[int]:
        """Token ids of one text, no special tokens added (``convert_tokens_to_ids(tokenize(text))``, faster)."""
        text = _as_text(text, "text")
        ids: List[int] = []
        word_ids = self._word_ids
        cache = self._word_cache
        for piece, is_added in self._pieces(text, split_special_tokens):
            if is_added:
                ids.append(self._added_tokens_encoder[piece])
                continue
            for word in self._words(piece):
                cached = cache.get(word)
                ids.extend(cached if cached is not None else word_ids(word))
        return ids

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return "".join(tokens).replace(END_OF_WORD, " ").strip()

    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: Optional[bool] = None,
               spaces_between_special_tokens: bool = True) -> str:
        """Text of ids: ``</w>`` becomes a space, the ends are stripped (HF's rules, added tokens included)."""
        ids = _to_id_list(token_ids)
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        specials = set(self.all_special_tokens)
        legacy = self.legacy_added_tokens
        sub_texts: List[str] = []
        current: List[str] = []
        for token in tokens:
            if skip_special_tokens and token in specials:
                continue
            if token in legacy:
                if current:
                    string = self.convert_tokens_to_string(current)
                    if string:
                        sub_texts.append(string)
                    current = []
                sub_texts.append(token)
            else:
                current.append(token)
        if current:
            sub_texts.append(self.convert_tokens_to_string(current))
        text = (" " if spaces_between_special_tokens else "").join(sub_texts)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def batch_decode(self, sequences, **kwargs) -> List[str]:
        if hasattr(sequences, "to_list"):
            sequences = sequences.to_list()
        elif hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(seq, **kwargs) for seq in sequences]

    @staticmethod
    def clean_up_tokenization(out_string: str) -> str:
        """HF's optional clean-up of spaces before punctuation and English contractions."""
        for old, new in CLEAN_UP_REPLACEMENTS:
            out_string = out_string.replace(old, new)
        return out_string

    def __repr__(self) -> str:
        return (f"OpenAIGPTTokenizer(vocab_size={self.vocab_size}, len={len(self)}, "
                f"pretokenizer={'spacy' if self.nlp is not None else 'basic'}, "
                f"special_tokens={self.special_tokens_map})")


def _as_text(text, name: str = "text") -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", "replace")
    if hasattr(text, "numpy"):
        value = text.numpy()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
    raise TypeError(f"{name} must be a str (or UTF-8 bytes), got {type(text).__name__}")


def _to_id_list(ids, name: str = "token_ids") -> List[int]:
    """Token ids from an int, a list, a numpy array or a tensor (1-D); anything else raises naming ``name``."""
    if hasattr(ids, "numpy") and callable(ids.numpy):
        ids = ids.numpy()
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if isinstance(ids, int) and not isinstance(ids, bool):
        return [ids]
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {type(ids).__name__}")
    out = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"{name} must hold integer ids, got {type(i).__name__} {i!r:.40}")
        out.append(i)
    return out


_INIT_METADATA = ("name_or_path", "tokenizer_class", "do_lower_case", "model_input_names", "extra_special_tokens")
TOKENIZER_CLASSES = ("OpenAIGPTTokenizer", "OpenAIGPTTokenizerFast")  # HF names this tokenizer stands in for


def _check_metadata(metadata: dict) -> None:
    """The HF metadata arguments tfgpt accepts, each only with a value it honours."""
    if metadata.get("do_lower_case", True) is not True:
        raise ValueError(f"do_lower_case={metadata['do_lower_case']!r} is not supported: GPT-1's tokenizer always "
                         "lowercases (its vocabulary is lowercase)")
    cls = metadata.get("tokenizer_class")
    if cls is not None and cls not in TOKENIZER_CLASSES:
        raise ValueError(f"tokenizer_class={cls!r}: this is the OpenAI GPT tokenizer ({TOKENIZER_CLASSES[0]})")
    if metadata.get("extra_special_tokens") not in (None, {}, []):
        raise ValueError(f"extra_special_tokens={metadata['extra_special_tokens']!r} is not supported; use "
                         "additional_special_tokens")
    names = metadata.get("model_input_names")
    if names is not None and (not isinstance(names, (list, tuple)) or not names
                              or not all(isinstance(n, str) for n in names)):
        raise TypeError(f"model_input_names must be a non-empty list of strings, got {names!r}")


def _vocab_and_merges(vocab_file, merges_file, tokenizer_file, vocab, merges):
    """(vocabulary, merges, added tokens) from exactly one source: files, a tokenizer.json, or in memory."""
    for name, path, data in (("vocab", vocab_file, vocab), ("merges", merges_file, merges)):
        if path is not None and data is not None:
            raise ValueError(f"pass either {name}_file or {name}, not both")
    if tokenizer_file is not None:
        others = [n for n, v in (("vocab_file", vocab_file), ("merges_file", merges_file), ("vocab", vocab),
                                 ("merges", merges)) if v is not None]
        if others:
            raise ValueError(f"pass either tokenizer_file or {' / '.join(others)}, not both")
        vocab, merges, added = load_tokenizer_json(os.fspath(tokenizer_file))
        check_merges(merges, vocab, os.fspath(tokenizer_file))
        return vocab, merges, added
    if vocab is None:
        if vocab_file is None:
            raise ValueError("pass vocab_file (a vocab.json path), tokenizer_file (a tokenizer.json path) or vocab "
                             "(a token -> id dict)")
        vocab = load_vocab(os.fspath(vocab_file))
    else:
        if not isinstance(vocab, dict):
            raise TypeError(f"vocab must be a dict token -> id, got {type(vocab).__name__}")
        vocab = check_vocab(dict(vocab), "vocab")
    if merges is None:
        if merges_file is None:
            raise ValueError("pass merges_file (a merges.txt path) or merges (a list of pairs)")
        merges = load_merges(os.fspath(merges_file))
    else:
        if isinstance(merges, (str, bytes)) or not isinstance(merges, (list, tuple)):
            raise TypeError(f"merges must be a list of (left, right) pairs or 'left right' strings, got "
                            f"{type(merges).__name__}")
        merges = [tuple(m.split()) if isinstance(m, str) else tuple(m) for m in merges]
        for i, m in enumerate(merges):
            if len(m) != 2 or not all(isinstance(x, str) and x and len(x.split()) == 1 and x.split()[0] == x
                                      for x in m):
                raise ValueError(f"merge {i} must be two non-empty symbols without whitespace, got {m!r}")
    check_merges(merges, vocab, os.fspath(merges_file) if merges_file is not None else "merges")
    return vocab, merges, {}


def _token_id(key) -> int:
    try:
        idx = int(key)
    except (TypeError, ValueError):
        raise ValueError(f"added_tokens_decoder key {key!r} is not a token id") from None
    if idx < 0 or str(idx) != str(key).strip():
        raise ValueError(f"added_tokens_decoder key {key!r} is not a token id >= 0")
    return idx


def _added_token(value, where: str) -> AddedToken:
    """An AddedToken from HF's saved forms: an AddedToken, its dict, or a plain string (special)."""
    if isinstance(value, AddedToken):
        return AddedToken(**value.to_dict())
    if isinstance(value, str):
        return AddedToken(value, special=True, normalized=False)
    if isinstance(value, dict):
        fields = AddedToken.__dataclass_fields__
        unknown = sorted(set(value) - set(fields) - {"__type"})
        if unknown:
            raise ValueError(f"{where} has unknown field(s) {unknown}")
        args = {k: v for k, v in value.items() if k in fields}
        if not isinstance(args.get("content"), str) or not args["content"]:
            raise ValueError(f"{where} needs a non-empty string 'content', got {value.get('content')!r}")
        for k, v in args.items():
            if k != "content" and not isinstance(v, bool):
                raise TypeError(f"{where}: {k} must be true or false, got {v!r}")
        return AddedToken(**args)
    raise TypeError(f"{where} must be an AddedToken, a dict or a string, got {type(value).__name__}")


def _special_value(value, name: str) -> Union[str, AddedToken]:
    """A special token given as a string, an AddedToken or HF's saved dict form."""
    if isinstance(value, dict):
        return _added_token(value, name)
    if isinstance(value, AddedToken):
        return value
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name} must not be an empty string")
        return value
    raise ValueError(f"Cannot set a non-string value as the {name}: got {type(value).__name__} {value!r:.40}")


def read_tokenizer_config(directory: str) -> Dict[str, object]:
    """Constructor arguments saved in a folder: tokenizer_config.json, special_tokens_map.json, added_tokens.json.

    Values of the wrong type, unknown keys that would change the tokenization and malformed files raise
    an error naming the file; HF's bookkeeping keys (file names, ``name_or_path``) are skipped.
    """
    init: Dict[str, object] = {}
    config_path = os.path.join(directory, "tokenizer_config.json")
    if os.path.exists(config_path):
        for key, value in _read_object(config_path, "tokenizer_config.json").items():
            if key in _CONFIG_BOOKKEEPING:
                continue
            if key == "added_tokens_decoder":
                if not isinstance(value, dict):
                    raise ValueError(f"{config_path}: added_tokens_decoder must be an object, got "
                                     f"{type(value).__name__}")
                init[key] = {_token_id(k): _added_token(v, f"{config_path}: added_tokens_decoder[{k}]")
                             for k, v in value.items()}
            elif key in _CONFIG_KEYS:
                if value is None:
                    continue
                init[key] = _config_value(key, value, config_path)
            else:
                raise ValueError(f"{config_path}: unsupported setting {key!r} (value {value!r:.60})")
        if isinstance(init.get("model_max_length"), (int, float)) and init["model_max_length"] > 1e12:
            init["model_max_length"] = 512  # HF writes 1e30 for "unknown"; GPT-1 has 512 positions
    special_path = os.path.join(directory, "special_tokens_map.json")
    if os.path.exists(special_path):
        for key, value in _read_object(special_path, "special_tokens_map.json").items():
            if key not in SPECIAL_TOKENS_ATTRIBUTES and key != "additional_special_tokens":
                raise ValueError(f"{special_path}: unknown special token {key!r}")
            if value is not None:
                init.setdefault(key, _config_value(key, value, special_path))
    templates = chat.read_templates(directory, init.get("chat_template"))
    if templates is not None:
        init["chat_template"] = templates
    added_path = os.path.join(directory, "added_tokens.json")
    if os.path.exists(added_path) and "added_tokens_decoder" not in init:
        added = read_json(added_path, "added_tokens.json")
        if not isinstance(added, dict) or not all(isinstance(t, str) and isinstance(i, int) and not isinstance(i, bool)
                                                  for t, i in added.items()):
            raise ValueError(f"{added_path}: expected a JSON object mapping tokens to integer ids")
        init["added_tokens_decoder"] = {i: AddedToken(t, special=False, normalized=True) for t, i in added.items()}
    return init


def _read_object(path: str, what: str) -> dict:
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


# tokenizer_config.json keys that are HF bookkeeping, not settings
_CONFIG_BOOKKEEPING = ("name_or_path", "special_tokens_map_file", "tokenizer_file", "auto_map", "processor_class")
_CONFIG_KEYS = {
    **{attr: (str, dict) for attr in SPECIAL_TOKENS_ATTRIBUTES},
    "additional_special_tokens": (list,),
    "padding_side": (str,),
    "truncation_side": (str,),
    "model_max_length": (int, float),
    "clean_up_tokenization_spaces": (bool,),
    "split_special_tokens": (bool,),
    "verbose": (bool,),
    "tokenizer_class": (str,),
    "do_lower_case": (bool,),
    "model_input_names": (list,),
    "extra_special_tokens": (dict, list),
    "chat_template": (str, list, dict),
}


def _config_value(key: str, value, path: str):
    """A saved setting checked for its type (special tokens in dict form become their text)."""
    types = _CONFIG_KEYS[key]
    if isinstance(value, bool) and bool not in types:
        raise ValueError(f"{path}: {key} must be {' or '.join(t.__name__ for t in types)}, got {value!r}")
    if not isinstance(value, types):
        raise ValueError(f"{path}: {key} must be {' or '.join(t.__name__ for t in types)}, got "
                         f"{type(value).__name__} {value!r:.60}")
    if key in SPECIAL_TOKENS_ATTRIBUTES:
        return str(_special_value(value, f"{path}: {key}"))
    if key == "additional_special_tokens":
        return [str(_special_value(v, f"{path}: {key}")) for v in value]
    if key == "chat_template":
        return chat.check_template(value, f"{path}: chat_template")
    return value
