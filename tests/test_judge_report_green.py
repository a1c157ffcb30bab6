"""The judge grading reports with the GREEN-style prompt: through the real CLI against a scripted judge on
loopback. GREEN = matched / (matched + significant errors) per study, 0 when nothing matched; an unreadable
reply is invalid (left out of the mean, never 0); judge identity and prompt hash are recorded; agreement with
the rule metrics is a per-study correlation."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from runfolders import make_run
from scipy import stats
from typer.testing import CliRunner

from medprobe import scoring
from medprobe.cli import app
from medprobe.judge_green import parse_green
from medprobe.judge_prompts import GREEN_REPORT
from medprobe.types import AnswerType, Sample


def reply(sig: dict[str, int], matched: int, insig: dict[str, int] | None = None) -> str:
    names = ["False report of a finding", "Missed finding", "Wrong location or side", "Wrong severity",
             "Comparison not in the reference", "Omitted comparison"]  # fmt: skip
    lines = lambda counts: "\n".join(f"({k}) {n}: {counts.get(k, 0)}. x" for k, n in zip("abcdef", names))
    return (f"[Explanation]:\nCompared.\n\n[Clinically Significant Errors]:\n{lines(sig)}\n\n"
            f"[Clinically Insignificant Errors]:\n{lines(insig or {})}\n\n[Matched Findings]:\n{matched}. a; b\n")


# study id -> (reference, the model's report, the judge's reply)
CASES = {
    "s0": ("No acute cardiopulmonary process.", "No acute cardiopulmonary process.", reply({}, 3)),
    "s1": ("Small left pleural effusion. Heart size normal.", "Small right pleural effusion. Heart size normal.",
           reply({"c": 1}, 1)),  # 1 / (1 + 1)
    "s2": ("Right lower lobe pneumonia.", "Clear lungs.", reply({"a": 1, "b": 2}, 1, {"d": 4})),  # 1 / 4
    "s3": ("Cardiomegaly.", "Normal chest.", reply({"b": 1}, 0)),  # nothing matched: 0 (GREEN's rule)
    "s4": ("Left rib fracture.", "Left rib fracture.", "The candidate looks fine to me."),  # unreadable: invalid
}
GREEN = {"s0": 1.0, "s1": 0.5, "s2": 0.25, "s3": 0.0}


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def _study(sid: str) -> Sample:
    return Sample(id=sid, benchmark="iu-xray", question="", answer=CASES[sid][0], answer_type=AnswerType.REPORT)


def report_run(tmp: Path) -> Path:
    samples = [_study(sid) for sid in CASES]
    return make_run(tmp / "run", samples, [text for _, text, _ in CASES.values()])


def script(rec) -> str:
    for ref, text, judged in CASES.values():
        if f"Reference report:\n{ref}\n\nCandidate report:\n{text}\n" in rec.question:
            return judged
    return "no case"


def test_parse_green_counts_and_score():
    c = parse_green(reply({"a": 1, "b": 2}, 1, {"d": 4}))
    assert (c.matched, sum(c.significant.values()), sum(c.insignificant.values()), c.green) == (1, 3, 4, 0.25)
    assert parse_green(reply({}, 0)).green == 0.0  # nothing matched
    # a section that says "No ..." holds no errors; bold markdown headers are read
    assert parse_green("**[Clinically Significant Errors]:** No errors.\n\n[Matched Findings]:\n2. a; b").green == 1.0
    no_count = "[Clinically Significant Errors]:\nNo.\n[Matched Findings]:\nseveral"
    for bad in ("1", "[Clinically Significant Errors]:\n(a) x: 1.", no_count):
        assert parse_green(bad).error and parse_green(bad).green is None


def test_green_verdicts_through_the_judge(tmp_path, openai_server):
    run = report_run(tmp_path)
    openai_server.set_script(script)
    result = cli("judge", str(run), "--judge-model", "openai/judge", "--base-url", openai_server.base_url,
                 "--concurrency", "2", "--timeout", "5", "--retries", "1")  # fmt: skip
    assert len(openai_server.requests) == 5
    db = sqlite3.connect(run / "judge.sqlite")
    v = {sid: json.loads(body) for sid, body in db.execute("SELECT sample_id, body FROM verdicts")}
    assert {(x["kind"], x["prompt_name"], x["prompt_hash"]) for x in v.values()} == {("green", "green-report", GREEN_REPORT.hash)}
    assert {sid: x["scores"]["green"] for sid, x in v.items() if x["scores"]} == GREEN
    assert v["s2"]["scores"]["significant"] == 3 and v["s2"]["scores"]["insignificant"] == 4
    assert v["s4"]["outcome"] == "invalid" and v["s4"]["reason"] == "unparseable_verdict" and v["s4"]["scores"] is None
    assert {x["outcome"] for sid, x in v.items() if sid != "s4"} == {"scored"}  # graded, neither right nor wrong
    res = json.loads((run / "results.json").read_text())
    judge = next(p for p in res["presets"] if p["preset"] == "judge:openai/judge")
    overall = next(m for m in judge["metrics"] if m["subset"] == "overall")
    # the unreadable verdict is invalid: out of the mean (which would be 1.75 / 5 = 0.35 if it were 0)
    assert overall["metric"] == "green" and overall["value"] == pytest.approx(1.75 / 4)
    assert (overall["n"], overall["invalid"]) == (4, 1) and overall["ci_low"] <= overall["value"] <= overall["ci_high"]
    assert res["judge"]["judged"] == 5 and res["judge"]["invalid_reasons"] == {"unparseable_verdict": 1}
    # agreement with the rule metrics: per-study correlation with each report preset's values (ROUGE-L here)
    agree = next(a for a in res["judge"]["report_agreement"] if (a["preset"], a["metric"]) == ("report", "rougeL"))
    ids = list(GREEN)
    rule = scoring.get("report")
    rouge = [rule.score(_study(s), CASES[s][1]).extra["rougeL"] for s in ids]
    assert agree["n"] == 4 and agree["spearman"] == pytest.approx(stats.spearmanr([GREEN[s] for s in ids], rouge).statistic)
    assert agree["pearson"] == pytest.approx(stats.pearsonr([GREEN[s] for s in ids], rouge).statistic)
    assert "judge:openai/judge: green 43.8" in result.output and "Spearman" in result.output
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["judge"]["prompts"]["green"]["hash"] == GREEN_REPORT.hash
    # re-running sends nothing
    before = len(openai_server.requests)
    again = cli("judge", str(run), "--judge-model", "openai/judge", "--base-url", openai_server.base_url)
    assert len(openai_server.requests) == before and "0 requests sent, 5 cached" in again.output
    assert np.isfinite(overall["value"])


def test_reports_and_questions_judged_in_one_run_keep_apart():
    from medprobe.judge import Verdict
    from medprobe.judge_report import judge_rows
    from medprobe.types import Generation, Outcome, Record

    base = {"judge_model": "openai/judge", "prompt_name": "p", "prompt_hash": "h"}
    recs, verdicts = [], {}
    for i, (green, outcome) in enumerate([(0.5, Outcome.SCORED), (None, Outcome.INVALID), (1.0, Outcome.SCORED)]):
        s = Sample(id=f"r{i}", benchmark="b", question="", answer="ref", answer_type=AnswerType.REPORT)
        recs.append(Record(sample=s, keys=("k",), generations=(Generation(text="rep"),)))
        verdicts[s.id] = Verdict(sample_id=s.id, kind="green", outcome=outcome, **base,
                                 scores=None if green is None else {"green": green})  # fmt: skip
    for i, outcome in enumerate([Outcome.CORRECT, Outcome.WRONG]):
        s = Sample(id=f"q{i}", benchmark="b", question="Is it?", answer="yes", answer_type=AnswerType.CLOSED)
        recs.append(Record(sample=s, keys=("k",), generations=(Generation(text="yes"),)))
        verdicts[s.id] = Verdict(sample_id=s.id, kind="binary", outcome=outcome, **base)
    result, section = judge_rows(recs, verdicts, ["strict"], seed=0)
    rows = {(m.subset, m.metric): m for m in result.metrics}
    assert rows[("overall", "green")].value == 0.75 and rows[("overall", "green")].invalid == 1
    assert rows[("overall", "accuracy")].value == 0.5 and rows[("overall", "accuracy")].n == 2  # questions only
    assert section.judged == 5 and section.errors == 0 and [a.n for a in section.agreement] == [2]
    # no rule preset scores reports here ("strict" has no rule for them): ROUGE-L from medprobe.textmetrics
    (fallback,) = section.report_agreement
    assert (fallback.preset, fallback.metric, fallback.n, fallback.spearman) == ("textmetrics", "rouge_l", 2, None)
