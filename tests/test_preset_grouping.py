"""Closed/open rows grouped as the official scripts group them (`Preset.group_of`).

MultiMedEval's `VQA.evaluate` and MedEvalKit's VQA_RAD.py / PATH_VQA.py `cal_metrics` call a question
closed when its gold is yes/no, whatever the dataset's answer_type says, and report closedQuestionsAccuracy
(MedEvalKit: "close" acc) over exactly those questions. SLAKE.py groups by answer_type. The expected
numbers below are counted by hand from the seven rows.
"""

from __future__ import annotations

import pytest

from medprobe.metrics import DATASET_ANSWER_TYPE
from medprobe.results import compute
from medprobe.types import AnswerType, Generation, Record, Sample

CLOSED, OPEN = AnswerType.CLOSED, AnswerType.OPEN
# (dataset answer_type, gold, reply) in the VQA-RAD layout: row 4 is a dataset-OPEN question with a yes
# gold, row 5 a dataset-CLOSED question with gold "MRI" (21 such rows in the real VQA-RAD test split)
ROWS = [
    (CLOSED, "yes", "yes"),  # 1 right under both
    (CLOSED, "no", "yes"),  # 2 wrong
    (CLOSED, "no", "no"),  # 3 right
    (OPEN, "yes", "Yes."),  # 4 right (both use their yes/no rule: the gold decides)
    (CLOSED, "MRI", "CT"),  # 5 wrong (both use their open rule)
    (OPEN, "liver", "liver"),  # 6 right
    (OPEN, "right lung", "the right lung"),  # 7 MultiMedEval: recall 1 -> right; MedEvalKit: not exact -> wrong
]


def records(benchmark: str = "vqa-rad") -> list[Record]:
    return [Record(sample=Sample(id=str(i), benchmark=benchmark, question=f"q{i}?", answer=gold, answer_type=kind),
                   generations=(Generation(text=reply),))
            for i, (kind, gold, reply) in enumerate(ROWS, 1)]  # fmt: skip


def rows(benchmark: str, preset: str) -> dict[str, tuple[int, int]]:
    """subset -> (correct, n) of the preset's accuracy rows over the answer-type groupings."""
    metrics = compute(records(benchmark), [preset], cluster="none").preset(preset).metrics
    return {m.subset: (m.correct, m.n) for m in metrics
            if m.metric == "accuracy" and ("=" not in m.subset or m.subset.startswith(DATASET_ANSWER_TYPE))}


@pytest.mark.parametrize(("preset", "official"), [
    # closedQuestionsAccuracy over rows 1-4 = 3/4; openQuestionsAccuracy over rows 5-7 = 2/3
    ("multimedeval", {"closed": (3, 4), "open": (2, 3)}),
    # "close" acc over rows 1-4 = 3/4; "open" acc (exact match) over rows 5-7 = 1/3
    ("medevalkit", {"closed": (3, 4), "open": (1, 3)}),
])
def test_official_presets_group_closed_and_open_by_the_gold(preset, official):
    got = rows("vqa-rad", preset)
    assert {k: got[k] for k in ("closed", "open")} == official
    # the dataset's grouping stays as its own named rows: closed = rows 1, 2, 3, 5; open = rows 4, 6, 7
    dataset_open = (3, 3) if preset == "multimedeval" else (2, 3)
    assert got[f"{DATASET_ANSWER_TYPE}=closed"] == (2, 4)
    assert got[f"{DATASET_ANSWER_TYPE}=open"] == dataset_open
    assert got["overall"] == (official["closed"][0] + official["open"][0], 7)  # regrouping moves no sample


def test_multimedeval_open_recall_is_averaged_over_its_own_open_group():
    metrics = compute(records(), ["multimedeval"], cluster="none").preset("multimedeval")
    recall = metrics.get("open", "recall")  # openQuestionsRecall: rows 5, 6, 7 -> (0 + 1 + 1) / 3
    assert (recall.n, recall.value) == (3, pytest.approx(2 / 3))


def test_medevalkit_groups_slake_by_answer_type_and_adds_no_dataset_rows():
    got = rows("slake-en", "medevalkit")  # SLAKE.py: `if answer_type == "OPEN"`
    assert got["closed"][1] == 4 and got["open"][1] == 3
    assert not any(k.startswith(DATASET_ANSWER_TYPE) for k in got)


def test_presets_grouping_by_the_dataset_are_unchanged():
    got = rows("vqa-rad", "strict")
    assert (got["closed"][1], got["open"][1]) == (4, 3)  # rows 1, 2, 3, 5 and rows 4, 6, 7
    assert not any(k.startswith(DATASET_ANSWER_TYPE) for k in got)
