"""Hosted-API budgets: token totals from replies' usage in the manifest and summary, --max-cost stopping a run
before the cap (loopback server and scripted backend), --rpm pacing, --tpm corrected from usage, price files."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai_server import Reply
from typer.testing import CliRunner

from medprobe.backends.scripted import register_function
from medprobe.budget import Estimator, Price, load_prices, price_for
from medprobe.cli import app
from medprobe.manifest import ExitCode, RunStatus
from medprobe.store import read_manifest
from medprobe.throttle import AdaptiveConcurrency, Gate
from medprobe.types import Generation, GenerationConfig, Message, Part, Request, Usage

from test_e2e_cli import make_cases


def run(*args: str):
    return CliRunner().invoke(app, ["run", *args])


def prices(tmp_path, model: str = "tiny", per_million: float = 1000.0):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({model: {"input": per_million, "output": per_million}}))
    return path


def test_usage_totals_in_manifest_and_summary(tmp_path, openai_server):
    cases = make_cases(tmp_path, 10)
    openai_server.set_script(lambda rec: Reply("Yes.", reasoning="let me think") if "q1" in rec.question else "No.")
    out = tmp_path / "run"
    args = [str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out),
            "--prices", str(prices(tmp_path, per_million=2.0))]  # fmt: skip
    result = run(*args)
    assert result.exit_code == 0, result.output
    # what the server counted: words of the question + 64 per image; answer tokens + chain tokens
    prompt = sum(len(r.question.split()) + 64 * r.image_count for r in openai_server.requests)
    chained = sum(1 for r in openai_server.requests if "q1" in r.question)  # q1 (one question)
    usage = read_manifest(out).usage
    assert usage is not None
    ex = usage.execution
    assert (ex.requests, ex.with_usage, ex.prompt_tokens) == (10, 10, prompt)
    assert ex.completion_tokens == 10 + 3 * chained and ex.reasoning_tokens == 3 * chained
    assert ex.cost_usd == pytest.approx((prompt + ex.completion_tokens) * 2.0 / 1e6)
    assert usage.stored == ex and usage.price_input == 2.0
    assert "usage this execution: 10 requests" in (out / "summary.md").read_text()
    # a re-run sends nothing: this execution used nothing, the folder still holds what it paid for
    again = run(*args)
    assert again.exit_code == 0, again.output
    usage = read_manifest(out).usage
    assert usage is not None and usage.execution.requests == 0 and usage.stored == ex


def test_max_cost_stops_before_the_cap_keeps_the_answers_and_resumes(tmp_path, openai_server):
    cases = make_cases(tmp_path, 60)
    out = tmp_path / "run"
    base = [str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out),
            "--prices", str(prices(tmp_path))]  # fmt: skip
    result = run(*base, "--max-cost", "3")  # $0.001 a token: a reply costs ~$0.07, reserves ~$0.6 while in flight
    assert result.exit_code == ExitCode.BUDGET, result.output
    manifest = read_manifest(out)
    assert manifest.status is RunStatus.STOPPED and manifest.stopped_by == "budget"
    assert "--max-cost $3.0000" in (manifest.stop_reason or "") and "spent $" in (manifest.stop_reason or "")
    assert manifest.usage is not None and manifest.usage.execution.cost_usd is not None
    assert 2.0 < manifest.usage.execution.cost_usd <= 3.0  # close to the cap, never past it
    cov = manifest.coverage
    assert cov is not None and cov.errors == 0 and 10 < cov.answered < 60 and cov.answered + cov.not_sent == 60
    answered, sent = cov.answered, len(openai_server.requests)
    assert sent == answered
    again = run(*base, "--max-cost", "100")
    assert again.exit_code == 0, again.output
    assert len(openai_server.requests) - sent == 60 - answered  # answers so far were kept, not bought again


def test_max_cost_cuts_a_scripted_backends_batch_short(tmp_path):
    register_function("billed", lambda r: Generation(text="yes", usage=Usage(prompt_tokens=100, completion_tokens=2)))
    cases = make_cases(tmp_path, 20)
    out = tmp_path / "run"
    result = run(str(cases), "--model", "scripted/fn:billed", "--out", str(out),
                 "--prices", str(prices(tmp_path, "fn:billed")), "--max-cost", "5")  # fmt: skip
    assert result.exit_code == ExitCode.BUDGET, result.output
    manifest = read_manifest(out)
    assert manifest.stopped_by == "budget" and manifest.coverage is not None
    assert 1 < manifest.coverage.answered < 20  # a 512-request batch is cut where the cap falls
    assert manifest.usage is not None and manifest.usage.execution.cost_usd <= 5.0


def test_budget_flags_say_what_they_need(tmp_path):
    cases = make_cases(tmp_path, 2)
    base = [str(cases), "--model", "openai/tiny", "--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "r")]
    no_prices = run(*base, "--max-cost", "1")
    assert no_prices.exit_code == 2 and "--prices" in no_prices.output
    unknown = run(*base, "--prices", str(prices(tmp_path, "other-model")))
    assert unknown.exit_code == 2 and "no price for 'tiny'" in unknown.output
    assert not (tmp_path / "r").exists()


def test_price_files_in_json_and_toml(tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text('["gpt-4o"]\ninput = 2.5\noutput = 10.0\n\n["openai/gpt-4o-mini"]\ninput = 0.15\noutput = 0.6\n')
    table = load_prices(toml)
    assert price_for(table, "openai/gpt-4o") == Price(input=2.5, output=10.0)  # by name
    assert price_for(table, "openai/gpt-4o-mini").output == 0.6  # by full spec
    assert Price(input=2.5, output=10.0).cost(1_000_000, 100_000) == pytest.approx(3.5)
    bad = tmp_path / "bad.json"
    bad.write_text('{"m": {"input": -1, "output": 1}}')
    with pytest.raises(ValueError, match="--prices .*m.input"):
        load_prices(bad)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="does not parse"):
        load_prices(bad)


def test_rpm_paces_requests_to_the_limit(tmp_path, openai_server):
    cases = make_cases(tmp_path, 24)
    out = tmp_path / "run"
    result = run(str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out),
                 "--rpm", "600")  # fmt: skip
    assert result.exit_code == 0, result.output
    arrivals = sorted(r.at for r in openai_server.requests)
    assert len(arrivals) == 24
    # 10 a second after a bucket of 10: request i can arrive no sooner than (i - 10) / 10 s after the first
    for i, t in enumerate(arrivals):
        assert t - arrivals[0] >= (i - 10) / 10 - 0.05
    assert read_manifest(out).settings["rpm"] == 600


def _request(text: str, max_tokens: int = 10) -> Request:
    return Request(sample_id="s", model="m/m", messages=(Message(role="user", content=(Part(type="text", text=text),)),),
                   config=GenerationConfig(max_tokens=max_tokens))  # fmt: skip


def test_tpm_is_charged_an_estimate_and_corrected_from_usage():
    async def main() -> tuple[float, float, float]:
        gate = Gate(AdaptiveConcurrency(pinned=4), tpm=6000)  # 100 tokens a second, a bucket of 100
        request = _request("x" * 160)  # 40 text tokens + 4 for the message + 10 for the completion
        full = gate.tpm.tokens  # type: ignore[union-attr]
        ticket = await gate.enter([request])
        charged = full - gate.tpm.tokens  # type: ignore[union-attr]
        gate.leave(ticket, [Generation(text="a", usage=Usage(prompt_tokens=20, completion_tokens=1))])
        return charged, ticket.tokens, full - gate.tpm.tokens  # type: ignore[union-attr]

    charged, estimate, after = asyncio.run(main())
    assert estimate == 54 and charged == pytest.approx(54, abs=1)
    assert after == pytest.approx(21, abs=1)  # the reply said 21 tokens: the rest came back


def test_the_estimator_learns_from_usage_and_stays_on_the_high_side():
    est, request = Estimator(), _request("y" * 400, max_tokens=50)  # 100 + 4 tokens by the rule of thumb
    assert est.tokens([request]) == 104 + 50
    est.learn([request], [Generation(text="a", usage=Usage(prompt_tokens=208, completion_tokens=3))])
    assert est.prompt([request]) >= 208  # twice what it guessed: the next estimates follow, with a margin


def test_tpm_flag_reaches_the_run(tmp_path, openai_server):
    cases = make_cases(tmp_path, 6)
    out = tmp_path / "run"
    result = run(str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--out", str(out),
                 "--tpm", "1000000")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert read_manifest(out).settings["tpm"] == 1_000_000
