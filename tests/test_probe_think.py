"""--probe think: every sample with reasoning off and on (a request-body switch), paired figures, tokens.

A scripted backend reads the switch from the request and answers like a model that needs to think:
with reasoning off it always says "yes"; with reasoning on it writes a chain full of misleading words,
then the gold answer (one sample's chain is cut by max_tokens).
"""

from __future__ import annotations

import pytest

from medprobe import pipeline, probes
from medprobe.backends import BackendConfig
from medprobe.backends.scripted import register_function
from medprobe.benchmarks import LoadOptions, load
from medprobe.pipeline import RunSpec
from medprobe.probes import ProbeContext, ProbeSpec, think
from medprobe.runner import with_overrides
from medprobe.types import Generation, GenerationConfig, Request, Usage

N = 12
GOLD = {s.id: s.answer for s in load("vqa-rad-demo", LoadOptions(limit=N)).samples}
CUT = sorted(GOLD)[0]  # this sample's chain never ends
seen: list[Request] = []


def thinker(request: Request) -> Generation:
    seen.append(request)
    switch = request.config.extra_body.get("chat_template_kwargs", {}).get("enable_thinking")
    if not switch:  # reasoning off, and the clean sample (no switch): a quick, often wrong, "yes"
        return Generation(text="yes", finish_reason="stop", usage=Usage(completion_tokens=1))
    if request.sample_id.startswith(CUT + "~"):
        return Generation(text="<think>yes? no? let me look again at", finish_reason="length",
                          usage=Usage(completion_tokens=request.config.max_tokens))
    chain = "<think>Is it yes or no? Option A? The answer is no. Maybe yes.</think>\n\n"
    return Generation(text=chain + GOLD[request.sample_id.split("~")[0]], finish_reason="stop",
                      usage=Usage(completion_tokens=40, reasoning_tokens=36))


register_function("thinker", thinker)


@pytest.fixture(autouse=True)
def strict_only(monkeypatch):
    monkeypatch.setattr(pipeline, "default_presets", lambda: ["strict"])


def _run(tmp_path, *specs, extra_body=None):
    spec = RunSpec(benchmark="vqa-rad-demo", load=LoadOptions(limit=N), probes=specs,
                   backend=BackendConfig(provider="scripted", model="fn:thinker"),
                   generation=GenerationConfig(max_tokens=64, extra_body=extra_body or {}))  # fmt: skip
    return pipeline.run(spec, tmp_path / "run")


def test_think_probe_gain_flips_and_tokens(tmp_path):
    seen.clear()
    res = _run(tmp_path, "think", extra_body={"chat_template_kwargs": {"keep": 1}, "top_k": 20})
    result = next(p for p in res.probes if p.probe == "think")
    assert result.ran, result.note
    head = {m.name: m for m in result.headline}
    off_right = [GOLD[i].lower() == "yes" for i in sorted(GOLD)]
    on_right = [i != CUT for i in sorted(GOLD)]
    gain = head["think_gain"]
    assert gain.n == N and gain.value == pytest.approx((sum(on_right) - sum(off_right)) / N)
    assert gain.ci_low < gain.value < gain.ci_high  # a paired bootstrap interval
    assert head["wrong_to_right"].value == pytest.approx(sum(b and not a for a, b in zip(off_right, on_right)) / N)
    assert head["right_to_wrong"].value == pytest.approx(sum(a and not b for a, b in zip(off_right, on_right)) / N)
    assert gain.detail["tokens_off"] == 1.0
    assert gain.detail["tokens_on"] == pytest.approx((40 * (N - 1) + 64) / N, abs=0.05)
    assert gain.detail["reasoning_tokens_on"] == 36.0  # reported by N - 1 of them
    rows = {(m.name, m.detail.get("arm")): m.value for m in result.rows}
    assert rows["unfinished_reasoning_rate", "on"] == pytest.approx(1 / N)
    assert rows["invalid_rate", "on"] == pytest.approx(1 / N) and rows["invalid_rate", "off"] == 0.0
    # the switch is merged into the run's own extra_body, not replacing it
    bodies = {r.sample_id.rpartition(":")[2] if "~" in r.sample_id else "clean": r.config.extra_body for r in seen}
    assert bodies["off"] == {"chat_template_kwargs": {"keep": 1, "enable_thinking": False}, "top_k": 20}
    assert bodies["on"] == {"chat_template_kwargs": {"keep": 1, "enable_thinking": True}, "top_k": 20}
    assert bodies["clean"] == {"chat_template_kwargs": {"keep": 1}, "top_k": 20}
    assert len({r.key for r in seen}) == 3 * N  # clean, off and on are three distinct requests per sample
    # cached: the same run again asks nothing, and re-scoring gives the same figures
    seen.clear()
    again = _run(tmp_path, "think", extra_body={"chat_template_kwargs": {"keep": 1}, "top_k": 20})
    assert seen == [] and again.probes == res.probes
    # the headline rows stay on the clean samples (all "yes")
    assert res.preset("strict").get().n == N


def test_think_spec_for_other_servers():
    spec = probes.parse(["think:field=reasoning_effort,off=low,on=high,max_tokens=4096"])[0]
    sample = load("vqa-rad-demo", LoadOptions(limit=1)).samples[0]
    off, on = think.derive([sample], ProbeContext(spec=spec))
    assert (off.variant_of.variant, on.variant_of.variant) == ("off", "on")
    assert off.generation == {"extra_body": {"reasoning_effort": "low"}, "max_tokens": 4096}
    run_config = GenerationConfig(extra_body={"reasoning_effort": "medium", "top_k": 5})
    assert with_overrides(run_config, on.generation).extra_body == {"reasoning_effort": "high", "top_k": 5}
    assert with_overrides(run_config, on.generation).max_tokens == 4096
    nested = think.body(ProbeSpec.parse("think:field=thinking.type,off=disabled,on=enabled"), "on")
    assert nested == {"thinking": {"type": "enabled"}}
    assert think.body(ProbeSpec.parse("think"), "off") == {"chat_template_kwargs": {"enable_thinking": False}}
    for bad, message in (("think:off=true", "must differ"), ("think:budget=3", "unknown option"),
                         ("think:max_tokens=0", "positive")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            probes.parse([bad])


def test_think_probe_on_the_trust_card(tmp_path):
    from medprobe.card import model_card

    _run(tmp_path, "think")
    card = model_card(tmp_path / "run")
    gain = next(f for f in card.figures if f.key == "think_gain")
    assert gain.status == "ok" and gain.n == N and "probe think" in gain.protocol
