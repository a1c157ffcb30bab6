"""Report presets through medprobe.results.compute: corpus rows, study bootstrap, invalid apart, not-available rows."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from medprobe import results
from medprobe.textmetrics import coco, joined
from medprobe.textmetrics.corpus import StudyTable, paired, study_table
from medprobe.types import AnswerType, Generation, Record, Sample

REFS = ["The heart is normal in size. The lungs are clear.", "No pleural effusion or pneumothorax.",
        "Mild cardiomegaly. No focal consolidation.", "Left lower lobe atelectasis.",
        "Endotracheal tube 4 cm above the carina.", "The lungs are clear bilaterally."]
HYPS = ["Findings: The heart size is normal. Lungs are clear.", "No effusion. No pneumothorax.",
        "Heart is mildly enlarged. No consolidation.", "", "ET tube above the carina.",
        "I cannot provide a diagnosis."]


def records(hyps=HYPS, benchmark="iu-xray"):
    out = []
    for i, (ref, hyp) in enumerate(zip(REFS, hyps)):
        sample = Sample(id=f"s{i}", benchmark=benchmark, question="Describe the findings.", answer=ref,
                        answer_type=AnswerType.REPORT, metadata={"view": "PA"})
        out.append(Record(sample=sample, keys=(f"k{i}",), generations=(Generation(text=hyp),)))
    return out


@pytest.fixture(autouse=True)
def no_radeval(monkeypatch):
    monkeypatch.setitem(sys.modules, "radeval", None)


def test_report_rows_are_corpus_metrics_with_a_study_bootstrap():
    res = results.compute(records(), ["strict", "report", "rexrank"], seed=3)
    strict, rep, _ = res.presets  # strict has no rule for reports: an empty section, never accuracy
    assert strict.metrics == () and [p.preset for p in res.presets] == ["strict", "report", "rexrank"]
    rep = res.preset("report")
    valid = [0, 1, 2, 4]
    cands = [joined(HYPS[i].replace("Findings: ", "")) for i in valid]
    refs = [[joined(REFS[i])] for i in valid]
    expected = coco.corpus_bleu(cands, refs)
    bleu4 = rep.get("overall", "bleu4")
    assert bleu4.value == pytest.approx(expected[3], abs=1e-12)
    assert bleu4.n == 6 and bleu4.invalid == 2 and bleu4.correct == bleu4.wrong == 0
    assert bleu4.interval.startswith("bootstrap by study, 1000 resamples, 95% percentile")
    assert bleu4.ci_low <= bleu4.value <= bleu4.ci_high and bleu4.ci_low < bleu4.ci_high
    assert rep.get("overall", "cider").value == pytest.approx(coco.cider_scores(cands, refs).mean(), abs=1e-9)
    # the same seed gives the same interval
    again = results.compute(records(), ["report"], seed=3).preset("report").get("overall", "bleu4")
    assert (again.ci_low, again.ci_high) == (bleu4.ci_low, bleu4.ci_high)


def test_unavailable_metrics_are_rows_not_zeros():
    rex = results.compute(records(), ["rexrank"]).preset("rexrank")
    names = [m.metric for m in rex.metrics if m.subset == "overall"]
    assert names == ["bleu2", "bertscore", "semb_score", "radgraph_f1", "radcliq_v1", "ratescore", "green"]
    for m in rex.metrics:
        if m.metric != "bleu2":
            assert m.unavailable.startswith("not available:") and math.isnan(m.value)
    assert rex.get("overall", "bleu2").unavailable is None


def test_medevalkit_counts_invalid_reports_as_zero_in_its_means():
    mek = results.compute(records(), ["medevalkit-report"]).preset("medevalkit-report")
    from medprobe import scoring

    preset = scoring.get("medevalkit-report")
    per = [preset.score(r.sample, r.final.text) for r in records()]
    values = [s.extra["bleu1"] if s.extra else 0.0 for s in per]
    assert mek.get("overall", "bleu1").value == pytest.approx(sum(values) / 6)  # divided by every study


def test_vqa_runs_get_no_report_sections():
    sample = Sample(id="q", benchmark="vqa-rad", question="Fracture?", answer="yes", answer_type=AnswerType.CLOSED)
    res = results.compute([Record(sample=sample, keys=("k",), generations=(Generation(text="yes"),))],
                          ["strict", "report", "rexrank"])
    assert [p.preset for p in res.presets] == ["strict"]


def test_bootstrap_resamples_studies_not_tokens():
    table = study_table([h or "x" for h in HYPS], [[r] for r in REFS])
    # weights = how often each study is drawn: a study drawn twice counts its n-grams twice
    twice = np.array([[2, 0, 0, 0, 0, 0]], float)
    once = np.array([[1, 0, 0, 0, 0, 0]], float)
    # (corpus BLEU of one study drawn twice = that study's BLEU, up to pycocoevalcap's tiny/small constants)
    assert table.weighted("bleu2", twice)[0] == pytest.approx(table.weighted("bleu2", once)[0], rel=1e-6)
    assert table.weighted("bleu1", np.ones((1, 6)))[0] == pytest.approx(table.value("bleu1"))


def test_paired_comparison_resamples_the_same_studies():
    a = study_table(REFS, [[r] for r in REFS])  # perfect reports
    b = study_table([h or "x" for h in HYPS], [[r] for r in REFS])
    delta, low, high, p = paired(a, b, "bleu4", seed=1, n_resamples=200)
    assert delta > 0 and low <= delta <= high and low > 0 and p < 0.1
    same = paired(b, b, "rougeL", seed=1, n_resamples=200)
    assert same[0] == 0 and same[3] == 1.0
    with pytest.raises(ValueError):
        paired(a, StudyTable(b.bleu[:3], b.rouge[:3], b.cider[:3]), "bleu4")


def test_a_scripted_iu_xray_run_gets_report_rows(tmp_path, monkeypatch):
    import json

    from reportdata import iu_xray_r2gen
    from typer.testing import CliRunner

    from medprobe.cli import app
    from medprobe.store import read_records

    data = iu_xray_r2gen(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "iu-xray", "--data", str(data), "--model",
                                      "scripted/constant:Findings: The heart is normal in size. The lungs are clear.",
                                      "--out", str(out), "--max-errors", "1"])
    assert result.exit_code == 0, result.output
    assert "rexrank" not in (out / "results.json").read_text()  # clinical presets: when asked for
    assert CliRunner().invoke(app, ["score", str(out), "--preset", "rexrank"]).exit_code == 0
    stored = json.loads((out / "results.json").read_text())
    presets = {p["preset"]: p for p in stored["presets"]}
    assert presets["strict"]["metrics"] == [] and {"report", "rexrank"} <= set(presets)
    rows = {(m["subset"], m["metric"]): m for m in presets["report"]["metrics"]}
    _, records = read_records(out)
    answered = [r for r in records if r.answered]
    cands = [joined("The heart is normal in size. The lungs are clear.")] * len(answered)
    refs = [[joined(r.sample.answer)] for r in answered]
    assert rows[("overall", "bleu4")]["value"] == pytest.approx(coco.corpus_bleu(cands, refs)[3], abs=1e-12)
    assert rows[("overall", "bleu4")]["n"] == len(answered)
    green = {(m["subset"], m["metric"]): m for m in presets["rexrank"]["metrics"]}[("overall", "green")]
    assert green["unavailable"].startswith("not available:")
    # the stored results read back (a NaN value of a not-available row survives the round trip)
    results.Results.model_validate_json((out / "results.json").read_text())


def test_compare_two_report_runs_by_paired_study_bootstrap(tmp_path):
    import json

    from reportdata import iu_xray_r2gen
    from typer.testing import CliRunner

    from medprobe.cli import app

    data = iu_xray_r2gen(tmp_path)
    runs = []
    for name, text in (("good", "The heart is normal in size. The lungs are clear. No pneumothorax."), ("bad", "Fracture.")):
        out = tmp_path / name
        result = CliRunner().invoke(app, ["run", "iu-xray", "--data", str(data), "--model", f"scripted/constant:{text}",
                                          "--out", str(out), "--max-errors", "1"])
        assert result.exit_code == 0, result.output
        runs.append(str(out))
    result = CliRunner().invoke(app, ["compare", *runs, "--preset", "report", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    rows = {m["metric"]: m for m in body["metrics"]}
    assert body["n"] == 2 and rows["bleu1"]["difference"] > 0 and rows["bleu1"]["low"] <= rows["bleu1"]["difference"]
    assert body["interval"].startswith("paired bootstrap by study")
    text = CliRunner().invoke(app, ["compare", *runs, "--preset", "rexrank"]).output
    assert "not available" in text  # clinical metrics without radeval


def test_study_metrics_for_the_per_study_view():
    from medprobe import scoring
    from medprobe.scoring.report import study_metrics

    recs = records()
    per = study_metrics(scoring.get("report"), recs)
    assert sorted(per) == ["s0", "s1", "s2", "s4"]  # the valid reports only
    cands = [joined(HYPS[i].replace("Findings: ", "")) for i in (0, 1, 2, 4)]
    refs = [[joined(REFS[i])] for i in (0, 1, 2, 4)]
    assert [per[k]["cider"] for k in ("s0", "s1", "s2", "s4")] == pytest.approx(list(coco.cider_scores(cands, refs)))
    assert per["s0"]["rougeL"] == pytest.approx(coco.rouge_l_score(cands[0], refs[0]))
