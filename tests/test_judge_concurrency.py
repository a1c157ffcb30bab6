"""`medprobe judge` sends like `medprobe run`: adaptive concurrency by default (it goes past the old fixed 8,
and against a judge server at capacity it backs off and finishes with no errors), `--concurrency N` pins it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medprobe.cli import app
from medprobe.store import read_manifest

IMAGES = Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images"
N = 60


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def make_run(tmp: Path) -> Path:
    """A scripted run of N open questions on one real image, every answer stored."""
    name = min(p.name for p in IMAGES.glob("*.jpg"))
    (tmp / "images").mkdir()
    (tmp / "images" / name).write_bytes((IMAGES / name).read_bytes())
    with (tmp / "cases.jsonl").open("w") as f, (tmp / "answers.jsonl").open("w") as g:
        for i in range(N):
            f.write(json.dumps({"id": f"q{i}", "image": f"images/{name}", "question": f"What is shown? ({i})",
                                "answer": "liver", "answer_type": "open"}) + "\n")  # fmt: skip
            g.write(json.dumps({"id": f"q{i}", "text": "liver"}) + "\n")
    run = tmp / "run"
    cli("run", str(tmp / "cases.jsonl"), "--model", f"scripted/{tmp / 'answers.jsonl'}", "--out", str(run))
    return run


def judge(run: Path, server, *extra: str):
    return cli("judge", str(run), "--judge-model", "openai/judge", "--base-url", server.base_url, "--timeout", "5",
               *extra)  # fmt: skip


def last(run: Path) -> dict:
    manifest = read_manifest(run)
    assert manifest.judge is not None
    return manifest.judge["last_execution"]


def test_judge_concurrency_is_adaptive_by_default_and_pinned_by_the_flag(tmp_path, openai_server):
    run = make_run(tmp_path)
    openai_server.reset(default="1", latency=0.05)
    judge(run, openai_server)
    done = last(run)
    assert done["concurrency"] == "adaptive" and done["sent"] == N and done["errors"] == 0
    assert openai_server.peak_in_flight > 8  # it starts at 16: more than the old fixed 8 in flight
    (run / "judge.sqlite").unlink()  # judge again from nothing, now pinned
    openai_server.reset(default="1", latency=0.05)
    judge(run, openai_server, "--concurrency", "3")
    done = last(run)
    assert done["concurrency"] == "pinned" and done["concurrency_peak"] == 3 and done["sent"] == N
    assert openai_server.peak_in_flight <= 3


def test_a_judge_server_at_capacity_gets_no_errors(tmp_path, openai_server):
    run = make_run(tmp_path)
    openai_server.reset(default="1", latency=0.05)
    openai_server.max_in_flight, openai_server.busy_retry_after = 4, 0.05  # 429 past 4 in flight
    judge(run, openai_server, "--retries", "8")
    done = last(run)
    assert done["errors"] == 0 and done["judged"] == N
    assert any(r.fault == "busy" for r in openai_server.requests)  # pushed back, and each one was retried
    assert openai_server.peak_in_flight <= 4
