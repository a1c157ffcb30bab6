"""The `medevalkit` preset: MedEvalKit's rule-based VQA and multiple-choice judges.

Expected values follow alibaba-damo-academy/MedEvalKit utils/utils.py and the VQA_RAD / SLAKE
`cal_metrics` flows, and were also checked against those official functions.
"""

import json
import shutil
from pathlib import Path

import pytest

from medprobe import pipeline
from medprobe.backends import BackendConfig
from medprobe.scoring._base import NEAREST_OPTION
from medprobe.scoring.medevalkit import MedEvalKit, extract_boxed_content, parse_response
from medprobe.types import AnswerType, Outcome, Sample

CLOSED, OPEN, MC = AnswerType.CLOSED, AnswerType.OPEN, AnswerType.MULTIPLE_CHOICE
OPTIONS = ("Pneumonia", "Pleural effusion", "Pneumothorax", "Normal")


def sample(answer, kind, benchmark="vqa-rad", options=()):
    return Sample(id="1", benchmark=benchmark, question="q?", answer=answer, answer_type=kind, options=options)


@pytest.mark.parametrize(
    ("gold", "text", "correct"),
    [
        # gold yes/no: exactly one of the substrings "yes"/"no", and the gold a substring
        ("yes", "Yes", True),
        ("No", "No.", True),
        ("no", "The lungs are normal", True),  # "normal" contains "no"
        ("no", "None", True),  # ... so does "none" (no VQA normalisation here)
        ("no", "I don't know", True),  # ... and "know"
        ("yes", "The eyes look fine", True),  # "eyes" contains "yes"
        ("yes", "Yes, no doubt.", False),  # both substrings: never correct
        ("yes", "Yes\nno", False),
        ("yes", "\\boxed{yes}", True),
        ("no", "<answer>no</answer>", True),
        ("yes", "Answer: yes", True),
        ("yes", "The answer is yes. However, no effusion.", False),  # text after the marker has both
        # other golds: exact match of the extracted response
        ("Left", "left", True),
        ("Left", "Left.", False),  # the open judge keeps periods
        ("liver", "Answer: liver", False),  # text after "answer:" keeps its leading space
        ("liver", "Answer:liver", True),
        ("liver", "\\boxed{Liver}", True),
        ("Right lung", " right lung ", True),  # VQA-RAD flow strips first
        ("MRI", "MRI, not CT", False),
        ("MRI", "<answer>MRI</answer>", True),
        ("Free air", "**Answer**: free air", False),
    ],
)
def test_vqa_rad_rules(gold, text, correct):
    kind = CLOSED if gold.lower() in {"yes", "no", "left", "mri"} else OPEN
    score = MedEvalKit().score(sample(gold, kind), text)
    assert score.value == float(correct)
    assert score.outcome is (Outcome.CORRECT if correct else Outcome.WRONG)


def test_vqa_rad_closed_vs_open_comes_from_the_gold():
    # an OPEN question whose gold is "no" still gets the yes/no substring rule
    assert MedEvalKit().score(sample("no", OPEN), "Not seen").value == 1.0
    assert MedEvalKit().score(sample("no", OPEN), "Not seen").answer.method == "yes_no_substring"


@pytest.mark.parametrize(
    ("gold", "kind", "text", "correct"),
    [
        ("Yes", CLOSED, "yes", True),  # capitalised gold: exact rule, not the yes/no rule
        ("Yes", CLOSED, "Yes, it is", False),
        ("yes", CLOSED, "Yes, it is", True),  # lowercase gold: yes/no substring rule
        ("Left", CLOSED, "Left.", True),  # the closed exact rule deletes periods
        ("Left", CLOSED, " left", False),  # SLAKE flow does not strip
        ("Brain", OPEN, "brain", True),
        ("Brain", OPEN, "Brain.", False),
        ("Brain", OPEN, "brain ", False),
    ],
)
def test_slake_rules(gold, kind, text, correct):
    assert MedEvalKit().score(sample(gold, kind, "slake"), text).value == float(correct)


@pytest.mark.parametrize(
    ("gold", "text", "picked", "method", "correct"),
    [
        ("B", "B", "B", "exact", True),
        ("B", "b. Pleural effusion", "B", "exact", True),
        ("B", "Pleural effusion", "pleural effusion", "option_text", True),
        ("C", "Answer: C", "C", "exact", True),
        ("A", "D", "D", "letter", False),
        ("A", "I think it's pneumonia", "A", NEAREST_OPTION, True),
        ("A", "E", "A", NEAREST_OPTION, True),  # out-of-range letter -> most similar option
        ("D", "no", "D", NEAREST_OPTION, True),  # "no" is most like "Normal": right by chance
    ],
)
def test_multiple_choice(gold, text, picked, method, correct):
    score = MedEvalKit().score(sample(gold, MC, "pmc-vqa", OPTIONS), text)
    assert (score.answer.value, score.answer.method, score.value) == (picked, method, float(correct))
    assert score.answer.fallback is (method == NEAREST_OPTION)  # every nearest-option pick is marked


def test_nearest_option_picks_are_counted_per_row_and_shown(tmp_path, monkeypatch):
    image = next((Path(__file__).parent / "fixtures" / "vqa_rad" / "images").glob("*.jpg"))
    shutil.copy(image, tmp_path / "x.jpg")
    rows = [{"id": f"m{i}", "image": "x.jpg", "question": f"What is shown? ({i})", "options": list(OPTIONS), "answer": "D"}
            for i in range(3)]  # fmt: skip
    path = tmp_path / "mc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(pipeline, "default_presets", lambda: ["strict", "medevalkit"])
    spec = pipeline.RunSpec(benchmark=str(path), backend=BackendConfig(provider="scripted", model="constant:no"))
    res = pipeline.run(spec, tmp_path / "run")
    kit, strict = res.preset("medevalkit").get(), res.preset("strict").get()
    assert (kit.value, kit.fallback) == (1.0, 3)  # the official rule: 100%, all of it from the fallback
    assert (strict.value, strict.invalid, strict.fallback) == (0.0, 3, 0)
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "| invalid | fallback | parser |" in summary
    kit_row = next(line for line in summary.splitlines() if line.startswith("| `medevalkit` | overall |"))
    assert kit_row.endswith("| 0 | 3 | medevalkit-rules |")  # invalid 0, fallback 3


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("\\boxed{yes}", "yes"),
        ("a \\boxed{x} then \\boxed{ {y} }", "{y}"),
        ("no box", "None"),
        ("\\boxed{open", "None"),
    ],
)
def test_extract_boxed_content(text, content):
    assert extract_boxed_content(text) == content


def test_parse_response_applies_every_marker_in_order():
    assert parse_response("Final answer: The answer is B") == " b"
    assert parse_response("boxed but no box") == "None"  # mathruler returns the string "None"


def test_generation_error_is_invalid():
    score = MedEvalKit().score(sample("yes", CLOSED), None)
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, "error")


MXQ_OPTIONS = ("Pneumonia", "Pleural effusion", "Rib fracture", "Normal study", "Aortic dissection")


@pytest.mark.parametrize(
    ("text", "picked", "method", "correct"),
    [
        ("B", "B", "exact", True),
        ("b. Pleural effusion", "B", "exact", True),
        # choices are "A. text": an option's bare text never equals one, so only the similarity finds it
        ("Pleural effusion", "B", NEAREST_OPTION, True),
        ("<answer>Pleural effusion</answer>", "B", NEAREST_OPTION, True),
        # extract(response, "answer") runs first, before the "boxed" test of parse_response
        ("<answer>C</answer>\n\nExplanation: the boxed answer", "C", "letter", False),
        ("<answer>b</answer>\n\nboxed", "B", "exact", True),
        ("Normal", "D", NEAREST_OPTION, False),
    ],
)
def test_medxpertqa_rule(text, picked, method, correct):
    """utils/MedXpertQA/MedXpertQA.py: judge_multi_choice(["A. text", ...], label, extract(response, "answer"))."""
    score = MedEvalKit().score(sample("B", MC, "medxpertqa-mm", MXQ_OPTIONS), text)
    assert (score.answer.value, score.answer.method, score.value) == (picked, method, float(correct))
    assert score.answer.fallback is (method == NEAREST_OPTION)


def test_medxpertqa_rule_differs_from_the_generic_multiple_choice_rule():
    # the generic rule (PMC-VQA, OmniMedVQA, ...) reads "boxed" first and finds no box: a nearest-option pick
    generic = MedEvalKit().score(sample("B", MC, "pmc-vqa", MXQ_OPTIONS), "<answer>b</answer>\n\nboxed")
    assert (generic.value, generic.answer.fallback) == (0.0, True)
    plain = MedEvalKit().score(sample("B", MC, "pmc-vqa", MXQ_OPTIONS), "Pleural effusion")
    assert (plain.answer.method, plain.answer.fallback) == ("option_text", False)


@pytest.mark.parametrize("text", ["", " ", ".", "...", "Answer:", "\\boxed{}"])
@pytest.mark.parametrize("benchmark", ["vqa-rad", "slake-en"])
def test_empty_open_answer_is_wrong_where_the_official_judge_crashes(text, benchmark):
    """MedEvalKit's judge_open_end_vqa raises on these (rouge: "Hypothesis is empty.", or calculate_f1's bare
    0 unpacked into three names), so the official run stops; medprobe scores the answer 0, as exact match."""
    score = MedEvalKit().score(sample("liver", OPEN, benchmark), text)
    assert (score.outcome, score.value, score.answer.method) == (Outcome.WRONG, 0.0, "open_exact")
