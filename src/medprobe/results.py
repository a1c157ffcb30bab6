"""Score stored records under every preset and aggregate: each number names its preset, metric,
parser(s), n and a seeded 95% bootstrap interval. Failed requests are counted apart (errors),
never scored as wrong; unparseable answers are a third outcome (invalid), reported per row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import Field

from medprobe import scoring
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
    return message.split(":")[0][:40]


def compute(records: Iterable[Record], presets: Sequence[str], seed: int = 0) -> Results:
    records = list(records)
    answered, failed = [], []
    for r in records:
        (answered if r.answered else failed).append(r)
    reasons = Counter(_error_kind(r.error or "no generation (run interrupted)") for r in failed)
    counts = RunCounts(samples=len(records), answered=len(answered), errors=len(failed), error_reasons=dict(reasons))
    return Results(seed=seed, counts=counts, presets=tuple(_preset_result(name, answered, seed) for name in presets))


def score_all(records: Sequence[Record], preset_name: str) -> list[Score]:
    preset = scoring.get(preset_name)
    return [preset.score(r.sample, r.final.text if r.final else None) for r in records]


def _preset_result(name: str, records: Sequence[Record], seed: int) -> PresetResult:
    preset = scoring.get(name)
    # a preset only scores the answer types its official script defines (LLaVA-Med has no
    # multiple-choice rule): other samples are left out of its rows rather than counted invalid
    records = [r for r in records if r.sample.answer_type in preset.value_names]
    scores = score_all(records, name)
    subsets: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        subsets["overall"].append(i)
        subsets[str(r.sample.answer_type)].append(i)
        for key in SUBGROUP_KEYS:
            value = r.sample.metadata.get(key)
            if value not in (None, ""):
                subsets[f"{key}={value}"].append(i)
    metrics: list[Metric] = []
    for subset, idx in _ordered(subsets):
        metrics.extend(_metrics(preset, subset, [records[i] for i in idx], [scores[i] for i in idx], seed))
    return PresetResult(preset=name, description=preset.description, reproduces=preset.reproduces, metrics=tuple(metrics))


def _ordered(subsets: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
    """overall, answer types, then subgroups by key and decreasing n (capped per key)."""
    head = [(k, subsets[k]) for k in ["overall", *map(str, AnswerType)] if k in subsets]
    out = list(head)
    for key in SUBGROUP_KEYS:
        rows = sorted(((k, v) for k, v in subsets.items() if k.startswith(key + "=")), key=lambda kv: -len(kv[1]))
        out.extend(rows[:MAX_GROUP_VALUES])
    return out


def _metrics(preset, subset: str, records: list[Record], scores: list[Score], seed: int) -> list[Metric]:
    outcomes = Counter(s.outcome for s in scores)
    names = {preset.value_names.get(r.sample.answer_type, "accuracy") for r in records}
    main = names.pop() if len(names) == 1 else "mean_score"
    parsers = tuple(sorted({s.parser for s in scores}))
    common = dict(
        subset=subset, preset=preset.name, parsers=parsers, n=len(scores), correct=outcomes[Outcome.CORRECT],
        wrong=outcomes[Outcome.WRONG], invalid=outcomes[Outcome.INVALID],
    )  # fmt: skip
    columns = {main: np.fromiter((s.value for s in scores), float, len(scores))}
    # secondary values (token F1, mean recall) get a row only where every sample carries them,
    # so a row's n is always the subset's n
    for extra in sorted(set.intersection(*(set(s.extra) for s in scores)) if scores else ()):
        columns[extra] = np.array([s.extra[extra] for s in scores], float)
    out = []
    for metric, values in columns.items():
        if len(values) == 0:
            continue
        low, high = bootstrap_ci(values, seed, f"{preset.name}/{subset}/{metric}")
        out.append(Metric(metric=metric, value=float(values.mean()), ci_low=low, ci_high=high, **common))
    return out
