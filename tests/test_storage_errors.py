"""Storage failures end in one line that says what is safe and what to do, and exit 6 (README: exit
codes), never a traceback: a read-only run folder, a full disk, a damaged records.sqlite; and no
stray .tmp file is ever left behind.

Tests run as root, where `chmod a-w` stops nothing, so the read-only folder is a read-only bind
mount and the full disk a small tmpfs, each inside a private mount namespace (`unshare -m`): the
mounts vanish with the child process, even if the test dies. Where mount namespaces are not
allowed the tests skip and say why.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medprobe import store
from medprobe.cli import app
from medprobe.store import StorageError, StorageKind, write_json

MEDPROBE = [sys.executable, "-c", "from medprobe.cli import main; main()"]
STORAGE_EXIT = 6


@functools.cache
def _no_mounts_reason() -> str | None:
    if shutil.which("unshare") is None:
        return "needs unshare(1) for private mounts"
    probe = tempfile.mkdtemp()
    try:
        done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                               f"mount -t tmpfs -o size=64k tmpfs {probe} && mount --bind {probe} {probe} && "
                               f"mount -o remount,ro,bind {probe}"], capture_output=True, text=True)  # fmt: skip
    finally:
        os.rmdir(probe)
    if done.returncode != 0:
        return f"needs root with mount namespaces (read-only bind mount, tmpfs): {done.stderr.strip()}"
    return None


@pytest.fixture
def mounts():
    if reason := _no_mounts_reason():
        pytest.skip(reason)


def read_only(*folders: Path) -> str:
    return "\n".join(f"mount --bind {f} {f}\nmount -o remount,ro,bind {f}" for f in folders)


def in_namespace(setup: str, argv: list[str], cwd: Path, after: str = "") -> subprocess.CompletedProcess:
    """`argv` in a private mount namespace prepared by the shell lines `setup`; `after` runs when it
    has exited (to copy files out of a tmpfs before it vanishes). Output comes back through pipes,
    so a full disk cannot swallow it."""
    script = f"set -e\n{setup}\nset +e\n\"$@\"\nrc=$?\n{after}\nexit $rc"
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def medprobe(setup: str, *args: str, cwd: Path, after: str = "") -> subprocess.CompletedProcess:
    return in_namespace(setup, [*MEDPROBE, *args], cwd, after)


def one_line(done: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a command that exited `code`, with no traceback anywhere."""
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream and "╭" not in stream, stream[-3000:]  # plain or rich traceback
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def listing(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def stray_tmp(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*.tmp")]


RUN = ["run", "vqa-rad-demo", "--split", "test", "--model"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Two finished runs (baseline/prior and baseline/random on the shipped VQA-RAD sample)."""
    out = tmp_path_factory.mktemp("demo")
    for kind in ("prior", "random"):
        result = CliRunner().invoke(app, [*RUN, f"baseline/{kind}", "--out", str(out / f"baseline-{kind}")])
        assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def runs(demo, tmp_path) -> tuple[Path, Path]:
    """Fresh copies of the two demo runs (a test may damage or mount over them)."""
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(demo / "baseline-prior", a)
    shutil.copytree(demo / "baseline-random", b)
    return a, b


# ---------------------------------------------------------------- read-only run folder


def test_score_on_a_read_only_folder_prints_the_table_and_says_where_it_could_not_write(mounts, runs, tmp_path):
    a, _ = runs
    (a / "results.json").unlink()
    before = listing(a)
    done = medprobe(read_only(a), "score", str(a), cwd=tmp_path)
    line = one_line(done, 0)  # the scores were shown; only the saved copy is missing
    assert "strict" in done.stdout and "accuracy" in done.stdout
    assert "results.json" in line and "read-only" in line and "--out" in line
    assert listing(a) == before and not stray_tmp(a)


def test_score_out_writes_results_elsewhere(mounts, runs, tmp_path):
    a, _ = runs
    dest = tmp_path / "scored"
    done = medprobe(read_only(a), "score", str(a), "--out", str(dest), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((dest / "results.json").read_text())["presets"]
    assert (dest / "summary.md").read_text().strip()


def test_score_out_into_a_read_only_folder_exits_6(mounts, runs, tmp_path):
    a, _ = runs
    line = one_line(medprobe(read_only(a), "score", str(a), "--out", str(a / "elsewhere"), cwd=tmp_path), STORAGE_EXIT)
    assert "results.json" in line and "--out" in line


def test_card_on_a_read_only_folder_says_to_pass_out(mounts, runs, tmp_path):
    a, b = runs
    before = listing(a)
    line = one_line(medprobe(read_only(a, b), "card", str(a), str(b), cwd=tmp_path), STORAGE_EXIT)
    assert "card.json" in line and "read-only" in line and "--out" in line
    assert listing(a) == before and not stray_tmp(a)
    dest = tmp_path / "card"
    done = medprobe(read_only(a, b), "card", str(a), str(b), "--out", str(dest), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((dest / "card.json").read_text())["models"]


def test_compare_on_read_only_folders(mounts, runs, tmp_path):
    a, b = runs
    before = listing(a) | listing(b)
    done = medprobe(read_only(a, b), "compare", str(a), str(b), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "McNemar" in done.stdout
    assert listing(a) | listing(b) == before  # not even a -wal or -shm file appears


def test_reading_a_writable_folder_changes_nothing_in_it(runs):
    # a read-only SQLite open in a writable folder would leave -wal and -shm files behind
    a, b = runs
    before = listing(a) | listing(b)
    result = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert listing(a) | listing(b) == before
    assert not [name for name in before if name.endswith(("-wal", "-shm"))]  # nor did the run's own scoring


def test_run_into_a_read_only_folder_exits_6_before_sending(mounts, runs, tmp_path):
    a, _ = runs
    before = listing(a)
    done = medprobe(read_only(a), *RUN, "baseline/prior", "--out", str(a), cwd=tmp_path)
    line = one_line(done, STORAGE_EXIT)
    assert "read-only" in line and "--out" in line
    assert listing(a) == before


def _crash_with_answers_in_wal(run: Path) -> None:
    """A writer killed before its checkpoint: the deletion of every answer lives only in the -wal."""
    code = ("import os, sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "db.execute('PRAGMA wal_autocheckpoint=0'); db.execute('DELETE FROM generations'); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(run / "records.sqlite")], check=True)
    assert (run / "records.sqlite-wal").stat().st_size > 0


def test_a_read_only_folder_with_a_wal_is_read_through_it(mounts, runs, tmp_path):
    # `immutable` would ignore the -wal and show answers the crashed writer had already deleted
    a, _ = runs
    _crash_with_answers_in_wal(a)
    code = ("import sys; from pathlib import Path; from medprobe.store import read_records; "
            "print(sum(len(r.generations) for r in read_records(Path(sys.argv[1]))[1]))")
    done = in_namespace(read_only(a), [sys.executable, "-c", code, str(a)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


def test_a_read_only_folder_whose_wal_cannot_be_read_says_to_copy_it(mounts, runs, tmp_path):
    a, _ = runs
    _crash_with_answers_in_wal(a)
    (a / "records.sqlite-shm").unlink()  # SQLite cannot rebuild it in a read-only folder
    line = one_line(medprobe(read_only(a), "score", str(a), cwd=tmp_path), STORAGE_EXIT)
    assert "records.sqlite-wal" in line and "copy the run folder" in line


# ---------------------------------------------------------------- damaged records.sqlite


def _truncate_to_half(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database\n" * 200)


@pytest.mark.parametrize("damage", [_truncate_to_half, _garbage], ids=["truncated", "garbage"])
@pytest.mark.parametrize("command", ["score", "compare", "run"])
def test_a_damaged_records_file_says_how_to_recover_and_is_never_replaced(runs, tmp_path, damage, command):
    a, b = runs
    db = a / "records.sqlite"
    damage(db)
    damaged = db.read_bytes()
    args = {
        "score": ["score", str(a)],
        "compare": ["compare", str(b), str(a)],
        "run": [*RUN, "baseline/prior", "--out", str(a)],
    }[command]
    done = subprocess.run([*MEDPROBE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    line = one_line(done, STORAGE_EXIT)
    assert "records.sqlite is damaged" in line
    assert ".recover" in line and "--out" in line  # the two ways out
    assert db.read_bytes() == damaged  # never silently replaced by a fresh, empty database
    assert not stray_tmp(a)


# ---------------------------------------------------------------- full disk


def test_a_full_disk_during_run_stops_with_what_is_safe(mounts, tmp_path):
    # 400 KiB holds the manifest, the samples and some answers of the demo's 64 requests, not all
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    done = medprobe(f"mount -t tmpfs -o size=400k tmpfs {disk}", "run", "vqa-rad-demo", "--model", "baseline/random",
                    "--out", str(disk / "run"), cwd=tmp_path, after=f"cp -a {disk / 'run'} {copy}")  # fmt: skip
    line = one_line(done, STORAGE_EXIT)
    assert "full" in line and "records.sqlite" in line and "Free space" in line
    assert not stray_tmp(copy)
    db = sqlite3.connect(copy / "records.sqlite")
    assert db.execute("SELECT count(*) FROM generations").fetchone()[0] > 0  # it stopped mid-run
    db.close()
    # the atomic rewrite of the manifest has no room either: it is rewritten in place, never left `running`
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "full" in manifest["stop_reason"]


def test_write_json_on_a_full_disk_leaves_no_tmp(mounts, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    code = ("import sys; from pathlib import Path; from medprobe.store import StorageError, write_json\n"
            "d = Path(sys.argv[1]); write_json(d / 'manifest.json', {'status': 'running'})\n"
            "try:\n    write_json(d / 'manifest.json', {'pad': 'x' * 200_000})\n"
            "except StorageError as exc:\n    print(exc.kind, exc)\n")  # fmt: skip
    done = in_namespace(f"mount -t tmpfs -o size=64k tmpfs {disk}", [sys.executable, "-c", code, str(disk)],
                        cwd=tmp_path, after=f"ls -a {disk}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("full "), done.stdout
    assert "manifest.json was not changed" in done.stdout and "Free space" in done.stdout
    assert "manifest.json.tmp" not in done.stdout  # the listing printed by `after`


def test_write_json_removes_its_tmp_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    write_json(target, {"old": True})

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(store.os, "replace", refuse)
    with pytest.raises(StorageError) as caught:
        write_json(target, {"new": True})
    assert caught.value.kind is StorageKind.READ_ONLY and "--out" in str(caught.value)
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_storage_error_is_not_a_value_error():
    # the CLI maps ValueError to exit 2 (bad input); a storage failure must reach its own exit 6
    assert not issubclass(StorageError, ValueError)
