"""The HTML report at scale: a 10,000-sample run with probes, written and opened.

1. Builds (once; kept under --work) a synthetic benchmark of --samples questions (closed, open, multiple
   choice) on --images distinct images made from the 9 packaged VQA-RAD images, and runs it with a scripted
   model (token logprobs, some reasoning chains) and the blind, corrupt (default: 4 corruptions x 3
   severities) and negate probes. Not timed.
2. `medprobe report` as a subprocess (start-up included): a first write (every thumbnail made), a
   re-write into the same folder over unchanged inputs (the last write is reused: medprobe.views.reuse),
   and, in this process, a re-write after the run changed (results.json touched: everything but the
   thumbnails is made again), with its steps. Target: < 10 s.
3. The report folder's size. Target: < 100 MB.
4. Opening index.html from disk in headless Chromium (playwright, Debian's chromium) until the first page of
   samples is on screen, and a filter change. Target: < 3 s.

    python bench/report.py --samples 10000 --images 1000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

from _common import demo_images, medprobe

from medprobe import pipeline
from medprobe.backends import BackendConfig
from medprobe.backends.scripted import register_function
from medprobe.pipeline import RunSpec
from medprobe.types import Generation, GenerationConfig, Request, TokenLogprob

PROBES = ("blind", "corrupt", "negate")
MODALITIES = ("CT", "MRI", "X-Ray", "US")
ORGANS = ("CHEST", "HEAD", "ABD", "LIMB", "PELVIS")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def write_images(folder: Path, n: int) -> list[str]:
    """n distinct JPEGs (about 512 px, like most radiology VQA images): crops of the packaged images, each marked."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.open(p).convert("L") for p in demo_images()]
    names = []
    for k in range(n):
        img = sources[k % len(sources)]
        w, h = img.size
        dx, dy = (k * 37) % max(1, w // 8), (k * 53) % max(1, h // 8)
        tile = img.crop((dx, dy, dx + w * 7 // 8, dy + h * 7 // 8)).resize((512, 512))
        ImageDraw.Draw(tile).rectangle((8 + k % 400, 8, 20 + k % 400, 20), fill=255)
        name = f"img{k:05d}.jpg"
        tile.save(folder / name, quality=90)
        names.append(f"images/{name}")
    return names


def write_benchmark(folder: Path, samples: int, images: int) -> Path:
    names = write_images(folder / "images", images)
    path = folder / "bench.jsonl"
    with path.open("w") as f:
        for i in range(samples):
            # questions about one image are neighbours, as in VQA-RAD, SLAKE and PathVQA files
            row = {"id": f"q{i:05d}", "image": names[i * images // samples], "modality": MODALITIES[i % 4], "organ": ORGANS[i % 5],
                   "question_type": ("PRES", "POS", "SIZE", "PLANE")[i % 4]}  # fmt: skip
            if i % 10 < 6:
                row.update(question=f"Is there an abnormality in region {i}?", answer="yes" if i % 2 else "no",
                           answer_type="closed")  # fmt: skip
            elif i % 10 < 8:
                row.update(question=f"Which organ is shown in image {i}?", answer=ORGANS[i % 5].lower(), answer_type="open")
            else:
                row.update(question=f"Which plane is image {i}?", options=["Axial", "Coronal", "Sagittal", "Oblique"],
                           answer="ABCD"[i % 4])  # fmt: skip
            f.write(json.dumps(row) + "\n")
    return path


def answer(request: Request) -> Generation:
    """Right about 75% of the time on clean images, less on blurred or missing ones; logprobs for calibration."""
    h = int(hashlib.sha256(request.sample_id.encode()).hexdigest()[:8], 16)
    sid = request.sample_id.split("~")[0]
    i = int(sid[1:])
    right = h % 100 < (40 if "~blind" in request.sample_id or "@5" in request.sample_id else 75)
    if i % 10 < 6 or "~negate" in request.sample_id:
        gold = "Yes" if i % 2 else "No"
        word = gold if right else ("No" if gold == "Yes" else "Yes")
    elif i % 10 < 8:
        word = ORGANS[i % 5].lower() if right else "liver"
    else:
        word = "ABCD"[i % 4] if right else "ABCD"[(i + 1) % 4]
    p = 0.6 + 0.39 * ((h >> 8) % 100) / 100
    other = "No" if word == "Yes" else "Yes"
    logprobs = (TokenLogprob(token=word, logprob=math.log(p), top=((word, math.log(p)), (other, math.log(1 - p)))),)
    text = f"<think>Looking at region {i}: the finding is {'clear' if right else 'subtle'}.</think>{word}" if h % 5 == 0 else word
    return Generation(text=text, logprobs=logprobs)


def build_run(work: Path, samples: int, images: int) -> Path:
    run = work / f"run-{samples}-{images}"
    if (run / "results.json").is_file():
        print(f"reusing {run}")
        return run
    bench = write_benchmark(work / f"bench-{samples}-{images}", samples, images)
    register_function("bench-report", answer)
    start = time.perf_counter()
    spec = RunSpec(benchmark=str(bench), backend=BackendConfig(provider="scripted", model="fn:bench-report"),
                   generation=GenerationConfig(logprobs=True, top_logprobs=2), probes=PROBES)  # fmt: skip
    pipeline.run(spec, run)
    print(f"built {run} in {time.perf_counter() - start:.0f} s (not part of the figures below)")
    return run


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def changed_rewrite(run: Path, out: Path) -> tuple[float, dict[str, float]]:
    """(seconds, seconds per step) of a re-write in this process after the run changed (its results.json
    touched, as a re-score does): every figure and the sample browser are made again, thumbnails are kept."""
    from medprobe.views.html import write_report

    os.utime(run / "results.json")
    start = time.perf_counter()
    summary = write_report([run], out)
    return time.perf_counter() - start, summary.timings


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def folder_mib(path: Path) -> tuple[float, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20, len(files)


def open_in_chromium(index: Path) -> tuple[float, float, int]:
    """(seconds until the first page of samples is rendered, seconds for a filter change, external requests)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        external = []
        page.on("request", lambda r: None if r.url.startswith("file://") else external.append(r.url))
        page.goto("about:blank")
        start = time.perf_counter()
        page.goto(index.as_uri())
        page.wait_for_selector("article.sample")
        opened = time.perf_counter() - start
        start = time.perf_counter()
        page.select_option('.browser select[name="outcome"]', "w")
        page.wait_for_selector("article.sample")
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
        filtered = time.perf_counter() - start
        browser.close()
    return opened, filtered, len(external)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--images", type=int, default=1_000, help="distinct images (VQA-RAD: 315 for 2,248 questions)")
    p.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "medprobe-bench-report")
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    run = build_run(a.work, a.samples, a.images)
    out = a.work / "report"
    shutil.rmtree(out, ignore_errors=True)
    cpu = children_cpu()
    first, proc = medprobe("report", str(run), "--out", str(out))
    cpu_first, cpu, load_first = children_cpu() - cpu, children_cpu(), load()
    print(proc.stdout.strip())
    again, proc = medprobe("report", str(run), "--out", str(out))
    cpu_again, load_again = children_cpu() - cpu, load()
    print(proc.stdout.strip())
    changed, steps = changed_rewrite(run, out)
    load_changed = load()
    print("steps of the re-write after a change (s):", json.dumps(steps))
    size, files = folder_mib(out)
    print(f"write (thumbnails made)    {first:6.2f} s wall, {cpu_first:6.2f} s CPU (all processes)   "
          f"ratio to the 10 s target {first / 10:.2f}   ({load_first})")
    print(f"re-write, inputs unchanged {again:6.2f} s wall, {cpu_again:6.2f} s CPU   ratio to the 10 s target "
          f"{again / 10:.2f}   ({load_again})")
    print(f"re-write, run changed      {changed:6.2f} s wall (in this process, no start-up)   ratio to the 10 s target "
          f"{changed / 10:.2f}   ({load_changed})")
    print(f"report folder              {size:6.1f} MiB ({files} files)   ratio to the 100 MB target {size * 2**20 / 1e8:.2f}")
    opened, filtered, external = open_in_chromium(out / "index.html")
    print(f"open in headless Chromium  {opened:6.2f} s   ratio to the 3 s target {opened / 3:.2f}   ({load()})")
    print(f"filter change (outcome)    {filtered:6.2f} s")
    print(f"requests leaving the disk  {external}")
    print(f"(machine: {os.cpu_count()} cores, {load()})")


if __name__ == "__main__":
    main()
