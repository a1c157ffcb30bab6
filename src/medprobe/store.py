"""The run directory: manifest.json, records.sqlite (samples, plan, generations), results.

Every generation is committed the moment it arrives (SQLite WAL), keyed by the request's sha256,
so a run killed with `kill -9` loses at most what was in flight, and re-running the same command
sends only the missing requests. Schema changes get a numbered migration (simonw/llm style).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from medprobe.manifest import MANIFEST_SCHEMA, Manifest, RunStatus
from medprobe.manifest import load as load_manifest
from medprobe.types import Generation, Record, Sample, stored_variant
from medprobe.variant_rows import Reply, VariantRow, VariantSample

MANIFEST = "manifest.json"
RECORDS = "records.sqlite"
RESULTS = "results.json"
SUMMARY = "summary.md"


class StorageKind(StrEnum):
    READ_ONLY = "read_only"  # read-only mount, no permission, immutable file
    FULL = "full"  # no space left, quota exceeded
    DAMAGED = "damaged"  # records.sqlite is not a database, or its pages are corrupt
    IO = "io"  # any other I/O failure of the disk


class StorageError(Exception):
    """The run folder could not be read or written: read-only, full, or a damaged records.sqlite.
    The message says what is safe and what to do (the CLI prints it and exits 6)."""

    def __init__(self, message: str, kind: StorageKind, path: Path):
        super().__init__(message)
        self.kind = kind
        self.path = path


# from error codes, never from message text (sqlite3.Error.sqlite_errorcode is the extended code;
# its low byte is the primary one, https://sqlite.org/rescode.html)
_SQLITE_KINDS = {
    sqlite3.SQLITE_CORRUPT: StorageKind.DAMAGED, sqlite3.SQLITE_NOTADB: StorageKind.DAMAGED,
    sqlite3.SQLITE_FULL: StorageKind.FULL, sqlite3.SQLITE_READONLY: StorageKind.READ_ONLY,
    sqlite3.SQLITE_CANTOPEN: StorageKind.READ_ONLY, sqlite3.SQLITE_PERM: StorageKind.READ_ONLY,
    sqlite3.SQLITE_IOERR: StorageKind.IO,
}  # fmt: skip
_OS_KINDS = {
    errno.EROFS: StorageKind.READ_ONLY, errno.EACCES: StorageKind.READ_ONLY, errno.EPERM: StorageKind.READ_ONLY,
    errno.ENOSPC: StorageKind.FULL, errno.EDQUOT: StorageKind.FULL, errno.EFBIG: StorageKind.FULL,
}  # fmt: skip


def storage_error(exc: BaseException, path: Path, safe: str | None = None) -> StorageError | None:
    """The StorageError for an sqlite3 or OS error met while using `path`; None for any other error
    (a bug, or a missing file, is not a storage failure and keeps its own type). `safe` says what
    is untouched (default: the answers in a .sqlite, or the file itself)."""
    if isinstance(exc, sqlite3.Error):
        kind = _SQLITE_KINDS.get(getattr(exc, "sqlite_errorcode", -1) & 0xFF)
        reason = str(exc)
    elif isinstance(exc, OSError):
        kind = _OS_KINDS.get(exc.errno)
        reason = exc.strerror or str(exc)
    else:
        return None
    if kind is StorageKind.IO and _free_bytes(path.parent) < 1 << 20:
        kind = StorageKind.FULL  # SQLite reports some writes on a full disk as I/O errors (a -shm that cannot grow)
    if kind is None:
        return None
    return StorageError(_advice(kind, path, reason, safe), kind, path)


def _advice(kind: StorageKind, path: Path, reason: str, safe: str | None) -> str:
    folder = path.parent
    if kind is StorageKind.DAMAGED:
        return (f"{path} is damaged ({reason}); medprobe did not change it. Answers stored before the damage may be "
                f"recoverable: `sqlite3 {path} .recover | sqlite3 {folder / 'recovered.sqlite'}`, then move "
                f"recovered.sqlite over {path.name} (delete {path.name}-wal and -shm) and re-run the same command "
                "to resume; or re-run into a new --out (every answer is requested again).")  # fmt: skip
    stored = safe or (f"every answer stored so far is safe in {path}" if path.suffix == ".sqlite"
                      else f"{path.name} was not changed")  # fmt: skip
    if kind is StorageKind.FULL:
        return (f"the disk holding {folder} is full ({reason}); {stored}. Free space and re-run the same command, "
                "or pass --out to a folder on another disk.")  # fmt: skip
    if kind is StorageKind.READ_ONLY:
        return (f"cannot write {path} ({reason}): the folder is read-only or not writable by this user; {stored}. "
                "Pass --out to a writable folder, or make that folder writable.")  # fmt: skip
    return f"could not read or write {path} ({reason}); {stored}. Check the disk, then re-run the same command."


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62  # unknown: do not guess "full"


@contextlib.contextmanager
def storage_errors(path: Path, safe: str | None = None) -> Iterator[None]:
    """Turn the storage failures (read-only, full, damaged) of the block into StorageError about `path`."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        error = storage_error(exc, path, safe)
        if error is None:
            raise
        raise error from exc


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
    """SQLite store of one run (or a cache shared by several runs: generations are keyed by request).

    `read_only=True` (score, card, compare) never writes, never creates the file, and works in a
    read-only folder. Every storage failure (read-only, full, damaged) raises StorageError."""

    def __init__(self, path: Path | str, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        #: what this process stored, by key: (body, generation); `records(parsed=)` reuses a generation whose
        #: stored body is still these bytes, instead of parsing it back (the end of `medprobe run`)
        self.written: dict[str, tuple[bytes, Generation]] = {}
        with storage_errors(self.path):
            self.db = _open_read(self.path) if read_only else _open_write(self.path)
            version = self.db.execute("PRAGMA user_version").fetchone()[0]  # a garbage file fails here
            if version > len(_MIGRATIONS):
                self.db.close()
                raise ValueError(f"{self.path} was written by a newer medprobe (schema {version}); upgrade medprobe.")
            if read_only and version < len(_MIGRATIONS):
                self.db.close()
                raise FileNotFoundError(f"{self.path} holds no answers yet (the run stopped before storing any); "
                                        "re-run the command that made it.")  # fmt: skip
            if not read_only:
                self._migrate(version)

    def _migrate(self, version: int) -> None:
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    # samples and plan -------------------------------------------------------------------------
    def put_samples(self, samples: Iterable[Sample]) -> None:
        rows = ((i, s.id, s.model_dump_json().encode()) for i, s in enumerate(samples))
        with storage_errors(self.path), self._tx():
            self.db.execute("DELETE FROM samples")
            self.db.executemany("INSERT INTO samples (idx, id, body) VALUES (?, ?, ?)", rows)

    def samples(self) -> list[Sample]:
        with storage_errors(self.path):
            rows = self.db.execute("SELECT body FROM samples ORDER BY idx").fetchall()
        return [Sample.from_stored(body) for (body,) in rows]

    def put_plan(self, entries: Iterable[tuple[str, int, str]]) -> None:
        with storage_errors(self.path), self._tx():
            self.db.executemany("INSERT OR REPLACE INTO plan (sample_id, turn, key) VALUES (?, ?, ?)", entries)

    # generations --------------------------------------------------------------------------------
    def done(self) -> dict[str, Generation]:
        """Every successful generation by request key (errors are retried on resume)."""
        with storage_errors(self.path):
            rows = self.db.execute("SELECT key, body FROM generations WHERE ok = 1").fetchall()
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
        with storage_errors(self.path):  # a full disk stops here; every earlier answer is committed
            self.db.execute(sql, (key, body, req, time.time()))
        if generation.logprobs is None and generation.option_scores is None:  # floats that may not round-trip
            self.written[key] = (body, generation)

    def records(self, turns: int = 1, samples: list[Sample] | None = None,
                parsed: Mapping[str, tuple[bytes, Generation]] | None = None) -> Iterator[Record]:
        """Samples in benchmark order with the generation of every planned turn (pass `samples`
        when they are already in memory, to skip re-reading them, and `parsed`, a writer's `written`,
        to reuse each generation whose stored body is byte for byte the one written)."""
        plan = self._plan()
        with storage_errors(self.path):
            bodies = dict(self.db.execute("SELECT key, body FROM generations"))
        for sample in samples if samples is not None else self.samples():
            keys = plan.get(sample.id, [])
            gens = tuple(_generation(bodies[k], parsed.get(k) if parsed else None) for k in keys if k in bodies)
            yield Record(sample=sample, keys=tuple(keys[: len(gens)]), generations=gens, turns=turns)

    def split_records(self, turns: int = 1) -> tuple[list[Record], list[VariantRow]]:
        """The clean records in full and the probe variants as `VariantRow`s, in benchmark order. A variant
        is told by its stored bytes (`types.stored_variant`) and never validated as a full Sample or Generation;
        one stored by an earlier version is read in full, migrated and then viewed."""
        clean: list[Record] = []
        variants: list[VariantRow] = []
        for body, keys, gens in self._joined(turns):
            if stored_variant(body):
                variants.append(VariantRow(VariantSample.model_validate_json(body), tuple(map(Reply.model_validate_json, gens))))
                continue
            sample = Sample.from_stored(body)
            record = Record(sample=sample, keys=keys, generations=tuple(map(Generation.model_validate_json, gens)), turns=turns)
            (variants.append(VariantRow.of(record)) if sample.is_variant else clean.append(record))
        return clean, variants

    def _joined(self, turns: int) -> Iterator[tuple[bytes, tuple[str, ...], tuple[bytes, ...]]]:
        """(sample body, planned keys that have a generation, their bodies) per sample in benchmark order.
        One turn: one SQL join, no Python-side maps of 170,000 keys."""
        if turns == 1:
            with storage_errors(self.path):
                rows = self.db.execute(
                    "SELECT s.body, p.key, g.body FROM samples s LEFT JOIN plan p ON p.sample_id = s.id AND p.turn = 0 "
                    "LEFT JOIN generations g ON g.key = p.key ORDER BY s.idx").fetchall()  # fmt: skip
            for body, key, gen in rows:
                yield (body, (key,), (gen,)) if gen is not None else (body, (), ())
            return
        plan = self._plan()
        with storage_errors(self.path):
            bodies = dict(self.db.execute("SELECT key, body FROM generations"))
            rows = self.db.execute("SELECT id, body FROM samples ORDER BY idx").fetchall()
        for sample_id, body in rows:
            keys = plan.get(sample_id, [])
            gens = tuple(bodies[k] for k in keys if k in bodies)
            yield body, tuple(keys[: len(gens)]), gens  # as `records` pairs them

    def fingerprint(self) -> list:
        """Changes whenever a sample or generation is written: what a file derived from the records
        (medprobe.outcomes) must match to stand for them."""
        with storage_errors(self.path):
            samples = self.db.execute("SELECT count(*), total(length(body)) FROM samples").fetchone()
            gens = self.db.execute("SELECT count(*), total(ok), max(created) FROM generations").fetchone()
        return [*samples, *gens]

    def _plan(self) -> dict[str, list[str]]:
        plan: dict[str, list[str]] = {}
        with storage_errors(self.path):
            for sample_id, _turn, key in self.db.execute("SELECT sample_id, turn, key FROM plan ORDER BY sample_id, turn"):
                plan.setdefault(sample_id, []).append(key)
        return plan

    def _tx(self):
        return _Transaction(self.db)


def _generation(body: bytes, written: tuple[bytes, Generation] | None) -> Generation:
    """The stored generation: the one this process wrote when the store still holds its exact bytes."""
    if written is not None and written[0] == body:
        return written[1]
    return Generation.model_validate_json(body)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _open_write(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: autocommit; each put_generation is its own durable transaction
    db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # a file that is not a database fails here, untouched
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes (kill -9)
    except BaseException:
        db.close()
        raise
    return db


def _open_read(path: Path) -> sqlite3.Connection:
    """A connection that cannot write. In a writable folder it is an ordinary WAL reader (safe beside
    a live writer, and the last one to close tidies the -wal/-shm files away). In a read-only folder
    SQLite cannot create the -shm index a WAL reader needs, so the file is opened `immutable` - safe
    there, as no writer can exist - unless a crashed run left answers in the -wal, which can only be
    read through its existing -shm (https://sqlite.org/wal.html#readonly)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} has no {path.name}; pass the --out of a run.")
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    if os.access(path.parent, os.W_OK) and os.access(path, os.W_OK):
        db = sqlite3.connect(f"{uri}?mode=rw", uri=True, isolation_level=None, timeout=30.0)
        db.execute("PRAGMA query_only=1")
        return db
    if not (wal.is_file() and wal.stat().st_size > 0):
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
    try:
        db.execute("PRAGMA user_version")
    except sqlite3.OperationalError as exc:
        db.close()
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_CANTOPEN:
            raise
        raise StorageError(f"{path} has answers in {wal.name} that SQLite can read only in a writable folder "
                           f"({path.parent} is read-only); copy the run folder somewhere writable and pass the "
                           "copy instead.", StorageKind.READ_ONLY, path) from None  # fmt: skip
    return db


# manifest / results files ---------------------------------------------------------------------
def write_json(path: Path, data: Any) -> None:
    """Atomic write: a crash never leaves a half-written manifest; StorageError when it cannot be written."""
    write_bytes(path, orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def write_text(path: Path, text: str) -> None:
    """Atomic UTF-8 text write (summary.md, card.md), like write_json."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, payload: bytes) -> None:
    """Atomic write of `payload` (write_json and write_text go through it); StorageError when it cannot be written."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with storage_errors(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(payload)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):  # a full disk must not leave a stray half-written .tmp
                tmp.unlink(missing_ok=True)
            raise


def read_manifest(run_dir: Path) -> Manifest:
    """The run's typed manifest; one written by an earlier schema is migrated in memory."""
    path = run_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a medprobe run directory (no {MANIFEST}). Pass the --out of a run.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); restore it or re-run into a new --out.") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a medprobe manifest; re-run into a new --out.")
    if data.get("schema_version", 0) > MANIFEST_SCHEMA:
        raise ValueError(f"{run_dir} was written by a newer medprobe (schema {data['schema_version']}); upgrade.")
    try:
        manifest = load_manifest(data)
    except ValidationError as exc:
        raise ValueError(f"{path} does not read as a medprobe manifest ({exc.error_count()} problems, first: "
                         f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}); re-run into a new --out.") from None
    if manifest.status is RunStatus.RUNNING and not writer_alive(run_dir):
        # kill -9 or a lost machine: nobody can write the final status, so the reader says it
        return manifest.model_copy(update={"status": RunStatus.INTERRUPTED, "stop_reason": (
            "the process writing this run ended without finishing (killed, or the machine stopped); "
            "re-run the same command to resume")})  # fmt: skip
    return manifest


LOCK_NAME = ".medprobe.lock"


def writer_alive(run_dir: Path) -> bool:
    """Whether a process holds the run folder's writer lock (medprobe.runlock) right now."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the pid in the lock file is the only sign
        return (run_dir / LOCK_NAME).is_file()
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the shared lock taken for the test
    return False


def read_records(run_dir: Path, samples: list[Sample] | None = None,
                 parsed: Mapping[str, tuple[bytes, Generation]] | None = None) -> tuple[Manifest, list[Record]]:
    """The manifest and every record of a run folder (each record knows how many turns it needs);
    `parsed`: see `RunStore.records`."""
    manifest = read_manifest(run_dir)
    store = RunStore(run_dir / RECORDS, read_only=True)
    try:
        return manifest, list(store.records(turns=manifest.turns, samples=samples, parsed=parsed))
    finally:
        store.close()
