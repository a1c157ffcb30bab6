"""GREEN-style verdicts on reports in results: the judge's `green` rows and its agreement with the rule metrics.

A report is graded, not right or wrong: each readable verdict carries its study's GREEN score
(`Verdict.scores["green"]`, medprobe.judge_green), and a row is the mean over the studies with a readable
verdict, with an interval from resampling studies (`medprobe.clusters`; a study's images are its own, so
resampling by image resamples studies). An unreadable verdict is counted in `invalid` and left out of the
mean: never scored 0. Agreement with the rule metrics is the rank (Spearman) and linear (Pearson)
correlation, study by study, of GREEN with each per-study value of every rule preset that scores reports
(its `Score.value` and every `Score.extra` entry: ROUGE-L, BLEU, ...); without such a preset, with ROUGE-L
from medprobe.textmetrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from medprobe import clusters, scoring, textmetrics
from medprobe.clusters import Resampling
from medprobe.metrics import Metric, subsets
from medprobe.reasoning import split_generation
from medprobe.types import Frozen, Outcome, Record

if TYPE_CHECKING:
    from medprobe.judge import Verdict

#: the rule metric used when no rule preset scores the judged reports
FALLBACK = "textmetrics"


class ReportAgreement(Frozen):
    """GREEN against one per-study rule metric, on the studies both scored."""

    preset: str = Field(description="rule preset, or 'textmetrics' (ROUGE-L computed here) when none scores reports")
    metric: str = Field(description="the preset's value name or a Score.extra key, e.g. rouge_l")
    n: int
    spearman: float | None = Field(description="rank correlation; None below 3 studies or for a constant metric")
    pearson: float | None = None


@dataclass
class Graded:
    """The GREEN part of a judge's rows and section."""

    metrics: list[Metric] = field(default_factory=list)
    judged: int = 0
    errors: int = 0
    invalid_reasons: Counter = field(default_factory=Counter)
    agreement: tuple[ReportAgreement, ...] = ()


def _correlations(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None]:
    from scipy import stats

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None, None
    return float(stats.spearmanr(a, b).statistic), float(stats.pearsonr(a, b).statistic)


def graded(have: Sequence[tuple[Record, Verdict]], rules: Sequence[str], name: str, seed: int,
           cluster: str | None = clusters.DEFAULT) -> Graded:  # fmt: skip
    """GREEN rows (overall, answer type, subgroups) and agreement for the (record, green verdict) pairs."""
    out = Graded(errors=sum(v.outcome is None for _, v in have))
    rated = [(r, v) for r, v in have if v.outcome is not None]
    out.judged = len(rated)
    out.invalid_reasons = Counter(v.reason for _, v in rated if v.reason)
    if not rated:
        return out
    recs = [r for r, _ in rated]
    valid = np.array([v.outcome is not Outcome.INVALID for _, v in rated])
    green = np.array([(v.scores or {}).get("green", np.nan) for _, v in rated], dtype=float)
    parser = sorted({f"judge:{v.prompt_name}@{v.prompt_hash}" for _, v in rated})
    resampling = Resampling.of([r.sample for r in recs], cluster)
    for subset, idx in subsets(recs):
        keep = idx[valid[idx]]
        if len(idx) == 0 or len(keep) == 0:
            continue
        low, high = resampling.ci(green[keep], keep, seed, f"{name}/{subset}/green")
        out.metrics.append(Metric(subset=subset, metric="green", preset=name, parsers=tuple(parser),
                                  value=float(green[keep].mean()), ci_low=low, ci_high=high, n=len(keep), correct=0,
                                  wrong=0, invalid=int(len(idx) - len(keep)), interval=resampling.method_for(keep),
                                  clusters=resampling.count(keep)))  # fmt: skip
    good = [i for i in range(len(recs)) if valid[i]]
    out.agreement = tuple(_agreement([recs[i] for i in good], green[good], rules))
    return out


def _agreement(recs: list[Record], green: np.ndarray, rules: Sequence[str]) -> list[ReportAgreement]:
    rows = []
    for rule in rules:
        preset = scoring.get(rule)
        keep = [i for i, r in enumerate(recs) if preset.applies(r.sample)]
        if not keep:
            continue
        scores = [preset.score_generation(recs[i].sample, recs[i].final) for i in keep]
        value_name = preset.value_names.get(recs[keep[0]].sample.answer_type, "value")
        columns = {value_name: [s.value for s in scores]}
        for key in dict.fromkeys(k for s in scores for k in s.extra):
            columns[key] = [s.extra.get(key, np.nan) for s in scores]
        for metric, values in columns.items():
            arr = np.array(values, dtype=float)
            ok = ~np.isnan(arr)
            rho, r = _correlations(green[keep][ok], arr[ok])
            rows.append(ReportAgreement(preset=rule, metric=metric, n=int(ok.sum()), spearman=rho, pearson=r))
    if not rows and recs:  # no rule preset scores these reports: ROUGE-L of the reply against the reference
        rouge = np.array([textmetrics.rouge_l(split_generation(r.final).answer, r.sample.answer) for r in recs])
        rho, r = _correlations(green, rouge)
        rows.append(ReportAgreement(preset=FALLBACK, metric="rouge_l", n=len(recs), spearman=rho, pearson=r))
    return rows


def markdown(agreement: Sequence[ReportAgreement]) -> list[str]:
    """The GREEN/rule-metric agreement table of summary.md."""
    if not agreement:
        return []
    lines = ["", "GREEN against the rule metrics, study by study (correlation of per-study values):", "",
             "| rule preset | metric | n | Spearman | Pearson |", "|---|---|---:|---:|---:|"]  # fmt: skip
    for a in agreement:
        rho = "n/a" if a.spearman is None else f"{a.spearman:.3f}"
        r = "n/a" if a.pearson is None else f"{a.pearson:.3f}"
        lines.append(f"| {a.preset} | {a.metric} | {a.n} | {rho} | {r} |")
    return lines
