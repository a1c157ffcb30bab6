"""Probe runs: the first run of six probes on the shipped VQA-RAD demo (65 samples, 9 images), then
re-runs of the finished run, which must send 0 requests and finish in < 2 s (the corrupted images
are read back from RUN/probe_images/ by their recipe, never rebuilt); and the size of that image
store per sample (target: a few hundred KB at the default settings).

    python bench/probes.py [--model baseline/random] [--reruns 5]

The machine may be shared: the load average (`uptime`) is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import tempfile
from pathlib import Path

from _common import medprobe

PROBES = ("blind", "corrupt", "permute", "negate", "paraphrase", "repeat")
TARGET_S = 2.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def store_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.iterdir() if p.suffix in (".png", ".jpg")] if folder.is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="baseline/random", help="e.g. baseline/random or scripted/constant:yes")
    p.add_argument("--reruns", type=int, default=5)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = ["vqa-rad-demo", "--model", a.model, "--out", str(out)]
        for probe in PROBES:
            args += ["--probe", probe]
        first, _ = medprobe("run", *args)
        manifest = json.loads((out / "manifest.json").read_text())
        samples = manifest["coverage"]["samples"]
        requests = manifest["last_execution"]["requests"]
        walls, cpus, sent = [], [], []
        for _ in range(a.reruns):
            before = cpu_s()
            wall, _ = medprobe("run", *args)
            walls.append(wall)
            cpus.append(cpu_s() - before)
            sent.append(json.loads((out / "manifest.json").read_text())["last_execution"]["sent"])
        size, files = store_bytes(out / "probe_images")
    best, median = min(walls), statistics.median(walls)
    print(f"probes: {', '.join(PROBES)}; model {a.model}; {samples} samples, {requests} requests")
    print(f"first run: {first:.2f} s (derivation and all requests)")
    print(f"re-run of the finished run ({a.reruns}x): best {best:.2f} s, median {median:.2f} s; requests sent "
          f"{max(sent)}; ratio to the {TARGET_S:.0f} s target: best {best / TARGET_S:.2f}, median {median / TARGET_S:.2f}")
    # on a busy machine wall time waits for a core; the CPU time is what the command itself costs
    print(f"re-run CPU time (user + system): best {min(cpus):.2f} s, ratio to the target {min(cpus) / TARGET_S:.2f}")
    print(f"probe image store: {size / 2**20:.1f} MiB in {files} files; {size / samples / 1024:.0f} KiB per sample")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())


if __name__ == "__main__":
    main()
