"""The `multimedeval` preset: MultiMedEval VQA token recall and multiple-choice BLEU-1.

Expected values follow corentin-ryr/MultiMedEval task_families.py `VQA.evaluate` and qa.py
`MedQA.get_predicted_answer`; the VQA cases were also run through the official `evaluate` body.
"""

import math

import pytest

from medprobe.scoring._base import NEAREST_OPTION
from medprobe.scoring.multimedeval import MultiMedEval, bleu1
from medprobe.types import AnswerType, Outcome, Sample

CLOSED, OPEN, MC = AnswerType.CLOSED, AnswerType.OPEN, AnswerType.MULTIPLE_CHOICE
OPTIONS = ("Pneumonia", "Pleural effusion", "Pneumothorax", "Normal")


def sample(answer, kind, options=()):
    return Sample(id="1", benchmark="vqa-rad", question="q?", answer=answer, answer_type=kind, options=options)


@pytest.mark.parametrize(
    ("gold", "text", "correct"),
    [
        ("Yes", "Yes", True),
        ("yes", "YES!", True),
        ("yes", "Yes, there is no fracture.", True),
        ("no", "Yes, there is no fracture.", True),  # both words present: right for either gold
        ("no", "Not present.", True),  # gold "no" also accepts "not": recall 1/2 >= 0.4
        ("no", "no.", True),
        ("no", "The lungs are normal.", False),  # whole tokens only, unlike llava-med's substrings
        ("yes", "The eyes are normal.", False),
        ("no", "None", False),  # "none" -> "0"
        ("no", "nope", False),
        ("yes", "", False),
    ],
)
def test_closed_token_rule(gold, text, correct):
    score = MultiMedEval().score(sample(gold, CLOSED), text)
    assert score.value == float(correct)
    assert score.outcome is (Outcome.CORRECT if correct else Outcome.WRONG)
    assert score.answer.method == "closed_recall>=0.4"


@pytest.mark.parametrize(
    ("gold", "text", "recall", "correct"),
    [
        ("Right lung", "the right lung", 1.0, True),
        ("right temporal lobe", "temporal lobe", 2 / 3, False),
        ("Posterior-Anterior", "posterior anterior view", 1.0, True),
        ("It is less than half the width of the thorax", "less than half of the thorax width", 0.75, True),  # >= 0.75
        ("Free air", "free free free", 0.5, False),  # token sets: repeats do not help
        ("one", "1", 1.0, True),
        ("Right", "", 0.0, False),
    ],
)
def test_open_recall_threshold(gold, text, recall, correct):
    score = MultiMedEval().score(sample(gold, OPEN), text)
    assert score.extra["recall"] == pytest.approx(recall)
    assert score.value == float(correct)
    assert score.answer.method == "open_recall>=0.75"


def test_closed_question_with_non_yes_no_gold_is_scored_as_open():
    # VQA.evaluate decides closed/open from the gold ("if clean_correct in ['yes', 'no']")
    score = MultiMedEval().score(sample("MRI", CLOSED), "MRI scan")
    assert (score.value, score.answer.method, score.extra["recall"]) == (1.0, "open_recall>=0.75", 1.0)


def test_open_question_with_yes_no_gold_uses_the_closed_rule():
    assert MultiMedEval().score(sample("no", OPEN), "not visible").value == 1.0


def test_f1_keeps_the_official_epsilon():
    score = MultiMedEval().score(sample("left lung", OPEN), "left lung")
    assert score.extra["f1"] == pytest.approx(2 / (2 + 1e-8), abs=1e-12)
    assert score.extra["f1"] < 1.0


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        ("b", "b pleural effusion", math.exp(1 - 3)),  # brevity penalty exp(1 - r/c)
        ("pleural effusion", "b pleural effusion", math.exp(1 - 3 / 2)),
        ("pneumonia pneumonia", "pneumonia", 0.5),  # clipped counts; c > r: no penalty
        ("pneumonia", "pneumonia", 1.0),
        ("", "pneumonia", 0.0),
        ("effusion", "pneumonia", 0.0),
    ],
)
def test_bleu1_matches_torchmetrics_definition(pred, ref, expected):
    assert bleu1(pred, ref) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("gold", "text", "letter", "fallback"),
    [
        ("B", "B", "B", False),  # "b" matches option "b pleural effusion"
        ("A", "A. Pneumonia", "A", False),
        ("B", "Pleural effusion", "B", False),
        ("B", "Answer: B", "B", False),
        # the reply names no option: only the similarity picked one (marked as a nearest-option pick)
        ("B", "Effusion", "B", True),
        ("D", "D", "D", False),
        # tie (0.2 each for "pneumonia" and "c pneumothorax"): the first option wins
        ("C", "The answer is pneumothorax, not pneumonia", "A", True),
    ],
)
def test_multiple_choice_best_bleu1_option(gold, text, letter, fallback):
    score = MultiMedEval().score(sample(gold, MC, OPTIONS), text)
    assert score.answer.value == letter
    assert score.value == float(letter == gold)
    assert score.parser == "multimedeval-bleu1"
    assert score.answer.fallback is fallback
    assert score.answer.method == (NEAREST_OPTION if fallback else "max_bleu1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("A", "empty"),  # cleaned "a" is an article: nothing left ("Invalid answer" officially)
        ("xyz", "no_match"),  # every BLEU-1 is 0
    ],
)
def test_multiple_choice_invalid_answer(text, reason):
    score = MultiMedEval().score(sample("A", MC, OPTIONS), text)
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, reason)


def test_generation_error_is_invalid():
    score = MultiMedEval().score(sample("yes", CLOSED), None)
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, "error")
