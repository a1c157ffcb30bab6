"""Speed-up of the ray backend with 2 actors vs 1, on the tiny random-weight LLaVA of the heavy tier
(CPU, 1 CPU per actor, so each actor's torch uses one thread). Ideal: 2.0. Two figures:

* generation with a warm pool: the same image-question requests, sent batch by batch as the runner
  sends them (one pool-wide batch at a time, split across the actors), after every actor has loaded
  the model;
* the whole `medprobe.pipeline.run` (actor start, model load, generation, storing, scoring), Ray
  itself started once beforehand. Each actor's start-up (importing torch and transformers, loading
  the model: about 9 CPU-seconds) runs at the same time as the other's, so on a 2-core machine a
  small run gains little or nothing from a second actor.

    python bench/ray_speedup.py [--questions 192] [--max-tokens 16] [--two-nodes]

`--two-nodes` runs it on a two-node Ray cluster started on loopback (tests/heavy/_ray_cluster.py: a head
and a worker node of 1 CPU each, separate `ray start` processes), `--address HOST:PORT` on an existing
one; the default is a local Ray with 2 CPUs. Needs the heavy tier's packages (requirements-heavy.txt).
The machine may be shared: the load average (`uptime`) is printed with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, write_benchmark

sys.path.insert(0, str(REPO / "tests" / "heavy"))  # tiny-model builder, loopback cluster


def run_once(bench: Path, model: Path, actors: int, out: Path, max_tokens: int, address: str | None) -> float:
    from medprobe import pipeline
    from medprobe.backends import BackendConfig
    from medprobe.pipeline import RunSpec
    from medprobe.types import GenerationConfig

    options = {"actors": actors, "batch_size": 8, "device": "cpu", "dtype": "float32"}
    if address:
        options["ray_address"] = address
    spec = RunSpec(benchmark=str(bench), backend=BackendConfig(provider="ray", model=f"hf/{model}", options=options),
                   generation=GenerationConfig(max_tokens=max_tokens))  # fmt: skip
    start = time.perf_counter()
    results = pipeline.run(spec, out)
    wall = time.perf_counter() - start
    assert results.coverage is not None and results.coverage.errors == 0, results.coverage
    return wall


def requests_for(bench: Path) -> list:
    from medprobe import benchmarks
    from medprobe.prompts import first_turn, load_template
    from medprobe.runner import Job, build_request

    samples = benchmarks.load(str(bench)).samples
    job = Job(samples=samples, template=load_template("default"), model="bench")
    return [build_request(job, s, first_turn(job.template, s), 0, False) for s in samples]


async def warm_generation(requests: list, model: Path, actors: int, address: str | None) -> float:
    """Seconds to answer `requests` with a pool whose actors have all loaded the model."""
    from medprobe.backends import BackendConfig, create

    options = {"actors": actors, "batch_size": 8, "device": "cpu", "dtype": "float32"}
    if address:
        options["ray_address"] = address
    backend = create(BackendConfig(provider="ray", model=f"hf/{model}", options=options))
    try:
        await backend.start()
        await backend.generate(requests[: backend.batch_size])  # every actor gets a chunk: loads its model
        start = time.perf_counter()
        for i in range(0, len(requests), backend.batch_size):
            await backend.generate(requests[i : i + backend.batch_size])
        return time.perf_counter() - start
    finally:
        await backend.aclose()


def _spin(seconds: float) -> float:
    """CPU seconds one process gets while spinning for `seconds` of wall time."""
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        pass
    return time.process_time() - cpu


def cores_available(n: int, seconds: float = 3.0) -> float:
    """Cores that `n` one-CPU Ray tasks get at once right now: what bounds the speed-up on a shared machine."""
    import ray

    spin = ray.remote(num_cpus=1)(_spin)
    return sum(ray.get([spin.remote(seconds) for _ in range(n)])) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=192)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--two-nodes", action="store_true", help="start a two-node Ray cluster on loopback and use it")
    p.add_argument("--address", help="an existing Ray cluster (HOST:PORT)")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Ray runs its workers at nice 15, so on a shared machine they get what everything else leaves over;
    # at 0 the actors compete on equal terms (the Ray this script starts, or the loopback nodes, read it)
    os.environ.setdefault("RAY_worker_niceness", "0")
    import ray
    from _ray_cluster import loopback_cluster
    from _tiny_models import build

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        address = a.address
        if a.two_nodes:
            address = stack.enter_context(loopback_cluster(cpus_per_node=1)).address
        # Ray once for both runs, so its start-up is in neither
        ray.init(address=address, num_cpus=None if address else 2, include_dashboard=False, log_to_driver=False)
        stack.callback(ray.shutdown)
        model = build("llava", Path(tmp) / "llava")
        bench = write_benchmark(Path(tmp) / "bench", a.questions)
        requests = [r.model_copy(update={"config": r.config.model_copy(update={"max_tokens": a.max_tokens})})
                    for r in requests_for(bench)]  # fmt: skip
        cores = {n: cores_available(n) for n in (1, 2)}
        warm = {n: asyncio.run(warm_generation(requests, model, n, address)) for n in (1, 2)}
        walls = {n: run_once(bench, model, n, Path(tmp) / f"run{n}", a.max_tokens, address) for n in (1, 2)}
    where = "a two-node loopback cluster" if a.two_nodes else address or "a local Ray with 2 CPUs"
    print(f"tiny llava, {a.questions} image questions, max_tokens {a.max_tokens}, on {where}")
    for label, times in (("generation, warm pool", warm), ("whole pipeline.run", walls)):
        rates = ", ".join(f"{n} actor{'s' if n > 1 else ''} {t:.1f} s ({a.questions / t:.1f} q/s)" for n, t in times.items())
        print(f"{label}: {rates}; speed-up 2 actors vs 1: {times[1] / times[2]:.2f}x (ideal 2.00)")
    print(f"cores Ray tasks got (spinning 3 s): 1 task {cores[1]:.2f}, 2 tasks {cores[2]:.2f}; so the best speed-up "
          f"possible on this machine now is about {cores[2] / cores[1]:.2f}x")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())


if __name__ == "__main__":
    main()
