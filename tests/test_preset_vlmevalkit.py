"""`vlmevalkit-mcq`: VLMEvalKit's can_infer (exact_matching), quirks included.

Every expected letter below is what VLMEvalKit e8e78f0 `vlmeval/utils/matching_util.py` `can_infer`
returns for the same reply and choices (checked by running it; False / "Z" -> None here); the
medprobe reason and the fallback mark are medprobe's own reading of those cases.
"""

from __future__ import annotations

import pytest

from medprobe import scoring
from medprobe.scoring.vlmevalkit import can_infer
from medprobe.types import GOLD_HIDDEN, AnswerType, Outcome, Sample

OPTIONS = ("Pneumonia", "Normal", "Pulmonary nodule", "Pleural effusion")
CHOICES = dict(zip("ABCD", OPTIONS))

GOLDEN = [  # (reply, VLMEvalKit's letter or None, medprobe method or invalid reason)
    ("B", "B", "option_letter"),
    ("(B) Normal", "B", "option_letter"),
    ("The answer is B.", "B", "option_letter"),
    ("**C**", "C", "option_letter"),
    ("The answer is Pleural effusion (D)", "D", "option_letter"),
    ("A mass.", "A", "option_letter"),  # the article "A" is a lone letter among the last four tokens
    ("A mass is seen in the lung.", None, "no_option"),  # ... but not when it comes earlier
    ("B is correct because the lesion is well circumscribed and smooth", None, "no_option"),
    ("The correct answer is definitely the second option", "D", "answer_is_word"),  # "answer is d(efinitely)"
    ("The answer is a normal lung", "A", "answer_is_word"),  # the pattern runs before the option texts
    ("Normal", "B", "option_text"),
    ("pleural effusion", "D", "option_text"),
    ("normal lung, no pneumonia", None, "ambiguous"),  # two option texts
    ("A or B", None, "ambiguous"),  # two letters
    ("Cannot determine the answer from this image.", None, "refusal"),
    ("Z", None, "answered_z"),
    ("The answer is E", None, "no_option"),  # E is not a choice, and the pattern knows only A-D
    ("b", None, "no_option"),  # letters are case-sensitive tokens
    ("normal " * 20, None, "no_option"),  # over twice the options' length: no text matching
]


@pytest.mark.parametrize(("reply", "letter", "how"), GOLDEN)
def test_can_infer_golden(reply, letter, how):
    assert can_infer(reply, dict(CHOICES)) == (letter, how)


def sample(gold: str = "B", options: tuple[str, ...] = OPTIONS, **meta) -> Sample:
    return Sample(id="q1", benchmark="gmai-mmbench", question="What does the CT show?", options=options, answer=gold,
                  answer_type=AnswerType.MULTIPLE_CHOICE, metadata=meta)


def test_outcomes_and_the_fallback_mark():
    preset = scoring.get("vlmevalkit-mcq")
    right = preset.score(sample(), "(B) Normal")
    assert (right.outcome, right.value, right.answer.value, right.answer.fallback) == (Outcome.CORRECT, 1.0, "B", False)
    assert preset.score(sample(), "Pneumonia").outcome is Outcome.WRONG
    guessed = preset.score(sample(gold="D"), "The correct answer is definitely the second option")
    assert guessed.outcome is Outcome.CORRECT and guessed.answer.fallback  # right by VLMEvalKit, marked as a guess
    none = preset.score(sample(), "I am not sure.")
    assert (none.outcome, none.value, none.answer.reason) == (Outcome.INVALID, 0.0, "no_option")
    assert preset.score(sample(), None).answer.reason == "error"


def test_five_options_and_rows_it_has_no_rule_for():
    preset = scoring.get("vlmevalkit-mcq")
    five = (*OPTIONS, "Atelectasis")
    assert preset.score(sample("E", five), "The answer is E").outcome is Outcome.CORRECT
    assert preset.score(sample("A", tuple(f"o{i}" for i in range(27))), "A").answer.reason == "over_26_options"
    assert preset.score(sample(**{GOLD_HIDDEN: True}), "B").answer.reason == "no_gold"
    closed = Sample(id="c", benchmark="vqa-rad", question="Is there a mass?", answer="yes",
                    answer_type=AnswerType.CLOSED)
    assert not preset.applies(closed) and preset.score(closed, "yes").answer.reason == "unsupported_answer_type"
    assert "vlmevalkit-mcq" in scoring.names() and "can_infer" in scoring.describe()["vlmevalkit-mcq"][1]
