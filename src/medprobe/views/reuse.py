"""Writing a report again over inputs that have not changed reuses the last write instead of redoing it.

Most of a large report's time is reading every record back and building the sample browser (a
10,000-question run with probes holds ~170,000 records). Both are pure functions of the run folders,
the options and the code, so a write leaves a fingerprint of those inputs in the report folder
(`STATE`, beside the page state the view needs to render index.html again). A later write with the
same fingerprint, whose files are all still there, only renders index.html and copies the assets;
any change (a re-score, more answers, another --preset, another medprobe version or an edited source
file) makes a full write. The state is JSON, never pickle: a report folder may come from anyone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import orjson

import medprobe

STATE = ".medprobe-report-state.json"
#: the files of a run folder a report reads, by size and modification time
RUN_FILES = ("manifest.json", "results.json", "records.sqlite", "probe_images/index.json")
#: ... and by size only: SQLite touches the write-ahead log whenever the store is opened, even to read it,
#: while answers not yet checkpointed into records.sqlite make it grow
SIZED = ("records.sqlite-wal",)
_CODE = (".py", ".j2", ".js", ".css", ".json", ".toml")


def fingerprint(run_dirs: Sequence[Path], options: Iterable[object]) -> str:
    """sha256 over what a report is made from: each run folder's files (path, size, modification time),
    the options, and medprobe itself (its version and the size and time of every source file, so an
    edited checkout never reuses a report its old code wrote)."""
    h = hashlib.sha256(f"medprobe {medprobe.__version__}\n".encode())
    for d in run_dirs:
        h.update(f"run {Path(d).resolve()}\n".encode())
        for name in RUN_FILES:
            h.update(f"{name} {_stat(Path(d) / name)}\n".encode())
        for name in SIZED:
            h.update(f"{name} {_stat(Path(d) / name).split(' ')[0]}\n".encode())
    h.update(orjson.dumps([str(o) for o in options]))
    h.update(_code().encode())
    return h.hexdigest()


@cache
def _code() -> str:
    """medprobe's source files (name, size, modification time), once per process: the code this process runs."""
    package = Path(medprobe.__file__).parent
    h = hashlib.sha256()
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")  # walked in this order
        for name in sorted(files):
            if name.endswith(_CODE):
                h.update(f"{Path(root, name).relative_to(package)} {_stat(Path(root, name))}\n".encode())
    return h.hexdigest()


def _stat(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "-"
    return f"{st.st_size} {st.st_mtime_ns}"


def load(out: Path, key: str) -> bytes | None:
    """The page state saved by the last write into `out`, when it was made from the same inputs (`key`) and
    every file it wrote is still there; else None (write everything)."""
    try:
        saved = orjson.loads((out / STATE).read_bytes())
        if saved.get("inputs") != key or not all((out / f).is_file() for f in saved["files"]):
            return None
        return orjson.dumps(saved["page"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no state, or a damaged one: only costs a full write


def save(out: Path, key: str, page: bytes, files: Iterable[str]) -> None:
    """Save the page state of a full write (written last: an interrupted write leaves no state behind)."""
    body = b'{"inputs":' + orjson.dumps(key) + b',"files":' + orjson.dumps(sorted(files)) + b',"page":' + page + b"}"
    tmp = out / (STATE + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, out / STATE)


def forget(out: Path) -> None:
    """Drop the saved state before a full write replaces the files it lists."""
    (out / STATE).unlink(missing_ok=True)
