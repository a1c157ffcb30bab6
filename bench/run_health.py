"""Run health under failure, through the real `medprobe run` command (start-up included):

- a dead server (a closed port), 300 rows: seconds until medprobe stops (target < 10 s) and its exit code (2);
- a key refused on every request by a server without a model list: requests sent (target 1, the gate request);
- a key revoked after 20 answers: requests sent after it (target <= the breaker's 10 + concurrency);
- 64 replies of 10 MB each: the run folder's size and peak memory (targets: < 10 MB, < 500 MiB).

    python bench/run_health.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import children_peak_rss_mib, write_benchmark
from openai_server import serve_subprocess, stats


def run(*args: str) -> tuple[float, int]:
    cmd = [sys.executable, "-c", "from medprobe.cli import main; main()", "run", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = write_benchmark(root, 300)
        wall, code = run(str(bench), "--model", "openai/m", "--base-url", f"http://127.0.0.1:{closed_port()}/v1",
                         "--out", str(root / "dead"))  # fmt: skip
        print(f"dead server: stopped after {wall:.2f} s (target < 10 s, ratio {wall / 10:.2f}), exit {code}")

        with serve_subprocess(faults=[{"kind": 401}]) as url:
            wall, code = run(str(bench), "--model", "openai/m", "--base-url", url, "--out", str(root / "refused"))
            print(f"key refused on every request: {stats(url)['requests']} of 300 requests sent (target 1), "
                  f"{wall:.2f} s, exit {code}")

        with serve_subprocess(faults=[{"kind": 401, "index": list(range(20, 1000))}]) as url:
            wall, code = run(str(bench), "--model", "openai/m", "--base-url", url, "--concurrency", "8",
                             "--out", str(root / "revoked"))  # fmt: skip
            after = stats(url)["requests"] - 20
            print(f"key revoked after 20 answers: {after} requests sent after it (target <= 18), {wall:.2f} s, "
                  f"exit {code}")

        small = write_benchmark(root / "huge", 64)
        with serve_subprocess(faults=[{"kind": "huge", "size": 10 * 2**20}]) as url:
            wall, code = run(str(small), "--model", "openai/m", "--base-url", url, "--retries", "0",
                             "--out", str(root / "huge-run"))  # fmt: skip
            size = folder_mib(root / "huge-run")
            print(f"64 replies of 10 MB: run folder {size:.1f} MiB (target < 10, ratio {size / 10:.2f}), peak RSS of "
                  f"the runs {children_peak_rss_mib():.0f} MiB (target < 500), exit {code}")


if __name__ == "__main__":
    main()
