"""End to end through the real CLI against a real OpenAI-compatible server on loopback:
faults never crash a run or drop a sample, re-runs resume, kill -9 loses nothing, secrets stay out."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import Fault, serve_subprocess, stats
from typer.testing import CliRunner

from medprobe.cli import app

IMAGES = Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images"


def make_cases(folder: Path, n: int) -> Path:
    """A custom JSONL benchmark over the real packaged VQA-RAD images (questions are synthetic)."""
    names = sorted(p.name for p in IMAGES.glob("*.jpg"))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / "images" / name).write_bytes((IMAGES / name).read_bytes())
    path = folder / "cases.jsonl"
    with path.open("w") as f:
        for i in range(n):
            row = {"id": f"q{i}", "image": f"images/{names[i % len(names)]}", "question": f"Is there a mass? (case q{i})",
                   "answer": "yes", "answer_type": "closed", "modality": "CT" if i % 2 else "MRI"}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    return path


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def records(run: Path) -> dict[str, dict]:
    db = sqlite3.connect(run / "records.sqlite")
    plan = dict(db.execute("SELECT sample_id, key FROM plan WHERE turn = 0"))
    gens = {k: json.loads(b) for k, b in db.execute("SELECT key, body FROM generations")}
    return {sid: gens.get(key) for sid, key in plan.items()}


def test_faults_never_crash_or_drop_and_rerun_resumes(tmp_path, openai_server):
    cases = make_cases(tmp_path, 12)
    openai_server.set_script(lambda rec: "no" if "q3)" in rec.question else "Yes.")
    openai_server.set_faults(
        Fault(500, match="q1)", times=2), Fault(429, match="q2)", times=1, retry_after=0.5),
        Fault("hang", match="q4)", times=1), Fault("non_json", match="q5)", times=1),
        Fault("drop", match="q6)", times=1), Fault("no_choices", match="q7)"),  # q7 never recovers
    )  # fmt: skip
    out = tmp_path / "run"
    args = ["run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--concurrency", "4",
            "--timeout", "1", "--retries", "3", "--out", str(out)]  # fmt: skip
    start = time.monotonic()
    result = cli(*args, code=3)  # finished, but one sample ended in an error: partial
    assert time.monotonic() - start < 30
    recs = records(out)
    assert len(recs) == 12  # no sample dropped
    assert recs["q7"]["error"] and "gave up after 4 attempts" in recs["q7"]["error"]
    assert all(recs[f"q{i}"]["text"] for i in range(12) if i != 7)
    assert recs["q1"]["attempts"] == 3 and recs["q2"]["attempts"] == 2
    assert openai_server.count("q7)") == 4
    assert {r.model for r in openai_server.requests} == {"tiny"}  # the server gets NAME, not PROVIDER/NAME
    res = json.loads((out / "results.json").read_text())
    assert res["counts"] == {"samples": 12, "answered": 11, "errors": 1, "error_reasons": {"bad_reply": 1}}
    assert res["coverage"]["errors_by_kind"][0] | {"example": ""} == {"kind": "bad_reply", "count": 1,
                                                                      "transient": True, "example": ""}
    strict = next(p for p in res["presets"] if p["preset"] == "strict")
    overall = next(m for m in strict["metrics"] if m["subset"] == "overall")
    assert overall["n"] == 11 and overall["correct"] == 10 and overall["wrong"] == 1
    assert "errors: 1" in result.output and "re-run the same command to retry" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["benchmark"]["sha256"]
    assert manifest["coverage"]["answered"] == 11 and manifest["coverage"]["errors"] == 1

    # same command again: only the failed request is sent (and now succeeds)
    openai_server.set_faults()
    before = len(openai_server.requests)
    cli(*args)  # exit 0: everything answered now
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert [r.question for r in openai_server.requests[before:]] == [openai_server.requests[-1].question]
    assert "q7)" in openai_server.requests[-1].question
    assert all(r["text"] for r in records(out).values())


def test_score_json_and_rescoring_needs_no_model(tmp_path, openai_server):
    cases = make_cases(tmp_path, 4)
    out = tmp_path / "run"
    cli("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out))
    before = len(openai_server.requests)
    data = json.loads(cli("score", str(out), "--json").stdout)
    assert len(openai_server.requests) == before
    assert {p["preset"] for p in data["presets"]} >= {"strict", "llava-med", "multimedeval", "lmms-eval", "medevalkit"}
    for preset in data["presets"]:
        for m in preset["metrics"]:
            assert 0 <= m["value"] <= 1 and m["preset"] == preset["preset"] and m["parsers"]
    one = json.loads(cli("score", str(out), "--preset", "llava-med", "--json").stdout)
    assert [p["preset"] for p in one["presets"]] == ["llava-med"]


def test_a_different_run_in_the_same_folder_is_refused(tmp_path, openai_server):
    cases = make_cases(tmp_path, 2)
    out = tmp_path / "run"
    cli("run", str(cases), "--model", "openai/a", "--base-url", openai_server.base_url, "--out", str(out))
    result = CliRunner().invoke(app, ["run", str(cases), "--model", "openai/b", "--base-url", openai_server.base_url,
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 2 and "already holds a different run" in result.output
    assert 'model: "openai/a" -> "openai/b"' in " ".join(result.output.split())  # names the field that differs


def test_api_key_is_sent_but_never_written(tmp_path, openai_server, monkeypatch):
    secret = "sk-planted-SECRET-0123456789abcdef"
    monkeypatch.setenv("MY_KEY", secret)
    openai_server.api_key = secret
    cases = make_cases(tmp_path, 3)
    good, bad = tmp_path / "good", tmp_path / "bad"
    cli("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--api-key-env", "MY_KEY",
        "--out", str(good))  # fmt: skip
    assert {r.auth for r in openai_server.requests} == {f"Bearer {secret}"}
    monkeypatch.setenv("MY_KEY", secret + "-wrong")  # the server answers 401 and echoes the wrong key
    result = cli("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url,
                 "--api-key-env", "MY_KEY", "--out", str(bad), code=2)  # fmt: skip
    assert "MY_KEY" in result.output and not bad.exists()  # refused before the fan-out: no run folder
    for folder in (good,):
        for path in folder.rglob("*"):
            if path.is_file():
                assert b"planted-SECRET" not in path.read_bytes(), path
    assert "planted-SECRET" not in result.output


@pytest.mark.slow
def test_kill_9_loses_nothing(tmp_path):
    """Kill the real CLI mid-run; the re-run sends exactly the requests that had no stored answer."""
    n = 60
    cases = make_cases(tmp_path, n)
    out = tmp_path / "run"
    with serve_subprocess(latency=0.15) as base_url:
        cmd = [sys.executable, "-c", "from medprobe.cli import main; main()", "run", str(cases), "--model", "openai/tiny",
               "--base-url", base_url, "--concurrency", "4", "--out", str(out)]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while stats(base_url)["requests"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sent_before = stats(base_url)["requests"]
        stored = sum(1 for g in records(out).values() if g and g["text"])
        assert 20 <= sent_before < n and sent_before - 4 <= stored <= sent_before  # only in-flight ones lost
        assert json.loads((out / "manifest.json").read_text())["status"] == "running"  # nobody could write more
        from medprobe.store import read_manifest

        killed = read_manifest(out)  # ... but a reader sees that the writer is gone, and says so
        assert killed.status == "interrupted" and "ended without finishing" in killed.stop_reason
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        resent = stats(base_url)["requests"] - sent_before
    assert resent == n - stored
    assert sum(1 for g in records(out).values() if g and g["text"]) == n
