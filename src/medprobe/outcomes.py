"""Every record's outcome under every preset it is shown with, kept beside results.json as outcomes.json.

Scoring a run computes them all (clean samples under each preset of results.json, probe variants under
the probe preset); writing them down lets a reader that shows per-sample outcomes (the report's sample
browser) take them instead of scoring ~170,000 records again. The file is a cache of the records, never a
source: it names the records' fingerprint (`RunStore.fingerprint`), the presets and the medprobe version
it was scored with, and a reader that finds any of them different scores the records itself
(`medprobe.runs.Run.outcomes`).

An entry is [code] for a record without a score (ERROR: the request failed; NOT_APPLICABLE: the preset
has no rule for it) and [code, value, method, parser, reason, score] otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from medprobe import __version__, scoring
from medprobe.scoring._base import Preset
from medprobe.store import write_bytes
from medprobe.types import Outcome, Record, Score

FILE = "outcomes.json"
#: outcome codes: correct, wrong, invalid, scored (a report: text metrics, no verdict), error (the request
#: failed), not applicable
CODES = {Outcome.CORRECT: "c", Outcome.WRONG: "w", Outcome.INVALID: "i", Outcome.SCORED: "s"}
ERROR, NOT_APPLICABLE = "e", "-"
Entry = list
ScoreOf = Callable[[Preset, Record], Score]


def entry(rule: Preset, record: Record, scored: ScoreOf | None = None) -> Entry:
    """The record's entry under `rule` (`scored`: scores computed already, as medprobe.results takes them)."""
    if not rule.applies(record.sample):
        return [NOT_APPLICABLE]
    if not record.answered:
        return [ERROR]
    s = scored(rule, record) if scored is not None else rule.score_generation(record.sample, record.final)
    a = s.answer
    return [CODES[s.outcome], a.value, a.method or "", a.parser, a.reason or "", round(s.value, 4)]


@dataclass(frozen=True)
class Outcomes:
    """Entries by sample id and preset name, with the presets clean samples and variants were scored under."""

    presets: tuple[str, ...]
    probe_preset: str
    by_id: dict[str, dict[str, Entry]]

    def get(self, sample_id: str, preset: str) -> Entry | None:
        found = self.by_id.get(sample_id)
        return None if found is None else found.get(preset)


def table(records: Iterable[Record], presets: Sequence[str], probe_preset: str, scored: ScoreOf | None = None) -> Outcomes:
    """Clean records under each rule preset of `presets` (a judge's rows have their own per-answer store),
    probe variants under `probe_preset` (as medprobe.results scores them)."""
    presets = [p for p in presets if scoring.known(p)]
    rules = [scoring.get(p) for p in presets]
    probe_rule = scoring.get(probe_preset)
    by_id: dict[str, dict[str, Entry]] = {}
    for r in records:
        if r.sample.is_variant:
            by_id[r.sample.id] = {probe_preset: entry(probe_rule, r)}
        else:
            by_id[r.sample.id] = {name: entry(rule, r, scored) for name, rule in zip(presets, rules)}
    return Outcomes(presets=tuple(presets), probe_preset=probe_preset, by_id=by_id)


def extended(outcomes: Outcomes, clean: Iterable[Record], presets: Sequence[str]) -> Outcomes:
    """`outcomes` with the clean records scored under those of `presets` it lacks (another run's preset,
    shown beside this one in a report)."""
    missing = {p: scoring.get(p) for p in presets if p not in outcomes.presets and scoring.known(p)}
    if not missing:
        return outcomes
    by_id = dict(outcomes.by_id)
    for r in clean:
        by_id[r.sample.id] = {**by_id.get(r.sample.id, {}), **{name: entry(rule, r) for name, rule in missing.items()}}
    return Outcomes(presets=(*outcomes.presets, *missing), probe_preset=outcomes.probe_preset, by_id=by_id)


def write(run_dir: Path, outcomes: Outcomes, fingerprint: list) -> None:
    """outcomes.json in the run folder, replaced whole (a reader never sees half a file). One compact JSON
    document: 16 MB for 172,000 records, written in 0.1 s and read in 0.4 s (a row per record in SQLite
    took 1.2 s and 0.65 s)."""
    write_bytes(run_dir / FILE, orjson.dumps({"version": __version__, "fingerprint": fingerprint,
                                              "presets": list(outcomes.presets), "probe_preset": outcomes.probe_preset,
                                              "outcomes": outcomes.by_id}))  # fmt: skip


def read(run_dir: Path, fingerprint: list) -> Outcomes | None:
    """The stored outcomes when they stand for the records as they are now (same fingerprint, same
    medprobe version), else None (absent, stale or unreadable: the caller scores the records)."""
    try:
        data = orjson.loads((run_dir / FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("version") != __version__ or data.get("fingerprint") != fingerprint:
        return None
    try:
        return Outcomes(presets=tuple(data["presets"]), probe_preset=str(data["probe_preset"]), by_id=dict(data["outcomes"]))
    except (KeyError, TypeError, ValueError):
        return None
