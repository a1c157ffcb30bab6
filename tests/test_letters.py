"""Option labels past Z (AA, AB, ...): made in one place, shown by the prompt, read back by the parser and
the presets, and refused at load past ZZ. Up to 26 options every rule behaves exactly as before."""

from __future__ import annotations

import pytest

from medprobe import scoring
from medprobe.backends.likelihood import scoring_for
from medprobe.benchmarks._formats import RowError
from medprobe.benchmarks.custom import gold_letter, parse_options
from medprobe.letters import LETTERS, MAX_OPTIONS, letter, letter_index
from medprobe.parsing import parse_letter
from medprobe.prompts import PromptTemplate, first_turn, format_options
from medprobe.types import AnswerType, Sample


def test_labels_continue_like_spreadsheet_columns_and_read_back():
    assert [letter(i) for i in (0, 25, 26, 27, 29, 51, 52, 701)] == ["A", "Z", "AA", "AB", "AD", "AZ", "BA", "ZZ"]
    assert len(set(LETTERS)) == MAX_OPTIONS == 702
    assert all(letter_index(label) == i for i, label in enumerate(LETTERS))
    assert letter_index(" ad ") == 29
    with pytest.raises(ValueError, match="at most 702"):
        letter(702)
    with pytest.raises(ValueError, match="not an option label"):
        letter_index("AAA")


def options(n: int) -> tuple[str, ...]:
    return tuple(f"o{i}" for i in range(n))


def test_the_prompt_letters_options_past_z():
    text = format_options(options(30))
    assert text.splitlines()[25:] == ["Z. o25", "AA. o26", "AB. o27", "AC. o28", "AD. o29"]
    sample = Sample(id="q", benchmark="t", question="Which?", options=options(27), answer="AA",
                    answer_type=AnswerType.MULTIPLE_CHOICE)  # fmt: skip
    prompt = first_turn(PromptTemplate(name="default"), sample)[-1].content[-1].text
    assert "\nAA. o26\n" in prompt


@pytest.mark.parametrize(("text", "n", "value", "reason"), [
    ("AA", 27, "AA", None), ("(AD)", 30, "AD", None), ("Answer: AD", 30, "AD", None),
    ("The answer is AB.", 30, "AB", None), ("<answer>AC</answer>", 30, "AC", None), ("option AB", 30, "AB", None),
    ("B", 30, "B", None), ("Z.", 27, "Z", None),
    ("AE", 30, None, "no_letter"),  # not a label of a 30-option question
    ("aa", 27, None, "no_letter"),  # a lowercase pair is a word, never a label
    ("AA or AB", 30, None, "several_letters"), ("Answer: AB, AC", 30, None, "several_letters"),
    ("Answer: A mass", 27, None, "no_letter"),  # prose, as with fewer options
    # up to 26 options nothing changed: a pair is no label, a letter past the options is out of range
    ("AA", 5, None, "no_letter"), ("F", 5, None, "letter_out_of_range"), ("B", 5, "B", None),
])  # fmt: skip
def test_parse_letter_reads_labels_past_z(text, n, value, reason):
    answer = parse_letter(text, n)
    assert (answer.value, answer.reason) == (value, reason)


def test_gold_and_options_at_load():
    assert gold_letter("aa", options(27)) == "AA"
    assert gold_letter("(AD)", options(30)) == "AD"
    assert gold_letter("o29", options(30)) == "AD"
    with pytest.raises(RowError, match="neither a letter A-AD nor one of the options"):
        gold_letter("AE", options(30))
    assert len(parse_options(list(options(MAX_OPTIONS)))) == MAX_OPTIONS
    with pytest.raises(RowError, match="703 options, over the 702"):
        parse_options(list(options(MAX_OPTIONS + 1)))


def test_presets_and_answer_modes_map_letters_past_z():
    sample = Sample(id="q", benchmark="t", question="Which?", options=options(30), answer="AD",
                    answer_type=AnswerType.MULTIPLE_CHOICE)  # fmt: skip
    assert scoring.get("strict").score(sample, "AD").outcome == "correct"
    assert scoring.get("strict").score(sample, "AC").outcome == "wrong"
    mme = scoring.get("multimedeval").score(sample, "AD. o29")
    assert mme.outcome == "correct" and mme.answer.value == "AD"
    mek = scoring.get("medevalkit").score(sample, "AD")
    assert mek.outcome == "invalid" and mek.answer.reason == "over_26_options"
    assert scoring.get("medevalkit").score(sample.model_copy(update={"options": options(4), "answer": "B"}),
                                           "B").outcome == "correct"  # fmt: skip
    assert scoring_for(sample, "next-token").labels[-2:] == ("AC", "AD")
