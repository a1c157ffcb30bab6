"""Score stored records under every preset and aggregate: each number names its preset, metric,
parser(s), n and a seeded 95% bootstrap interval. Failed requests are counted apart (errors),
never scored as wrong; unparseable answers are a third outcome (invalid), reported per row.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import Field

from medprobe import scoring
from medprobe.calibration import CalibrationSection, compute_calibration
from medprobe.judge_report import JudgeSection
from medprobe.probes._base import ProbeResult
from medprobe.stats import N_RESAMPLES, bootstrap_ci
from medprobe.types import SCHEMA_VERSION, AnswerType, Frozen, Outcome, Record, Score

#: metadata keys reported as subgroup rows when samples carry them
SUBGROUP_KEYS = ("modality", "organ", "question_type", "content_type", "language")
MAX_GROUP_VALUES = 40


class Metric(Frozen):
    subset: str = Field(description="'overall', an answer type, or 'key=value' for a subgroup")
    metric: str = Field(description="what `value` is: accuracy, recall, token_f1, ...")
    preset: str
    parsers: tuple[str, ...]
    value: float = Field(description="a fraction in [0, 1]")
    ci_low: float
    ci_high: float
    n: int
    correct: int
    wrong: int
    invalid: int


class PresetResult(Frozen):
    preset: str
    description: str
    reproduces: str
    metrics: tuple[Metric, ...]

    def get(self, subset: str = "overall", metric: str | None = None) -> Metric:
        for m in self.metrics:
            if m.subset == subset and (metric is None or m.metric == metric):
                return m
        raise KeyError(f"no metric {metric or '*'} for subset {subset!r} in preset {self.preset}")


class RunCounts(Frozen):
    samples: int
    answered: int = Field(description="samples whose every turn produced a reply")
    errors: int = Field(description="samples whose request failed after retries, or whose input was unusable")
    error_reasons: dict[str, int] = Field(default_factory=dict)


class Results(Frozen):
    schema_version: int = SCHEMA_VERSION
    seed: int
    n_resamples: int = N_RESAMPLES
    counts: RunCounts
    presets: tuple[PresetResult, ...]
    probes: tuple[ProbeResult, ...] = Field((), description="reliability probes (medprobe.probes), paired by parent")
    calibration: CalibrationSection | None = Field(None, description="confidence vs correctness (medprobe.calibration)")
    judge: JudgeSection | None = Field(None, description="LLM judge vs rule presets (medprobe.judge_report)")

    def preset(self, name: str) -> PresetResult:
        for p in self.presets:
            if p.preset == name:
                return p
        raise KeyError(f"preset {name!r} not in results; have {[p.preset for p in self.presets]}")


def _error_kind(message: str) -> str:
    """A short bucket for the error table (the full message stays in the record)."""
    for needle, kind in (("timed out", "timeout"), ("429", "rate limited"), ("gave up", "retries exhausted"),
                         ("Image", "unusable image"), ("image", "unusable image")):  # fmt: skip
        if needle in message:
            return kind
    return re.split(r"[:;(]", message.removeprefix("sample "), maxsplit=1)[0].strip()[:60]


def compute(records: Iterable[Record], presets: Sequence[str], seed: int = 0, probes: Sequence = (),
            probe_preset: str = "strict") -> Results:
    """Preset rows on the clean samples; `probes` (ProbeSpecs) analysed on the variants, paired by parent."""
    everything = list(records)
    # probe variants never enter the headline rows: they are compared with their parents below
    records = [r for r in everything if "parent_id" not in r.sample.metadata]
    answered, failed = [], []
    for r in records:
        (answered if r.answered else failed).append(r)
    reasons = Counter(_error_kind(r.error or "no generation (run interrupted)") for r in failed)
    counts = RunCounts(samples=len(records), answered=len(answered), errors=len(failed), error_reasons=dict(reasons))
    subsets = _subsets(answered)
    aggregate = _benchmark_aggregate(records)
    # a preset restricted to other benchmarks (probmed, smmile-*) gets no empty section
    benches = {r.sample.benchmark for r in records}
    presets = [p for p in presets if not scoring.get(p).benchmarks or benches & set(scoring.get(p).benchmarks)]
    probe_results = tuple(_probe_results(probes, everything, probe_preset, seed))
    # the repeat probe's per-sample agreement is one of calibration's confidence sources
    agreement = {str(m.detail["sample_id"]): m.value for p in probe_results for m in p.rows if m.name == "sample_agreement"}
    return Results(seed=seed, counts=counts,
                   presets=tuple(_preset_result(p, answered, subsets, seed, aggregate) for p in presets),
                   probes=probe_results,
                   calibration=compute_calibration(answered, presets[0], seed, agreement) if presets else None)


def _probe_results(specs: Sequence, records: list[Record], preset: str, seed: int) -> list[ProbeResult]:
    if not specs:
        return []
    from medprobe import probes

    return probes.analyze(specs, records, preset, seed)


def _benchmark_aggregate(records: Sequence[Record]):
    """The registered benchmark's `aggregate` hook (MediConfusion pairs, ProbMed groups), if any."""
    from medprobe import benchmarks

    names = {r.sample.benchmark for r in records}
    spec = benchmarks.spec_for(names.pop()) if len(names) == 1 else None
    return spec.aggregate if spec else None


def score_all(records: Sequence[Record], preset_name: str) -> list[Score]:
    preset = scoring.get(preset_name)
    return [preset.score(r.sample, r.final.text if r.final else None) for r in records]


def _subsets(records: Sequence[Record]) -> list[tuple[str, np.ndarray]]:
    """overall, answer types, then subgroups by key and decreasing n (capped per key): row indices."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[str(r.sample.answer_type)].append(i)
        for key in SUBGROUP_KEYS:
            value = r.sample.metadata.get(key)
            if value not in (None, ""):
                groups[f"{key}={value}"].append(i)
    out = [("overall", np.arange(len(records)))]
    out += [(k, np.array(groups[k])) for k in map(str, AnswerType) if k in groups]
    for key in SUBGROUP_KEYS:
        rows = sorted(((k, v) for k, v in groups.items() if k.startswith(key + "=")), key=lambda kv: -len(kv[1]))
        out += [(k, np.array(v)) for k, v in rows[:MAX_GROUP_VALUES]]
    return out


_OUTCOMES = (Outcome.CORRECT, Outcome.WRONG, Outcome.INVALID)


def _preset_result(name: str, records: Sequence[Record], subsets, seed: int, aggregate=None) -> PresetResult:
    preset = scoring.get(name)
    n = len(records)
    # a preset only scores the answer types its official script defines (LLaVA-Med has no
    # multiple-choice rule): other samples are left out of its rows rather than counted invalid
    applies = np.fromiter((preset.applies(r.sample) for r in records), bool, n)
    scores = [preset.score(r.sample, r.final.text) if ok else None for r, ok in zip(records, applies)]  # type: ignore[union-attr]
    value = np.array([s.value if s else np.nan for s in scores])
    outcome = np.array([_OUTCOMES.index(s.outcome) if s else 0 for s in scores], np.int8)
    parser_names = sorted({s.parser for s in scores if s})
    parser = np.array([parser_names.index(s.parser) if s else 0 for s in scores], np.int16)
    metric_names = sorted(set(preset.value_names.values()))
    metric = np.array([metric_names.index(preset.value_names[r.sample.answer_type]) if ok else 0
                       for r, ok in zip(records, applies)], np.int16)  # fmt: skip
    extras = {k: np.array([s.extra.get(k, np.nan) if s else np.nan for s in scores])
              for k in sorted({k for s in scores if s for k in s.extra})}  # fmt: skip
    metrics: list[Metric] = []
    for subset, idx in subsets:
        idx = idx[applies[idx]]
        if len(idx) == 0:
            continue
        names = np.unique(metric[idx])
        main = metric_names[names[0]] if len(names) == 1 else "mean_score"
        tally = np.bincount(outcome[idx], minlength=3)
        common = dict(
            subset=subset, preset=name, parsers=tuple(parser_names[i] for i in np.unique(parser[idx])), n=len(idx),
            correct=int(tally[0]), wrong=int(tally[1]), invalid=int(tally[2]),
        )  # fmt: skip
        columns = {main: value[idx]}
        # secondary values (token F1, mean recall) get a row only where every sample carries them,
        # so a row's n is always the subset's n
        columns.update({k: v[idx] for k, v in extras.items() if not np.isnan(v[idx]).any()})
        for metric_name, values in columns.items():
            low, high = bootstrap_ci(values, seed, f"{name}/{subset}/{metric_name}")
            metrics.append(Metric(metric=metric_name, value=float(values.mean()), ci_low=low, ci_high=high, **common))
    if aggregate is not None:
        metrics += aggregate(records, scores, name, seed)
    return PresetResult(preset=name, description=preset.description, reproduces=preset.reproduces, metrics=tuple(metrics))
