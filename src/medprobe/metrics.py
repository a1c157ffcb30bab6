"""Metric rows and the subsets they are computed on, shared by every source of scores (rule presets
in medprobe.results, the LLM judge in medprobe.judge_report, benchmark hooks in medprobe.scoring).

It sits below all of them, so the flow goes one way: records -> scores -> rows -> results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
from pydantic import Field, field_validator

from medprobe.stats import interval_method
from medprobe.types import AnswerType, Frozen, Record, Sample

#: metadata keys reported as subgroup rows when samples carry them (system, frame_count: MedFrameQA;
#: clinical_task, department, granularity: GMAI-MMBench's lexical tree)
SUBGROUP_KEYS = ("modality", "organ", "question_type", "content_type", "language", "subject", "system", "frame_count",
                 "clinical_task", "department", "granularity")
MAX_GROUP_VALUES = 40
#: the key of the rows grouped by the dataset's answer type, when a preset groups its closed/open rows otherwise
DATASET_ANSWER_TYPE = "dataset_answer_type"


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
    fallback: int = Field(0, description="answers an official nearest-option / similarity rule picked (the reply "
                          "named no option): counted in correct or wrong, as the official script does")
    interval: str = Field(interval_method(), description="how ci_low/ci_high were computed (resampled unit, "
                          "resamples, level), e.g. 'cluster bootstrap by image, 1000 resamples, 95% percentile'")
    clusters: int | None = Field(None, description="clusters resampled (e.g. distinct images); None = per question")
    unavailable: str | None = Field(None, description="'not available: <why, what to install>' for a metric that "
                                    "could not be computed here (value NaN, never 0); None = computed")

    @field_validator("value", "ci_low", "ci_high", mode="before")
    @classmethod
    def _nan_from_json(cls, v: float | None) -> float:
        return float("nan") if v is None else v  # JSON writes NaN (no interval, a metric not available) as null


class PresetResult(Frozen):
    preset: str
    description: str
    reproduces: str
    metrics: tuple[Metric, ...]
    headline_metric: str | None = Field(None, description="the metric a headline reads where a subset has several "
                                        "rows (report presets: `report` -> rougeL); None = the subset's first row")

    def get(self, subset: str = "overall", metric: str | None = None) -> Metric:
        """The subset's `metric` row; no `metric`: its headline row (`headline_metric`, else the first)."""
        rows = [m for m in self.metrics if m.subset == subset]
        wanted = metric or self.headline_metric
        for m in rows:
            if wanted is None or m.metric == wanted:
                return m
        if metric is None and rows:
            return rows[0]
        raise KeyError(f"no metric {metric or '*'} for subset {subset!r} in preset {self.preset}")


def subsets(records: Sequence[Record]) -> list[tuple[str, np.ndarray]]:
    """overall, answer types, then subgroups by key and decreasing n (capped per key): row indices."""
    groups: dict[str, list[int]] = defaultdict(list)
    keys = subgroup_keys(records)
    for i, r in enumerate(records):
        groups[str(r.sample.answer_type)].append(i)
        for key in keys:
            value = r.sample.metadata.get(key)
            if value not in (None, ""):
                groups[f"{key}={value}"].append(i)
    out = [("overall", np.arange(len(records)))]
    out += [(k, np.array(groups[k])) for k in map(str, AnswerType) if k in groups]
    for key in keys:
        rows = sorted(((k, v) for k, v in groups.items() if k.startswith(key + "=")), key=lambda kv: -len(kv[1]))
        out += [(k, np.array(v)) for k, v in rows[:MAX_GROUP_VALUES]]
    return out


def regroup(groups: list[tuple[str, np.ndarray]], records: Sequence[Record],
            group_of: Callable[[Sample], AnswerType]) -> list[tuple[str, np.ndarray]]:
    """`groups` (from `subsets`) with the answer-type rows formed as a preset's official script forms them
    (`Preset.group_of`: MultiMedEval's closedQuestionsAccuracy counts every yes/no gold, whatever the
    dataset's answer type). Where that differs from the dataset's answer type, the dataset's rows follow
    as `dataset_answer_type=<type>` rows; where it never does, `groups` is returned unchanged."""
    official = [group_of(r.sample) for r in records]
    if all(g is r.sample.answer_type for g, r in zip(official, records)):
        return groups
    rows: dict[str, list[int]] = defaultdict(list)
    for i, kind in enumerate(official):
        rows[str(kind)].append(i)
    kinds = set(map(str, AnswerType))
    out = [g for g in groups if g[0] == "overall"]
    out += [(k, np.array(rows[k])) for k in map(str, AnswerType) if k in rows]
    out += [(f"{DATASET_ANSWER_TYPE}={k}", idx) for k, idx in groups if k in kinds]
    return out + [g for g in groups if g[0] != "overall" and g[0] not in kinds]


def subgroup_keys(records: Sequence[Record]) -> tuple[str, ...]:
    """SUBGROUP_KEYS, then the keys the records' registered benchmark adds (`BenchmarkSpec.subgroups`:
    the breakdowns its paper reports, such as GMAI-MMBench's category)."""
    from medprobe import benchmarks  # the benchmark registry is lazy: loading it pulls in every reader

    names = {r.sample.benchmark for r in records}
    spec = benchmarks.spec_for(names.pop()) if len(names) == 1 else None
    own = tuple(k for k in (spec.subgroups if spec else ()) if k not in SUBGROUP_KEYS)
    return SUBGROUP_KEYS + own


@lru_cache(maxsize=1)
def declared_subgroup_keys() -> frozenset[str]:
    """SUBGROUP_KEYS and every registered benchmark's own subgroup keys: what a view hides when it
    shows no subgroups (`distinct_rows(subgroups=False)`)."""
    from medprobe import benchmarks  # the benchmark registry is lazy: loading it pulls in every reader

    return frozenset(SUBGROUP_KEYS).union(*(benchmarks.get(name).subgroups for name in benchmarks.names()))


def benchmark_aggregate(records: Sequence[Record]):
    """The registered benchmark's `aggregate` hook (MediConfusion pairs, ProbMed groups), if any."""
    from medprobe import benchmarks  # the benchmark registry is lazy: loading it pulls in every reader

    names = {r.sample.benchmark for r in records}
    spec = benchmarks.spec_for(names.pop()) if len(names) == 1 else None
    return spec.aggregate if spec else None


def distinct_rows(metrics: Sequence[Metric], subgroups: bool = True) -> list[tuple[str, Metric]]:
    """(label, row) pairs for a view, without the redundant rows:

    - a row over every sample of `overall` (same metric, same n: `language=en` in a one-language
      benchmark, `closed` in an all-closed one) repeats the overall row and is left out;
    - metrics of one subset with the same value, interval and counts are one row, labelled
      'accuracy = f1' (MultiMedEval's three metrics coincide on yes/no answers);
    - `subgroups=False` keeps only overall, the answer types and the benchmark's own rows, without
      subgroup rows (a SUBGROUP_KEYS key or one a benchmark declares, such as GMAI-MMBench's
      category; MediConfusion's per-category pair rows share that key and are left out too).
    """
    overall = {(m.metric, m.n) for m in metrics if m.subset == "overall"}
    out: list[tuple[str, Metric]] = []
    seen: dict[tuple, int] = {}
    for m in metrics:
        if m.subset != "overall" and (m.metric, m.n) in overall:
            continue
        if not subgroups and "=" in m.subset and m.subset.split("=", 1)[0] in declared_subgroup_keys():
            continue
        # rounded: a mean of fractions and a mean of 0/1 values that agree differ in the last bits
        key = (m.subset, *(round(x, 9) for x in (m.value, m.ci_low, m.ci_high)), m.n, m.correct, m.wrong, m.invalid)
        if key in seen:
            label, first = out[seen[key]]
            out[seen[key]] = (f"{label} = {m.metric}", first)
            continue
        seen[key] = len(out)
        out.append((m.metric, m))
    return out
