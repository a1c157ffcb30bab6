"""Every record's outcome under every preset it is shown with, kept beside results.json as outcomes.sqlite.

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

import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from medprobe import __version__, scoring
from medprobe.scoring._base import Preset
from medprobe.store import storage_errors
from medprobe.types import Outcome, Record, Score

FILE = "outcomes.sqlite"
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
    """outcomes.sqlite in the run folder, replaced whole (a reader never sees half a file)."""
    path = run_dir / FILE
    tmp = path.with_name(path.name + ".tmp")
    with storage_errors(path):
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("BEGIN")
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            db.execute("CREATE TABLE outcomes (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID")
            db.executemany("INSERT INTO meta VALUES (?, ?)", _meta(outcomes, fingerprint).items())
            db.executemany("INSERT INTO outcomes VALUES (?, ?)", ((k, orjson.dumps(v)) for k, v in outcomes.by_id.items()))
            db.execute("COMMIT")
        finally:
            db.close()
        os.replace(tmp, path)


def read(run_dir: Path, fingerprint: list) -> Outcomes | None:
    """The stored outcomes when they stand for the records as they are now (same fingerprint, same
    medprobe version), else None (absent, stale or unreadable: the caller scores the records)."""
    path = run_dir / FILE
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if meta.get("version") != __version__ or orjson.loads(meta.get("fingerprint", b"null")) != fingerprint:
                return None
            by_id = {k: orjson.loads(v) for k, v in db.execute("SELECT id, body FROM outcomes")}
        finally:
            db.close()
        return Outcomes(presets=tuple(orjson.loads(meta["presets"])), probe_preset=meta["probe_preset"], by_id=by_id)
    except (sqlite3.Error, orjson.JSONDecodeError, KeyError, OSError):
        return None


def _meta(outcomes: Outcomes, fingerprint: list) -> dict[str, str | bytes]:
    return {"version": __version__, "fingerprint": orjson.dumps(fingerprint), "presets": orjson.dumps(list(outcomes.presets)),
            "probe_preset": outcomes.probe_preset}  # fmt: skip
