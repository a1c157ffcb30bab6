"""Throughput of the whole `medprobe run` command (start-up included) against a loopback
OpenAI-compatible server that answers after a fixed latency L, at concurrency C.

Ideal = C / L requests per second; the script prints achieved / ideal (target >= 0.90), then re-runs
the finished run and prints its wall time and how many requests reached the server (target: 0, < 5 s).

    python bench/throughput.py --requests 6000 --latency 0.2 --concurrency 64
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import medprobe, write_benchmark
from openai_server import serve_subprocess, stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=64)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve_subprocess(latency=a.latency, inspect_images=False) as base_url:
        bench = write_benchmark(Path(tmp), a.requests)
        out = Path(tmp) / "run"
        args = [str(bench), "--model", "openai/bench", "--base-url", base_url, "--concurrency", str(a.concurrency),
                "--out", str(out), "--retries", "0"]
        wall, _ = medprobe("run", *args)
        first = stats(base_url)["requests"]
        rerun_wall, _ = medprobe("run", *args)
        resent = stats(base_url)["requests"] - first
    ideal = a.concurrency / a.latency
    achieved = a.requests / wall
    print(f"requests={a.requests} latency={a.latency}s concurrency={a.concurrency} received={first}")
    print(f"whole command: {wall:.2f} s, {achieved:.1f} req/s, ideal {ideal:.1f} req/s, ratio {achieved / ideal:.3f}")
    print(f"re-run of the finished run: {rerun_wall:.2f} s, requests sent {resent}")


if __name__ == "__main__":
    main()
