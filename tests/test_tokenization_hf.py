"""OpenAIGPTTokenizer against HF's own tokenizer tests (test_tokenization_openai.py and the common mixin).

Each test builds the behaviour HF's tests check, with HF's expected values where they give them and
exact ids (GPT-1's real vocabulary) elsewhere.
"""

import inspect
import json
import logging

import numpy as np
import pytest

from tests.conftest import GPT_VOCAB
from tfgpt.tokenizers.auto import AutoTokenizer
from tfgpt.tokenizers.bpe import load_tokenizer_json
from tfgpt.tokenizers.encoding import BatchEncoding
from tfgpt.tokenizers.tokenization import AddedToken, OpenAIGPTTokenizer

# HF's test vocabulary (Sennrich et al.'s example), as test_tokenization_openai.py writes it
HF_VOCAB = ["l", "o", "w", "e", "r", "s", "t", "i", "d", "n", "w</w>", "r</w>", "t</w>", "lo", "low", "er</w>",
            "low</w>", "lowest</w>", "newer</w>", "wider</w>", "<unk>"]
HF_MERGES = ["#version: 0.2", "l o", "lo w", "e r</w>", ""]

HELLO = [3570, 1276, 267]            # "Hello world!"
PREPARE = [8448, 481, 6672, 279, 562, 279, 7129, 11823, 239]   # "Testing the prepare_for_model method."
ANOTHER = [616, 544, 1007, 5958, 485, 580, 496, 20925, 239]   # "This is another sentence to be encoded."
SEQUENCE = [14715]                   # "Sequence"


@pytest.fixture
def hf_dir(tmp_path):
    d = tmp_path / "hf"
    d.mkdir()
    (d / "vocab.json").write_text(json.dumps(dict(zip(HF_VOCAB, range(len(HF_VOCAB))))), encoding="utf-8")
    (d / "merges.txt").write_text("\n".join(HF_MERGES), encoding="utf-8")
    return d


@pytest.fixture
def padded(gpt_tokenizer):
    gpt_tokenizer.add_special_tokens({"pad_token": "<PAD>"})
    assert gpt_tokenizer.pad_token_id == 40478
    return gpt_tokenizer


# ---------------------------------------------------------------------------------------------------
# test_tokenization_openai.py
# ---------------------------------------------------------------------------------------------------

def test_full_tokenizer_on_hf_test_vocabulary(hf_dir):
    tok = OpenAIGPTTokenizer(str(hf_dir / "vocab.json"), str(hf_dir / "merges.txt"))
    tokens = tok.tokenize("lower")
    assert tokens == ["low", "er</w>"]
    assert tok.convert_tokens_to_ids(tokens + ["<unk>"]) == [14, 15, 20]
    loaded = OpenAIGPTTokenizer.from_pretrained(hf_dir)
    ids = loaded.encode("lower newer")
    assert ids == [14, 15, 9, 3, 2, 15]  # low er</w> n e w er</w>
    assert loaded.decode(ids) == "lower newer"  # HF's get_input_output_texts


def test_padding_without_a_pad_token_raises_even_when_no_row_needs_it(gpt_tokenizer):
    tok = gpt_tokenizer
    s, s2 = "This is a simple input", ["This is a simple input 1", "This is a simple input 2"]
    p = ("This is a simple input", "This is a pair")
    p2 = [("This is a simple input 1", "This is a simple input 2"), ("This is a simple pair 1", "This is a simple pair 2")]
    for call, arg in [(tok.encode, s), (tok.encode_plus, s), (tok.batch_encode_plus, s2), (tok.encode, p),
                      (tok.encode_plus, p), (tok.batch_encode_plus, p2)]:
        with pytest.raises(ValueError, match="does not have a padding token"):
            call(arg, max_length=15, padding="max_length")
    with pytest.raises(ValueError, match="does not have a padding token"):
        tok.encode_plus("Sequence", padding=True)  # one row, nothing to pad: still an error, as HF
    with pytest.raises(ValueError, match="does not have a padding token"):
        tok.pad({"input_ids": [[1, 2], [3]]})
    assert tok.encode(p) == tok.convert_tokens_to_ids(list(p))  # a tuple of strings is a list of tokens


# ---------------------------------------------------------------------------------------------------
# Special tokens and their ids
# ---------------------------------------------------------------------------------------------------

def test_special_token_helpers_add_nothing_for_gpt1(gpt_tokenizer):
    tok = gpt_tokenizer
    assert tok.is_fast is False and tok.pad_token_type_id == 0
    assert tok.build_inputs_with_special_tokens([5, 6]) == [5, 6]
    assert tok.build_inputs_with_special_tokens([5, 6], [7]) == [5, 6, 7]
    assert tok.num_special_tokens_to_add() == 0 and tok.num_special_tokens_to_add(pair=True) == 0
    assert tok.get_special_tokens_mask([5, 6], [7]) == [0, 0, 0]
    assert tok.get_special_tokens_mask([0, 5, 0], already_has_special_tokens=True) == [1, 0, 1]  # <unk> is 0
    with pytest.raises(ValueError, match="second sequence"):
        tok.get_special_tokens_mask([5], [6], already_has_special_tokens=True)
    assert tok.create_token_type_ids_from_sequences([5, 6]) == [0, 0]
    assert tok.create_token_type_ids_from_sequences([5, 6], [7]) == [0, 0, 1]
    assert tok.model_input_names[0] == "input_ids"


def test_special_tokens_and_ids_are_settable(gpt_tokenizer):
    tok = gpt_tokenizer
    first_id = next(iter(tok.get_vocab().values()))
    first = tok.convert_ids_to_tokens(first_id)
    for attr in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        setattr(tok, attr + "_id", None)
        assert getattr(tok, attr) is None and getattr(tok, attr + "_id") is None
        setattr(tok, attr + "_id", first_id)
        assert getattr(tok, attr) == first and getattr(tok, attr + "_id") == first_id
    tok.additional_special_tokens_ids = []
    assert tok.additional_special_tokens == [] and tok.additional_special_tokens_ids == []
    tok.additional_special_tokens_ids = [first_id]
    assert tok.additional_special_tokens == [first] and tok.additional_special_tokens_ids == [first_id]
    tok.additional_special_tokens = None
    assert tok.additional_special_tokens is None and tok.additional_special_tokens_ids is None
    tok.pad_token = "the</w>"
    assert tok.pad_token_id == 481 and len(tok) == 40478  # setting a token adds nothing to the vocabulary
    with pytest.raises(ValueError, match="non-string value as the pad_token"):
        tok.pad_token = 5
    with pytest.raises(TypeError, match="pad_token_id"):
        tok.pad_token_id = "the"


def test_additional_special_tokens_and_added_tokens(gpt_tokenizer):
    tok = gpt_tokenizer
    assert tok.add_special_tokens({"additional_special_tokens": ["_start_", "_delimiter_", "_classify_"]}) == 3
    assert tok.additional_special_tokens_ids == [40478, 40479, 40480]
    assert tok.encode("_start_ Hello world! _classify_") == [40478] + HELLO + [40480]
    tok.add_tokens([AddedToken("[SPECIAL_TOKEN_1]")], special_tokens=True)
    assert tok.tokenize("[SPECIAL_TOKEN_1]") == ["[SPECIAL_TOKEN_1]"]
    assert tok.additional_special_tokens[-1] == "[SPECIAL_TOKEN_1]"
    with pytest.raises(ValueError, match="single_word"):
        tok.add_tokens([AddedToken("whole", single_word=True)])
    # HF's test_add_tokens_tokenizer
    n = len(tok)
    assert tok.add_tokens(["aaaaa bbbbbb", "cccccccccdddddddd"]) == 2 and len(tok) == n + 2
    ids = tok.encode("aaaaa bbbbbb low cccccccccdddddddd l", add_special_tokens=False)
    assert ids == [n, 954, n + 1, 264]  # low</w>, l</w>
    assert tok.add_special_tokens({"eos_token": ">>>>|||<||<<|<<", "pad_token": "<<<<<|||>|>>>>|>"}) == 2
    ids = tok.encode(">>>>|||<||<<|<< aaaaabbbbbb low cccccccccdddddddd <<<<<|||>|>>>>|> l")
    assert ids[0] == tok.eos_token_id == n + 2 and ids[-2] == tok.pad_token_id == n + 3


# ---------------------------------------------------------------------------------------------------
# Construction, init_kwargs, conflicting and unsupported arguments
# ---------------------------------------------------------------------------------------------------

def test_init_kwargs_hold_the_files_and_every_default(hf_dir):
    tok = OpenAIGPTTokenizer.from_pretrained(hf_dir)
    assert tok.init_kwargs["vocab_file"] == str(hf_dir / "vocab.json")
    assert tok.init_kwargs["merges_file"] == str(hf_dir / "merges.txt")
    for name, parameter in inspect.signature(OpenAIGPTTokenizer.__init__).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert name in tok.init_kwargs, name
    assert tok.init_kwargs["unk_token"] == "<unk>" and tok.init_kwargs["model_max_length"] == 512


def test_conflicting_and_unsupported_arguments_raise(hf_dir):
    vocab, merges = str(hf_dir / "vocab.json"), str(hf_dir / "merges.txt")
    with pytest.raises(ValueError, match="vocab_file or vocab, not both"):
        OpenAIGPTTokenizer(vocab, merges, vocab={"a": 0})
    with pytest.raises(ValueError, match="tokenizer_file or vocab_file"):
        OpenAIGPTTokenizer(vocab, merges, tokenizer_file=vocab)
    with pytest.raises(TypeError, match="random_argument"):
        OpenAIGPTTokenizer.from_pretrained(hf_dir, random_argument=True)
    with pytest.raises(ValueError, match="do_lower_case=False"):
        OpenAIGPTTokenizer.from_pretrained(hf_dir, do_lower_case=False)
    assert OpenAIGPTTokenizer.from_pretrained(hf_dir, do_lower_case=True).do_lower_case is True
    for side in ("padding_side", "truncation_side"):
        assert getattr(OpenAIGPTTokenizer.from_pretrained(hf_dir, **{side: "left"}), side) == "left"
        with pytest.raises(ValueError, match="should be selected between 'right' and 'left'"):
            OpenAIGPTTokenizer.from_pretrained(hf_dir, **{side: "unauthorized"})
    tok = OpenAIGPTTokenizer.from_pretrained(hf_dir)
    with pytest.raises(TypeError, match="fancy"):
        tok("lower", fancy=True)
    with pytest.raises(TypeError, match="fancy"):
        tok.encode("lower", fancy=True)
    with pytest.raises(TypeError, match="fancy"):
        tok.tokenize("lower", fancy=True)
    with pytest.raises(NotImplementedError, match="return_offsets_mapping"):
        tok("lower", return_offsets_mapping=True)
    with pytest.raises(ValueError, match="'np' or 'tf'"):
        tok("lower", return_tensors="pt")
    with pytest.raises(ValueError, match="not a valid padding strategy"):
        tok("lower", padding="shortest")
    with pytest.raises(ValueError, match="not a valid truncation strategy"):
        tok("lower", truncation="middle")
    with pytest.raises(TypeError, match="max_length"):
        tok("lower", max_length="5")


def test_none_and_wrong_types_raise_naming_the_argument(gpt_tokenizer):
    tok = gpt_tokenizer
    with pytest.raises(ValueError, match="specify either `text` or `text_target`"):
        tok(None)
    with pytest.raises(ValueError, match="text input must be of type"):
        tok([None, "a"])
    for call in (tok.encode, tok.encode_plus, tok.batch_encode_plus):
        with pytest.raises(TypeError):
            call(None)
    with pytest.raises(TypeError, match="text must be a str"):
        tok.tokenize(None)
    with pytest.raises(TypeError, match="token_ids must be an int or a sequence"):
        tok.decode(None)
    with pytest.raises(TypeError, match="token_ids must hold integer ids"):
        tok.decode([1.5, 2])
    with pytest.raises(TypeError, match="when tokenizing batches"):
        tok(["a", "b"], "c")
    with pytest.raises(ValueError, match="does not match batch length"):
        tok(["a", "b"], ["c"])
    assert tok.encode("a\ud800b") == tok.encode("ab")  # lone surrogates are dropped like controls, as HF


# ---------------------------------------------------------------------------------------------------
# encode_plus, batch_encode_plus, prepare_for_model, __call__
# ---------------------------------------------------------------------------------------------------

def test_call_wraps_encode_plus_and_batch_encode_plus(gpt_tokenizer):
    tok = gpt_tokenizer
    seqs = ["Testing batch encode plus", "Testing batch encode plus with different sequence lengths"]
    assert tok.encode_plus(seqs[0]) == tok(seqs[0]) == {"input_ids": [8448, 17588, 496, 5582, 4733],
                                                         "attention_mask": [1, 1, 1, 1, 1]}
    assert tok.encode_plus(seqs[0], seqs[1]) == tok(seqs[0], seqs[1])
    assert tok.batch_encode_plus(seqs) == tok(seqs)
    assert tok.batch_encode_plus(list(zip(seqs, seqs))) == tok(seqs, seqs)
    batch = tok.batch_encode_plus(seqs)
    assert isinstance(batch, BatchEncoding) and batch.data == dict(batch)
    assert [dict(zip(batch, row)) for row in zip(*batch.values())] == [tok.encode_plus(s) for s in seqs]
    assert batch[:1] == {"input_ids": batch["input_ids"][:1], "attention_mask": batch["attention_mask"][:1]}
    mixed = tok.batch_encode_plus(["Hello world!", ("Sequence", "Hello world!")], return_length=True)
    assert mixed == {"input_ids": [HELLO, SEQUENCE + HELLO], "attention_mask": [[1] * 3, [1] * 4], "length": [3, 4]}


def test_prepare_for_model_equals_encode_plus(gpt_tokenizer):
    tok = gpt_tokenizer
    text = "Testing the prepare_for_model method."
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == PREPARE
    assert tok.prepare_for_model(ids, add_special_tokens=True) == tok.encode_plus(text, add_special_tokens=True)
    pair = tok.prepare_for_model(PREPARE, ANOTHER, return_token_type_ids=True, return_length=True)
    assert pair["input_ids"] == PREPARE + ANOTHER
    assert pair["token_type_ids"] == [0] * 9 + [1] * 9 and pair["length"] == 18
    tensors = tok.prepare_for_model(PREPARE, return_tensors="np", prepend_batch_axis=True)
    assert tensors["input_ids"].shape == (1, 9) and tensors["input_ids"].dtype == np.int64


def test_encode_pads_to_max_length_left_and_right(padded):
    tok = padded
    pad = tok.pad_token_id
    assert tok.encode("Sequence", max_length=11, padding="max_length") == SEQUENCE + [pad] * 10
    tok.padding_side = "left"
    assert tok.encode("Sequence", max_length=11, padding="max_length") == [pad] * 10 + SEQUENCE
    assert tok.encode("Sequence", padding=True) == tok.encode("Sequence", padding="longest") == SEQUENCE
    tok.padding_side = "right"
    assert tok.encode("Sequence", max_length=11, pad_to_max_length=True) == SEQUENCE + [pad] * 10  # deprecated form
    enc = tok.encode_plus("Sequence", max_length=4, padding="max_length", return_special_tokens_mask=True,
                          return_token_type_ids=True)
    assert enc == {"input_ids": SEQUENCE + [pad] * 3, "attention_mask": [1, 0, 0, 0],
                   "token_type_ids": [0] * 4, "special_tokens_mask": [0, 1, 1, 1]}
    batch = tok.batch_encode_plus(["Sequence", "Hello world!"], max_length=5, padding="max_length")
    assert batch["input_ids"] == [SEQUENCE + [pad] * 4, HELLO + [pad] * 2]
    assert batch == tok(["Sequence", "Hello world!"], padding="max_length", max_length=5)


def test_pad_to_multiple_of(padded):
    tok = padded
    assert tok("", padding=True, pad_to_multiple_of=8) == {"input_ids": [], "attention_mask": []}
    assert len(tok("This is a sample input", padding=True, pad_to_multiple_of=8)["input_ids"]) == 8
    assert tok("This", pad_to_multiple_of=8)["input_ids"] == [616]  # no padding asked: none done
    assert len(tok("This", padding=True, truncation=True, pad_to_multiple_of=8)["input_ids"]) == 8
    with pytest.raises(ValueError, match=r"truncation length \(12\) is not a multiple of pad_to_multiple_of \(8\)"):
        tok("This", padding=True, truncation=True, max_length=12, pad_to_multiple_of=8)


def test_is_split_into_words(gpt_tokenizer):
    tok = gpt_tokenizer
    words = ["Hello", "world!"]
    assert tok.encode(words, is_split_into_words=True) == tok.encode("Hello world!") == HELLO
    assert tok.encode_plus(words, words, is_split_into_words=True) == tok.encode_plus("Hello world!", "Hello world!")
    batch = tok(["Hello world!".split(), ["Sequence"]], is_split_into_words=True)
    assert batch["input_ids"] == [HELLO, SEQUENCE]
    pairs = tok.batch_encode_plus([(["Hello"], ["world!"])], is_split_into_words=True)
    assert pairs["input_ids"] == [HELLO]
    with pytest.raises(ValueError, match="is_split_into_words=True"):
        tok.encode([1, 2], is_split_into_words=True)


def test_token_types_special_tokens_mask_and_length(padded):
    tok = padded
    pad = tok.pad_token_id
    enc = tok("Hello world!", "Sequence", return_token_type_ids=True, return_special_tokens_mask=True,
              return_length=True)
    assert enc == {"input_ids": HELLO + SEQUENCE, "token_type_ids": [0, 0, 0, 1], "special_tokens_mask": [0] * 4,
                   "attention_mask": [1] * 4, "length": 4}
    assert 0 in tok("Test this method.", return_token_type_ids=True)["token_type_ids"]
    with pytest.raises(ValueError, match="return token_type_ids while setting add_special_tokens to False"):
        tok("Hello", return_token_type_ids=True, add_special_tokens=False)
    # encode_plus counts the padded sequence, a batch the unpadded one (HF's behaviour)
    assert tok("Hello world!", padding="max_length", max_length=6, return_length=True)["length"] == 6
    batch = tok(["Hello world!", "Sequence"], padding=True, return_length=True, return_special_tokens_mask=True)
    assert batch["length"] == [3, 1]
    assert batch["special_tokens_mask"] == [[0, 0, 0], [0, 1, 1]]
    assert batch["input_ids"][1] == SEQUENCE + [pad, pad]


def test_text_target_becomes_labels(gpt_tokenizer):
    tok = gpt_tokenizer
    enc = tok("Hello world!", text_target="Sequence")
    assert enc == {"input_ids": HELLO, "attention_mask": [1, 1, 1], "labels": SEQUENCE}
    assert tok(text_target="Sequence") == {"input_ids": SEQUENCE, "attention_mask": [1]}


# ---------------------------------------------------------------------------------------------------
# Truncation, overflowing tokens and stride, the too-long warning
# ---------------------------------------------------------------------------------------------------

def test_overflowing_tokens_with_stride(gpt_tokenizer):
    tok = gpt_tokenizer
    seq, n = PREPARE, len(PREPARE)
    info = tok("Testing the prepare_for_model method.", max_length=n - 2, add_special_tokens=False, stride=2,
               truncation="longest_first", return_overflowing_tokens=True)
    assert info["input_ids"] == seq[:-2] and info["overflowing_tokens"] == seq[-4:]
    assert info["num_truncated_tokens"] == 2
    kwargs = dict(max_length=2 * n - 2, add_special_tokens=False, stride=2, return_overflowing_tokens=True)
    first = tok("Testing the prepare_for_model method.", "This is another sentence to be encoded.",
                truncation="only_first", **kwargs)
    assert first["input_ids"] == PREPARE[:-2] + ANOTHER and first["overflowing_tokens"] == PREPARE[-4:]
    second = tok("Testing the prepare_for_model method.", "This is another sentence to be encoded.",
                 truncation="only_second", **kwargs)
    assert second["input_ids"] == PREPARE + ANOTHER[:-2] and second["overflowing_tokens"] == ANOTHER[-4:]
    for truncation in ("longest_first", True):
        with pytest.raises(ValueError, match="Not possible to return overflowing tokens for pair of sequences"):
            tok("Testing the prepare_for_model method.", "This is another sentence to be encoded.",
                truncation=truncation, **kwargs)
    tok.truncation_side = "left"
    left = tok.encode_plus(PREPARE, max_length=5, truncation=True, stride=1, return_overflowing_tokens=True)
    assert left["input_ids"] == PREPARE[4:] and left["overflowing_tokens"] == PREPARE[:5]
    batch = tok.batch_encode_plus(["Testing the prepare_for_model method.", "Test"], max_length=3, truncation=True,
                                  return_overflowing_tokens=True)
    assert batch["input_ids"] == [PREPARE[-3:], [2345]]  # truncation_side is still 'left' and batch["overflowing_tokens"] == [PREPARE[:6], []]


def test_truncation_strategies_and_sides(gpt_tokenizer):
    tok = gpt_tokenizer
    text = "This is another sentence to be encoded."
    assert tok.encode(text, max_length=6, truncation=True) == ANOTHER[:6]
    assert tok.encode(text, max_length=6) == ANOTHER[:6]  # max_length alone truncates, as HF
    assert tok.encode(text, truncation=True) == ANOTHER  # shorter than model_max_length
    tok.truncation_side = "left"
    assert tok.encode(text, max_length=6, truncation=True) == ANOTHER[3:]
    tok.truncation_side = "right"
    # longest_first on a pair takes from the longer sequence first, then alternates
    assert tok.encode("Hello world!", text, max_length=8, truncation=True) == HELLO + ANOTHER[:5]
    # 7 to remove: 6 to even the lengths, the last one from the second (HF: the pair takes the odd one)
    assert tok.encode("Hello world!", text, max_length=5, truncation=True) == HELLO + ANOTHER[:2]
    assert tok.encode(text, "Hello world!", max_length=4, truncation=True) == ANOTHER[:2] + HELLO[:2]
    with pytest.raises(ValueError, match="first sequence has a length 3"):
        tok.encode("Hello world!", text, max_length=8, truncation="only_first")
    with pytest.raises(ValueError, match="needs a second sequence"):
        tok.encode(text, max_length=5, truncation="only_second")


def test_too_long_sequence_warning_is_logged_once(gpt_tokenizer, caplog):
    tok = OpenAIGPTTokenizer.from_pretrained(GPT_VOCAB, model_max_length=10)
    long_text = "Hello world! " * 5
    with caplog.at_level(logging.WARNING, logger="tfgpt.tokenizers.encoding"):
        assert len(tok(long_text)["input_ids"]) == 15
        tok([long_text, long_text])
        tok.encode(long_text)
    records = [r for r in caplog.records if r.getMessage().startswith(
        "Token indices sequence length is longer than the specified maximum sequence length for this model")]
    assert len(records) == 1 and "(15 > 10)" in records[0].getMessage()
    caplog.clear()
    tok.deprecation_warnings = {}
    with caplog.at_level(logging.WARNING, logger="tfgpt.tokenizers.encoding"):
        assert len(tok(long_text, truncation=True)["input_ids"]) == 10  # truncated: no warning
        tok(long_text, verbose=False)
        tok([long_text])
    assert len([r for r in caplog.records if "Token indices" in r.getMessage()]) == 1


# ---------------------------------------------------------------------------------------------------
# pad() for collators
# ---------------------------------------------------------------------------------------------------

def test_pad_for_collators(padded):
    tok = padded
    pad = tok.pad_token_id
    features = [{"input_ids": [1, 2, 3, 4, 5, 6], "attention_mask": [1, 1, 1, 1, 1, 0]},
                {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 0]}]
    out = tok.pad(features)
    assert out["attention_mask"] == [[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0]]
    assert out["input_ids"][1] == [1, 2, 3, pad, pad, pad]
    tok.padding_side = "left"
    assert tok.pad(features)["attention_mask"] == [[1, 1, 1, 1, 1, 0], [0, 0, 0, 1, 1, 0]]
    tok.padding_side = "right"
    enc = tok(["Hello world!", "Sequence"])
    np_out = tok.pad(enc, return_tensors="np")
    assert np_out["input_ids"].tolist() == [HELLO, SEQUENCE + [pad, pad]] and np_out["input_ids"].dtype == np.int64
    single = tok.pad(tok("Sequence"), padding="max_length", max_length=3)
    assert single == {"input_ids": SEQUENCE + [pad, pad], "attention_mask": [1, 0, 0]}
    empty = tok.pad({"input_ids": [[], []]}, max_length=2, padding="max_length")
    assert empty == {"input_ids": [[pad, pad], [pad, pad]], "attention_mask": [[0, 0], [0, 0]]}
    arrays = tok.pad({"input_ids": [np.array([1, 2]), np.array([3])]})
    assert arrays["input_ids"].tolist() == [[1, 2], [3, pad]]
    with pytest.raises(ValueError, match="includes input_ids"):
        tok.pad({"inputs": [[1]]})


# ---------------------------------------------------------------------------------------------------
# tokenizer.json, saving, AutoTokenizer
# ---------------------------------------------------------------------------------------------------

def _tokenizer_json(path, vocab, merges, pair_merges=False, **model):
    data = {"version": "1.0", "added_tokens": [], "normalizer": {"type": "BertNormalizer"},
            "model": {"type": "BPE", "vocab": vocab, "end_of_word_suffix": "</w>", "continuing_subword_prefix": None,
                      "merges": [m.split() if pair_merges else m for m in merges], **model}}
    path.write_text(json.dumps(data), encoding="utf-8")


def test_tokenizer_json_is_a_source_of_vocab_and_merges(tmp_path, gpt_tokenizer):
    vocab = gpt_tokenizer.encoder
    merges = [f"{a} {b}" for (a, b), _ in sorted(gpt_tokenizer.bpe_ranks.items(), key=lambda kv: kv[1])]
    for pair_merges in (False, True):  # tokenizers < 0.20 write "a b", later versions ["a", "b"]
        d = tmp_path / f"fast{pair_merges}"
        d.mkdir()
        _tokenizer_json(d / "tokenizer.json", vocab, merges, pair_merges)
        tok = OpenAIGPTTokenizer.from_pretrained(d)
        assert tok.init_kwargs["tokenizer_file"] == str(d / "tokenizer.json")
        assert tok.encode("Testing the prepare_for_model method.") == PREPARE
        assert tok.bpe_ranks == gpt_tokenizer.bpe_ranks and tok.encoder == gpt_tokenizer.encoder
    v, m, added = load_tokenizer_json(str(tmp_path / "fastTrue" / "tokenizer.json"))
    assert len(v) == 40478 and m[0] == ("t", "h") and added == {}
    # the file's own added tokens (a fine-tuned vocabulary) are kept
    d = tmp_path / "fine_tuned"
    d.mkdir()
    _tokenizer_json(d / "tokenizer.json", vocab, merges)
    data = json.loads((d / "tokenizer.json").read_text())
    data["added_tokens"] = [{"id": 0, "content": "<unk>", "special": True, "normalized": False, "lstrip": False,
                             "rstrip": False, "single_word": False},
                            {"id": 40478, "content": "_start_", "special": True, "normalized": False,
                             "lstrip": False, "rstrip": False, "single_word": False}]
    (d / "tokenizer.json").write_text(json.dumps(data))
    tuned = OpenAIGPTTokenizer.from_pretrained(d)
    assert len(tuned) == 40479 and tuned.encode("_start_ Sequence") == [40478] + SEQUENCE
    bad = tmp_path / "bad"
    bad.mkdir()
    _tokenizer_json(bad / "tokenizer.json", {"a": 0}, [], end_of_word_suffix=None)
    with pytest.raises(ValueError, match="end_of_word_suffix"):
        OpenAIGPTTokenizer.from_pretrained(bad)
    _tokenizer_json(bad / "tokenizer.json", {"a": 0, "b": 1}, ["a b"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        OpenAIGPTTokenizer.from_pretrained(bad)


def test_save_and_load_keeps_added_tokens_and_settings(gpt_tokenizer, tmp_path):
    tok = OpenAIGPTTokenizer.from_pretrained(GPT_VOCAB, model_max_length=42)
    sample = " He is very happy, UNwant\u00e9d,running"
    tok.add_tokens(["bim", "bambam"])
    extra = tok.additional_special_tokens
    extra.append("new_additional_special_token")
    tok.add_special_tokens({"additional_special_tokens": extra})
    before = tok.encode(sample, add_special_tokens=False)
    assert before == [487, 544, 963, 1757, 240, 13752, 240, 1829]  # he is very happy , unwanted , running
    tok.save_pretrained(tmp_path)
    after = OpenAIGPTTokenizer.from_pretrained(tmp_path)
    assert after.encode(sample, add_special_tokens=False) == before and after.get_vocab() == tok.get_vocab()
    assert after.get_vocab()["bim"] == 40478 and after.get_vocab()["bambam"] == 40479
    assert after.additional_special_tokens == ["new_additional_special_token"] and after.model_max_length == 42
    assert OpenAIGPTTokenizer.from_pretrained(tmp_path, model_max_length=43).model_max_length == 43


def test_auto_tokenizer(tmp_path, gpt_tokenizer):
    gpt_tokenizer.save_pretrained(tmp_path / "gpt")
    tok = AutoTokenizer.from_pretrained(tmp_path / "gpt")
    assert type(tok) is OpenAIGPTTokenizer and tok.encode("Hello world!") == HELLO
    assert AutoTokenizer.from_pretrained(GPT_VOCAB, use_fast=False).encode("Sequence") == SEQUENCE
    config = json.loads((tmp_path / "gpt" / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "BertTokenizer"
    (tmp_path / "gpt" / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'BertTokenizer'"):
        AutoTokenizer.from_pretrained(tmp_path / "gpt")
    gpt_tokenizer.save_pretrained(tmp_path / "gpt2")
    config["tokenizer_class"] = None
    (tmp_path / "gpt2" / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model_type 'gpt2'"):
        AutoTokenizer.from_pretrained(tmp_path / "gpt2")
    with pytest.raises(EnvironmentError):
        AutoTokenizer()


# ---------------------------------------------------------------------------------------------------
# Malformed saved files and bad inputs: clear errors naming the file, key or argument
# ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, match", [
    ("tokenizer_config.json", b"\x80\x81\xfe\xff", "tokenizer_config.json .* is not UTF-8"),
    ("tokenizer_config.json", b"{not json", "tokenizer_config.json .* is not valid JSON"),
    ("tokenizer_config.json", b"[" * 100_000 + b"]" * 100_000, "tokenizer_config.json .* is not valid JSON"),
    ("tokenizer_config.json", b"[1, 2]", "expected a JSON object, got list"),
    ("tokenizer_config.json", b'{"model_max_length": "abc"}', "model_max_length must be int or float, got str"),
    ("tokenizer_config.json", b'{"model_max_length": true}', "model_max_length must be int or float, got True"),
    ("tokenizer_config.json", b'{"model_max_length": NaN}', "model_max_length must be a finite number"),
    ("tokenizer_config.json", b'{"padding_side": 3}', "padding_side must be str"),
    ("tokenizer_config.json", b'{"padding_side": "middle"}', "Padding side should be selected"),
    ("tokenizer_config.json", b'{"unk_token": 5}', "unk_token must be str or dict"),
    ("tokenizer_config.json", b'{"unk_token": {"content": 5}}', "needs a non-empty string 'content'"),
    ("tokenizer_config.json", b'{"add_prefix_space": true}', "unsupported setting 'add_prefix_space'"),
    ("tokenizer_config.json", b'{"tokenizer_class": "BertTokenizer"}', "tokenizer_class='BertTokenizer'"),
    ("tokenizer_config.json", b'{"added_tokens_decoder": []}', "added_tokens_decoder must be an object"),
    ("tokenizer_config.json", b'{"added_tokens_decoder": {"x": {"content": "a"}}}', "key 'x' is not a token id"),
    ("tokenizer_config.json", b'{"added_tokens_decoder": {"5": {"content": "a", "special": "yes"}}}',
     "special must be true or false"),
    ("tokenizer_config.json", b'{"added_tokens_decoder": {"5": {"content": "a", "colour": 1}}}',
     r"unknown field\(s\) \['colour'\]"),
    ("special_tokens_map.json", b'"<unk>"', "expected a JSON object, got str"),
    ("special_tokens_map.json", b'{"pad_token": ["<pad>"]}', "pad_token must be str or dict, got list"),
    ("special_tokens_map.json", b'{"weird_token": "x"}', "unknown special token 'weird_token'"),
    ("special_tokens_map.json", b'{"additional_special_tokens": "_start_"}', "additional_special_tokens must be list"),
    ("added_tokens.json", b'{"hello": "1"}', "mapping tokens to integer ids"),
])
def test_malformed_saved_files_raise_naming_them(tmp_path, gpt_tokenizer, name, content, match):
    gpt_tokenizer.save_pretrained(tmp_path)
    (tmp_path / name).write_bytes(content)
    if name == "added_tokens.json":  # only read when tokenizer_config.json has no added_tokens_decoder
        (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises((ValueError, TypeError), match=match):
        OpenAIGPTTokenizer.from_pretrained(tmp_path)


def test_graph_tokenizer_rejects_non_strings_and_matches_python_on_surrogates(gpt_tokenizer):
    import tensorflow as tf

    from tfgpt.tokenizers.tf_tokenizer import TFOpenAIGPTTokenizer

    layer = TFOpenAIGPTTokenizer.from_tokenizer(gpt_tokenizer)
    with pytest.raises(TypeError, match="got None"):
        layer(None)
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a string, got NoneType"):
        layer(["a", None])
    with pytest.raises(TypeError, match="got int 5"):
        layer(5)
    with pytest.raises(TypeError, match="dtype int32"):
        layer(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="scalar, a vector or a matrix"):
        layer([[["a"]]])
    # a lone surrogate cannot be UTF-8: dropped, as the Python tokenizer drops it (a control character)
    assert layer(["Hello\ud800 world!"]).to_list() == [gpt_tokenizer.encode("Hello\ud800 world!")] == [HELLO]
    assert layer(np.array(["Hello world!"])).to_list() == [HELLO]


def test_no_model_max_length_means_no_implicit_truncation(gpt_tokenizer, caplog):
    tok = OpenAIGPTTokenizer.from_pretrained(GPT_VOCAB, model_max_length=1e30, pad_token="<unk>")
    with caplog.at_level(logging.WARNING, logger="tfgpt.tokenizers.encoding"):
        assert tok.encode("Hello world!", truncation=True) == HELLO
        assert tok.encode("Hello world!", padding="max_length") == HELLO
    assert sum("no predefined maximum length" in r.getMessage() for r in caplog.records) == 2


def test_unsupported_save_and_decode_options_raise(gpt_tokenizer, tmp_path):
    tok = gpt_tokenizer
    for kwargs, match in [({"legacy_format": False}, "legacy_format=False"), ({"filename_prefix": "x"}, "filename_prefix"),
                          ({"push_to_hub": True}, "push_to_hub")]:
        with pytest.raises(ValueError, match=match):
            tok.save_pretrained(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written before the error
    assert [p.rsplit("/", 1)[-1] for p in tok.save_pretrained(tmp_path, legacy_format=True)] == [
        "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]
    with pytest.raises(TypeError, match="fancy"):
        tok.decode(HELLO, fancy=True)
    assert tok.batch_decode([HELLO, SEQUENCE], skip_special_tokens=True) == ["hello world !", "sequence"]


def test_added_tokens_that_contradict_the_vocabulary_raise(hf_dir):
    with pytest.raises(ValueError, match=r"added_tokens_decoder\[5\] = '<pad>' conflicts with the vocabulary"):
        OpenAIGPTTokenizer.from_pretrained(hf_dir, added_tokens_decoder={5: AddedToken("<pad>", special=True)})
    with pytest.raises(ValueError, match="'<unk>' is id 20"):
        OpenAIGPTTokenizer.from_pretrained(hf_dir, added_tokens_decoder={30: AddedToken("<unk>", special=True)})
    with pytest.raises(ValueError, match="two ids: 21 and 22"):
        OpenAIGPTTokenizer.from_pretrained(hf_dir, added_tokens_decoder={21: "<pad>", 22: "<pad>"})
    tok = OpenAIGPTTokenizer.from_pretrained(hf_dir, added_tokens_decoder={20: "<unk>", 21: "<pad>"}, pad_token="<pad>")
    assert tok.pad_token_id == 21 and tok.unk_token_id == 20 and len(tok) == 22


def test_save_vocabulary_writes_only_the_two_files(gpt_tokenizer, tmp_path):
    """HF's save_vocabulary: vocab.json + merges.txt (prefixed), the same bytes save_pretrained writes."""
    gpt_tokenizer.add_tokens(["<new>"])
    vocab, merges = gpt_tokenizer.save_vocabulary(str(tmp_path), filename_prefix="x")
    assert (vocab, merges) == (str(tmp_path / "x-vocab.json"), str(tmp_path / "x-merges.txt"))
    full = tmp_path / "full"
    gpt_tokenizer.save_pretrained(full)
    assert (full / "vocab.json").read_bytes() == (tmp_path / "x-vocab.json").read_bytes()
    assert (full / "merges.txt").read_bytes() == (tmp_path / "x-merges.txt").read_bytes()
    assert "<new>" not in json.loads((tmp_path / "x-vocab.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "x-merges.txt", "x-vocab.json"]
    reloaded = OpenAIGPTTokenizer(vocab, merges)
    assert reloaded.encode("Hello world!") == HELLO
    with pytest.raises(ValueError, match="should be a directory"):
        gpt_tokenizer.save_vocabulary(str(tmp_path / "x-vocab.json"))


def test_special_tokens_extended_keep_the_added_token_flags(gpt_tokenizer):
    gpt_tokenizer.add_special_tokens({"pad_token": AddedToken("<PAD>", lstrip=True),
                                      "additional_special_tokens": ["<x>"]})
    extended = gpt_tokenizer.special_tokens_map_extended
    assert set(extended) == set(gpt_tokenizer.special_tokens_map)
    assert isinstance(extended["pad_token"], AddedToken) and extended["pad_token"].lstrip
    assert [str(t) for t in extended["additional_special_tokens"]] == ["<x>"]
    assert [str(t) for t in gpt_tokenizer.all_special_tokens_extended] == gpt_tokenizer.all_special_tokens


def test_alignment_methods_need_a_fast_tokenizer(gpt_tokenizer):
    """HF: a slow tokenizer's BatchEncoding raises ValueError for word_ids(), sequence_ids(), ..."""
    enc = gpt_tokenizer("Hello world", "again")
    assert enc.is_fast is False and enc.encodings is None and enc.n_sequences is None
    for name in ("word_ids", "sequence_ids", "tokens", "words"):
        with pytest.raises(ValueError, match=f"{name}\\(\\) is not available when using non-fast tokenizers"):
            getattr(enc, name)()
    with pytest.raises(ValueError, match="char_to_token"):
        enc.char_to_token(0)


# ---------------------------------------------------------------------------------------------------
# chat templates (test_tokenization_common.py: test_chat_template*, test_jinja_*, test_continue_final_message*)
# ---------------------------------------------------------------------------------------------------

DUMMY_TEMPLATE = "{% for message in messages %}{{message['role'] + message['content']}}{% endfor %}"
CHAT = [{"role": "system", "content": "system message"}, {"role": "user", "content": "user message"},
        {"role": "assistant", "content": "assistant message"}]


def test_chat_template(gpt_tokenizer, tmp_path):
    """HF's test_chat_template: render, tokenize the rendering, save and reload the template."""
    expected = "systemsystem messageuseruser messageassistantassistant message"
    text = gpt_tokenizer.apply_chat_template(CHAT, chat_template=DUMMY_TEMPLATE, tokenize=False)
    assert text == expected
    ids = gpt_tokenizer.apply_chat_template(CHAT, chat_template=DUMMY_TEMPLATE)
    assert ids == gpt_tokenizer.encode(expected, add_special_tokens=False)
    enc = gpt_tokenizer.apply_chat_template(CHAT, chat_template=DUMMY_TEMPLATE, return_dict=True)
    assert enc["input_ids"] == ids and enc["attention_mask"] == [1] * len(ids)
    with pytest.raises(ValueError, match="tokenizer.chat_template is not set"):
        gpt_tokenizer.apply_chat_template(CHAT)
    gpt_tokenizer.chat_template = DUMMY_TEMPLATE
    assert gpt_tokenizer.apply_chat_template(CHAT, tokenize=False) == expected
    written = gpt_tokenizer.save_pretrained(tmp_path)
    assert str(tmp_path / "chat_template.jinja") in written
    assert (tmp_path / "chat_template.jinja").read_text(encoding="utf-8") == DUMMY_TEMPLATE
    assert "chat_template" not in json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    reloaded = OpenAIGPTTokenizer.from_pretrained(str(tmp_path))
    assert reloaded.chat_template == DUMMY_TEMPLATE
    assert reloaded.apply_chat_template(CHAT, tokenize=False) == expected


def test_chat_template_batched(gpt_tokenizer):
    chats = [CHAT[:2], CHAT]
    texts = gpt_tokenizer.apply_chat_template(chats, chat_template=DUMMY_TEMPLATE, tokenize=False)
    assert texts == ["systemsystem messageuseruser message",
                     "systemsystem messageuseruser messageassistantassistant message"]
    ids = gpt_tokenizer.apply_chat_template(chats, chat_template=DUMMY_TEMPLATE)
    assert ids == [gpt_tokenizer.encode(t) for t in texts]
    gpt_tokenizer.add_special_tokens({"pad_token": "<PAD>"})
    arrays = gpt_tokenizer.apply_chat_template(chats, chat_template=DUMMY_TEMPLATE, padding=True,
                                               return_tensors="np")
    assert arrays.shape == (2, len(ids[1]))
    assert arrays[0, len(ids[0]):].tolist() == [40478] * (len(ids[1]) - len(ids[0]))


def test_chat_template_generation_prompt_and_continue_final_message(gpt_tokenizer):
    template = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>{% endfor %}"
                "{% if add_generation_prompt %}<assistant>{% endif %}")
    chat = CHAT[:2] + [{"role": "assistant", "content": "the answer is"}]
    prompt = gpt_tokenizer.apply_chat_template(CHAT[:2], chat_template=template, tokenize=False,
                                               add_generation_prompt=True)
    assert prompt.endswith("</user><assistant>")
    cont = gpt_tokenizer.apply_chat_template(chat, chat_template=template, tokenize=False,
                                             continue_final_message=True)
    assert cont.endswith("<assistant>the answer is")
    trimmed = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] | trim }}</{{ m['role'] }}>{% endfor %}"
    spaced = chat[:-1] + [{"role": "assistant", "content": "the answer is  "}]
    assert gpt_tokenizer.apply_chat_template(spaced, chat_template=trimmed, tokenize=False,
                                             continue_final_message=True).endswith("<assistant>the answer is")
    with pytest.raises(ValueError, match="continue_final_message and add_generation_prompt are not compatible"):
        gpt_tokenizer.apply_chat_template(chat, chat_template=template, continue_final_message=True,
                                          add_generation_prompt=True)


def test_jinja_loopcontrols_strftime_tojson_and_exceptions(gpt_tokenizer):
    import jinja2

    loop = "{% for m in messages %}{% if m['role'] == 'user' %}{% break %}{% endif %}{{ m['content'] }}{% endfor %}"
    assert gpt_tokenizer.apply_chat_template(CHAT, chat_template=loop, tokenize=False) == "system message"
    now = "{{ strftime_now('%Y-%m-%d') }}"
    from datetime import datetime

    assert gpt_tokenizer.apply_chat_template(CHAT, chat_template=now, tokenize=False) == \
        datetime.now().strftime("%Y-%m-%d")
    as_json = "{{ messages[0] | tojson }}{% if tools %}{{ tools | tojson }}{% endif %}"
    tools = [{"name": "f", "parameters": {}}]
    assert gpt_tokenizer.apply_chat_template(CHAT, chat_template=as_json, tokenize=False, tools=tools) == \
        json.dumps(CHAT[0]) + json.dumps(tools)
    special = "{{ bos_token }}|{{ unk_token }}|{{ extra }}"
    assert gpt_tokenizer.apply_chat_template(CHAT, chat_template=special, tokenize=False, extra="x") == "|<unk>|x"
    generation = "{% for m in messages %}{% generation %}{{ m['content'] }}{% endgeneration %}{% endfor %}"
    assert gpt_tokenizer.apply_chat_template(CHAT[:1], chat_template=generation, tokenize=False) == "system message"
    raising = "{{ raise_exception('no system messages') }}"
    with pytest.raises(jinja2.exceptions.TemplateError, match="no system messages"):
        gpt_tokenizer.apply_chat_template(CHAT, chat_template=raising)
    with pytest.raises(ValueError, match="return_assistant_tokens_mask"):
        gpt_tokenizer.apply_chat_template(CHAT, chat_template=generation, return_assistant_tokens_mask=True)


def test_chat_template_dict_saving_and_file_priority(gpt_tokenizer, tmp_path):
    """HF's test_chat_template_dict(_saving) and test_chat_template_file_priority."""
    templates = {"default": DUMMY_TEMPLATE, "shout": "{{ messages[0]['content'] | upper }}"}
    gpt_tokenizer.chat_template = templates
    assert gpt_tokenizer.apply_chat_template(CHAT, tokenize=False).startswith("systemsystem message")
    assert gpt_tokenizer.apply_chat_template(CHAT, chat_template="shout", tokenize=False) == "SYSTEM MESSAGE"
    gpt_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "additional_chat_templates" / "shout.jinja").read_text(encoding="utf-8") == templates["shout"]
    assert OpenAIGPTTokenizer.from_pretrained(str(tmp_path)).chat_template == templates
    # HF's older layout: a list of named templates in tokenizer_config.json; a .jinja file wins over it
    old = tmp_path / "old"
    gpt_tokenizer.chat_template = None
    gpt_tokenizer.save_pretrained(old)
    config = json.loads((old / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["chat_template"] = [{"name": "default", "template": "config"}, {"name": "b", "template": "bee"}]
    (old / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert OpenAIGPTTokenizer.from_pretrained(str(old)).chat_template == {"default": "config", "b": "bee"}
    (old / "chat_template.jinja").write_text("file", encoding="utf-8")
    assert OpenAIGPTTokenizer.from_pretrained(str(old)).chat_template == {"default": "file", "b": "bee"}
    config["chat_template"] = [{"name": "default"}]
    (old / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="chat_template"):
        OpenAIGPTTokenizer.from_pretrained(str(old))
    with pytest.raises(TypeError, match="chat_template must be"):
        OpenAIGPTTokenizer.from_pretrained(str(tmp_path), chat_template=3)
