"""The fast VQA-v2 normalisation (medprobe.scoring.normalize) against the official code it replaces, on
random texts dense in the marks, digits and periods its rules turn on."""

from __future__ import annotations

import random
import re

import pytest

from medprobe.scoring.normalize import (_WORD_MAP, PUNCT, normalize_word, normalize_word_again,
                                        process_punctuation)  # fmt: skip

# GT-Vision-Lab/VQA vqaEval.py (c4e6a0e), processPunctuation, verbatim but for names
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA = re.compile(r"(\d)(\,)(\d)")


def official_punctuation(text: str) -> str:
    out = text
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or (re.search(_COMMA, text) is not None):
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD.sub("", out, re.UNICODE)


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pieces = [*PUNCT, ".", " ", " ", "1", "2", ",", "a", "the", "none", "two", "dont", "Liver", "É", "是", "\t", "\n",
              "yes", "no", ":", "'", "..."]  # fmt: skip
    return [("".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))) for _ in range(n)]


TEXTS = _texts(20_000) + ["", ".", "a.b", "3.5 cm", "1,000 cells", "(finding 3)", "x" + "." * 40, "end ."]


def test_punctuation_matches_the_official_code():
    for text in TEXTS:
        assert process_punctuation(text) == official_punctuation(text), text


def test_the_second_llava_med_pass_is_skipped_only_where_it_changes_nothing():
    assert not set(_WORD_MAP.values()) & set(_WORD_MAP)  # what the shortcut's argument rests on
    for text in TEXTS:
        once = normalize_word(text)
        assert normalize_word_again(once) == normalize_word(once), text


@pytest.mark.parametrize("text", ["A." * 40, "3.5 and 4.5", "Ünïcode (x)"])
def test_texts_a_second_pass_would_change_take_the_full_pass(text):
    once = normalize_word(text)
    assert normalize_word_again(once) == normalize_word(once)
