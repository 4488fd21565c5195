"""Text normalisation before BPE: GPT-1's two pre-tokenizers and the character classes they use.

* The BasicTokenizer path (BERT's ``BasicTokenizer(do_lower_case=True)``, HF 4.57 semantics): drop NUL,
  U+FFFD and every ``C*`` character except tab/CR/LF, map whitespace (tab, CR, LF, space, ``Zs``) to a
  space, put spaces around CJK ideographs, split on whitespace (``str.split``, which also splits on
  U+2028 and U+2029), lowercase, NFD, drop ``Mn`` marks, split off punctuation (``P*`` categories and
  all ASCII symbols). HF 4.57 computes an NFC copy of the text but tokenizes the un-normalized text;
  since NFD follows, the result is the same either way (checked for every code point).
* The ftfy + spaCy path, as OpenAI did: ``spaCy(text_standardize(ftfy.fix_text(text)))``.

Both see the text after :func:`lower_per_character`. The in-graph tokenizer builds its character
tables from the same class functions, so both tokenizers agree character by character.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import List


# ----------------------------------------------------------------------------------------------------
# Character classes (BERT BasicTokenizer semantics)
# ----------------------------------------------------------------------------------------------------

def is_control(char: str) -> bool:
    """Tab, CR and LF count as whitespace; every other ``C*`` character is a control."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def is_whitespace(char: str) -> bool:
    """Space, tab, CR, LF and the ``Zs`` category."""
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) == "Zs"


def is_punctuation(char: str) -> bool:
    """All non-alphanumeric ASCII plus the Unicode ``P*`` categories."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk_codepoint(cp: int) -> bool:
    """The CJK ideograph blocks that BERT surrounds with spaces."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


@functools.lru_cache(maxsize=1 << 16)
def _clean_char(char: str) -> str:
    """One character after BERT's clean-up and CJK spacing: "", " ", " c " or the character."""
    cp = ord(char)
    if cp == 0 or cp == 0xFFFD or is_control(char):
        return ""
    if is_whitespace(char):
        return " "
    if is_cjk_codepoint(cp):
        return " " + char + " "
    return char


@functools.lru_cache(maxsize=1 << 16)
def _is_mark(char: str) -> bool:
    return unicodedata.category(char) == "Mn"


_is_punct_cached = functools.lru_cache(maxsize=1 << 16)(is_punctuation)

# ASCII fast path: control characters are deleted, the rest is split into runs of letters/digits and
# single punctuation characters.
_ASCII_CONTROL_DELETE = {cp: None for cp in list(range(0, 9)) + [11, 12] + list(range(14, 32)) + [127]}
_ASCII_WORD_RE = re.compile(r"[^\s!-/:-@\[-`{-~]+|[!-/:-@\[-`{-~]")


def lower_per_character(text: str) -> str:
    """``str.lower`` applied to each character on its own (no final-sigma context), as HF does."""
    if "\u03a3" in text:
        text = text.replace("\u03a3", "\u03c3")
    return text.lower()


def basic_tokenize(text: str) -> List[str]:
    """BERT ``BasicTokenizer(do_lower_case=True).tokenize`` (HF 4.57 semantics), with an ASCII fast path."""
    if text.isascii():
        return _ASCII_WORD_RE.findall(text.translate(_ASCII_CONTROL_DELETE).lower())
    cleaned = "".join(map(_clean_char, text))
    split_tokens: List[str] = []
    for token in cleaned.split():
        token = token.lower()
        token = unicodedata.normalize("NFD", token)
        if not token.isascii():
            token = "".join(c for c in token if not _is_mark(c))
        # split off punctuation
        start = 0
        for i, c in enumerate(token):
            if _is_punct_cached(c):
                if start < i:
                    split_tokens.append(token[start:i])
                split_tokens.append(c)
                start = i + 1
        if start < len(token):
            split_tokens.append(token[start:])
    if any(not t.isascii() for t in split_tokens):
        return " ".join(split_tokens).split()
    return split_tokens


def text_standardize(text: str) -> str:
    """OpenAI's clean-up before spaCy: dashes, ellipsis, spacing around symbols, whitespace."""
    text = text.replace("\u2014", "-").replace("\u2013", "-").replace("\u2015", "-")
    text = text.replace("\u2026", "...").replace("\u00b4", "'")
    text = re.sub(r"""(-+|~+|!+|"+|;+|\?+|\++|,+|\)+|\(+|\\+|\/+|\*+|\[+|\]+|}+|{+|\|+|_+)""", r" \1 ", text)
    text = re.sub(r"\s*\n\s*", " \n ", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    return text.strip()


def load_spacy_ftfy():
    """(spaCy English tokenizer, ftfy.fix_text) when both are importable, else None."""
    try:
        import ftfy  # type: ignore
        from spacy.lang.en import English  # type: ignore
    except ImportError:
        return None
    return English().tokenizer, ftfy.fix_text


def pretokenize(text: str) -> List[str]:
    """Words of ``text`` exactly as the BasicTokenizer path sees them (per-character lowercase first)."""
    return basic_tokenize(lower_per_character(text))
