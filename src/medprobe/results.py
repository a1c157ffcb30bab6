"""Score stored records under every preset and aggregate: each number names its preset, metric,
parser(s), n and a seeded 95% bootstrap interval. Failed requests are counted apart (errors),
never scored as wrong; unparseable answers are a third outcome (invalid), reported per row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from pydantic import Field

from medprobe import clusters, scoring
from medprobe.calibration import CalibrationSection, compute_calibration
from medprobe.clusters import Resampling
from medprobe.judge_report import JudgeSection
from medprobe.manifest import Coverage, ErrorTally
from medprobe.metrics import Metric, PresetResult, benchmark_aggregate, regroup, subsets
from medprobe.probes._base import ProbeResult
from medprobe.reasoning_figures import ReasoningSection, compute_reasoning
from medprobe.scoring._base import Preset
from medprobe.stats import N_RESAMPLES
from medprobe.textmetrics.corpus import interval_name
from medprobe.types import SCHEMA_VERSION, TRANSIENT_KINDS, AnswerType, ErrorKind, Frozen, Outcome, Record, Score

class RunCounts(Frozen):
    samples: int
    answered: int = Field(description="samples whose every turn produced a reply")
    errors: int = Field(description="samples whose request failed after retries, or whose input was unusable")
    error_reasons: dict[str, int] = Field(default_factory=dict)


class Results(Frozen):
    schema_version: int = SCHEMA_VERSION
    seed: int
    n_resamples: int = N_RESAMPLES
    interval: str = Field(clusters.method(), description="how the preset rows' intervals were computed (`medprobe "
                          "score --cluster-key`), e.g. 'cluster bootstrap by image, 1000 resamples, 95% percentile'")
    counts: RunCounts
    default_preset: str | None = Field(None, description="the benchmark's default preset: the one `headline` reads")
    coverage: Coverage | None = Field(None, description="rows, skips, answered, invalid, errors by kind")
    presets: tuple[PresetResult, ...]
    probes: tuple[ProbeResult, ...] = Field((), description="reliability probes (medprobe.probes), paired by parent")
    calibration: CalibrationSection | None = Field(None, description="confidence vs correctness (medprobe.calibration)")
    judge: JudgeSection | None = Field(None, description="LLM judge vs rule presets (medprobe.judge_report)")
    reasoning: ReasoningSection | None = Field(None, description="reasoning chains: share, length, cut off, accuracy "
                                               "by length quartile (medprobe.reasoning_figures); None = no chains")

    @property
    def headline(self) -> Metric | None:
        """The overall row of the default preset (else of the first preset); None when nothing was scored."""
        names = [p.preset for p in self.presets]
        chosen = self.default_preset if self.default_preset in names else (names[0] if names else None)
        try:
            return self.preset(chosen).get("overall") if chosen else None
        except KeyError:
            return None

    def preset(self, name: str) -> PresetResult:
        for p in self.presets:
            if p.preset == name:
                return p
        raise KeyError(f"preset {name!r} not in results; have {[p.preset for p in self.presets]}")


def _coverage(clean: Sequence[Record], variants: Sequence[Record], invalid: int | None, rows: int | None,
              load_errors: Sequence[str], load_error_count: int) -> Coverage:
    """Rows, skips, samples, answered, invalid and errors by kind (from the stored kinds, never message text)."""
    failed = [r for r in clean if r.generations and not r.answered]
    tallies: dict[str, list] = {}
    for r in failed:
        kind = r.error_kind or ErrorKind.BACKEND
        entry = tallies.setdefault(str(kind), [0, kind in TRANSIENT_KINDS, r.error or ""])
        entry[0] += 1
    by_kind = tuple(ErrorTally(kind=k, count=c, transient=t, example=e[:300])
                    for k, (c, t, e) in sorted(tallies.items(), key=lambda kv: -kv[1][0]))  # fmt: skip
    reasons = Counter(_load_reason(e) for e in load_errors)
    return Coverage(
        rows=rows, skipped=load_error_count, skipped_reasons=dict(reasons), samples=len(clean),
        answered=sum(r.answered for r in clean), invalid=invalid, errors=len(failed),
        not_sent=sum(not r.generations for r in clean), errors_by_kind=by_kind, variants=len(variants),
        variants_answered=sum(r.answered for r in variants),
        variants_failed=sum(bool(r.generations) and not r.answered for r in variants),
    )  # fmt: skip


def _load_reason(message: str) -> str:
    """'data.jsonl line 7: image missing ...' -> 'image missing' (a short bucket; the full text stays listed)."""
    _where, sep, why = message.partition(": ")
    return re.split(r"[:;(]", why if sep else message, maxsplit=1)[0].strip()[:60] or "unreadable row"


def compute(records: Iterable[Record], presets: Sequence[str], seed: int = 0, probes: Sequence = (),
            probe_preset: str = "strict", load_errors: Sequence[str] = (), load_error_count: int = 0,
            rows: int | None = None, cluster: str | None = clusters.DEFAULT, scored: ScoreOf | None = None) -> Results:
    """Preset rows on the clean samples; `probes` (ProbeSpecs) analysed on the variants, paired by parent;
    the coverage of the run (with the rows skipped at load, when given). `cluster`: what the intervals
    resample (medprobe.clusters: the image by default, a metadata column, or none for questions).
    `scored(preset, record)`: the record's score, when some were computed already (medprobe.live)."""
    everything = list(records)
    # probe variants never enter the headline rows: they are compared with their parents below
    records = [r for r in everything if not r.sample.is_variant]
    variants = [r for r in everything if r.sample.is_variant]
    answered, failed = [], []
    for r in records:
        (answered if r.answered else failed).append(r)
    reasons = Counter(str(r.error_kind or "not_sent") for r in failed)
    counts = RunCounts(samples=len(records), answered=len(answered), errors=len(failed), error_reasons=dict(reasons))
    groups = subsets(answered)
    resampling = Resampling.of([r.sample for r in answered], cluster)  # cluster labels once, for every preset
    aggregate = benchmark_aggregate(records)
    # a preset restricted to other benchmarks (probmed, smmile-*) gets no empty section
    benches = {r.sample.benchmark for r in records}
    presets = [p for p in presets if not scoring.get(p).benchmarks or benches & set(scoring.get(p).benchmarks)]
    presets = [p for p in presets if _has_rows(scoring.get(p), records)] or presets[:1]
    probe_results = tuple(_probe_results(probes, everything, probe_preset, seed))
    # the repeat probe's per-sample agreement is one of calibration's confidence sources
    agreement = {str(m.detail["sample_id"]): m.value for p in probe_results for m in p.rows if m.name == "sample_agreement"}
    preset_results = tuple(_preset_result(p, answered, groups, seed, aggregate, resampling, scored) for p in presets)
    main = next((p for p in preset_results if p.preset == probe_preset), preset_results[0] if preset_results else None)
    invalid = _overall_invalid(main) if main else None
    coverage = _coverage(records, variants, invalid, rows, load_errors, load_error_count)
    # calibration asks whether confidence tracks correctness: reports have no correctness
    calibrated = next((p for p in presets if AnswerType.REPORT not in scoring.get(p).value_names), None)
    # a run of reports resamples studies (one sample each), whatever the VQA default says
    reports = bool(records) and all(r.sample.answer_type is AnswerType.REPORT for r in records)
    interval = interval_name(N_RESAMPLES) if reports else resampling.method
    return Results(seed=seed, counts=counts, coverage=coverage, interval=interval, presets=preset_results,
                   default_preset=probe_preset, probes=probe_results,
                   calibration=compute_calibration(answered, calibrated, seed, agreement) if calibrated else None,
                   reasoning=compute_reasoning(answered, main.preset, seed)
                   if main and AnswerType.REPORT not in scoring.get(main.preset).value_names else None)


def _overall_invalid(main: PresetResult) -> int:
    try:
        return main.get("overall").invalid
    except KeyError:
        return 0


def _has_rows(preset: Preset, records: Sequence[Record]) -> bool:
    """Report presets get no section in a run without reports; a run of reports whose every request
    failed still gets them, empty (the views say nothing was scored). (The other presets have no rule for a
    report, so in a run of reports their sections are empty: a report is never scored right or wrong.)"""
    if AnswerType.REPORT in preset.value_names:
        return any(r.sample.answer_type is AnswerType.REPORT for r in records)
    return True


def _probe_results(specs: Sequence, records: list[Record], preset: str, seed: int) -> list[ProbeResult]:
    if not specs:
        return []
    from medprobe import probes

    return probes.analyze(specs, records, preset, seed)


def score_all(records: Sequence[Record], preset_name: str) -> list[Score]:
    preset = scoring.get(preset_name)
    return [preset.score_generation(r.sample, r.final) for r in records]


_OUTCOME_CODE = {Outcome.CORRECT: 0, Outcome.WRONG: 1, Outcome.INVALID: 2, Outcome.SCORED: 3}
#: (preset, record) -> the record's score under the preset
ScoreOf = Callable[[Preset, Record], Score]


def _score_of(preset: Preset, record: Record) -> Score:
    return preset.score_generation(record.sample, record.final)


def _preset_result(name: str, records: Sequence[Record], subsets, seed: int, aggregate=None,
                   resampling: Resampling | None = None, scored: ScoreOf | None = None) -> PresetResult:  # fmt: skip
    preset = scoring.get(name)
    if type(preset).group_of is not Preset.group_of:  # the default groups by answer type: nothing to regroup
        subsets = regroup(subsets, records, preset.group_of)  # closed/open rows as the official script forms them
    n = len(records)
    # a preset only scores the answer types its official script defines (LLaVA-Med has no
    # multiple-choice rule): other samples are left out of its rows rather than counted invalid
    applies = np.fromiter((preset.applies(r.sample) for r in records), bool, n)
    score_of = scored or _score_of
    scores = [score_of(preset, r) if ok else None for r, ok in zip(records, applies)]
    own = preset.corpus_rows(records, scores, subsets, seed)  # report presets: corpus statistics, not means
    if own is not None:
        return PresetResult(preset=name, description=preset.description, reproduces=preset.reproduces,
                            metrics=tuple(own), headline_metric=preset.value_names.get(AnswerType.REPORT))
    # one pass over the scores for every per-record column (this runs once per preset and record)
    value_names = preset.value_names
    metric_names = sorted(set(value_names.values()))
    metric_code = {kind: metric_names.index(metric) for kind, metric in value_names.items()}
    parser_code: dict[str, int] = {}
    extra_keys: set[str] = set()
    rows = [(np.nan, 0, False, -1, 0)] * n  # value, outcome, fallback, parser, metric of a record not scored
    for i, (r, s) in enumerate(zip(records, scores)):
        if s is not None:
            rows[i] = (s.value, _OUTCOME_CODE[s.outcome], s.answer.fallback,
                       parser_code.setdefault(s.parser, len(parser_code)), metric_code[r.sample.answer_type])
            extra_keys.update(s.extra)
    columns = list(zip(*rows)) if n else [()] * 5
    value, outcome, fallback = np.array(columns[0], float), np.array(columns[1], np.int8), np.array(columns[2], bool)
    parser, metric = np.array(columns[3], np.int16), np.array(columns[4], np.int16)
    parser_names = sorted(parser_code)
    # codes in order of first appearance -> indices into the sorted names (-1, not scored: 0 as before)
    parser = np.array([parser_names.index(p) for p in parser_code] + [0], np.int16)[parser]
    extras = {k: np.array([s.extra.get(k, np.nan) if s else np.nan for s in scores]) for k in sorted(extra_keys)}
    resampling = resampling or Resampling.of([r.sample for r in records])
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
            correct=int(tally[0]), wrong=int(tally[1]), invalid=int(tally[2]), fallback=int(fallback[idx].sum()),
            interval=resampling.method_for(idx), clusters=resampling.count(idx),
        )  # fmt: skip
        columns = {main: value[idx]}
        # secondary values (token F1, mean recall) get a row only where every sample carries them,
        # so a row's n is always the subset's n
        columns.update({k: v[idx] for k, v in extras.items() if not np.isnan(v[idx]).any()})
        intervals: dict[bytes, tuple[float, float]] = {}
        for metric_name, values in columns.items():
            # identical columns (MultiMedEval's accuracy and F1 on yes/no answers) share one interval
            key = values.tobytes()
            if key not in intervals:
                intervals[key] = resampling.ci(values, idx, seed, f"{name}/{subset}/{metric_name}")
            low, high = intervals[key]
            metrics.append(Metric(metric=metric_name, value=float(values.mean()), ci_low=low, ci_high=high, **common))
    if aggregate is not None:
        metrics += aggregate(records, scores, name, seed)
    return PresetResult(preset=name, description=preset.description, reproduces=preset.reproduces, metrics=tuple(metrics))
