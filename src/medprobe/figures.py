"""Figures: the numbers behind every plot and verdict of a report, from one run folder read back.

The flow is records -> scores -> figures -> verdicts -> views. A figure takes the numbers medprobe
already reports in results.json (with their intervals and protocol) and, where a plot needs
per-sample values (reliability bins, the share of errors made at high confidence), recomputes them
from the stored records with the same rules (medprobe.calibration). `medprobe.verdicts` reads
figures into plain-words verdicts; `medprobe.views.plots` draws them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from medprobe import calibration_metrics as cm
from medprobe import scoring
from medprobe.calibration import logprob_confidence, parse_verbal_confidence
from medprobe.compare import CompareResult, compare_runs
from medprobe.compare_report import ReportCompareResult, compare_reports
from medprobe.manifest import Coverage
from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.reasoning import split_generation
from medprobe.runs import Run
from medprobe.scoring._base import Preset
from medprobe.store import RESULTS
from medprobe.types import AnswerType, Frozen, Outcome, Record, Sample, Scalar, Score

#: calibration sources in order of preference (the trust card's order)
CALIBRATION_SOURCES = ("logprob", "verbal", "agreement")
#: "errors made at high confidence" counts wrong answers whose confidence is above this
CONFIDENT = 0.9
#: subgroup keys drawn in the forest plot, in order (answer type first)
SUBGROUP_ORDER = ("answer_type", "modality", "organ", "question_type", "content_type", "language")
#: at most this many values per subgroup key in the forest plot (largest n first)
MAX_SUBGROUP_VALUES = 12


# ---------------------------------------------------------------- reading a run


def variant_tag(sample: Sample) -> tuple[str, str, str, dict[str, Scalar]] | None:
    """(parent id, probe, variant, detail) of a probe variant, None for a clean sample (runs stored before
    `Sample.variant_of` existed are migrated when read: medprobe.types)."""
    tag = sample.variant_of
    return None if tag is None else (tag.parent_id, tag.probe, tag.variant, dict(tag.detail))


def score(preset: str | Preset, record: Record) -> Score:
    """One record under one preset (the answer after any reasoning chain; a failed request is INVALID)."""
    rule = scoring.get(preset) if isinstance(preset, str) else preset
    return rule.score_generation(record.sample, record.final)


# ---------------------------------------------------------------- figure types


class Headline(Frozen):
    """A model's headline: the preset's overall row."""

    preset: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    invalid: int
    parsers: tuple[str, ...]
    interval: str = Field(description="how the interval was computed (results.json `interval`)")


class ReliabilityBin(Frozen):
    low: float
    high: float
    n: int
    accuracy: float | None = None
    confidence: float | None = Field(None, description="mean confidence in the bin")


class Reliability(Frozen):
    """Confidence against correctness for one confidence source (the reliability diagram and its verdict)."""

    source: str
    rule: str
    preset: str
    n: int
    accuracy: float
    mean_confidence: float
    ece: float | None
    ece_low: float | None
    ece_high: float | None
    bins: tuple[ReliabilityBin, ...]
    errors: int = Field(description="answers not correct (wrong, or invalid with a confidence)")
    confident_errors: int = Field(description=f"errors made at confidence > {CONFIDENT}")
    curve: tuple[tuple[float, float], ...] = Field((), description="risk-coverage points (coverage, risk)")
    aurc: float | None = None


class SeverityPoint(Frozen):
    severity: int
    accuracy: float
    ci_low: float | None
    ci_high: float | None
    n: int
    drop: float | None = Field(None, description="clean minus corrupted accuracy, paired by sample")
    drop_low: float | None = None
    drop_high: float | None = None


class CorruptionCurve(Frozen):
    corruption: str
    points: tuple[SeverityPoint, ...]


class Corruption(Frozen):
    clean: float
    clean_low: float | None
    clean_high: float | None
    curves: tuple[CorruptionCurve, ...]


class Gap(Frozen):
    """A paired difference a probe reports (clean minus probed unless the label says otherwise)."""

    probe: str
    name: str
    label: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    preset: str


class Subgroup(Frozen):
    key: str = Field(description="answer_type, modality, organ, ...")
    group: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int


class RunFigures(Frozen):
    """Every figure of one run, under its headline preset."""

    label: str
    run_dir: str
    benchmark: str
    split: str
    status: str
    stop_reason: str | None = None
    preset: str
    coverage: Coverage
    headline: Headline | None
    reliability: Reliability | None
    reliability_note: str | None = None
    corruption: Corruption | None
    gaps: tuple[Gap, ...]
    subgroups: tuple[Subgroup, ...]
    closed: Subgroup | None = Field(None, description="accuracy on closed (yes/no) questions, when the preset scores them")
    probes: tuple[ProbeResult, ...] = Field((), description="the probes' own results (verdicts read their headlines)")


class Paired(Frozen):
    """One pair of runs on the same benchmark, compared item by item (medprobe.compare)."""

    run_a: str
    run_b: str
    result: CompareResult | None = None
    report: ReportCompareResult | None = Field(None, description="report presets: metric by metric, paired by study "
                                               "(medprobe.compare_report) instead of accuracy and McNemar")
    note: str | None = Field(None, description="why the pair was not compared")


# ---------------------------------------------------------------- computing them


def coverage_of(run: Run) -> Coverage:
    """results.coverage; runs scored before coverage existed: the manifest's, else built from results.counts."""
    results = run.scored()
    if results.coverage is not None:
        return results.coverage
    if run.manifest.coverage is not None:
        return run.manifest.coverage
    c = results.counts
    return Coverage(samples=c.samples, answered=c.answered, errors=c.errors)


def headline_preset(run: Run, preset: str | None = None) -> str:
    names = [p.preset for p in run.scored().presets]
    if preset and preset not in names:
        raise ValueError(f"preset {preset!r} is not in {run.dir / RESULTS}; have {', '.join(names)}. Pass one of them "
                         "to --preset.")  # fmt: skip
    wanted = preset or run.manifest.default_preset
    return wanted if wanted in names else (names[0] if names else wanted)


def run_figures(run: Run, preset: str | None = None) -> RunFigures:
    """Every figure of a scored run under its headline preset (`preset`, default the benchmark's)."""
    name = headline_preset(run, preset)
    probes = run.scored().probes
    reliability, note = reliability_figure(run)
    return RunFigures(
        label=run.label, run_dir=str(run.dir), benchmark=run.benchmark, split=run.split, status=str(run.manifest.status),
        stop_reason=run.manifest.stop_reason, preset=name, coverage=coverage_of(run), headline=_headline(run, name),
        reliability=reliability, reliability_note=note, corruption=corruption_figure(probes),
        gaps=tuple(gap_figures(probes)), subgroups=tuple(subgroup_figures(run, name)), closed=_closed(run, name),
        probes=probes,
    )  # fmt: skip


def _headline(run: Run, preset: str) -> Headline | None:
    try:
        m = run.scored().preset(preset).get("overall")
    except KeyError:
        return None
    return Headline(preset=preset, metric=m.metric, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n,
                    invalid=m.invalid, parsers=m.parsers, interval=m.interval)  # fmt: skip


def _closed(run: Run, preset: str) -> Subgroup | None:
    try:
        m = run.scored().preset(preset).get("closed", "accuracy")
    except KeyError:
        return None
    return Subgroup(key="answer_type", group="closed", metric=m.metric, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high,
                    n=m.n)  # fmt: skip


def confidences(run: Run, preset: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) per answered clean sample with a confidence from `source`, by the rules of
    medprobe.calibration (so the bins below add up to the ECE in results.json)."""
    rule = scoring.get(preset)
    agreement = {str(m.detail["sample_id"]): m.value for p in run.scored().probes for m in p.rows
                 if m.name == "sample_agreement"}  # fmt: skip
    conf, correct = [], []
    for r in run.clean_records:
        if not r.answered or r.sample.is_variant or not rule.applies(r.sample):
            continue
        s = score(preset, r)
        if source == "logprob":
            value = logprob_confidence(r, s.answer.value)
        elif source == "verbal":
            value = parse_verbal_confidence(split_generation(r.final).answer)  # type: ignore[arg-type]
        else:
            value = agreement.get(r.sample.id)
        if value is not None:
            conf.append(min(1.0, max(0.0, value)))
            correct.append(s.outcome is Outcome.CORRECT)
    return np.array(conf, float), np.array(correct, float)


def reliability_figure(run: Run) -> tuple[Reliability | None, str | None]:
    section = run.scored().calibration
    if section is None or not section.available or not section.sources:
        return None, (section.note if section is not None and section.note else
                      "calibration not available: ask for confidences with --logprobs 5 (or --prompt "
                      "verbal-confidence, or --probe repeat)")  # fmt: skip
    by_name = {s.source: s for s in section.sources}
    src = next(by_name[name] for name in (*CALIBRATION_SOURCES, *by_name) if name in by_name)
    conf, correct = confidences(run, section.preset, src.source)
    if len(conf) == 0:
        return None, f"calibration: no {src.source} confidences could be read back from the records"
    which = np.minimum((conf * cm.N_BINS).astype(int), cm.N_BINS - 1)  # calibration_metrics.ece_equal_width bins
    bins = []
    for b in range(cm.N_BINS):
        mask = which == b
        n = int(mask.sum())
        bins.append(ReliabilityBin(low=b / cm.N_BINS, high=(b + 1) / cm.N_BINS, n=n,
                                   accuracy=float(correct[mask].mean()) if n else None,
                                   confidence=float(conf[mask].mean()) if n else None))  # fmt: skip
    ece = src.metric("ece")
    aurc = next((m.value for m in src.metrics if m.name == "aurc"), None)
    errors = correct == 0
    return Reliability(
        source=src.source, rule=src.rule, preset=section.preset, n=len(conf), accuracy=float(correct.mean()),
        mean_confidence=float(conf.mean()), ece=ece.value, ece_low=ece.ci_low, ece_high=ece.ci_high, bins=tuple(bins),
        errors=int(errors.sum()), confident_errors=int((errors & (conf > CONFIDENT)).sum()),
        curve=tuple((p.coverage, p.risk) for p in src.curve), aurc=aurc,
    ), None  # fmt: skip


def _probe(probes: Sequence[ProbeResult], name: str) -> ProbeResult | None:
    return next((p for p in probes if p.probe == name and p.ran), None)


def corruption_figure(probes: Sequence[ProbeResult]) -> Corruption | None:
    """Accuracy against severity per corruption, from the corrupt probe's rows."""
    result = _probe(probes, "corrupt")
    if result is None:
        return None
    clean = next((m for m in result.headline if m.name == "clean_accuracy"), None)
    cells: dict[str, dict[int, dict[str, ProbeMetric]]] = {}
    for m in result.rows:
        if m.name in ("accuracy", "drop") and "corruption" in m.detail and "severity" in m.detail:
            cells.setdefault(str(m.detail["corruption"]), {}).setdefault(int(m.detail["severity"]), {})[m.name] = m  # type: ignore[arg-type]
    curves = []
    for corruption, by_severity in sorted(cells.items()):
        points = []
        for sev, ms in sorted(by_severity.items()):
            acc, drop = ms.get("accuracy"), ms.get("drop")
            if acc is None:
                continue
            points.append(SeverityPoint(severity=sev, accuracy=acc.value, ci_low=acc.ci_low, ci_high=acc.ci_high, n=acc.n,
                                        drop=drop.value if drop else None, drop_low=drop.ci_low if drop else None,
                                        drop_high=drop.ci_high if drop else None))  # fmt: skip
        curves.append(CorruptionCurve(corruption=corruption, points=tuple(points)))
    if not curves or clean is None:
        return None
    return Corruption(clean=clean.value, clean_low=clean.ci_low, clean_high=clean.ci_high, curves=tuple(curves))


_BLIND_LABELS = {"none": "no image", "blank": "black image", "mismatch": "another sample's image"}


def gap_figures(probes: Sequence[ProbeResult]) -> list[Gap]:
    """Paired differences with intervals: blind gaps per variant, the drop of each corruption at its highest
    severity, the permutation drop, ICL gains."""
    out: list[Gap] = []

    def add(m: ProbeMetric, label: str) -> None:
        if m.value == m.value:  # a NaN figure (no pairs) is not drawn
            out.append(Gap(probe=m.probe, name=m.name, label=label, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high,
                           n=m.n, preset=m.preset))  # fmt: skip

    if blind := _probe(probes, "blind"):
        for m in blind.rows:
            if m.name == "blind_gap":
                kind = str(m.detail.get("variant"))
                add(m, f"blind gap: {_BLIND_LABELS.get(kind, kind)}")
    if corrupt := _probe(probes, "corrupt"):
        drops = [m for m in corrupt.rows if m.name == "drop" and "severity" in m.detail]
        top: dict[str, ProbeMetric] = {}
        for m in drops:
            key = str(m.detail.get("corruption"))
            if key not in top or int(m.detail["severity"]) > int(top[key].detail["severity"]):  # type: ignore[arg-type]
                top[key] = m
        for key, m in sorted(top.items()):
            add(m, f"{key.replace('_', ' ')} drop at severity {m.detail['severity']}")
    if permute := _probe(probes, "permute"):
        for m in permute.rows:
            if m.name == "drop":
                add(m, "option order: clean minus right-under-every-rotation")
    if icl := _probe(probes, "icl"):
        labels = {"icl_gain": "ICL gain (k-shot minus zero-shot)", "irrelevant_example_effect": "irrelevant example effect",
                  "order_effect": "example order effect"}  # fmt: skip
        for m in icl.headline:
            if m.name in labels:
                add(m, labels[m.name])
    return out


def subgroup_figures(run: Run, preset: str) -> list[Subgroup]:
    """The headline preset's subgroup rows (main metric per subset), largest groups first per key."""
    try:
        metrics = run.scored().preset(preset).metrics
    except KeyError:
        return []
    seen: set[str] = set()
    by_key: dict[str, list[Subgroup]] = {}
    for m in metrics:
        if m.subset == "overall" or m.subset in seen:
            continue  # the first row of a subset is its main metric (token F1 etc. follow it)
        seen.add(m.subset)
        key, eq, group = m.subset.partition("=")
        if not eq:
            key, group = "answer_type", m.subset.replace("_", " ")
        if key.startswith("judge"):
            continue
        by_key.setdefault(key, []).append(Subgroup(key=key, group=group, metric=m.metric, value=m.value,
                                                   ci_low=m.ci_low, ci_high=m.ci_high, n=m.n))  # fmt: skip
    out = []
    for key in sorted(by_key, key=lambda k: SUBGROUP_ORDER.index(k) if k in SUBGROUP_ORDER else len(SUBGROUP_ORDER)):
        rows = by_key[key]
        if len(rows) < 2:
            continue  # one value (language=en when there is one language) says nothing about subgroups
        out += sorted(rows, key=lambda s: -s.n)[:MAX_SUBGROUP_VALUES]
    return out


def paired_figures(runs: Sequence[Run], preset: str | None = None) -> list[Paired]:
    """Every pair of runs (in the order given), compared on shared items under the headline preset of the first."""
    out = []
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            try:
                name = headline_preset(a, preset)
                if AnswerType.REPORT in scoring.get(name).value_names:  # no right or wrong: no McNemar
                    report = compare_reports(a, b, name)
                    if not report.n:
                        raise ValueError("no study has a valid report in both runs")
                    out.append(Paired(run_a=a.label, run_b=b.label, report=report))
                else:
                    out.append(Paired(run_a=a.label, run_b=b.label, result=compare_runs(a, b, name)))
            except ValueError as exc:
                out.append(Paired(run_a=a.label, run_b=b.label, note=f"not compared: {exc}"))
    return out
