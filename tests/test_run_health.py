"""Run health through the real CLI: a run never looks better than it was. Dead servers and refused keys stop
within seconds, a circuit breaker stops a run that can no longer succeed, every ending has its status and exit
code, and the coverage line says how much of the benchmark a number stands on."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from openai_server import Fault
from typer.testing import CliRunner

from medprobe.cli import app
from medprobe.manifest import ExitCode, RunStatus
from medprobe.store import read_manifest

from test_e2e_cli import make_cases


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def manifest_json(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_dead_server_stops_within_seconds_and_writes_nothing(tmp_path):
    cases = make_cases(tmp_path, 300)
    out = tmp_path / "run"
    start = time.monotonic()
    result = invoke("run", str(cases), "--model", "openai/m", "--base-url", f"http://127.0.0.1:{closed_port()}/v1",
                    "--out", str(out))  # fmt: skip
    assert time.monotonic() - start < 10
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "--base-url" in result.output and "Traceback" not in result.output
    assert not out.exists()  # failed before starting: no half-made run folder


def test_refused_key_on_the_first_request_sends_one_request(tmp_path, openai_server):
    # the server has no /models list (preflight cannot tell), so the gate request is what stops the run
    cases = make_cases(tmp_path, 300)
    openai_server.set_faults(Fault(401, message="invalid api key"))
    out = tmp_path / "run"
    result = invoke("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out))
    assert result.exit_code == ExitCode.FAILED, result.output
    assert len(openai_server.requests) == 1
    manifest = read_manifest(out)
    assert manifest.status is RunStatus.FAILED and "auth" in (manifest.stop_reason or "")
    assert manifest.coverage is not None and manifest.coverage.not_sent == 299
    assert "--api-key-env" in result.output  # the permanent kind says what to change


def test_circuit_breaker_stops_a_run_that_cannot_succeed_and_keeps_the_answers(tmp_path, openai_server):
    cases = make_cases(tmp_path, 200)
    openai_server.set_faults(Fault(401, index=list(range(20, 10_000))))  # the key is revoked mid-run
    out = tmp_path / "run"
    result = invoke("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url,
                    "--concurrency", "2", "--breaker", "5", "--out", str(out))  # fmt: skip
    assert result.exit_code == ExitCode.STOPPED, result.output
    manifest = read_manifest(out)
    assert manifest.status is RunStatus.STOPPED and manifest.stopped_by == "breaker"
    assert "circuit breaker" in (manifest.stop_reason or "")
    assert len(openai_server.requests) < 40  # stopped after a handful of failures, not all 200
    cov = manifest.coverage
    assert cov is not None and cov.answered == 20 and cov.not_sent > 100
    assert cov.answered + cov.errors + cov.not_sent == cov.samples == 200
    # re-running the same command resumes: answered requests are never sent again
    openai_server.set_faults()
    before = len(openai_server.requests)
    again = invoke("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url,
                   "--concurrency", "4", "--out", str(out))  # fmt: skip
    assert again.exit_code == 0, again.output
    assert len(openai_server.requests) - before == 180
    assert read_manifest(out).status is RunStatus.COMPLETE


def test_nearly_all_failed_is_partial_and_says_so_next_to_the_number(tmp_path, openai_server):
    cases = make_cases(tmp_path, 40)
    openai_server.set_faults(Fault(400, index=list(range(1, 37)), message="image too large"))
    out = tmp_path / "run"
    result = invoke("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url,
                    "--retries", "0", "--out", str(out))  # fmt: skip
    assert result.exit_code == ExitCode.ERRORS, result.output
    text = " ".join(result.output.split())
    assert "status: partial" in text and "4 answered" in text and "36 errors (bad_request 36)" in text
    assert "permanent:" in text  # not "re-run to retry": a 400 needs a change
    summary = (out / "summary.md").read_text()
    assert "on 4 of 40 samples" in summary
    res = json.loads((out / "results.json").read_text())
    assert res["coverage"]["answered"] == 4 and res["coverage"]["errors"] == 36


def test_max_errors_sets_what_the_user_tolerates(tmp_path, openai_server):
    cases = make_cases(tmp_path, 20)
    openai_server.set_faults(Fault(400, index=[3]))
    base = ["run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--retries", "0"]
    assert invoke(*base, "--out", str(tmp_path / "a")).exit_code == ExitCode.ERRORS
    openai_server.reset()
    openai_server.set_faults(Fault(400, index=[3]))
    assert invoke(*base, "--max-errors", "5%", "--out", str(tmp_path / "b")).exit_code == 0
    assert manifest_json(tmp_path / "b")["status"] == "complete"
    bad = invoke(*base, "--max-errors", "lots", "--out", str(tmp_path / "c"))
    assert bad.exit_code == 2 and "a count (5) or a percentage (2%)" in bad.output


def test_an_unexpected_error_mid_run_never_leaves_status_running(tmp_path, monkeypatch):
    from medprobe import runner

    cases = make_cases(tmp_path, 5)
    out = tmp_path / "run"

    async def boom(*_a, **_k):
        raise RuntimeError("disk controller on fire")

    monkeypatch.setattr("medprobe.pipeline.execute", boom)
    result = invoke("run", str(cases), "--model", "scripted/constant:yes", "--out", str(out))
    assert result.exit_code != 0
    manifest = read_manifest(out)
    assert manifest.status is RunStatus.INTERRUPTED and "disk controller on fire" in (manifest.stop_reason or "")
    assert not list(out.glob("*.tmp"))
    assert runner  # imported for the monkeypatch target's module


def test_schema_1_run_folder_reads_back_and_resumes(tmp_path):
    """A run written before the typed manifest: re-running it sends nothing and rewrites the manifest."""
    cases = make_cases(tmp_path, 6)
    out = tmp_path / "run"
    args = ["run", str(cases), "--model", "baseline/random", "--out", str(out)]
    assert invoke(*args).exit_code == 0
    new = manifest_json(out)
    old = {  # the shape medprobe 0.1 wrote
        "schema_version": 1, "medprobe_version": "0.1.0", "command": "run", "status": "complete",
        "created": new["created"], "benchmark": new["benchmark"], "load_errors": [], "load_error_count": 0,
        "default_preset": "strict", "prompt": new["prompt"], "backend": new["backend"],
        "generation": {k: v for k, v in new["generation"].items() if k != "extra_body"},
        "settings": new["settings"], "seed": 0, "turns": 1, "answer_mode": "generate",
        "last_execution": {"requests": 6, "cached": 0, "sent": 6, "errors": 0},
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(old))
    migrated = read_manifest(out)
    assert migrated.schema_version == 2 and migrated.status is RunStatus.COMPLETE
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "cached 6" in result.output or manifest_json(out)["last_execution"]["sent"] == 0
    assert manifest_json(out)["schema_version"] == 2


def test_a_reply_with_a_lone_surrogate_is_stored_not_fatal(tmp_path):
    cases = make_cases(tmp_path, 2)
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"id": "q0", "text": "yes \\ud800"}\n{"id": "q1", "text": "no"}\n')
    out = tmp_path / "run"
    result = invoke("run", str(cases), "--model", f"scripted/{answers}", "--out", str(out))
    assert result.exit_code == 0, result.output
    from medprobe.store import read_records

    texts = {r.sample.id: r.final.text for r in read_records(out)[1]}
    assert texts == {"q0": "yes \ufffd", "q1": "no"}
