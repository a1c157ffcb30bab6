"""ProbMed: the official answer quirk, pair/group scoring and the count-weighted aggregation.

tests/fixtures/probmed/test.json is hand-made in ProbMed's format (3 images, 2 image types);
responses.json holds one reply per row. The expected numbers were computed by hand and agree with
eric-ai-lab/ProbMed eval/calculate_score.py run on the same rows (get_scores_probmed: overall
66.67; abnormality 100, modality 66.67, body_part 66.67, entity 66.67, grounding 33.33).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medprobe import benchmarks, scoring
from medprobe.benchmarks import LoadOptions
from medprobe.results import compute
from medprobe.types import AnswerType, Generation, Record, Sample

FIXTURES = Path(__file__).parent / "fixtures" / "probmed"


def _samples():
    return benchmarks.load("probmed", LoadOptions(data=str(FIXTURES / "test.json"))).samples


def _records():
    replies = {r["id"]: r["text"] for r in json.loads((FIXTURES / "responses.json").read_text())}
    return [Record(sample=s, keys=(s.id,), generations=(Generation(text=replies[s.metadata["row"]]),))
            for s in _samples()]


def _closed(gold: str) -> Sample:
    return Sample(id="x", benchmark="probmed", question="q?", answer=gold, answer_type=AnswerType.CLOSED)


@pytest.mark.parametrize("reply, gold, right", [
    ("Normal", "no", True), ("None", "no", True), ("Not visible", "no", True),  # substring "No"
    ("no.", "no", True), ("NO", "no", True),  # a whole-reply match ignores case...
    ("no, it is not", "no", False),  # ...but inside a sentence only the capitalised "No" counts
    ("Yes", "yes", True), ("yes.", "yes", True), ("yes, it is the brain", "yes", False),  # "Yes" is case-sensitive
    ("Yes and No", "yes", True), ("Yes and No", "no", True),  # both recognised: right either way
    ("I cannot tell", "no", False),
])
def test_official_quirk(reply, gold, right):
    score = scoring.get("probmed").score(_closed(gold), reply)
    assert (score.outcome == "correct") is right
    assert score.outcome != "invalid"


def test_strict_beside_it():
    strict = scoring.get("probmed-strict")
    assert strict.score(_closed("no"), "Normal").outcome == "invalid"
    assert strict.score(_closed("yes"), "yes, it is the brain").outcome == "correct"
    assert strict.score(_closed("no"), "Yes and No").outcome == "wrong"  # strict reads the leading "Yes"


def test_loader_reads_the_probmed_format():
    samples = _samples()
    assert len(samples) == 26
    first = samples[0]
    assert first.answer == "yes" and first.answer_type is AnswerType.CLOSED
    assert first.metadata["question_type"] == "modality" and first.metadata["image_type"] == "CT - Brain"
    assert first.metadata["modality"] == "CT" and first.metadata["organ"] == "Brain"
    assert first.images[0].path == "images/b1.png" and first.images[0].root == str(FIXTURES)


def test_group_scores_and_weighted_aggregation_match_the_official_script():
    results = compute(_records(), ["probmed", "probmed-strict"])
    m = {(x.subset, x.metric): x for x in results.preset("probmed").metrics}
    expected = {"abnormality": 1.0, "modality": 2 / 3, "body_part": 2 / 3, "entity": 2 / 3, "grounding": 1 / 3}
    for q, value in expected.items():
        assert m[f"question_type={q}", "probmed_accuracy"].value == pytest.approx(value)
    overall = m["overall", "probmed_accuracy"]
    assert overall.value == pytest.approx(2 / 3)
    assert overall.ci_low <= overall.value <= overall.ci_high
    # grounding: 1 of 2 images with grounding questions right, but b2 (no grounding) still weighs in
    assert m["question_type=grounding", "probmed_accuracy"].n == 2
    # strict reads "Normal" as invalid, so b1's modality pair fails: modality 1/3
    s = {(x.subset, x.metric): x for x in results.preset("probmed-strict").metrics}
    assert s["question_type=modality", "probmed_accuracy"].value == pytest.approx(1 / 3)


def test_pair_needs_both_questions():
    # every gt question right, every adversarial one wrong ("Yes" to everything): only abnormality survives
    recs = [Record(sample=s, keys=(s.id,), generations=(Generation(text="Yes"),)) for s in _samples()]
    m = {(x.subset, x.metric): x for x in compute(recs, ["probmed"]).preset("probmed").metrics}
    assert m["question_type=modality", "probmed_accuracy"].value == 0.0
    assert m["question_type=abnormality", "probmed_accuracy"].value == pytest.approx(2 / 3)
