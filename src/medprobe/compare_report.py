"""`medprobe compare RUN_A RUN_B --preset report|rexrank|...`: two models' reports on the same studies.

A report has no right or wrong, so McNemar does not apply: each metric of the preset is compared by a
**paired bootstrap by study** (the same studies drawn for both models in every resample; the corpus metric,
e.g. corpus BLEU-4, recomputed on each draw), giving the difference A - B and its 95% percentile interval.
p: **approximate randomisation** (Noreen 1989; radeval's `compare_systems`: swap the two models' reports
study by study at random) for the metrics kept per study (BLEU-1..4, ROUGE-L, CIDEr-D of the `report`
preset) and for METEOR (its statistics swapped, then summed as the jar scores a corpus); for the others,
twice the share of bootstrap differences on the far side of 0 (the smallest p it can give is 1 / resamples).
Only clean studies both runs answered with a valid report count (same study id and reference); the rest
are counted and left out. Probe variants are never compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from medprobe import scoring
from medprobe.compare import is_probe_variant
from medprobe.runs import Run
from medprobe.runs import load as load_run
from medprobe.scoring.report import Column, ReportPreset
from medprobe.stats import N_RESAMPLES, rng_for
from medprobe.textmetrics import corpus
from medprobe.textmetrics.corpus import draws
from medprobe.types import AnswerType, Frozen, Outcome

METHOD = ("paired bootstrap by study (the same studies drawn for both models, the corpus metric recomputed "
          "on each draw), {n} resamples, 95% percentile")
AR = "approximate randomisation (the models' reports swapped study by study), {n} shuffles"
BOOTSTRAP_P = "twice the share of bootstrap differences beyond 0"
PER_STUDY = ("bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "cider")


class MetricDiff(Frozen):
    metric: str
    value_a: float | None = Field(description="None when the metric is not available")
    value_b: float | None
    difference: float | None
    low: float | None
    high: float | None
    p: float | None
    p_method: str | None = Field(None, description="how p was computed (AR or bootstrap)")
    unavailable: str | None = None


class ReportCompareResult(Frozen):
    """Two runs' reports on the same studies, metric by metric (the `headline` metric first in views)."""

    run_a: str
    run_b: str
    benchmark: str
    preset: str
    n: int = Field(description="studies with a valid report in both runs")
    left_out: int = Field(description="shared studies without a valid report in either run, or whose reference differs")
    metrics: tuple[MetricDiff, ...]
    headline: str | None = Field(None, description="the preset's headline metric (e.g. rougeL for `report`)")
    seed: int
    interval: str


def _valid(run: Run, preset: ReportPreset) -> dict[str, tuple[str, str]]:
    out = {}
    for r in run.clean_records:
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
    studies = [{r.sample.id for r in run.clean_records} for run in (a, b)]
    shared = studies[0] & studies[1]
    ids = sorted(i for i in va if i in vb and va[i][1] == vb[i][1])
    refs = [va[i][1] for i in ids]
    cands_a, cands_b = [va[i][0] for i in ids], [vb[i][0] for i in ids]
    cols_a = preset.columns(cands_a, refs, 0)
    cols_b = preset.columns(cands_b, refs, 0)
    # metrics kept per study (StudyTable) get the approximate-randomisation p
    tables = (preset.study_table(cands_a, refs), preset.study_table(cands_b, refs)) if hasattr(preset, "study_table") else None
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
        if tables is not None and ca.name in PER_STUDY:
            p, how = corpus.paired(*tables, ca.name, seed=seed)[3], AR.format(n=N_RESAMPLES)
        elif ca.stats is not None and cb.stats is not None and ca.from_sums is not None:
            p, how = _swap_p(ca, cb, xa - xb, rng_for(seed, f"compare-report-ar/{preset_name}/{ca.name}")), \
                AR.format(n=N_RESAMPLES)
        else:
            side = np.mean(deltas <= 0) if xa - xb > 0 else np.mean(deltas >= 0)
            p, how = float(max(1.0 / N_RESAMPLES, min(1.0, 2 * side))), BOOTSTRAP_P
        rows.append(MetricDiff(metric=ca.name, value_a=xa, value_b=xb, difference=xa - xb, low=_num(low),
                               high=_num(high), p=float(p), p_method=how))
    return ReportCompareResult(run_a=a.label, run_b=b.label, benchmark=a.benchmark, preset=preset.name, n=len(ids),
                               left_out=len(shared) - len(ids), metrics=tuple(rows), seed=seed,
                               headline=preset.value_names.get(AnswerType.REPORT),
                               interval=METHOD.format(n=N_RESAMPLES))


def _swap_p(ca: Column, cb: Column, delta: float, rng: np.random.Generator) -> float:
    """Approximate randomisation on summed statistics (METEOR): each shuffle swaps the two models'
    statistics study by study, p = (1 + #|delta*| >= |delta|) / (1 + shuffles), as corpus.paired."""
    a, b = ca.stats, cb.stats
    hits = 0
    for start in range(0, N_RESAMPLES, 200):
        swap = (rng.random((min(200, N_RESAMPLES - start), len(a))) < 0.5).astype(float)
        d = ca.from_sums(a.sum(axis=0) + swap @ (b - a)) - cb.from_sums(b.sum(axis=0) + swap @ (a - b))
        hits += int(np.sum(np.abs(d) >= abs(delta) - 1e-12))
    return (hits + 1) / (N_RESAMPLES + 1)


def compare(run_a: Path, run_b: Path, preset: str, seed: int | None = None) -> ReportCompareResult:
    return compare_reports(load_run(run_a), load_run(run_b), preset, seed)


def headline_diff(r: ReportCompareResult) -> MetricDiff | None:
    """The comparison of the preset's headline metric (else the first computed one)."""
    rows = [m for m in r.metrics if not m.unavailable]
    return next((m for m in rows if m.metric == r.headline), rows[0] if rows else None)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _names(r: ReportCompareResult, how: str) -> str:
    return ", ".join(m.metric for m in r.metrics if m.p_method == how)


def markdown(r: ReportCompareResult) -> str:
    head = (f"**{r.run_a}** vs **{r.run_b}** on {r.benchmark}, preset `{r.preset}`, {r.n} studies with a valid "
            f"report in both ({r.left_out} shared studies left out: no valid report in one of the runs, or another "
            "reference)")
    lines = [head, "", "| metric | A | B | A - B | 95% CI | p |",
             "|---|---:|---:|---:|---|---:|"]
    for m in r.metrics:
        if m.unavailable:
            lines.append(f"| {m.metric} | | | | {m.unavailable} | |")
        else:
            lines.append(f"| {m.metric} | {_fmt(m.value_a)} | {_fmt(m.value_b)} | {_fmt(m.difference)} | "
                         f"{_fmt(m.low)} to {_fmt(m.high)} | {m.p:.3g} |")
    lines += ["", f"Interval: {r.interval}, seed {r.seed}."]
    methods = sorted({m.p_method for m in r.metrics if m.p_method})
    lines += [f"p: {'; '.join(f'{how} ({_names(r, how)})' for how in methods)}."] if methods else []
    return "\n".join(lines) + "\n"
