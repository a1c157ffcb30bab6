"""think: does reasoning help this model? Every sample runs twice, reasoning off and reasoning on.

The switch is a request-body field, set per variant through `Sample.generation["extra_body"]` (merged
into the run's --extra-body). Default: vLLM / SGLang / Qwen3 templates' `chat_template_kwargs:
{"enable_thinking": false | true}`. Other servers: `think:field=reasoning_effort,off=low,on=high`, where
`field` is a dotted path into the body and `off` / `on` are JSON values (else strings); `max_tokens=N` sets
the limit of both arms (a chain needs room: an arm cut inside its chain is scored unfinished_reasoning).

Figures, paired by sample (both arms answered), under the run's preset:
* think_gain = accuracy on - accuracy off, with a paired bootstrap interval; its detail holds the mean
  completion tokens of each arm (`tokens_off`, `tokens_on`, from the servers' usage) and the mean reasoning
  tokens of the on arm where reported;
* right_to_wrong / wrong_to_right = share of samples whose answer is right without reasoning and wrong with
  it, and the reverse (their difference is the gain);
* rows: accuracy of each arm, invalid rate of each arm, and the on arm's share cut inside its chain.

Nothing is random: the two variants are the same request but for the switch, cached like any request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from medprobe.probes._base import ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec, metric, score, tag, variant
from medprobe.reasoning import UNFINISHED
from medprobe.types import Outcome, Record, Sample, Scalar

NAME = "think"
DEFAULT_FIELD = "chat_template_kwargs.enable_thinking"
DEFAULT_OFF, DEFAULT_ON = "false", "true"
ARMS = ("off", "on")


def check(spec: ProbeSpec) -> None:
    spec.check(known_params=("field", "off", "on", "max_tokens"))
    if not all(_field(spec)):
        raise ValueError(f"--probe {spec}: field must be a dotted path like chat_template_kwargs.enable_thinking")
    if _value(spec, "off") == _value(spec, "on"):
        raise ValueError(f"--probe {spec}: off and on must differ")
    if "max_tokens" in spec.params and not spec.param("max_tokens", 0) >= 1:
        raise ValueError(f"--probe {spec}: max_tokens must be a positive integer")


def _field(spec: ProbeSpec) -> list[str]:
    return [k.strip() for k in spec.params.get("field", DEFAULT_FIELD).split(".")]


def _value(spec: ProbeSpec, arm: str) -> object:
    text = spec.params.get(arm, DEFAULT_OFF if arm == "off" else DEFAULT_ON)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def body(spec: ProbeSpec, arm: str) -> dict[str, object]:
    """The request-body fields of one arm: {"chat_template_kwargs": {"enable_thinking": False}} by default."""
    node: object = _value(spec, arm)
    for key in reversed(_field(spec)):
        node = {key: node}
    return node  # type: ignore[return-value]


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    spec = ctx.spec
    common: dict[str, int] = {"max_tokens": int(spec.param("max_tokens", 0))} if "max_tokens" in spec.params else {}
    field = ".".join(_field(spec))
    return [variant(s, NAME, arm, generation={"extra_body": body(spec, arm), **common},
                    detail={"field": field, "value": json.dumps(_value(spec, arm))})
            for s in samples for arm in ARMS]  # fmt: skip


def _tokens(records: list[Record], reasoning: bool = False) -> float | None:
    """Mean completion (or reasoning) tokens over the records whose usage reports them."""
    values = [getattr(r.final.usage, "reasoning_tokens" if reasoning else "completion_tokens")
              for r in records if r.final is not None and r.final.usage is not None]  # fmt: skip
    known = [v for v in values if v is not None]
    return round(float(np.mean(known)), 1) if known else None


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    pairs: list[tuple[Record, Record]] = []
    failed = 0
    for g in groups.values():
        arms = {tag(v).variant: v for v in g.variants}
        if set(ARMS) <= set(arms):
            pairs.append((arms["off"], arms["on"]))
        elif g.failed:
            failed += 1  # an arm's request failed: the sample is left out of every paired figure
    if not pairs:
        return ProbeResult(probe=NAME, ran=False, failed=failed,
                           note="no sample answered with reasoning both off and on")  # fmt: skip
    scores = [(score(off, preset), score(on, preset)) for off, on in pairs]
    off_ok = np.array([a.outcome is Outcome.CORRECT for a, _ in scores], float)
    on_ok = np.array([b.outcome is Outcome.CORRECT for _, b in scores], float)
    offs, ons = [off for off, _ in pairs], [on for _, on in pairs]
    tokens: dict[str, Scalar] = {"tokens_off": _tokens(offs), "tokens_on": _tokens(ons),
                                 "reasoning_tokens_on": _tokens(ons, reasoning=True)}  # fmt: skip
    headline = (
        metric(NAME, "think_gain", on_ok - off_ok, preset, seed, failed, **{k: v for k, v in tokens.items() if v is not None}),
        metric(NAME, "right_to_wrong", off_ok * (1 - on_ok), preset, seed, failed),
        metric(NAME, "wrong_to_right", (1 - off_ok) * on_ok, preset, seed, failed),
    )
    invalid = {arm: np.array([s[i].outcome is Outcome.INVALID for s in scores], float) for i, arm in enumerate(ARMS)}
    cut = np.array([b.answer.reason == UNFINISHED for _, b in scores], float)
    rows = (
        metric(NAME, "accuracy", off_ok, preset, seed, failed, arm="off"),
        metric(NAME, "accuracy", on_ok, preset, seed, failed, arm="on"),
        metric(NAME, "invalid_rate", invalid["off"], preset, seed, failed, arm="off"),
        metric(NAME, "invalid_rate", invalid["on"], preset, seed, failed, arm="on"),
        metric(NAME, "unfinished_reasoning_rate", cut, preset, seed, failed, arm="on"),
    )
    note = ("think_gain = accuracy with reasoning on - off, paired by sample; tokens_* = mean completion tokens "
            "per arm (server usage)")  # fmt: skip
    if cut.mean() > 0.03:
        note += f"; {100 * cut.mean():.0f}% of the on arm was cut inside its chain: raise think:max_tokens"
    return ProbeResult(probe=NAME, headline=headline, rows=rows, failed=failed, note=note)
