"""Hypothesis strategies for tokenizer tests: text that exercises every character class the tokenizers treat apart."""

from hypothesis import strategies as st

# Any text, any UTF-8 encodable text, the characters with special rules (controls, NUL, line and
# paragraph separators, the dotted capital I, final sigma, combining marks, CJK, a special token),
# and text drawn from the Unicode categories BERT's BasicTokenizer distinguishes.
HARD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.text(alphabet="aAbBzZ09 \t\n\r\x0b\x00\x01\x7f\x85\xa0\u2028\u3000.,;'\"!?-_()[]<>"
                     "İΣσςé\u0301中文ひ<unk>UNK",
            max_size=60),
    st.text(alphabet=st.characters(categories=["Lu", "Ll", "Lt", "Mn", "Mc", "Me", "Zs", "Zl", "Cc", "Cf", "Co",
                                               "Pd", "Po", "Sk", "Sm", "Nd", "Lo"]), max_size=30),
)
