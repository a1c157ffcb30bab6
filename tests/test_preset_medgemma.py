"""`medgemma-vqa`: the MedGemma report's tokenized F1 over every question and accuracy on the closed subset.

Golden values are worked by hand from the definition (VQA-v2 normalisation, SQuAD-style token F1)."""

from __future__ import annotations

import pytest

from medprobe import scoring
from medprobe.results import compute
from medprobe.types import AnswerType, Generation, Outcome, Record, Sample

CLOSED, OPEN = AnswerType.CLOSED, AnswerType.OPEN


def sample(i: int, gold: str, kind: AnswerType) -> Sample:
    return Sample(id=str(i), benchmark="slake-en", split="test", question="q?", answer=gold, answer_type=kind)


# (gold, answer type, reply) -> (token F1, outcome, closed accuracy or None)
GOLDEN = [
    ("left lung", OPEN, "The left lung.", 1.0, Outcome.CORRECT, None),  # article and full stop normalised away
    ("left lung", OPEN, "right lung", 0.5, Outcome.WRONG, None),  # P = R = 1/2
    ("liver", OPEN, "liver and spleen", 0.5, Outcome.WRONG, None),  # P = 1/3, R = 1: 2PR/(P+R) = 1/2
    ("two", OPEN, "2", 1.0, Outcome.CORRECT, None),  # number words normalised
    ("yes", CLOSED, "Yes.", 1.0, Outcome.CORRECT, 1.0),
    ("no", CLOSED, "Yes", 0.0, Outcome.WRONG, 0.0),
    ("yes", CLOSED, "Yes, there is an effusion", 0.4, Outcome.CORRECT, 1.0),  # 4 tokens, 1 shared: P=1/4, R=1
    ("MRI", CLOSED, "an MRI scan", 2 / 3, Outcome.WRONG, 0.0),  # a closed question with a non-yes/no gold
    ("yes", CLOSED, "", 0.0, Outcome.INVALID, 0.0),  # invalid: 0 on both, never dropped
]


@pytest.mark.parametrize("gold, kind, reply, f1, outcome, accuracy", GOLDEN)
def test_golden_scores(gold, kind, reply, f1, outcome, accuracy):
    score = scoring.get("medgemma-vqa").score(sample(0, gold, kind), reply)
    assert score.value == pytest.approx(f1) and score.outcome is outcome
    assert score.extra.get("accuracy") == accuracy


def test_rows_are_the_reports_two_numbers():
    """overall/token_f1 is the mean F1 over every question, closed and open together; closed/accuracy is
    the closed questions' accuracy: the model card's two rows, from one run."""
    records = [Record(sample=sample(i, g, k), generations=(Generation(text=reply),))
               for i, (g, k, reply, *_) in enumerate(GOLDEN)]
    rows = next(p for p in compute(records, ["medgemma-vqa"]).presets if p.preset == "medgemma-vqa")
    f1s = [row[3] for row in GOLDEN]
    assert rows.get("overall", "token_f1").value == pytest.approx(sum(f1s) / len(f1s))
    assert rows.get("overall", "token_f1").n == len(GOLDEN)
    closed = [row for row in GOLDEN if row[1] is CLOSED]
    assert rows.get("closed", "accuracy").value == pytest.approx(sum(r[5] for r in closed) / len(closed))
    assert rows.get("closed", "accuracy").n == len(closed) and rows.get("closed", "accuracy").invalid == 1
    with pytest.raises(KeyError):
        rows.get("overall", "accuracy")  # the report has no accuracy over open answers


def test_failed_generation_and_multiple_choice():
    preset = scoring.get("medgemma-vqa")
    assert preset.score(sample(0, "liver", OPEN), None).outcome is Outcome.INVALID
    mc = Sample(id="m", benchmark="x", split="test", question="q", options=("a", "b"), answer="A",
                answer_type=AnswerType.MULTIPLE_CHOICE)
    assert not preset.applies(mc)  # the report's VQA metrics are for closed and open questions only
