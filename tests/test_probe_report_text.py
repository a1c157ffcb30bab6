"""blind and corrupt on report studies: text similarity (ROUGE-L, corpus BLEU-4 from medprobe.textmetrics)
of the variant's report to the seeing one and to the reference, paired by study; invalid reports counted,
never compared as empty text; questions in the same run keep their accuracy figures."""

from __future__ import annotations

import numpy as np
import pytest

from medprobe import probes, textmetrics
from medprobe.probes import Group, ProbeSpec, blind, corrupt
from medprobe.probes._kit import variant
from medprobe.types import AnswerType, Generation, ImageRef, Record, Sample

IMG = ImageRef(data=b"not decoded here", name="x.png")

# study -> (reference, seeing report)
STUDIES = {
    "s0": ("Small left pleural effusion. Heart size is normal.", "Small left pleural effusion. Normal heart size."),
    "s1": ("Right lower lobe pneumonia.", "Right lower lobe consolidation, likely pneumonia."),
    "s2": ("Cardiomegaly without edema.", "The heart is enlarged. No pulmonary edema."),
    "s3": ("No acute cardiopulmonary process.", "No acute cardiopulmonary process."),
}
TEMPLATE = "No acute cardiopulmonary process. Heart size is normal."


def study(sid: str, kind: AnswerType = AnswerType.REPORT, answer: str | None = None) -> Sample:
    return Sample(id=sid, benchmark="iu-xray", question="", images=(IMG,), answer=answer or STUDIES[sid][0],
                  answer_type=kind)  # fmt: skip


def rec(sample: Sample, text: str | None) -> Record:
    gen = Generation(text=text) if text is not None else Generation(error="HTTP 500", error_kind="server_error")
    return Record(sample=sample, keys=("k",), generations=(gen,))


def groups_for(probe: str, name: str, replies: dict[str, str], detail: dict | None = None) -> dict[str, Group]:
    out = {}
    for sid, (_, seeing) in STUDIES.items():
        parent = study(sid)
        child = variant(parent, probe, name, detail=detail)
        out[sid] = Group(rec(parent, seeing), (rec(child, replies[sid]),))
    return out


def fig(result, name: str, **detail):
    return next(m for m in (*result.headline, *result.rows)
                if m.name == name and all(m.detail.get(k) == v for k, v in detail.items()))  # fmt: skip


def test_blind_reports_similarity_to_seeing_and_reference():
    # a template model: the same report for every study without the image; s3's blind report is empty (invalid)
    replies = {sid: TEMPLATE for sid in STUDIES} | {"s3": "  "}
    res = blind.analyze(groups_for("blind", "none", replies), "strict", seed=0)
    ids = ["s0", "s1", "s2"]
    seeing = [STUDIES[s][1] for s in ids]
    refs = [STUDIES[s][0] for s in ids]
    to_seeing = fig(res, "rouge_l_to_seeing", variant="none")
    assert to_seeing.value == pytest.approx(np.mean([textmetrics.rouge_l(TEMPLATE, s) for s in seeing]))
    assert to_seeing.n == 3 and to_seeing.ci_low <= to_seeing.value <= to_seeing.ci_high
    assert fig(res, "bleu4_to_seeing").value == pytest.approx(textmetrics.bleu([TEMPLATE] * 3, seeing))
    assert fig(res, "bleu4_to_reference").value == pytest.approx(textmetrics.bleu([TEMPLATE] * 3, refs))
    drop = np.mean([textmetrics.rouge_l(s, r) - textmetrics.rouge_l(TEMPLATE, r) for s, r in zip(seeing, refs)])
    assert fig(res, "rouge_l_drop").value == pytest.approx(drop)
    bleu_drop = textmetrics.bleu(seeing, refs) - textmetrics.bleu([TEMPLATE] * 3, refs)
    assert fig(res, "bleu4_drop").value == pytest.approx(bleu_drop)
    assert fig(res, "invalid_rate").value == pytest.approx(1 / 4)  # the empty blind report: counted, not compared
    # the clean reports against the references, over all four studies
    assert fig(res, "clean_rouge_l").n == 4
    assert {m.name for m in res.headline} == {"rouge_l_to_seeing", "bleu4_to_seeing", "rouge_l_drop"}


def test_a_model_that_ignores_the_image_writes_the_same_report():
    res = blind.analyze(groups_for("blind", "blank", {s: v[1] for s, v in STUDIES.items()}), "strict", seed=0)
    assert fig(res, "rouge_l_to_seeing").value == pytest.approx(1.0)
    assert fig(res, "rouge_l_drop").value == pytest.approx(0.0)
    assert fig(res, "bleu4_drop").value == pytest.approx(0.0, abs=1e-12)
    # paired by study: the same studies drawn for both reports, so a drop of 0 everywhere has a 0-width interval
    for name in ("rouge_l_drop", "bleu4_drop"):
        assert (fig(res, name).ci_low, fig(res, name).ci_high) == pytest.approx((0.0, 0.0), abs=1e-12)


def test_corrupt_reports_metric_drop_per_cell():
    noisy = {"s0": "Left effusion.", "s1": "Pneumonia.", "s2": "Heart enlarged.", "s3": "No acute process."}
    res = corrupt.analyze(groups_for("corrupt", "jpeg@5", noisy, {"corruption": "jpeg", "severity": 5}), "strict", 0)
    ids = list(STUDIES)
    refs, seeing = [STUDIES[s][0] for s in ids], [STUDIES[s][1] for s in ids]
    probed = [noisy[s] for s in ids]
    cell = {"corruption": "jpeg", "severity": 5}
    assert fig(res, "rouge_l", **cell).value == pytest.approx(np.mean([textmetrics.rouge_l(p, r) for p, r in zip(probed, refs)]))
    want = textmetrics.bleu(seeing, refs) - textmetrics.bleu(probed, refs)
    assert fig(res, "bleu4_drop", **cell).value == pytest.approx(want)
    assert fig(res, "worst_bleu4_drop").value == pytest.approx(want)
    assert fig(res, "rouge_l_to_clean", **cell).n == 4
    assert {m.name for m in res.headline} >= {"worst_rouge_l_drop", "worst_bleu4_drop", "clean_rouge_l"}


def test_questions_beside_reports_keep_their_accuracy_figures():
    groups = groups_for("blind", "none", {sid: TEMPLATE for sid in STUDIES})
    q = Sample(id="q1", benchmark="iu-xray", question="Is there an effusion?", images=(IMG,), answer="yes",
               answer_type=AnswerType.CLOSED)  # fmt: skip
    groups["q1"] = Group(rec(q, "yes"), (rec(variant(q, "blind", "none"), "no"),))
    res = blind.analyze(groups, "strict", seed=0)
    gap = fig(res, "blind_gap", variant="none")
    assert (gap.value, gap.n) == (1.0, 1)  # the question alone: right seeing, wrong blind
    assert fig(res, "rouge_l_to_seeing").n == 4


def test_failed_variant_requests_are_counted_not_compared():
    replies = {sid: TEMPLATE for sid in STUDIES} | {"s1": None}
    groups = groups_for("blind", "none", replies)
    groups["s1"] = Group(groups["s1"].parent, (), groups["s1"].variants)  # as probes.analyze groups a failure
    res = probes.analyze([ProbeSpec(name="blind")], [*(g.parent for g in groups.values()),
                                                     *(v for g in groups.values() for v in (*g.variants, *g.failed))],
                         "strict")[0]  # fmt: skip
    m = fig(res, "rouge_l_to_seeing")
    assert (m.n, m.failed, res.failed) == (3, 1, 1)
