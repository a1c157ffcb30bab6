"""The library calls behind the CLI verbs: run (load -> plan -> execute -> score), score, import."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import orjson
from pydantic import Field

from medprobe import __version__, benchmarks, scoring
from medprobe.backends import BackendConfig, create
from medprobe.backends.likelihood import check_supported
from medprobe.benchmarks import LoadOptions
from medprobe.probes import ProbeSpec
from medprobe.prompts import PromptTemplate, load_template
from medprobe.results import Results, compute
from medprobe.runner import Counts, Job, Progress, RunSettings, execute
from medprobe.store import MANIFEST, RECORDS, RESULTS, SUMMARY, RunStore, read_manifest, read_records, write_json
from medprobe.types import SCHEMA_VERSION, Frozen, GenerationConfig


class RunSpec(Frozen):
    """Everything one `medprobe run` needs; the manifest is written from it (no secrets in it)."""

    benchmark: str
    load: LoadOptions = LoadOptions()
    backend: BackendConfig
    prompt: str = Field("", description="template name or JSON file; empty = the benchmark's default")
    generation: GenerationConfig = GenerationConfig()
    settings: RunSettings = RunSettings()
    seed: int = 0
    train_split: str | None = Field(None, description="split the prior baseline learns from; default: the benchmark's")
    answer_mode: str = Field("generate", description="generate, next-token or option-likelihood (backends.likelihood)")
    probes: tuple[str, ...] = Field((), description="--probe specs (medprobe.probes), e.g. 'blind', 'corrupt:jpeg@3,5'")


def _loop_factory():
    """uvloop where installed (faster HTTP round trips under high concurrency), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _identity(manifest: dict) -> dict:
    """What makes two runs the same run (so re-running resumes instead of mixing)."""
    identity = {
        "benchmark": {k: manifest["benchmark"].get(k) for k in ("benchmark", "source", "split", "filters")},
        "model": f"{manifest['backend']['provider']}/{manifest['backend']['model']}",
        "prompt_hash": manifest["prompt"]["hash"],
        "generation": manifest["generation"],
        "answer_mode": manifest.get("answer_mode", "generate"),
    }
    return orjson.loads(orjson.dumps(identity))  # compare as stored JSON (tuples read back as lists)


def default_presets() -> list[str]:
    return scoring.names()


def run(spec: RunSpec, out: Path, progress: Progress | None = None) -> Results:
    """Run (or resume) a benchmark on a model into `out`, then score it under every preset.
    One process writes a run folder at a time: a second one is refused at once (RunLockedError)."""
    from medprobe.runlock import RunLock

    with RunLock(out):
        return _run(spec, out, progress)


def _run(spec: RunSpec, out: Path, progress: Progress | None = None) -> Results:
    loaded = benchmarks.load(spec.benchmark, spec.load)
    bench = benchmarks.spec_for(spec.benchmark)
    template = load_template(spec.prompt or (bench.prompt if bench else "default"))
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "medprobe_version": __version__,
        "command": "run",
        "status": "running",
        "created": _now(),
        "benchmark": loaded.provenance.model_dump(),
        "load_errors": loaded.errors[:100],
        "load_error_count": len(loaded.errors),
        "default_preset": bench.default_preset if bench else "strict",
        "prompt": {"name": template.name, "hash": template.hash, "template": template.model_dump()},
        "backend": spec.backend.public(),
        "generation": spec.generation.model_dump(),
        "settings": spec.settings.model_dump(),
        "seed": spec.seed,
        "turns": 1 + len(template.followups),
        "answer_mode": spec.answer_mode,
    }
    # a wrong model spec, a missing API key or an unsupported answer mode fails here, before anything is written
    backend = create(spec.backend)
    check_supported(backend, spec.answer_mode)
    samples = loaded.samples + _derive_probes(spec, bench, template, loaded.samples, manifest, out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).is_file():
        previous = read_manifest(out)
        if _identity(previous) != _identity(manifest):
            raise ValueError(
                f"{out} already holds a different run ({previous['backend']['provider']}/{previous['backend']['model']} "
                f"on {previous['benchmark']['benchmark']}, prompt {previous['prompt']['name']}). "
                "Pass another --out, or delete that folder to start over."
            )
        manifest["created"] = previous.get("created", manifest["created"])
        if "judge" in previous:  # `medprobe judge`'s config stays with its verdicts (judge.sqlite)
            manifest["judge"] = previous["judge"]
    write_json(out / MANIFEST, manifest)
    store = RunStore(out / RECORDS)
    try:
        store.put_samples(samples)
        job = Job(samples=samples, template=template, model=f"{spec.backend.provider}/{spec.backend.model}",
                  config=spec.generation, answer_mode=spec.answer_mode)  # fmt: skip
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            counts = runner.run(_execute(spec, bench, job, store, progress, backend))
        manifest.update(status="complete", finished=_now(), last_execution=_counts(counts))
    except BaseException:
        manifest.update(status="interrupted", finished=_now())
        write_json(out / MANIFEST, manifest)
        store.close()
        raise
    write_json(out / MANIFEST, manifest)
    store.close()
    return score(out, samples=samples)


def _derive_probes(spec: RunSpec, bench, template: PromptTemplate, samples: list, manifest: dict, out: Path) -> list:
    """Probe variants of the clean samples (run beside them, same cache); records the specs in the manifest."""
    if not spec.probes:
        return []
    from medprobe import probes

    specs = probes.parse(spec.probes)
    manifest["probes"] = [str(s) for s in specs]
    train = []
    if any(s.name in probes.NEEDS_TRAIN for s in specs):
        split = spec.train_split or (bench.train_split if bench else None)
        if split and split != spec.load.split:
            train = benchmarks.load(spec.benchmark, spec.load.model_copy(update={"split": split, "limit": None})).samples
    return probes.derive(specs, samples, seed=spec.seed, template=template, train=train,
                         allow_outside_root=spec.settings.allow_outside_root,
                         image_dir=str((out / "probe_images").resolve()))  # fmt: skip


async def _execute(spec: RunSpec, bench, job: Job, store: RunStore, progress: Progress | None, backend) -> Counts:
    try:
        if hasattr(backend, "bind"):
            train = None
            if getattr(backend, "needs_train", False):
                split = spec.train_split or (bench.train_split if bench else None)
                if split:
                    train = benchmarks.load(spec.benchmark, spec.load.model_copy(update={"split": split, "limit": None})).samples
            backend.bind(job.samples, train)
        return await execute(job, backend, store, spec.settings, progress)
    finally:
        await backend.aclose()


def _counts(c: Counts) -> dict:
    return {"requests": c.total, "cached": c.cached, "sent": c.sent, "errors": c.errors}


def score(out: Path, presets: list[str] | None = None, write: bool = True, samples=None) -> Results:
    """Re-score stored generations (no model calls) under the given presets, default all."""
    manifest, records = read_records(out, samples)
    specs = [ProbeSpec.parse(s) for s in manifest.get("probes", [])]
    results = compute(records, presets or default_presets(), seed=manifest.get("seed", 0), probes=specs,
                      probe_preset=manifest.get("default_preset", "strict"))  # fmt: skip
    from medprobe.judge_report import attach

    results = attach(out, records, results, manifest.get("seed", 0))  # judge rows, when judge.sqlite exists
    if write and presets is None:
        from medprobe.report import markdown

        write_json(out / RESULTS, results.model_dump(mode="json"))
        (out / SUMMARY).write_text(markdown(results, manifest), encoding="utf-8")
    return results
