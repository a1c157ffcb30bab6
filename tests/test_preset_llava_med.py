"""The `llava-med` preset against the official LLaVA-Med v1.0 evaluation.

Golden numbers. `tests/fixtures/llava_med/vqa_rad_golden.jsonl` holds 58 hand-written predictions
(33 closed, 25 open) over real VQA-RAD test rows (qid, question, gold and answer_type copied from
`shared/data/vqa_rad/vqa_rad_public.json`). The expected numbers were produced by running the
*unmodified* official script microsoft/LLaVA-Med `llava/eval/run_eval.py` at commit b9a98a7 (with
its `eval_metrics/` package; Python 3.11, nltk 3.10.4, tabulate 0.10.0, pandas 3.1.1) in a throwaway
venv, on the fixture converted to its input format (a test.json of {id, answer_type,
conversations: [question, gold]}, a prediction jsonl of {question_id, text}, and a candidate file
of the open golds that only its unused "open accuracy" needs):

    python run_eval.py --gt vqa_rad/test.json --pred vqa_rad/pred.jsonl --candidate vqa_rad/candidate.json
    ...
    recall              64.0333
    yes/no accuracy     60.6061

(the script prints "num_open 33 || num_close 25": its two labels are swapped). Every per-item
value also matched the official functions.
"""

import json
from pathlib import Path

import pytest

from medprobe.scoring.llava_med import LlavaMed
from medprobe.types import AnswerType, Outcome, Sample

FIXTURE = Path(__file__).parent / "fixtures" / "llava_med" / "vqa_rad_golden.jsonl"
OFFICIAL_CLOSED_ACCURACY = 60.6061  # run_eval.py "yes/no accuracy"
OFFICIAL_OPEN_RECALL = 64.0333  # run_eval.py "recall"

CLOSED, OPEN = AnswerType.CLOSED, AnswerType.OPEN


def sample(answer, kind, benchmark="vqa-rad"):
    return Sample(id="1", benchmark=benchmark, question="q?", answer=answer, answer_type=kind)


def test_golden_vqa_rad_matches_official_script():
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    preset = LlavaMed()
    values = {CLOSED: [], OPEN: []}
    for row in rows:
        kind = AnswerType(row["answer_type"].lower())
        s = Sample(id=row["qid"], benchmark="vqa-rad", question=row["question"], answer=row["answer"], answer_type=kind)
        values[kind].append(preset.score(s, row["text"]).value)
    assert (len(values[CLOSED]), len(values[OPEN])) == (33, 25)
    assert 100 * sum(values[CLOSED]) / 33 == pytest.approx(OFFICIAL_CLOSED_ACCURACY, abs=0.01)
    assert 100 * sum(values[OPEN]) / 25 == pytest.approx(OFFICIAL_OPEN_RECALL, abs=0.01)


@pytest.mark.parametrize(
    ("gold", "text", "hit"),
    [
        ("yes", "Yes", 1.0),
        ("No", "The lung fields appear normal.", 1.0),  # "normal" contains "no"
        ("No", "Not sure.", 1.0),  # "not" contains "no"
        ("No", "It's unknown.", 1.0),  # "unknown" contains "no"
        ("No", "The lungs show a nodule.", 1.0),
        ("yes", "The eyes are unremarkable.", 1.0),  # "eyes" contains "yes"
        ("No", "Yes, there is no evidence of disease", 1.0),  # both words present: gold "no" is in it
        ("yes", "Yes, no doubt.", 1.0),
        ("yes", "There is no evidence of small bowel thickening.", 0.0),
        ("yes", "I don't know.", 0.0),  # "know" contains "no", gold "yes" absent
        ("No", "None", 0.0),  # "none" is normalised to "0" first: no "no" left
        ("No", "Negative.", 0.0),  # no yes/no substring at all
        ("yes", "Y-e-s", 0.0),  # "-" becomes a space: "y e s"
        ("yes", "", 0.0),
        # closed questions whose gold is not yes/no still need a yes/no substring
        ("Left", "Left", 0.0),
        ("one", "There is one metastatic focus.", 0.0),
        ("MRI", "MRI, not CT", 1.0),
        ("abnormal", "Normal", 0.0),
        ("Female", "The patient is female; no male features.", 1.0),
    ],
)
def test_closed_substring_rule(gold, text, hit):
    score = LlavaMed().score(sample(gold, CLOSED), text)
    assert score.value == hit
    assert score.outcome is (Outcome.CORRECT if hit else Outcome.WRONG)
    assert score.parser == "llava-med-substring"


@pytest.mark.parametrize(
    ("gold", "text", "recall"),
    [
        ("Free air", "free air", 1.0),
        ("Pulmonary nodules", "Nodules are seen in both lungs.", 0.5),
        ("Free air", "free free free", 0.75),  # tp counts "free" 3 times, fn counts "air" once
        ("A bullous lesion", "bullous bullous bullous", 0.75),  # article dropped from the gold
        ("one", "One lesion", 1.0),  # number word -> "1" on both sides
        ("Not seen here", "none", 0.0),
        ("PA", "P.A.", 1.0),
        ("pulmonary/lymphatic", "pulmonary", 0.5),  # "/" splits the gold in two words
        ("It is less than half the width of the thorax", "less than half", 0.375),
        ("fat", "I'm not sure, it could be fat or fluid", 1.0),  # verbose hedges keep full recall
        ("Axial", "axial" + "." * 70, 0.0),  # 2 passes x 32 periods removed: "axial......" remains
        ("Axial", "axial" + "." * 60, 1.0),  # 60 periods fit in the two passes
        ("Axial", "", 0.0),
    ],
)
def test_open_recall(gold, text, recall):
    score = LlavaMed().score(sample(gold, OPEN), text)
    assert score.value == pytest.approx(recall)
    assert score.outcome is (Outcome.CORRECT if recall == 1.0 else Outcome.WRONG)
    assert score.parser == "llava-med-recall"


def test_open_extra_reports_precision_and_f1():
    score = LlavaMed().score(sample("Right lung", OPEN), "left lung")
    assert score.extra == pytest.approx({"precision": 0.5, "f1": 0.5})


def test_value_names_say_recall_for_open():
    assert LlavaMed.value_names == {CLOSED: "accuracy", OPEN: "recall"}


def test_generation_error_is_invalid():
    score = LlavaMed().score(sample("yes", CLOSED), None)
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, "error")


def test_multiple_choice_is_unsupported_not_guessed():
    # run_eval.py skips answer types other than CLOSED/OPEN; the pipeline scores every preset, so no raise
    mc = Sample(
        id="7", benchmark="pmc-vqa", question="q", answer="A", options=("x", "y"), answer_type=AnswerType.MULTIPLE_CHOICE
    )
    score = LlavaMed().score(mc, "A")
    assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, "unsupported_answer_type")
    assert AnswerType.MULTIPLE_CHOICE not in LlavaMed.value_names
