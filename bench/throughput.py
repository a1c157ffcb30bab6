"""Throughput of the whole `medprobe run` command (start-up included) against a loopback
OpenAI-compatible server that answers after a fixed latency L, at concurrency C.

Ideal = C / L requests per second; the script prints achieved / ideal (target >= 0.95), then re-runs
the finished run and prints its wall time and how many requests reached the server (target: 0, < 5 s).
With --repeat N it does so N times (a fresh run folder each time) and prints the medians; the load
average is printed with each figure, as the machine may be shared.

    python bench/throughput.py --requests 6000 --latency 0.2 --concurrency 64 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from _common import medprobe, write_benchmark
from openai_server import serve_subprocess, stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--repeat", type=int, default=1, help="runs, each in a fresh folder; medians are printed")
    a = p.parse_args()
    ideal = a.concurrency / a.latency
    walls, reruns = [], []
    with tempfile.TemporaryDirectory() as tmp, serve_subprocess(latency=a.latency, inspect_images=False) as base_url:
        bench = write_benchmark(Path(tmp), a.requests)
        for i in range(a.repeat):
            before = stats(base_url)["requests"]
            args = [str(bench), "--model", "openai/bench", "--base-url", base_url, "--concurrency", str(a.concurrency),
                    "--out", str(Path(tmp) / f"run{i}"), "--retries", "0"]
            wall, _ = medprobe("run", *args)
            received = stats(base_url)["requests"] - before
            rerun_wall, _ = medprobe("run", *args)
            resent = stats(base_url)["requests"] - before - received
            walls.append(wall)
            reruns.append(rerun_wall)
            print(f"run {i + 1}: {wall:.2f} s, ratio {a.requests / wall / ideal:.3f}, received={received}; re-run "
                  f"{rerun_wall:.2f} s, requests sent {resent}  (load average {os.getloadavg()[0]:.2f})")
    wall, rerun_wall = statistics.median(walls), statistics.median(reruns)
    achieved = a.requests / wall
    print(f"requests={a.requests} latency={a.latency}s concurrency={a.concurrency} (median of {a.repeat})")
    print(f"whole command: {wall:.2f} s, {achieved:.1f} req/s, ideal {ideal:.1f} req/s, ratio {achieved / ideal:.3f}")
    print(f"re-run of the finished run: {rerun_wall:.2f} s")


if __name__ == "__main__":
    main()
