"""The run directory: manifest.json, records.sqlite (samples, plan, generations), results.

Every generation is committed the moment it arrives (SQLite WAL), keyed by the request's sha256,
so a run killed with `kill -9` loses at most what was in flight, and re-running the same command
sends only the missing requests. Schema changes get a numbered migration (simonw/llm style).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from medprobe.types import SCHEMA_VERSION, Generation, Record, Sample

MANIFEST = "manifest.json"
RECORDS = "records.sqlite"
RESULTS = "results.json"
SUMMARY = "summary.md"

_MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE samples (idx INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, body BLOB NOT NULL);
    CREATE TABLE plan (sample_id TEXT NOT NULL, turn INTEGER NOT NULL, key TEXT NOT NULL,
                       PRIMARY KEY (sample_id, turn));
    CREATE TABLE generations (key TEXT PRIMARY KEY, ok INTEGER NOT NULL, body BLOB NOT NULL,
                              request BLOB, created REAL NOT NULL);
    """,
]


class RunStore:
    """SQLite store of one run (or a cache shared by several runs: generations are keyed by request)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; each put_generation is its own durable transaction
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes (kill -9)
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    # samples and plan -------------------------------------------------------------------------
    def put_samples(self, samples: Iterable[Sample]) -> None:
        rows = ((i, s.id, s.model_dump_json().encode()) for i, s in enumerate(samples))
        with self._tx():
            self.db.execute("DELETE FROM samples")
            self.db.executemany("INSERT INTO samples (idx, id, body) VALUES (?, ?, ?)", rows)

    def samples(self) -> list[Sample]:
        rows = self.db.execute("SELECT body FROM samples ORDER BY idx")
        return [Sample.model_validate_json(body) for (body,) in rows]

    def put_plan(self, entries: Iterable[tuple[str, int, str]]) -> None:
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO plan (sample_id, turn, key) VALUES (?, ?, ?)", entries)

    # generations --------------------------------------------------------------------------------
    def done(self) -> dict[str, Generation]:
        """Every successful generation by request key (errors are retried on resume)."""
        rows = self.db.execute("SELECT key, body FROM generations WHERE ok = 1")
        return {key: Generation.model_validate_json(body) for key, body in rows}

    def put_generation(self, key: str, generation: Generation, request: dict[str, Any] | None = None) -> None:
        """Persist one result now. A success never gets overwritten by a later error."""
        body = generation.model_dump_json().encode()
        req = orjson.dumps(request) if request is not None else None
        if generation.ok:
            sql = "INSERT OR REPLACE INTO generations (key, ok, body, request, created) VALUES (?, 1, ?, ?, ?)"
        else:
            sql = (
                "INSERT INTO generations (key, ok, body, request, created) VALUES (?, 0, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET body=excluded.body, created=excluded.created WHERE ok = 0"
            )
        self.db.execute(sql, (key, body, req, time.time()))

    def records(self, turns: int = 1, samples: list[Sample] | None = None) -> Iterator[Record]:
        """Samples in benchmark order with the generation of every planned turn (pass `samples`
        when they are already in memory, to skip re-reading them)."""
        plan: dict[str, list[str]] = {}
        for sample_id, _turn, key in self.db.execute("SELECT sample_id, turn, key FROM plan ORDER BY sample_id, turn"):
            plan.setdefault(sample_id, []).append(key)
        bodies = dict(self.db.execute("SELECT key, body FROM generations"))
        for sample in samples if samples is not None else self.samples():
            keys = plan.get(sample.id, [])
            gens = tuple(Generation.model_validate_json(bodies[k]) for k in keys if k in bodies)
            yield Record(sample=sample, keys=tuple(keys[: len(gens)]), generations=gens, turns=turns)

    def _tx(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


# manifest / results files ---------------------------------------------------------------------
def write_json(path: Path, data: Any) -> None:
    """Atomic write: a crash never leaves a half-written manifest."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a medprobe run directory (no {MANIFEST}). Pass the --out of a run.")
    manifest = json.loads(path.read_text())
    if manifest.get("schema_version", 0) > SCHEMA_VERSION:
        raise ValueError(f"{run_dir} was written by a newer medprobe (schema {manifest['schema_version']}); upgrade.")
    return manifest


def read_records(run_dir: Path, samples: list[Sample] | None = None) -> tuple[dict[str, Any], list[Record]]:
    """The manifest and every record of a run folder (each record knows how many turns it needs)."""
    manifest = read_manifest(run_dir)
    store = RunStore(run_dir / RECORDS)
    try:
        return manifest, list(store.records(turns=manifest.get("turns", 1), samples=samples))
    finally:
        store.close()
