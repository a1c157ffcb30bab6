"""The LLM judge: through the real CLI against a scripted judge on loopback. Verdicts are cached and
resumable, unreadable verdicts are invalid (never scored by a rule), option scores follow
MediConfusion's margin rule, and agreement/kappa with the rule presets match hand counts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from openai_server import Fault
from typer.testing import CliRunner

from medprobe import scoring
from medprobe.cli import app
from medprobe.judge_prompts import MEDICONFUSION_SCORES, SMMILE_BINARY, parse_binary, parse_option_scores
from medprobe.judge_report import agreement, cohen_kappa

import numpy as np

IMAGES = Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images"
MEDICONFUSION = Path(__file__).parent / "fixtures" / "mediconfusion" / "dataset.json"

# (gold, the model's answer, the judge's reply)
CASES = {
    "q0": ("pneumonia", "pneumonia", "1"),
    "q1": ("left lung", "The left lung.", "1"),
    "q2": ("fracture", "there is a fracture of the rib", "1"),
    "q3": ("ct", "mri", "0"),
    "q4": ("effusion", "effusion", "maybe"),  # strict would call it right: the judge's garbage must not
    "q5": ("liver", "kidney", "0"),
}


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def make_run(tmp: Path) -> Path:
    """A scripted run over open questions (real packaged images), scored under every preset."""
    name = sorted(p.name for p in IMAGES.glob("*.jpg"))[0]
    (tmp / "images").mkdir()
    (tmp / "images" / name).write_bytes((IMAGES / name).read_bytes())
    with (tmp / "cases.jsonl").open("w") as f, (tmp / "answers.jsonl").open("w") as g:
        for sid, (gold, answer, _) in CASES.items():
            f.write(json.dumps({"id": sid, "image": f"images/{name}", "question": f"What is shown? (case {sid})",
                                "answer": gold, "answer_type": "open"}) + "\n")  # fmt: skip
            g.write(json.dumps({"id": sid, "text": answer}) + "\n")
    run = tmp / "run"
    cli("run", str(tmp / "cases.jsonl"), "--model", f"scripted/{tmp / 'answers.jsonl'}", "--out", str(run))
    return run


def judge_script(rec) -> str:
    return next(reply for sid, (_, _, reply) in CASES.items() if f"(case {sid})" in rec.question)


def judge_args(run: Path, server, *extra: str) -> list[str]:
    return ["judge", str(run), "--judge-model", "openai/judge", "--base-url", server.base_url, "--concurrency", "2",
            "--timeout", "5", "--retries", "3", *extra]  # fmt: skip


def verdicts(run: Path) -> dict[str, dict]:
    db = sqlite3.connect(run / "judge.sqlite")
    return {sid: json.loads(body) for sid, body in db.execute("SELECT sample_id, body FROM verdicts")}


def rows(run: Path, preset: str) -> dict[tuple[str, str], dict]:
    res = json.loads((run / "results.json").read_text())
    p = next(p for p in res["presets"] if p["preset"] == preset)
    return {(m["subset"], m["metric"]): m for m in p["metrics"]}


def test_binary_verdicts_retries_cache_and_agreement(tmp_path, openai_server, monkeypatch):
    run = make_run(tmp_path)
    secret = "sk-planted-SECRET-judge-0123"
    monkeypatch.setenv("JUDGE_KEY", secret)
    openai_server.set_script(judge_script)
    openai_server.set_faults(Fault(500, match="(case q2)", times=2))
    result = cli(*judge_args(run, openai_server, "--api-key-env", "JUDGE_KEY"))
    assert len(openai_server.requests) == 6 + 2  # q2 answered on its third attempt
    assert {r.model for r in openai_server.requests} == {"judge"}
    v = verdicts(run)
    assert v["q2"]["outcome"] == "correct" and v["q2"]["raw"] == "1"
    assert v["q4"]["outcome"] == "invalid" and v["q4"]["reason"] == "unparseable_verdict" and "maybe" in v["q4"]["error"]
    assert {x["judge_model"] for x in v.values()} == {"openai/judge"}
    assert {(x["prompt_name"], x["prompt_hash"]) for x in v.values()} == {("smmile-binary", SMMILE_BINARY.hash)}
    # SMMILE's official number: non-1/0 verdicts count 0, over all judged samples; q4 is invalid, not a rule's "correct"
    overall = rows(run, "judge:openai/judge")[("overall", "accuracy")]
    assert (overall["value"], overall["n"], overall["correct"], overall["wrong"], overall["invalid"]) == (0.5, 6, 3, 2, 1)
    # agreement with each rule preset, by hand: judge correct = q0, q1, q2
    judge_ok = [sid in ("q0", "q1", "q2") for sid in CASES]
    res = json.loads((run / "results.json").read_text())
    for a in res["judge"]["agreement"]:
        rule_ok = [scoring.get(a["preset"]).score(_sample(run, sid), CASES[sid][1]).outcome == "correct" for sid in CASES]
        agree = sum(j == r for j, r in zip(judge_ok, rule_ok)) / 6
        assert a["n"] == 6 and a["agreement"] == pytest.approx(agree)
        pj, pr = sum(judge_ok) / 6, sum(rule_ok) / 6
        pe = pj * pr + (1 - pj) * (1 - pr)
        assert a["kappa"] == (None if pe == 1 else pytest.approx((agree - pe) / (1 - pe)))
    strict = next(a for a in res["judge"]["agreement"] if a["preset"] == "strict")
    assert (strict["both_correct"], strict["judge_only"], strict["rule_only"]) == (2, 1, 1)  # q0 q1 / q2 / q4
    assert "Cohen's kappa" in result.output and "judge:openai/judge: accuracy 50.0" in result.output
    assert "## judge `openai/judge`" in (run / "summary.md").read_text()
    # a judged run reports: the judge's rows are a table of their own, not a rule column of the sample browser
    from medprobe.views.html import write_report

    summary = write_report([run], tmp_path / "report", workers=1)
    index = json.loads((tmp_path / "report" / "data" / "s0-index.js").read_text()[len("medprobe.index("):-3])
    assert summary.samples == 6 and "judge:openai/judge" not in index["presets"] and "strict" in index["presets"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["judge"]["model"] == "openai/judge" and manifest["judge"]["status"] == "complete"
    assert manifest["judge"]["prompts"]["binary"]["hash"] == SMMILE_BINARY.hash
    assert manifest["judge"]["backend"]["api_key_env"] == "JUDGE_KEY"
    for path in run.rglob("*"):
        if path.is_file():
            assert b"planted-SECRET" not in path.read_bytes(), path

    # re-running sends nothing; `medprobe score` keeps the judge rows
    before = len(openai_server.requests)
    again = cli(*judge_args(run, openai_server, "--api-key-env", "JUDGE_KEY"))
    assert len(openai_server.requests) == before and "0 requests sent, 6 cached" in again.output
    cli("score", str(run))
    assert rows(run, "judge:openai/judge")[("overall", "accuracy")]["n"] == 6


def _sample(run: Path, sid: str):
    from medprobe.store import RunStore

    store = RunStore(run / "records.sqlite")
    try:
        return next(s for s in store.samples() if s.id == sid)
    finally:
        store.close()


def test_a_changed_prompt_changes_the_hash_and_asks_again(tmp_path, openai_server):
    run = make_run(tmp_path)
    openai_server.set_script(judge_script)
    cli(*judge_args(run, openai_server))
    first = {x["prompt_hash"] for x in verdicts(run).values()}
    prompt = tmp_path / "strict-judge.json"
    user = SMMILE_BINARY.user.replace("Is the AI model correct?", "Is the AI model's answer medically equivalent?")
    prompt.write_text(json.dumps({"kind": "binary", "user": user}))
    n = len(openai_server.requests)
    cli(*judge_args(run, openai_server, "--judge-prompt", str(prompt)))
    v = verdicts(run)
    assert len(openai_server.requests) == n + 6  # new prompt, new request keys
    assert {x["prompt_name"] for x in v.values()} == {"strict-judge"}
    assert {x["prompt_hash"] for x in v.values()} != first
    assert "medically equivalent" in openai_server.requests[-1].question
    cli(*judge_args(run, openai_server))  # back to the built-in prompt: all cached
    assert len(openai_server.requests) == n + 6 and {x["prompt_hash"] for x in verdicts(run).values()} == first


def test_a_failed_judge_request_is_an_error_never_a_rule_fallback(tmp_path, openai_server):
    run = make_run(tmp_path)
    openai_server.set_script(judge_script)
    openai_server.set_faults(Fault("no_choices", match="(case q0)"))
    result = cli(*judge_args(run, openai_server, "--retries", "1"))
    v = verdicts(run)
    assert v["q0"]["outcome"] is None and "gave up after 2 attempts" in v["q0"]["error"]
    overall = rows(run, "judge:openai/judge")[("overall", "accuracy")]
    assert (overall["n"], overall["correct"]) == (5, 2)  # q0 not scored, not taken from a rule
    assert json.loads((run / "results.json").read_text())["judge"]["errors"] == 1
    assert "1 judge errors" in result.output


# (the judge's reply per image) gold: 10001 A/B, 10002 B/A, 10003 A/B, 10009 A/B, 10010 A/B, 10011 A/B
OPTION_SCORES = {
    "10001-1": "A: 9\nB: 7\nYour explanation: close to both",  # margin 2 < 3: invalid
    "10001-2": "A: 2\nB: 8\nYour explanation: x",  # B, right
    "10002-1": "A: 3\nB: 9\nYour explanation: x",  # B, right
    "10002-2": "A: 9\nB: 5\nYour explanation: x",  # A, right
    "10003-1": "**A:** 9\n**B:** 2\nYour explanation: x",  # A, right (bold tolerated)
    "10003-2": "A: 9\n\nB: 1\nYour explanation: x",  # A, wrong -> pair confused
    "10009-1": "I think the answer is closer to A.",  # unreadable: invalid
    "10009-2": "A: 1\nB: 10\nYour explanation: x",  # B, right
    "10010-1": "A: 10\nB: 1\nYour explanation: x",  # A, right
    "10010-2": "A: 1\nB: 10\nYour explanation: x",  # B, right
    "10011-1": "A: 8\nB: 5\nYour explanation: x",  # margin exactly 3: A, right
    "10011-2": "A: 6\nB: 6\nYour explanation: x",  # tie: invalid
}


def test_mediconfusion_free_form_option_scores_with_margin(tmp_path, openai_server):
    preds = tmp_path / "free.jsonl"
    preds.write_text("".join(json.dumps({"id": sid, "text": f"free answer {sid}"}) + "\n" for sid in OPTION_SCORES))
    run = tmp_path / "mc-free"
    cli("import", str(preds), "--benchmark", "mediconfusion", "--data", str(MEDICONFUSION), "--id-field", "id",
        "--prediction-field", "text", "--out", str(run))  # fmt: skip
    openai_server.set_script(lambda rec: next(r for sid, r in OPTION_SCORES.items() if f"free answer {sid}\n" in rec.question))
    cli(*judge_args(run, openai_server))
    first = openai_server.requests[0]
    assert "[Answer A]\n" in first.question and "[End of AI Assistant]" in first.question
    v = verdicts(run)
    assert v["10001-1"]["outcome"] == "invalid" and v["10001-1"]["reason"] == "no_margin"
    assert v["10001-1"]["scores"] == {"A": 9.0, "B": 7.0}
    assert v["10002-2"]["chosen"] == "A" and v["10002-2"]["outcome"] == "correct"
    assert v["10009-1"]["reason"] == "unparseable_verdict" and v["10011-2"]["reason"] == "no_margin"
    assert {x["prompt_hash"] for x in v.values()} == {MEDICONFUSION_SCORES.hash}
    m = rows(run, "judge:openai/judge")
    assert (m[("overall", "accuracy")]["correct"], m[("overall", "accuracy")]["invalid"]) == (8, 3)
    assert m[("overall", "set_accuracy")]["value"] == pytest.approx(2 / 6)  # 10002, 10010
    assert (m[("overall", "confusion")]["correct"], m[("overall", "confusion")]["n"]) == (1, 3)  # 10003 of 10002/3/10
    assert m[("overall", "individual_accuracy")]["value"] == pytest.approx(8 / 12)


def test_parsers_and_kappa_by_hand():
    assert parse_binary("1").correct is True and parse_binary(" 0\n").correct is False
    assert parse_binary("1.").error and parse_binary("Yes").error
    assert parse_option_scores("A: 9\nB: 5", "AB", 3).chosen == "A"
    assert parse_option_scores("A: 9\nB: 7", "AB", 3).chosen is None
    assert parse_option_scores("A: 12\nB: 1", "AB", 3).error  # outside 1-10
    assert parse_option_scores("A: 2\nB: 9\nC: 5", "ABC", 3).chosen == "B"
    judge = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    rule = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    # p_o = 6/8, p_e = (3/8)^2 + (5/8)^2 = 34/64, kappa = (48/64 - 34/64) / (30/64) = 7/15
    assert cohen_kappa(judge, rule) == pytest.approx(7 / 15)
    a = agreement("strict", judge, rule)
    assert (a.agreement, a.both_correct, a.judge_only, a.rule_only, a.both_wrong) == (0.75, 2, 1, 1, 4)
    assert cohen_kappa(np.ones(4, bool), np.ones(4, bool)) is None


def test_kind_and_prompt_must_agree(tmp_path, openai_server):
    run = make_run(tmp_path)
    result = cli(*judge_args(run, openai_server, "--judge-prompt", "smmile-binary", "--kind", "option-scores"), code=2)
    assert "gives binary verdicts" in result.output
