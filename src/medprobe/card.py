"""The trust card: per model, the figures that say whether it can be trusted, each with its protocol and n.

`medprobe card RUN [RUN ...]` reads each run's results.json (accuracy rows, the `probes` list the
probes write, the `calibration` section) and builds one `TrustCard` (card.json, schema below) and
its Markdown (card.md, one column per model: medprobe.card_markdown). A figure whose probe did not
run says so and how to get it ("not run: add --probe blind"), never a blank; every figure names its
interval method. Runs that share items are compared pairwise (paired bootstrap + exact McNemar, see
medprobe.compare).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError

from medprobe import clusters
from medprobe.calibration import CalibrationSection
from medprobe.compare import CompareResult, compare_runs, load_run
from medprobe.manifest import Manifest
from medprobe.metrics import Metric, distinct_rows
from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.reasoning_figures import ReasoningSection
from medprobe.results import Results
from medprobe.stats import bootstrap_ci, interval_method
from medprobe.store import RESULTS, read_manifest
from medprobe.types import Frozen

CARD_SCHEMA_VERSION = 1

#: (figure key, label, probe that produces it, headline metric name in that probe's ProbeResult)
PROBE_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("blind_gap", "blind gap (accuracy seeing - blind)", "blind", "blind_gap"),
    ("worst_corruption_drop", "worst corruption drop", "corrupt", "worst_corruption_drop"),
    ("permutation_consistency", "permutation consistency", "permute", "permutation_consistency"),
    ("negation_twin_accuracy", "negation-twin accuracy", "negate", "negation_twin_accuracy"),
    ("confusion_rate", "paired-image confusion rate", "pair", "confusion_rate"),
    ("icl_gain", "ICL gain (k-shot - zero-shot)", "icl", "icl_gain"),
    ("think_gain", "thinking gain (reasoning on - off)", "think", "think_gain"),
)
#: calibration sources in order of preference for the card's ECE and selective accuracy
CALIBRATION_SOURCES = ("logprob", "verbal", "agreement")


class Figure(Frozen):
    """One number on the card. Values are fractions (differences for gaps/drops/gains)."""

    key: str = Field(description="stable identifier, e.g. accuracy, blind_gap, ece")
    label: str
    status: Literal["ok", "not_run", "not_available"]
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = Field(None, description="items / pairs the figure is computed on")
    protocol: str = Field(description="preset, probe or calibration method the figure comes from")
    note: str | None = Field(None, description="why a figure is missing, or what limits it")
    interval: str | None = Field(None, description="how ci_low/ci_high were computed, e.g. 'cluster bootstrap by "
                                 "image, 1000 resamples, 95% percentile'")


class ModelCard(Frozen):
    run_dir: str
    model: str = Field(description="provider/model of the run")
    benchmark: str
    split: str
    prompt: str
    headline_preset: str
    status: str | None = Field(None, description="the run's status (manifest.json): complete, partial, stopped, ...")
    coverage: str | None = Field(None, description="the coverage line: rows, skipped, answered, invalid, errors by kind")
    figures: tuple[Figure, ...] = Field(description="the fixed figure list, in card order")
    other_probe_figures: tuple[Figure, ...] = Field((), description="further headline figures the probes reported")
    subgroups: tuple[Figure, ...] = Field((), description="answer-type and metadata subgroup rows of the headline "
                                          "preset, without rows that repeat another (medprobe.metrics.distinct_rows)")


class CardComparison(Frozen):
    run_a: str
    run_b: str
    result: CompareResult | None = None
    note: str | None = Field(None, description="why the runs were not compared")


class TrustCard(Frozen):
    schema_version: int = CARD_SCHEMA_VERSION
    models: tuple[ModelCard, ...]
    comparisons: tuple[CardComparison, ...] = ()


def _read_results(run_dir: Path) -> dict:
    path = run_dir / RESULTS
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {RESULTS}. Run `medprobe score {run_dir}` first.")
    return json.loads(path.read_text(encoding="utf-8"))


def _metric_figure(m: Metric, key: str, label: str, metric: str | None = None) -> Figure:
    return Figure(key=key, label=label, status="ok", value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n,
                  protocol=f"preset {m.preset} ({metric or m.metric})", interval=m.interval)  # fmt: skip


def _invalid_figure(m: Metric, seed: int) -> Figure:
    flags = np.zeros(m.n)
    flags[: m.invalid] = 1
    # only the counts are in results.json, so this interval resamples questions, not images
    low, high = bootstrap_ci(flags, seed, f"card/{m.preset}/invalid_rate")
    return Figure(key="invalid_rate", label="invalid-answer rate", status="ok", value=m.invalid / m.n if m.n else None,
                  ci_low=low, ci_high=high, n=m.n, protocol=f"preset {m.preset} parsers {', '.join(m.parsers)}",
                  interval=interval_method())  # fmt: skip


def _probe_metric_figure(pm: ProbeMetric, key: str, label: str) -> Figure:
    # probe deltas are bootstrapped over parent questions (medprobe.probes._kit.metric)
    return Figure(key=key, label=label, status="ok", value=pm.value, ci_low=pm.ci_low, ci_high=pm.ci_high, n=pm.n,
                  protocol=f"probe {pm.probe}, preset {pm.preset}",
                  interval=interval_method() if pm.ci_low is not None else None)  # fmt: skip


def _pick(metrics: list[ProbeMetric], preset: str) -> ProbeMetric:
    """A probe may report one figure under several presets: prefer the card's headline preset."""
    return next((m for m in metrics if m.preset == preset), metrics[0])


def _probe_figures(probes: dict[str, ProbeResult], preset: str) -> tuple[list[Figure], list[Figure]]:
    main, used = [], set()
    for key, label, probe, metric in PROBE_FIGURES:
        result = probes.get(probe)
        protocol = f"probe {probe}"
        if result is None:
            main.append(Figure(key=key, label=label, status="not_run", protocol=protocol, note=f"not run: add --probe {probe}"))
            continue
        if not result.ran:
            main.append(Figure(key=key, label=label, status="not_run", protocol=protocol,
                               note=f"not run: {result.note or 'the probe did not apply to this benchmark'}"))  # fmt: skip
            continue
        found = [m for m in result.headline if m.name == metric]
        if not found:
            main.append(Figure(key=key, label=label, status="not_available", protocol=protocol,
                               note=f"not available: probe {probe} reported no {metric}" + (f" ({result.note})" if result.note else "")))  # fmt: skip
            continue
        chosen = _pick(found, preset)
        main.append(_probe_metric_figure(chosen, key, label + _detail(chosen)))
        used.add(_identity(chosen))
    # the rest, e.g. the blind gap with a blank or a mismatched image beside the no-image one (the
    # same figure under another preset is not repeated)
    others = [_probe_metric_figure(m, m.name, f"{m.name} ({m.probe}){_detail(m)}")
              for r in probes.values() for m in r.headline if _identity(m) not in used]  # fmt: skip
    return main, others


def _identity(m: ProbeMetric) -> tuple:
    return m.probe, m.name, tuple(sorted(m.detail.items()))


def _detail(m: ProbeMetric) -> str:
    return f" [{', '.join(f'{k}={v}' for k, v in m.detail.items())}]" if m.detail else ""


def _calibration_figures(section: CalibrationSection | None) -> list[Figure]:
    labels = {"ece": ("ece", "ECE (equal-width bins)"), "accuracy_at_80": ("accuracy_at_80", "accuracy at 80% coverage")}
    source = None
    if section is not None and section.available:
        source = next((s for name in CALIBRATION_SOURCES for s in section.sources if s.source == name), None)
    if source is None:
        note = (section.note if section is not None and section.note else
                "not available: no calibration section in results.json (re-score with `medprobe score RUN`)")  # fmt: skip
        return [Figure(key=k, label=lbl, status="not_available", protocol="calibration", note=note)
                for k, lbl in labels.values()]  # fmt: skip
    out = []
    for name, (key, label) in labels.items():
        m = source.metric(name)
        bins = f", {source.bins} bins" if name == "ece" else ""
        out.append(Figure(key=key, label=label, status="ok", value=m.value, ci_low=m.ci_low, ci_high=m.ci_high,
                          n=source.n, protocol=f"calibration {source.source} confidence, preset {section.preset}{bins}",
                          interval=interval_method()))  # fmt: skip  (calibration resamples items)
    return out


def _share_figure(key: str, label: str, hits: int, n: int, seed: int, protocol: str) -> Figure:
    flags = np.zeros(n)
    flags[:hits] = 1
    low, high = bootstrap_ci(flags, seed, f"card/{key}")
    return Figure(key=key, label=label, status="ok", value=hits / n if n else None, ci_low=low, ci_high=high, n=n,
                  protocol=protocol, interval=interval_method())  # fmt: skip


def _reasoning_figures(section: ReasoningSection | None, seed: int) -> list[Figure]:
    """Share of answers with a reasoning chain, and share cut off inside it (medprobe.reasoning_figures)."""
    labels = (("reasoning_share", "answers with a reasoning chain"),
              ("reasoning_cut_off", "answers cut off inside the chain (unfinished_reasoning)"))
    if section is None:
        return [Figure(key=k, label=lbl, status="not_available", protocol="reasoning",
                       note="not available: no reasoning chain in any answer") for k, lbl in labels]  # fmt: skip
    unit = f"median {section.length.median:,.0f} {section.unit}" if section.length else section.unit
    return [_share_figure(labels[0][0], labels[0][1], section.with_chain, section.n, seed, f"reasoning ({unit})"),
            _share_figure(labels[1][0], labels[1][1], section.cut_off, section.n, seed,
                          f"reasoning, preset {section.preset}")]  # fmt: skip


def model_card(run_dir: Path, preset: str | None = None) -> ModelCard:
    """The card column of one run folder (its manifest.json and results.json)."""
    manifest = read_manifest(run_dir)
    data = _read_results(run_dir)
    try:
        results = Results.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"{run_dir / RESULTS} does not match this medprobe version ({exc.error_count()} errors); "
                         f"re-score it with `medprobe score {run_dir}`.") from None  # fmt: skip
    return card_for(results, manifest, run_dir, preset)


def card_for(results: Results, manifest: Manifest, run_dir: Path, preset: str | None = None) -> ModelCard:
    """The card column of one run's results (in memory: summary.md is written before results.json is read)."""
    presets = list(results.presets)
    if not presets:
        raise ValueError(f"{run_dir / RESULTS} has no scored presets; run `medprobe score {run_dir}`.")
    probes = {p.probe: p for p in results.probes}
    names = [p.preset for p in presets]
    wanted = preset or manifest.default_preset or names[0]
    if preset and preset not in names:
        raise ValueError(f"preset {preset!r} not in {run_dir / RESULTS}; have {', '.join(names)}.")
    head = presets[names.index(wanted)] if wanted in names else presets[0]
    figures: list[Figure] = []
    try:
        overall = head.get("overall")
        headline = _metric_figure(overall, "accuracy", f"headline {overall.metric}")
        if results.coverage is not None and (part := results.coverage.partial_note()):
            # a headline on part of the benchmark says so next to the number
            headline = headline.model_copy(update={"protocol": f"{headline.protocol} · {part.upper()[0]}{part[1:]}"})
        figures += [headline, _invalid_figure(overall, results.seed)]
    except KeyError:
        figures += [Figure(key=k, label=k, status="not_available", protocol=f"preset {head.preset}",
                           note=f"not available: preset {head.preset} scored no items of this benchmark")
                    for k in ("accuracy", "invalid_rate")]  # fmt: skip
    main, others = _probe_figures(probes, head.preset)
    figures += main + _calibration_figures(results.calibration) + _reasoning_figures(results.reasoning, results.seed)
    subgroups = tuple(_metric_figure(m, m.subset, f"{m.subset} {label}", label)
                      for label, m in distinct_rows(head.metrics) if m.subset != "overall")  # fmt: skip
    bench = manifest.benchmark
    return ModelCard(
        run_dir=str(run_dir), model=manifest.model_name,
        benchmark=str(bench.get("benchmark")), split=str(bench.get("split")),
        prompt=f"{manifest.prompt.name} ({manifest.prompt.hash})", headline_preset=head.preset,
        status=str(manifest.status), coverage=results.coverage.line() if results.coverage else None,
        figures=tuple(figures), other_probe_figures=tuple(others), subgroups=subgroups,
    )  # fmt: skip


def build_card(run_dirs: list[Path], preset: str | None = None, cluster: str | None = clusters.DEFAULT) -> TrustCard:
    """One card over several runs, with a pairwise comparison wherever two runs share items (its
    interval resamples `cluster`, medprobe.clusters)."""
    models = [model_card(d, preset) for d in run_dirs]
    comparisons = []
    if len(run_dirs) > 1:
        loaded = {d: load_run(d) for d in run_dirs}
        for (da, ma), (db, mb) in itertools.combinations(zip(run_dirs, models), 2):
            try:
                result = compare_runs(loaded[da], loaded[db], preset or ma.headline_preset, cluster=cluster)
                comparisons.append(CardComparison(run_a=ma.model, run_b=mb.model, result=result))
            except ValueError as exc:
                comparisons.append(CardComparison(run_a=ma.model, run_b=mb.model, note=f"not compared: {exc}"))
    return TrustCard(models=tuple(models), comparisons=tuple(comparisons))
