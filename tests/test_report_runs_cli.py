"""Report runs as a new user meets them: on-request clinical presets, a misspelt --preset, a run whose every
request failed, the baselines' report floor, and the views of a report run (CIDEr shown as a score, the
headline metric, NaN probe values read back)."""

from __future__ import annotations

import asyncio
import json
import math
import sys

import pytest
from reportdata import IU_REPORTS, iu_xray_r2gen
from typer.testing import CliRunner

from medprobe.cli import app

REPORT = "Findings: The heart is normal in size. The lungs are clear."


@pytest.fixture(autouse=True)
def no_radeval(monkeypatch):
    monkeypatch.setitem(sys.modules, "radeval", None)


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def presets_of(run) -> dict:
    return {p["preset"]: p for p in json.loads((run / "results.json").read_text())["presets"]}


@pytest.fixture
def iu_run(tmp_path):
    data = iu_xray_r2gen(tmp_path)
    out = tmp_path / "run"
    result = cli("run", "iu-xray", "--data", data, "--model", f"scripted/constant:{REPORT}", "--out", out,
                 "--max-errors", "1")
    assert result.exit_code == 0, result.output
    return data, out


def test_clinical_presets_are_scored_when_named_and_then_kept(iu_run):
    """rexrank / medevalkit-report / multimedeval-report load models: a plain run leaves them out, naming
    one scores it and saves it beside the others, and a later rescore keeps it."""
    _, out = iu_run
    assert "report" in presets_of(out) and not {"rexrank", "medevalkit-report"} & set(presets_of(out))
    result = cli("score", out, "--preset", "rexrank")
    assert result.exit_code == 0, result.output
    assert "bleu2" in result.output and "not available" in result.output  # its table, clinical rows n/a
    assert {"report", "rexrank"} <= set(presets_of(out))
    assert "rexrank" in (out / "summary.md").read_text()
    assert cli("score", out).exit_code == 0  # a plain rescore keeps what was asked for
    assert {"report", "rexrank"} <= set(presets_of(out))
    # a VQA preset named to score stays a view of one preset: results.json is not overwritten with it alone
    assert cli("score", out, "--preset", "medevalkit-report").exit_code == 0
    assert {"report", "rexrank", "medevalkit-report"} <= set(presets_of(out))


def test_run_with_an_on_request_preset_saves_it(tmp_path):
    data = iu_xray_r2gen(tmp_path)
    out = tmp_path / "run"
    result = cli("run", "iu-xray", "--data", data, "--model", f"scripted/constant:{REPORT}", "--out", out,
                 "--preset", "rexrank", "--max-errors", "1")
    assert result.exit_code == 0, result.output
    assert {"report", "rexrank"} <= set(presets_of(out))


def test_a_misspelt_preset_fails_before_anything_is_sent(tmp_path):
    data = iu_xray_r2gen(tmp_path)
    out = tmp_path / "run"
    result = cli("run", "iu-xray", "--data", data, "--model", f"scripted/constant:{REPORT}", "--out", out,
                 "--preset", "rexrnk")
    assert result.exit_code == 2
    assert "rexrnk" in result.output and "rexrank" in result.output  # says which presets exist
    assert not (out / "records.sqlite").exists()


def test_a_report_run_whose_every_request_failed_says_nothing_was_scored(tmp_path):
    from medprobe.backends.scripted import register_function

    def fail(request):
        raise RuntimeError("server down")

    register_function("report-all-fail", fail)
    data = iu_xray_r2gen(tmp_path)
    out = tmp_path / "run"
    result = cli("run", "iu-xray", "--data", data, "--model", "scripted/fn:report-all-fail", "--out", out,
                 "--max-errors", "100")
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "preset report: nothing scored (0 of 3 samples answered" in " ".join(result.output.split())
    assert "by question" not in result.output  # no interval line for rows that do not exist
    assert presets_of(out)["report"]["metrics"] == []  # the preset is there, with nothing in it
    page = cli("report", out, "--out", tmp_path / "rep")
    assert page.exit_code == 0 and page.exception is None, page.output
    assert (tmp_path / "rep" / "index.html").exists()


def test_prior_floor_on_reports_is_the_most_frequent_train_report():
    from medprobe.backends import BackendConfig, create
    from medprobe.backends._base import PermanentError
    from medprobe.types import AnswerType, Request, Sample

    def s(i, report, split="train"):
        return Sample(id=str(i), benchmark="iu-xray", split=split, question="Describe.", answer=report,
                      answer_type=AnswerType.REPORT)

    normal = "No acute cardiopulmonary process."
    train = [s(1, normal), s(2, " No acute  cardiopulmonary process. "), s(3, "Mild cardiomegaly."), s(9, "Effusion.")]
    test = [s(9, "Effusion.", "test"), s(10, "Clear lungs.", "test")]
    prior = create(BackendConfig(provider="baseline", model="prior"))
    prior.bind(test, train)
    reqs = [Request(sample_id=t.id, model="baseline/prior", messages=()) for t in test]
    assert [g.text for g in asyncio.run(prior.generate(reqs))] == [normal, normal]
    rand = create(BackendConfig(provider="baseline", model="random", options={"seed": 2}))
    rand.bind(test, train)
    drawn = [g.text for g in asyncio.run(rand.generate(reqs))]
    assert set(drawn) <= {normal, "Mild cardiomegaly."}  # a train report, never the evaluated study's own
    empty = create(BackendConfig(provider="baseline", model="random"))
    empty.bind(test, [])
    with pytest.raises(PermanentError, match="train split"):  # never "unknown" as a report
        asyncio.run(empty.generate(reqs))


def test_report_views_show_scores_as_scores_and_the_headline_metric(iu_run):
    from medprobe import fmt
    from medprobe.runs import load

    _, out = iu_run
    run = load(out)
    head = run.results.headline
    assert head.metric == "rougeL" and head.preset == "report"
    assert fmt.value(0.0632, "cider") == "0.063" and fmt.value(0.5, "accuracy") == "50.0"
    card = (out / "summary.md").read_text()
    assert "| cider |" not in card or "(score, not %)" in card


def test_probe_metric_nan_survives_the_results_round_trip():
    from medprobe.probes._base import ProbeMetric

    m = ProbeMetric(probe="laterality", name="follows_mirror", value=float("nan"), n=0, preset="report")
    back = ProbeMetric.model_validate_json(m.model_dump_json())
    assert math.isnan(back.value)


def test_a_probe_figure_of_two_runs_is_one_row_whatever_each_run_counted():
    """Laterality's detail holds per-run counts (studies with a lateral finding); the report's probe table
    lines the runs up by figure, so two models' follow rates share a row."""
    from medprobe.probes._base import ProbeMetric, ProbeResult
    from medprobe.views.html import probe_rows

    def run(studies, value):
        m = ProbeMetric(probe="laterality", name="follow_rate", value=value, n=2 * studies, preset="report",
                        detail={"unit": "lateral finding", "studies": studies, "invalid_pairs": 0})
        return (ProbeResult(probe="laterality", headline=(m,)),)

    rows = probe_rows([run(2, 1.0), run(3, 0.5)])
    assert len(rows) == 1 and [c.value for c in rows[0].cells] == [1.0, 0.5]
    assert rows[0].detail == "unit=lateral finding"


def test_a_users_own_file_of_reports_is_scored_by_the_report_presets(tmp_path):
    from PIL import Image

    Image.new("L", (32, 32), 90).save(tmp_path / "a.png")
    rows = [{"id": f"r{i}", "image": "a.png", "question": "Indication: cough.", "answer": ref, "answer_type": "report"}
            for i, ref in enumerate(["The lungs are clear.", "Small left pleural effusion."])]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    result = cli("run", path, "--model", "scripted/constant:The lungs are clear.", "--out", out)
    assert result.exit_code == 0, result.output
    rows = {(m["subset"], m["metric"]): m for m in presets_of(out)["report"]["metrics"]}
    assert rows[("overall", "bleu1")]["n"] == 2 and rows[("overall", "rougeL")]["value"] > 0
    bad = path.with_name("bad.jsonl")
    bad.write_text(json.dumps({"id": "x", "image": "a.png", "question": "q", "answer": "a", "answer_type": "essay"}) + "\n")
    wrong = cli("run", bad, "--model", "scripted/constant:x", "--out", tmp_path / "bad")
    assert wrong.exit_code != 0 and "closed/open/multiple_choice/report" in " ".join(wrong.output.split())


def test_the_sample_browser_offers_the_benchmarks_own_subgroups(tmp_path):
    """GMAI-MMBench declares `category` as a breakdown: the browser's subgroup filter lists it, as the tables do."""
    from runfolders import make_run

    from medprobe.runs import load
    from medprobe.types import Sample
    from medprobe.views import browser
    from medprobe.views.thumbs import Thumbnails

    samples = [Sample(id=f"g{i}", benchmark="gmai-mmbench", split="val", question="Which?", options=("a", "b"),
                      answer="A", answer_type="multiple_choice", metadata={"category": ["skin", "eye"][i % 2],
                                                                             "modality": "CT"}) for i in range(4)]
    run = make_run(tmp_path / "run", samples, ["A", "B", "A", "A"], benchmark="gmai-mmbench", split="val")
    sec = browser.build("gmai", [load(run)], ["strict"], Thumbnails(tmp_path / "rep"))
    assert {"category=skin", "category=eye", "modality=CT"} <= set(sec.groups)
