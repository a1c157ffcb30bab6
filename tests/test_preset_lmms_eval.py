"""The `lmms-eval` preset: lmms-eval SLAKE exact match after `normalize_answer`.

Expected values follow EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/slake/utils.py and were also
checked against its `normalize_answer`.
"""

import pytest

from medprobe.scoring.lmms_eval import LmmsEval, normalize_answer
from medprobe.types import AnswerType, Outcome, Sample

CLOSED, OPEN = AnswerType.CLOSED, AnswerType.OPEN


def sample(answer, kind=OPEN, benchmark="slake"):
    return Sample(id="1", benchmark=benchmark, question="q?", answer=answer, answer_type=kind)


@pytest.mark.parametrize(
    ("gold", "text", "correct"),
    [
        ("Yes", " Yes. ", True),
        ("yes", "Yes, it is.", False),  # no yes/no search inside a sentence
        ("yes", "Yeah", True),  # whole-answer synonym
        ("no", "False", True),
        ("No", "None", False),  # no VQA number-word mapping
        ("no", "Not", False),
        ("CT", "CT (computed tomography)", True),  # parenthesised text dropped
        ("Lung", "Lung (left", False),  # unclosed "(" is only punctuation: "lung left"
        ("X-Ray", "xray", True),  # "x ray" / "xray" alias
        ("x-ray", "X ray", True),
        ("Left Lung, Right", "left lung right", True),
        ("left lung", "the left lung", False),  # articles are kept
        ("2", "two", False),  # number words are kept
        ("Abdomen", "ABDOMEN", True),
        ("MRI", "T2-weighted MRI", False),
        ("yes", "", False),
        ("是", "是的。", True),
        ("否", "不正常", True),  # "abnormal" is in the Chinese "no" set
        ("是", "正常", True),  # ... and "normal" in the "yes" set
        ("胸腔", "胸腔（肺部）", True),  # full-width parentheses dropped too
    ],
)
def test_exact_match_after_normalisation(gold, text, correct):
    score = LmmsEval().score(sample(gold, CLOSED if gold.lower() in {"yes", "no", "是", "否"} else OPEN), text)
    assert score.value == float(correct)
    assert score.outcome is (Outcome.CORRECT if correct else Outcome.WRONG)
    assert (score.preset, score.parser) == ("lmms-eval", "lmms-eval-exact")


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        (" Yes. ", "yes"),
        ("Left Lung, Right", "left lung right"),
        ("CT (computed tomography)", "ct"),
        ("X-Ray", "xray"),
        ("是的。", "yes"),
    ],
)
def test_normalize_answer(text, normalised):
    assert normalize_answer(text) == normalised


def test_same_rule_for_vqa_rad():
    # lmms-eval has no VQA-RAD task; the SLAKE rule is applied unchanged
    assert LmmsEval().score(sample("Right side", OPEN, "vqa-rad"), "right side.").value == 1.0
    assert LmmsEval().score(sample("Right side", OPEN, "vqa-rad"), "the right side").value == 0.0


def test_generation_error_is_invalid():
    score = LmmsEval().score(sample("yes", CLOSED), None)
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, "error")


def test_multiple_choice_is_unsupported_not_guessed():
    mc = Sample(
        id="3", benchmark="pmc-vqa", question="q", answer="A", options=("x", "y"), answer_type=AnswerType.MULTIPLE_CHOICE
    )
    score = LmmsEval().score(mc, "A")
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, "unsupported_answer_type")
    assert AnswerType.MULTIPLE_CHOICE not in LmmsEval.value_names
