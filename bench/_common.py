"""Shared by the bench scripts: a synthetic benchmark built on the 9 real packaged VQA-RAD images,
and a way to run the real `medprobe` command as a subprocess (start-up included in timings)."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the loopback OpenAI-compatible server lives with the tests


def demo_images() -> list[Path]:
    folder = resources.files("medprobe") / "data" / "vqa_rad_demo" / "images"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jpg"))


def write_benchmark(folder: Path, n: int) -> Path:
    """n closed questions, each unique (so no two requests share a key), cycling over real images."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = []
    for src in demo_images():
        shutil.copy(src, images / src.name)
        names.append(f"images/{src.name}")
    path = folder / "bench.jsonl"
    with path.open("w") as f:
        for i in range(n):
            row = {"id": f"q{i}", "image": names[i % len(names)], "question": f"Is there an abnormality in region {i}?",
                   "answer": "yes" if i % 2 else "no", "answer_type": "closed", "modality": ["CT", "MRI", "X-ray"][i % 3]}
            f.write(json.dumps(row) + "\n")
    return path


def medprobe(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run the real CLI; returns (wall seconds, completed process)."""
    cmd = [sys.executable, "-c", "from medprobe.cli import main; main()", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"medprobe {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall, proc


def children_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
