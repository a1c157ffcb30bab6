"""The `strict` preset (medprobe's default) and the lazy preset registry."""

import subprocess
import sys

import pytest

from medprobe import scoring
from medprobe.scoring.strict import Strict
from medprobe.types import AnswerType, Outcome, Sample

CLOSED, OPEN, MC = AnswerType.CLOSED, AnswerType.OPEN, AnswerType.MULTIPLE_CHOICE
OPTIONS = ("Pneumonia", "Pleural effusion", "Pneumothorax", "Normal")


def sample(answer, kind, options=()):
    return Sample(id="1", benchmark="vqa-rad", question="q?", answer=answer, answer_type=kind, options=options)


@pytest.mark.parametrize(
    ("gold", "kind", "text", "outcome"),
    [
        ("Yes", CLOSED, "Yes, there is consolidation.", Outcome.CORRECT),
        ("yes", CLOSED, "There is no evidence of aneurysm.", Outcome.WRONG),  # parsed as "no"
        ("No", CLOSED, "The lungs appear normal.", Outcome.INVALID),  # llava-med would count "normal" as no
        ("No", CLOSED, "Not sure.", Outcome.INVALID),  # ... and "not sure" as a hit
        ("yes", CLOSED, "The eyes are unremarkable.", Outcome.INVALID),  # ... and "eyes" as yes
        ("No", CLOSED, "Yes or no", Outcome.INVALID),
        ("No", CLOSED, "I cannot determine this from the image.", Outcome.INVALID),
        ("no", CLOSED, "<answer>no</answer>", Outcome.CORRECT),
        ("是", CLOSED, "是的", Outcome.CORRECT),
        ("否", CLOSED, "是", Outcome.WRONG),
        # closed questions whose gold is not yes/no fall back to open exact match
        ("MRI", CLOSED, "MRI.", Outcome.CORRECT),
        ("Left", CLOSED, "Left side", Outcome.WRONG),
        ("Right side", CLOSED, "the right side", Outcome.CORRECT),  # articles dropped
        # open
        ("Pulmonary nodules", OPEN, "pulmonary nodules.", Outcome.CORRECT),
        ("one", OPEN, "1", Outcome.CORRECT),  # number words to digits
        ("x-ray", OPEN, "X ray", Outcome.CORRECT),
        ("Right lung", OPEN, "left lung", Outcome.WRONG),
        ("Free air", OPEN, "free free free", Outcome.WRONG),  # no recall inflation
        ("Axial", OPEN, "Answer: axial", Outcome.CORRECT),
        ("Axial", OPEN, "", Outcome.INVALID),
        # multiple choice: gold is the letter
        ("B", MC, "B", Outcome.CORRECT),
        ("B", MC, "Answer: (C) Pneumothorax", Outcome.WRONG),
        ("A", MC, "A mass is seen", Outcome.INVALID),
        ("B", MC, "A or B", Outcome.INVALID),
        ("B", MC, "E", Outcome.INVALID),
    ],
)
def test_outcomes(gold, kind, text, outcome):
    score = Strict().score(sample(gold, kind, OPTIONS if kind is MC else ()), text)
    assert score.outcome is outcome
    assert score.value == (1.0 if outcome is Outcome.CORRECT else 0.0)
    assert score.preset == "strict"


def test_parser_and_method_are_named():
    score = Strict().score(sample("yes", CLOSED), "Answer: yes")
    assert (score.parser, score.answer.parser, score.answer.method) == ("yes_no", "yes_no", "answer_prefix")
    assert Strict().score(sample("MRI", CLOSED), "MRI").parser == "open"  # non-yes/no gold
    assert Strict().score(sample("B", MC, OPTIONS), "B").parser == "letter"


def test_invalid_carries_the_parser_reason():
    score = Strict().score(sample("no", CLOSED), "yes/no")
    assert (score.outcome, score.answer.reason) == (Outcome.INVALID, "both_yes_and_no")


@pytest.mark.parametrize(("kind", "parser"), [(CLOSED, "yes_no"), (OPEN, "open"), (MC, "letter")])
def test_generation_error_is_invalid(kind, parser):
    score = Strict().score(sample("B" if kind is MC else "yes", kind, OPTIONS if kind is MC else ()), None)
    assert (score.outcome, score.value, score.answer.reason, score.parser) == (Outcome.INVALID, 0.0, "error", parser)


@pytest.mark.parametrize(
    ("gold", "text", "f1"),
    [("right upper lobe", "upper lobe", 0.8), ("the left lung", "left lung", 1.0), ("pneumonia", "effusion", 0.0)],
)
def test_open_token_f1(gold, text, f1):
    assert Strict().score(sample(gold, OPEN), text).extra["token_f1"] == pytest.approx(f1)


def test_multiple_choice_without_option_texts_accepts_any_letter():
    assert Strict().score(sample("F", MC), "F").outcome is Outcome.CORRECT


# ---------------------------------------------------------------- registry


def test_registry_names_and_lookup():
    assert scoring.names()[0] == "strict"
    assert set(scoring.names()) == {"strict", "llava-med", "multimedeval", "lmms-eval", "medevalkit", "mediconfusion",
                                    "probmed", "probmed-strict", "smmile-em", "smmile-mcqa", "smmile-mcqa-open",
                                    "vlmevalkit-mcq", "mmmu", "medgemma-vqa", "report", "rexrank", "medevalkit-report",
                                    "multimedeval-report"}
    for name in scoring.names():
        preset = scoring.get(name)
        assert preset.name == name
        assert scoring.get(name) is preset
    assert scoring.get("LLaVA_Med").name == "llava-med"


def test_registry_describe():
    described = scoring.describe()
    assert set(described) == set(scoring.names())
    assert "run_eval.py" in described["llava-med"][1]
    assert all(desc and reproduces for desc, reproduces in described.values())


def test_unknown_preset_lists_available():
    with pytest.raises(ValueError, match="Available presets: strict, llava-med"):
        scoring.get("vqa-accuracy")


def test_registry_imports_nothing_at_import_time():
    code = "import sys, medprobe.scoring; print(sorted(m for m in sys.modules if m.startswith('medprobe')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['medprobe', 'medprobe.scoring']"
