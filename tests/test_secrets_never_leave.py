"""A planted API key never appears in anything a run writes or prints, on every failure path:
errors recorded after retries (500/429 echoing the key), 400/401 bodies quoting it, garbage bodies
holding it, connection errors, a key typed into --base-url, plus the manifest, results, summary,
SQLite (WAL included) and stdout/stderr."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys

import pytest
from openai_server import Fault, serve_subprocess
from test_e2e_cli import make_cases
from typer.testing import CliRunner

from medprobe.cli import app

SECRET = "sk-planted-SECRET-0123456789abcdef"
NEEDLES = (SECRET.encode(), b"planted-SECRET", b"0123456789abcdef")


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def assert_clean(folder, *texts: str) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "records.sqlite" for p in files)
    for blob, where in [*((p.read_bytes(), str(p)) for p in files), *((t.encode(), "output") for t in texts)]:
        for needle in NEEDLES:
            assert needle not in blob, f"{needle!r} in {where}"


def errors(out) -> dict[str, str]:
    db = sqlite3.connect(out / "records.sqlite")
    plan = dict(db.execute("SELECT sample_id, key FROM plan WHERE turn = 0"))
    gens = {k: json.loads(b) for k, b in db.execute("SELECT key, body FROM generations")}
    return {sid: (gens.get(key) or {}).get("error") or "" for sid, key in plan.items()}


def test_key_never_written_on_any_failure_path(tmp_path, openai_server, monkeypatch):
    monkeypatch.setenv("MY_KEY", SECRET)
    openai_server.api_key = SECRET
    cases = make_cases(tmp_path, 7)
    openai_server.set_faults(
        Fault(500, match="q0)", message=f"upstream failed for key {SECRET}"),  # retried, then recorded
        Fault(429, match="q1)", message=f"rate limit for {SECRET}", retry_after=0),
        Fault(400, match="q2)", message=f"bad header: Authorization: Bearer {SECRET}"),
        Fault("non_json", match="q3)", message=f"<html>proxy saw {SECRET}</html>"),
        Fault("no_choices", match="q4)", message=f"echo {SECRET}"),
        Fault(422, match="q5)", message=f"{SECRET[:20]}...{SECRET[20:]}"),
    )  # fmt: skip
    out = tmp_path / "faults"
    base = ["--model", "openai/tiny", "--api-key-env", "MY_KEY", "--retries", "1", "--timeout", "5"]
    text = run("run", str(cases), *base, "--base-url", openai_server.base_url, "--out", str(out))
    errs = errors(out)
    assert all(errs[f"q{i}"] for i in range(6)) and not errs["q6"]
    assert "gave up after 2 attempts" in errs["q0"] and "***" in errs["q0"]

    # 401: the server echoes the (wrong) key it was sent, like hosted APIs do
    monkeypatch.setenv("MY_KEY", SECRET + "-wrong")
    openai_server.set_faults()
    out401 = tmp_path / "unauthorized"
    text401 = run("run", str(cases), *base, "--base-url", openai_server.base_url, "--out", str(out401))
    assert all("401" in e and "MY_KEY" in e for e in errors(out401).values())

    # connection refused, with a key typed into the URL's query
    monkeypatch.setenv("MY_KEY", SECRET)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    url = f"http://127.0.0.1:{port}/v1?api_key={SECRET}"
    outconn = tmp_path / "refused"
    textconn = run("run", str(cases), *base, "--base-url", url, "--out", str(outconn))
    assert all("connection error" in e for e in errors(outconn).values())
    manifest = json.loads((outconn / "manifest.json").read_text())
    assert manifest["backend"]["base_urls"] == [f"http://127.0.0.1:{port}/v1"]
    for folder in (out, out401, outconn):
        assert_clean(folder, text, text401, textconn)
    score = CliRunner().invoke(app, ["score", str(out), "--json"])
    assert_clean(out, score.output)


@pytest.mark.slow
def test_key_never_printed_by_a_subprocess(tmp_path):
    cases = make_cases(tmp_path, 4)
    out = tmp_path / "run"
    env = {**__import__("os").environ, "MY_KEY": SECRET + "-wrong"}
    with serve_subprocess(api_key=SECRET, faults=[{"kind": 500, "match": "q0)", "message": SECRET}]) as url:
        proc = subprocess.run([sys.executable, "-c", "from medprobe.cli import main; main()", "run", str(cases),
                               "--model", "openai/tiny", "--base-url", url, "--api-key-env", "MY_KEY",
                               "--retries", "1", "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert_clean(out, proc.stdout, proc.stderr)
