"""Report presets: the parser's golden cases, the third outcome, and what each preset reports per study."""

from __future__ import annotations

import math

import pytest

from medprobe import scoring
from medprobe.scoring.report import parse_report
from medprobe.types import AnswerType, Outcome, Sample

REF = "The heart is normal in size. The lungs are clear. No pleural effusion."


def report_sample(answer: str = REF) -> Sample:
    return Sample(id="s1", benchmark="iu-xray", question="Describe the findings.", answer=answer,
                  answer_type=AnswerType.REPORT)


@pytest.mark.parametrize(("reply", "kept"), [
    ("Findings: The lungs are clear.", "The lungs are clear."),
    ("FINDINGS:\nThe lungs are clear.", "The lungs are clear."),
    ("**Findings:** The lungs are clear.", "The lungs are clear."),
    ("## Impression\nNo acute process.", "No acute process."),
    ("Impression - No acute process.", "No acute process."),
    ("Radiology report: Normal chest.", "Normal chest."),
    ("  The lungs are clear.  ", "The lungs are clear."),
    # only a leading header goes: a later section header is part of the report
    ("The lungs are clear. Impression: normal.", "The lungs are clear. Impression: normal."),
    # a word that starts like a header is not one
    ("Findingsless text stays.", "Findingsless text stays."),
    # a disclaimer followed by a report is a report
    ("I am not able to give a diagnosis. The heart is normal in size and the lungs are clear.",
     "I am not able to give a diagnosis. The heart is normal in size and the lungs are clear."),
    # hedged findings are findings, not refusals
    ("A small effusion cannot be determined on this view.", "A small effusion cannot be determined on this view."),
])
def test_parser_keeps_the_report(reply, kept):
    answer = parse_report(reply)
    assert answer.valid and answer.value == kept


@pytest.mark.parametrize(("reply", "reason"), [
    (None, "error"),
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("Findings:", "empty"),
    ("**Findings:** ", "empty"),
    ("I cannot provide a diagnosis based on this image.", "refusal"),
    ("I'm sorry, but I can't help with that.", "refusal"),
    ("As an AI language model, I am unable to interpret medical images. Please consult a radiologist.", "refusal"),
])
def test_parser_invalid_with_reason(reply, reason):
    answer = parse_report(reply)
    assert not answer.valid and answer.reason == reason and answer.value is None


@pytest.mark.parametrize("name", ["report", "rexrank", "medevalkit-report", "multimedeval-report"])
def test_a_report_is_scored_never_right_or_wrong(name):
    preset = scoring.get(name)
    score = preset.score(report_sample(), "Findings: The heart is normal in size. The lungs are clear.")
    assert score.outcome is Outcome.SCORED
    assert score.extra and all(0.0 <= v <= 1.0 for v in score.extra.values())
    assert score.value == score.extra[preset.value_names[AnswerType.REPORT]]
    assert preset.score(report_sample(), "I cannot provide a diagnosis.").outcome is Outcome.INVALID


def test_reasoning_chain_is_removed_before_parsing():
    preset = scoring.get("report")
    score = preset.score(report_sample(), "<think>Frontal view; look at the heart.</think>Findings: Lungs are clear.")
    assert score.answer.value == "Lungs are clear."
    unfinished = preset.score(report_sample(), "<think>Frontal view; look at the heart")
    assert unfinished.outcome is Outcome.INVALID


def test_per_study_values_are_pycocoevalcap_s():
    score = scoring.get("report").score(report_sample(), REF)
    assert score.extra["rougeL"] == pytest.approx(1.0) and score.extra["bleu4"] == pytest.approx(1.0)
    # case and punctuation are the tokeniser's business: PTB lower-cases and drops punctuation
    assert scoring.get("report").score(report_sample(), REF.upper().replace(".", " !")).extra["rougeL"] == 1.0


def test_vqa_presets_have_no_rule_for_reports():
    sample = report_sample()
    for name in ("strict", "llava-med", "multimedeval", "medevalkit"):
        assert not scoring.get(name).applies(sample)
    assert scoring.get("report").applies(sample)
    closed = Sample(id="q", benchmark="x", question="Fracture?", answer="yes", answer_type=AnswerType.CLOSED)
    assert not scoring.get("report").applies(closed)


def test_rexrank_bleu2_is_cxr_report_metric_s():
    # prep_reports keeps the comma on "size," so it does not match "size"; fast_bleu smoothing 1 keeps a
    # missing bigram order from zeroing the score
    rex = scoring.get("rexrank").score(report_sample("heart size is normal."), "heart size, normal.")
    assert rex.extra["bleu2"] == pytest.approx(((3 / 4) * (1 / 3)) ** 0.5 * math.exp(1 - 5 / 4))
    no_bigram = scoring.get("rexrank").score(report_sample("heart size is normal"), "size heart")
    assert no_bigram.extra["bleu2"] == pytest.approx((1.0 * 0.1 / 1) ** 0.5 * math.exp(1 - 4 / 2))
