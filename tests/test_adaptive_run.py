"""Adaptive concurrency through the real CLI against the loopback server: it grows on a server with room,
and against one that answers 429 past 16 in flight it finishes with no errors near that level."""

from __future__ import annotations

from typer.testing import CliRunner

from medprobe.cli import app
from medprobe.store import read_manifest

from test_e2e_cli import make_cases


def run(*args: str):
    return CliRunner().invoke(app, ["run", *args])


def test_a_server_at_capacity_gets_no_errors_and_the_level_settles_near_it(tmp_path, openai_server):
    cases = make_cases(tmp_path, 240)
    openai_server.set_latency(0.05)
    openai_server.max_in_flight, openai_server.busy_retry_after = 16, 0.05
    out = tmp_path / "run"
    result = run(str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert manifest.coverage is not None and manifest.coverage.errors == 0 and manifest.coverage.answered == 240
    busy = sum(1 for r in openai_server.requests if r.fault == "busy")
    assert busy > 0  # it was pushed back (it starts at 16 and grows), and every pushed-back request was retried
    assert openai_server.peak_in_flight <= 16
    ex = manifest.last_execution
    assert ex is not None and ex.concurrency == "adaptive"
    assert ex.concurrency_final is not None and ex.concurrency_final <= 20
    assert any(level < 16 for _, level in ex.concurrency_changes)  # it halved
    assert "concurrency: adaptive" in " ".join(result.output.split())


def test_it_grows_on_a_server_with_room_and_concurrency_pins_it(tmp_path, openai_server):
    cases = make_cases(tmp_path, 300)
    openai_server.set_latency(0.05)
    out = tmp_path / "grows"
    result = run(str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out),
                 "--max-concurrency", "48")  # fmt: skip
    assert result.exit_code == 0, result.output
    ex = read_manifest(out).last_execution
    assert ex is not None and ex.concurrency_peak == 48  # grew past its start of 16, stopped at the cap
    assert openai_server.peak_in_flight <= 48
    openai_server.reset(latency=0.05)
    pinned = tmp_path / "pinned"
    result = run(str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(pinned),
                 "--concurrency", "3")  # fmt: skip
    assert result.exit_code == 0, result.output
    ex = read_manifest(pinned).last_execution
    assert ex is not None and ex.concurrency == "pinned" and ex.concurrency_peak == 3 and not ex.concurrency_changes
    assert openai_server.peak_in_flight <= 3
