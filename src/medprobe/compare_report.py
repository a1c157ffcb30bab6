"""`medprobe compare RUN_A RUN_B --preset report|rexrank|...`: two models' reports on the same studies.

A report has no right or wrong, so McNemar does not apply: each metric of the preset is compared by a
**paired bootstrap by study** (the same studies drawn for both models in every resample; the corpus metric,
e.g. corpus BLEU-4, recomputed on each draw), giving the difference A - B, its 95% percentile interval and a
two-sided bootstrap p (twice the share of resampled differences on the far side of 0). Only studies both
runs answered with a valid report count (same study id and reference); the rest are counted and left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from medprobe import scoring
from medprobe.compare import is_probe_variant
from medprobe.runs import Run
from medprobe.runs import load as load_run
from medprobe.scoring.report import ReportPreset
from medprobe.stats import N_RESAMPLES, rng_for
from medprobe.textmetrics.corpus import draws
from medprobe.types import Frozen, Outcome

METHOD = ("paired bootstrap by study (the same studies drawn for both models, the corpus metric recomputed "
          "on each draw), {n} resamples, 95% percentile; p = twice the share of differences beyond 0")


class MetricDiff(Frozen):
    metric: str
    value_a: float | None = Field(description="None when the metric is not available")
    value_b: float | None
    difference: float | None
    low: float | None
    high: float | None
    p: float | None
    unavailable: str | None = None


class ReportCompareResult(Frozen):
    run_a: str
    run_b: str
    benchmark: str
    preset: str
    n: int = Field(description="studies with a valid report in both runs")
    left_out: int = Field(description="shared studies without a valid report in either run, or whose reference differs")
    metrics: tuple[MetricDiff, ...]
    seed: int
    interval: str


def _valid(run: Run, preset: ReportPreset) -> dict[str, tuple[str, str]]:
    out = {}
    for r in run.all_records:
        if is_probe_variant(r) or not r.answered or not preset.applies(r.sample):
            continue
        score = preset.score_generation(r.sample, r.final)
        if score.outcome is Outcome.SCORED:
            out[r.sample.id] = (str(score.answer.value), r.sample.answer)
    return out


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def compare_reports(a: Run, b: Run, preset_name: str, seed: int | None = None) -> ReportCompareResult:
    preset = scoring.get(preset_name)
    if not isinstance(preset, ReportPreset):
        raise TypeError(f"{preset_name} is not a report preset; use medprobe.compare for accuracy presets.")
    seed = a.manifest.seed if seed is None else seed
    va, vb = _valid(a, preset), _valid(b, preset)
    shared = {r.sample.id for r in a.all_records} & {r.sample.id for r in b.all_records}
    ids = sorted(i for i in va if i in vb and va[i][1] == vb[i][1])
    refs = [va[i][1] for i in ids]
    cols_a = preset.columns([va[i][0] for i in ids], refs, 0)
    cols_b = preset.columns([vb[i][0] for i in ids], refs, 0)
    rows = []
    for ca, cb in zip(cols_a, cols_b):
        if ca.unavailable or cb.unavailable or ca.weighted is None or cb.weighted is None or not ids:
            why = ca.unavailable or cb.unavailable or "not available: no per-study form to resample"
            rows.append(MetricDiff(metric=ca.name, value_a=None, value_b=None, difference=None, low=None, high=None,
                                   p=None, unavailable=why))
            continue
        ones = np.ones((1, len(ids)))
        xa, xb = float(ca.weighted(ones)[0]), float(cb.weighted(ones)[0])
        rng = rng_for(seed, f"compare-report/{preset_name}/{ca.name}")
        deltas = np.concatenate([ca.weighted(w) - cb.weighted(w) for w in draws(len(ids), rng, N_RESAMPLES)])
        low, high = np.quantile(deltas, [0.025, 0.975])
        side = np.mean(deltas <= 0) if xa - xb > 0 else np.mean(deltas >= 0)
        rows.append(MetricDiff(metric=ca.name, value_a=xa, value_b=xb, difference=xa - xb, low=_num(low),
                               high=_num(high), p=float(min(1.0, 2 * side))))
    return ReportCompareResult(run_a=a.label, run_b=b.label, benchmark=a.benchmark, preset=preset_name, n=len(ids),
                               left_out=len(shared) - len(ids), metrics=tuple(rows), seed=seed,
                               interval=METHOD.format(n=N_RESAMPLES))


def compare(run_a: Path, run_b: Path, preset: str, seed: int | None = None) -> ReportCompareResult:
    return compare_reports(load_run(run_a), load_run(run_b), preset, seed)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def markdown(r: ReportCompareResult) -> str:
    head = (f"**{r.run_a}** vs **{r.run_b}** on {r.benchmark}, preset `{r.preset}`, {r.n} studies with a valid "
            f"report in both ({r.left_out} left out)")
    lines = [head, "", "| metric | A | B | A - B | 95% CI | p |",
             "|---|---:|---:|---:|---|---:|"]
    for m in r.metrics:
        if m.unavailable:
            lines.append(f"| {m.metric} | | | | {m.unavailable} | |")
        else:
            lines.append(f"| {m.metric} | {_fmt(m.value_a)} | {_fmt(m.value_b)} | {_fmt(m.difference)} | "
                         f"{_fmt(m.low)} to {_fmt(m.high)} | {m.p:.3g} |")
    lines += ["", f"Interval and p: {r.interval}, seed {r.seed}."]
    return "\n".join(lines) + "\n"
