"""Adaptive concurrency through the real `medprobe run` command at its defaults (start-up included), against a
loopback OpenAI-compatible server answering after 200 ms, over 1,000 questions on the real VQA-RAD JPEGs:

1. a server with room for everything: wall time and its ratio to the fastest peer at its defaults
   (VLMEvalKit, 26.0 s in issue 11's side-by-side on a quiet machine; target <= 0.3). On a busy machine
   the wall time of a CPU-bound run grows with the load, so it also prints the client's CPU seconds and
   the ratio to medprobe's old default (`--concurrency 8`, 26.7 s quiet, a tie with that peer) run
   under the same load;
2. a server that answers 429 (Retry-After 1 s) past 16 requests in flight: errors (target 0), the 429s it
   sent, the level over the run and where it ended (target: near 16).

Start-up is timed as an installed medprobe has it, with compiled bytecode: where the environment sets
PYTHONDONTWRITEBYTECODE (every start would compile every module again, about 2 s of CPU), the runs get
a bytecode cache in a temporary folder, warmed once before timing.

    python bench/adaptive.py [--requests 1000] [--latency 0.2] [--peer-s 26.0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import medprobe, write_benchmark
from openai_server import serve_subprocess, stats


def run(bench: Path, base_url: str, out: Path, *extra: str) -> tuple[float, float, dict]:
    """(wall s, client CPU s, manifest) of one `medprobe run` at its defaults plus `extra`."""
    before = _cpu()
    wall, _ = medprobe("run", str(bench), "--model", "openai/bench", "--base-url", base_url, "--out", str(out), *extra)
    return wall, _cpu() - before, json.loads((out / "manifest.json").read_text())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--peer-s", type=float, default=26.0, help="the fastest peer's wall time at its defaults")
    p.add_argument("--capacity", type=int, default=16, help="in flight the second server serves before 429s")
    p.add_argument("--no-old-default", action="store_true", help="skip the --concurrency 8 comparison run")
    a = p.parse_args()
    print(f"machine load (uptime, 1/5/15 min): {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
            os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        warm = "import medprobe.cli, medprobe.pipeline, medprobe.summary, medprobe.backends.openai_compat"
        subprocess.run([sys.executable, "-c", warm], check=True)
        bench = write_benchmark(Path(tmp), a.requests)
        with serve_subprocess(latency=a.latency, inspect_images=False) as url:
            wall, cpu, manifest = run(bench, url, Path(tmp) / "open")
            received = stats(url)["requests"]
            old = None if a.no_old_default else run(bench, url, Path(tmp) / "old", "--concurrency", "8")
        ex = manifest["last_execution"]
        print(f"defaults, open server: {a.requests} requests ({received} received) in {wall:.2f} s (client CPU "
              f"{cpu:.2f} s); concurrency {ex['concurrency']} peak {ex['concurrency_peak']}, final "
              f"{ex['concurrency_final']}; ratio to the fastest peer ({a.peer_s:g} s): {wall / a.peer_s:.3f} "
              "(target <= 0.3)")  # fmt: skip
        if old is not None:
            print(f"old default --concurrency 8, same server, same load: {old[0]:.2f} s; ratio adaptive / old "
                  f"default {wall / old[0]:.3f}; load now {load()}")  # fmt: skip

        with serve_subprocess(latency=a.latency, inspect_images=False, max_in_flight=a.capacity) as url:
            wall, _, manifest = run(bench, url, Path(tmp) / "busy")
            server = stats(url)
        ex, cov = manifest["last_execution"], manifest["coverage"]
        trace = ", ".join(f"{t:.1f}s:{level}" for t, level in ex["concurrency_changes"][:40])
        print(f"defaults, 429 past {a.capacity} in flight: {cov['answered']} answered, {cov['errors']} errors "
              f"(target 0) in {wall:.2f} s; 429s sent {server['faults'].get('busy', 0)}, peak in flight at the "
              f"server {server['peak_in_flight']}; level final {ex['concurrency_final']} (target near "
              f"{a.capacity}), peak {ex['concurrency_peak']}")  # fmt: skip
        print(f"level over the run (seconds since sending began: level): {trace}; load now {load()}")


if __name__ == "__main__":
    main()
