"""Two `medprobe run` processes on one run folder: the second is refused at once naming the first's
pid, no request is paid twice, the store stays intact; a lock left by a dead process does not block."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from openai_server import serve_subprocess, stats
from test_e2e_cli import make_cases

from medprobe.runlock import LOCK_NAME, RunLock, RunLockedError

CLI = [sys.executable, "-c", "from medprobe.cli import main; main()"]


def test_lock_refuses_a_second_writer_and_frees_on_exit(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match=r"another medprobe run is writing .*run \(pid \d+\); wait"):
            with RunLock(tmp_path / "run"):
                pass
    with RunLock(tmp_path / "run"):  # released: the next run gets it
        pass


@pytest.mark.slow
def test_two_processes_on_one_run_folder(tmp_path):
    n = 24
    cases = make_cases(tmp_path, n)
    out = tmp_path / "run"
    with serve_subprocess(latency=1.0) as base_url:  # slow enough that a loaded machine still overlaps them
        cmd = [*CLI, "run", str(cases), "--model", "openai/tiny", "--base-url", base_url, "--concurrency", "2",
               "--out", str(out)]  # fmt: skip
        first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while stats(base_url)["requests"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert first.poll() is None, "the first run finished before the second was refused; raise the latency"
        assert f"another medprobe run is writing {out} (pid {first.pid})" in " ".join(second.stderr.split())
        assert first.wait(60) == 0, first.stderr.read()
        first.stderr.close()
        assert stats(base_url)["requests"] == n  # nobody paid twice
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)  # lock released: resumes, sends 0
        assert again.returncode == 0, again.stderr
        assert stats(base_url)["requests"] == n
    db = sqlite3.connect(out / "records.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT COUNT(*) FROM generations WHERE ok = 1").fetchone() == (n,)


def test_a_lock_file_left_by_a_dead_process_is_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{dead.pid}\n")  # what kill -9 leaves behind
    cases = make_cases(tmp_path, 2)
    proc = subprocess.run([*CLI, "run", str(cases), "--model", "scripted/constant:yes", "--out", str(out)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
