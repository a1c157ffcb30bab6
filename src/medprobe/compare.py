"""`medprobe compare RUN_A RUN_B`: is model A better than model B on the same items, and how sure are we?

"Medical adaptation: are we making progress?" (Jeong et al.) shows that head-to-head claims flip
once uncertainty is accounted for, so a comparison here is always *paired*: only items both runs
answered (same benchmark, split and sample id, same question and gold) count, and we report

- the accuracy difference with a seeded **paired bootstrap** 95% interval (items are resampled
  together, so per-item correlation between the models narrows the interval; the unpaired interval
  is shown beside it for contrast), and
- the **exact McNemar test**: a two-sided exact binomial test of b vs c, the discordant counts
  (b = A right and B wrong, c = A wrong and B right) under H0: b ~ Binomial(b + c, 1/2).

An invalid answer (no rule of the preset could read it) counts as *not correct*; a failed request
(an error) is not an answer at all, so items with an error in either run are left out and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from medprobe import clusters, scoring
from medprobe.runs import Run
from medprobe.runs import load as load_run
from medprobe.stats import N_RESAMPLES, bootstrap_ci, bootstrap_means, rng_for
from medprobe.types import Frozen, Outcome, Record

INVALID_RULE = "invalid answers count as not correct; items with a failed request in either run are left out"
#: a difference is claimed when the exact McNemar p is below this AND the paired interval excludes 0
#: (docs/verdicts.md, "Comparisons"; the report's verdicts read `CompareResult.decision` too)
ALPHA = 0.05


class Interval(Frozen):
    low: float | None = Field(description="None when there is no shared item (JSON has no NaN)")
    high: float | None


class CompareResult(Frozen):
    """A paired comparison of two runs under one scoring preset. Values are fractions in [0, 1]."""

    run_a: str = Field(description="label of run A (provider/model)")
    run_b: str
    dir_a: str
    dir_b: str
    benchmark: str
    split: str
    preset: str
    n: int = Field(description="shared items scored in both runs")
    only_a: int = Field(description="items only run A has (left out)")
    only_b: int
    errors_left_out: int = Field(description="shared items with a failed request in either run (left out)")
    mismatched: int = Field(description="shared ids whose question or gold differ between the runs (left out)")
    accuracy_a: float | None = Field(description="None when n = 0 (nothing to compare)")
    accuracy_b: float | None
    difference: float | None = Field(description="accuracy_a - accuracy_b; None when n = 0")
    paired_ci: Interval = Field(description="95% paired bootstrap interval of the difference")
    unpaired_ci: Interval = Field(description="95% interval resampling each run independently, for contrast")
    both_correct: int
    both_wrong: int
    b: int = Field(description="A correct, B not correct")
    c: int = Field(description="A not correct, B correct")
    mcnemar_p: float = Field(description="two-sided exact McNemar p-value (exact binomial test on b, c)")
    seed: int
    n_resamples: int
    interval: str = Field(clusters.method(), description="how paired_ci was computed: items of one image are "
                          "resampled together by default (`--cluster-key`)")
    rule: str = INVALID_RULE

    @property
    def empty_reason(self) -> str | None:
        """Why nothing could be compared (n = 0), naming what was left out; None when n > 0."""
        if self.n:
            return None
        return (f"Runs {self.dir_a} and {self.dir_b} have no item answered in both: {self.errors_left_out} shared "
                f"item(s) with a failed request in either run, {self.mismatched} whose question or gold differ, "
                f"{self.only_a} only in A, {self.only_b} only in B. Re-run the failed requests (same command) or "
                "compare runs of the same benchmark data.")  # fmt: skip

    @property
    def decision(self) -> Literal["empty", "difference", "none", "test_only", "interval_only"]:
        """What the two paired figures say together. The exact McNemar test (p < ALPHA) and the paired
        bootstrap interval (excludes 0) are different tests and can disagree near the edge (few discordant
        items; the interval resamples images, the test items), so a difference is claimed only when both say
        so, "no difference" only when neither does, and a disagreement is borderline (docs/verdicts.md)."""
        low, high = self.paired_ci.low, self.paired_ci.high
        if self.n == 0 or low is None or high is None:
            return "empty"  # nothing shared, or no interval: no claim either way
        excludes = low > 0 or high < 0
        significant = self.mcnemar_p < ALPHA
        if significant and excludes:
            return "difference"
        return "test_only" if significant else "interval_only" if excludes else "none"

    @property
    def verdict(self) -> str:
        """The comparison in words, naming the test behind it (the rule of `decision`)."""
        p = f"exact McNemar p = {self.mcnemar_p:.3g}"
        decision = self.decision
        if decision == "empty":
            return "no shared items" if self.n == 0 else f"no interval, no verdict ({p})"
        if decision == "none":
            return f"no significant difference ({p}; the paired interval contains 0)"
        if decision == "interval_only":
            return f"borderline: the paired interval excludes 0 but the McNemar test does not reject ({p} >= {ALPHA})"
        if decision == "test_only":
            return f"borderline: {p} < {ALPHA} but the paired interval contains 0"
        better = self.run_a if (self.difference or 0.0) > 0 else self.run_b
        return f"{better} is more accurate ({p}; the paired interval excludes 0)"


def is_probe_variant(record: Record) -> bool:
    """Probe variants (blind, corrupted, ...) carry their parent's id; only unprobed items are compared."""
    return record.sample.is_variant


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: 2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
    (The binomial with p = 1/2 is symmetric, so this equals the exact two-sided binomial test.)"""
    n = b + c
    if n == 0:
        return 1.0
    from scipy.stats import binom  # scipy.stats takes ~0.7 s to import: only when a comparison runs

    return float(min(1.0, 2.0 * binom.cdf(min(b, c), n, 0.5)))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, seed: int, name: str, n_resamples: int = N_RESAMPLES,
                     level: float = 0.95, clusters: np.ndarray | None = None) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of mean(a) - mean(b), resampling items (rows of a and b together), or whole
    clusters of items (all questions about one image) when `clusters` labels them: the bootstrap of
    the mean of the per-item differences."""
    return bootstrap_ci(a.astype(float) - b.astype(float), seed, name, n_resamples, level, clusters)


def unpaired_bootstrap(a: np.ndarray, b: np.ndarray, seed: int, name: str, n_resamples: int = N_RESAMPLES,
                       level: float = 0.95, clusters: np.ndarray | None = None) -> tuple[float, float]:  # fmt: skip
    """Percentile interval of mean(a) - mean(b) resampling each side independently (ignores pairing);
    with `clusters`, each side resamples its clusters."""
    n = len(a)
    if n == 0:
        return (float("nan"), float("nan"))
    rng = rng_for(seed, name)
    if clusters is not None:
        diffs = bootstrap_means(a, rng, n_resamples, clusters) - bootstrap_means(b, rng, n_resamples, clusters)
    else:
        # 0/1 values: a resample's mean is Binomial(n, p)/n exactly (see stats.bootstrap_ci)
        diffs = rng.binomial(n, a.mean(), n_resamples) / n - rng.binomial(len(b), b.mean(), n_resamples) / len(b)
    alpha = (1 - level) / 2
    low, high = np.quantile(diffs, [alpha, 1 - alpha])
    return float(low), float(high)


def _correct(records: list[Record], preset_name: str) -> dict[str, bool | None]:
    """sample id -> correct (True), not correct (False: wrong or invalid), None: error / preset n/a."""
    preset = scoring.get(preset_name)
    out: dict[str, bool | None] = {}
    for r in records:
        if is_probe_variant(r):
            continue
        if not r.answered or not preset.applies(r.sample):
            out[r.sample.id] = None
            continue
        out[r.sample.id] = preset.score_generation(r.sample, r.final).outcome == Outcome.CORRECT
    return out


def _check_comparable(a: Run, b: Run) -> None:
    if (a.benchmark, a.split) != (b.benchmark, b.split):
        raise ValueError(
            f"Runs are on different benchmarks or splits: {a.dir} is {a.benchmark} (split {a.split}), "
            f"{b.dir} is {b.benchmark} (split {b.split}). Compare runs of the same benchmark and split."
        )


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN is not JSON: an undefined value is null


def compare_runs(a: Run, b: Run, preset: str | None = None, seed: int | None = None,
                 cluster: str | None = clusters.DEFAULT) -> CompareResult:  # fmt: skip
    """Paired comparison of two loaded runs on their shared items; the intervals resample `cluster`
    (medprobe.clusters: the image by default, a metadata column, or none for items)."""
    _check_comparable(a, b)
    preset = preset or a.manifest.default_preset
    seed = a.manifest.seed if seed is None else seed
    samples_a = {r.sample.id: r.sample for r in a.clean_records}
    samples_b = {r.sample.id: r.sample for r in b.clean_records}
    ca, cb = _correct(a.clean_records, preset), _correct(b.clean_records, preset)
    shared = [i for i in ca if i in cb]
    if not shared:
        raise ValueError(f"Runs {a.dir} and {b.dir} share no items (no sample id in common); nothing to compare.")
    same = [i for i in shared if (samples_a[i].question, samples_a[i].answer) == (samples_b[i].question, samples_b[i].answer)]
    usable = [i for i in same if ca[i] is not None and cb[i] is not None]
    xa = np.array([ca[i] for i in usable], float)
    xb = np.array([cb[i] for i in usable], float)
    n_b = int(np.sum((xa == 1) & (xb == 0)))
    n_c = int(np.sum((xa == 0) & (xb == 1)))
    name = f"compare/{preset}"
    resampling = clusters.Resampling.of([samples_a[i] for i in usable], cluster)
    paired = paired_bootstrap(xa, xb, seed, name + "/paired", clusters=resampling.labels)
    unpaired = unpaired_bootstrap(xa, xb, seed, name + "/unpaired", clusters=resampling.labels)
    return CompareResult(
        run_a=a.label, run_b=b.label, dir_a=str(a.dir), dir_b=str(b.dir), benchmark=a.benchmark,
        split=a.split, preset=preset, n=len(usable), only_a=len(ca) - len(shared), only_b=len(cb) - len(shared),
        errors_left_out=len(same) - len(usable), mismatched=len(shared) - len(same),
        accuracy_a=float(xa.mean()) if len(xa) else None, accuracy_b=float(xb.mean()) if len(xb) else None,
        difference=float(xa.mean() - xb.mean()) if len(xa) else None,
        paired_ci=Interval(low=_num(paired[0]), high=_num(paired[1])),
        unpaired_ci=Interval(low=_num(unpaired[0]), high=_num(unpaired[1])),
        both_correct=int(np.sum((xa == 1) & (xb == 1))), both_wrong=int(np.sum((xa == 0) & (xb == 0))),
        b=n_b, c=n_c, mcnemar_p=mcnemar_exact(n_b, n_c), seed=seed, n_resamples=N_RESAMPLES,
        interval=resampling.method,
    )  # fmt: skip


def compare(run_a: Path, run_b: Path, preset: str | None = None, seed: int | None = None,
            cluster: str | None = clusters.DEFAULT) -> CompareResult:  # fmt: skip
    """Load two run folders and compare them (see `compare_runs`)."""
    return compare_runs(load_run(run_a), load_run(run_b), preset, seed, cluster)


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}"


def markdown(r: CompareResult) -> str:
    """A Markdown table of one comparison (also what the CLI prints)."""
    lines = [
        f"**{r.run_a}** vs **{r.run_b}** on {r.benchmark} (split {r.split}), preset `{r.preset}`, {r.n} shared items",
        "",
        "| | value | 95% CI |",
        "|---|---:|---|",
        f"| accuracy A ({r.run_a}) | {_pct(r.accuracy_a)} | |",
        f"| accuracy B ({r.run_b}) | {_pct(r.accuracy_b)} | |",
        f"| difference A - B | {_pct(r.difference)} | {_pct(r.paired_ci.low)} to {_pct(r.paired_ci.high)} (paired) |",
        f"| difference, unpaired | | {_pct(r.unpaired_ci.low)} to {_pct(r.unpaired_ci.high)} |",
        "",
        f"Discordant items: b = {r.b} (A right, B not), c = {r.c} (A not, B right); both right {r.both_correct}, "
        f"both not {r.both_wrong}. Exact McNemar p = {r.mcnemar_p:.4g}: {r.verdict}.",
        "",
        f"Values in %. Paired interval: {r.interval}, seed {r.seed}. Rule: {r.rule}. "
        f"Left out: {r.only_a} only in A, {r.only_b} only in B, {r.errors_left_out} with an error, "
        f"{r.mismatched} whose question or gold differ.",
    ]
    return "\n".join(lines) + "\n"
