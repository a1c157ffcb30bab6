"""The library calls behind the CLI verbs: run (load -> plan -> execute -> score), score, import."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson
from pydantic import Field

from medprobe import __version__, benchmarks, image_fetch, imaging, scoring
from medprobe.backends import BackendConfig, PermanentError, create
from medprobe.backends.likelihood import check_supported
from medprobe.backends.options import answer_options
from medprobe.benchmarks import LoadOptions
from medprobe.benchmarks._base import Provenance
from medprobe.manifest import (Coverage, ExitCode, Manifest, PromptInfo, RunStatus, as_json, differences,
                               legacy_identity)  # fmt: skip
from medprobe.prompts import PromptTemplate, load_template
from medprobe.runner import Counts, Job, Progress, RunSettings, execute
from medprobe.store import (MANIFEST, RECORDS, RESULTS, SUMMARY, RunStore, StorageError, read_manifest, read_records,
                            write_json, write_text)
from medprobe.live import ScoreCache, ScoringStore, warm_up
from medprobe.types import GenerationConfig, Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from medprobe import probes
    from medprobe.results import Results

# Probes, results and the views import numpy and the report stack (~0.3 s): they are imported where a run
# needs them (deriving probes, concluding), and `live.warm_up` imports them while the first requests are in
# flight, so start-up is only what sending needs (bench/throughput.py; tests/test_startup.py).
IMAGE_CLUSTERS = "image"  # = clusters.DEFAULT (medprobe.clusters imports numpy)


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
    max_errors: str = Field("0", description="--max-errors: errors tolerated before the run counts as partial, "
                            "a count ('5') or a percentage of the planned samples ('2%')")


class PreflightError(ValueError):
    """The run could not start (dead server, refused key, unknown model); nothing was sent."""


def _loop_factory():
    """uvloop where installed (faster HTTP round trips under high concurrency), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _source(provenance: Provenance) -> dict:
    """The data's identity: its content hash when known, else the source with local paths made absolute
    (the same file named by a relative and an absolute path is the same run)."""
    ident = {k: getattr(provenance, k) for k in ("benchmark", "split", "filters", "sha256", "revision")}
    if provenance.sha256 is None:
        path = Path(provenance.source).expanduser()
        ident["source"] = str(path.resolve()) if path.exists() else provenance.source
    return ident


def identity(spec: RunSpec, provenance: Provenance, template: PromptTemplate) -> dict:
    """What makes two runs the same run: everything that changes an answer, nothing that only changes
    how requests are sent (concurrency, timeouts, retries, replicas)."""
    return as_json({
        "benchmark": _source(provenance),
        "model": f"{spec.backend.provider}/{spec.backend.model}",
        "backend_options": answer_options(spec.backend.options),
        "prompt_hash": template.hash,
        "generation": spec.generation.model_dump(),
        "answer_mode": spec.answer_mode,
        "seed": spec.seed,
        "probes": sorted(spec.probes),
        "view": spec.load.view.model_dump() if spec.load.view else None,
        "dicom_tags": sorted(spec.load.dicom_tags),
        "train_split": spec.train_split,
    })  # fmt: skip


def _mismatch(previous: Manifest, current: Manifest) -> list[str]:
    if previous.identity.get("legacy"):  # a schema-1 run: compare what 0.1 compared
        old, new = previous.identity["legacy"], legacy_identity(current.to_json())
    else:
        old, new = previous.identity, current.identity
    return differences(old, new)


def default_presets() -> list[str]:
    """Every preset a run computes unasked: all but the on-request ones (clinical report metrics load models)."""
    return [name for name in scoring.names() if not scoring.get(name).on_request]


def saved_on_request(out: Path | None) -> list[str]:
    """The on-request presets saved in the run folder's results.json (by `medprobe score RUN --preset rexrank`):
    every later scoring of the folder (the run resumed, re-scored) keeps them, so its views keep showing them."""
    try:
        saved = orjson.loads((out / RESULTS).read_bytes()).get("presets", []) if out is not None else []
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return []
    names = [p.get("preset") for p in saved if isinstance(p, dict)]
    return [n for n in names if n in scoring.names() and scoring.get(n).on_request]


def presets_with(out: Path | None, preset: str | None = None) -> list[str]:
    """What scoring a run folder computes: the defaults, the on-request presets saved before, and an
    on-request `preset` asked for now (so results.json keeps holding every preset)."""
    return list(dict.fromkeys([*default_presets(), *saved_on_request(out), *([preset] if preset else [])]))


def run(spec: RunSpec, out: Path, progress: Progress | None = None,
        derive_progress: probes.DeriveProgress | None = None) -> Results:  # fmt: skip
    """Run (or resume) a benchmark on a model into `out`, then score it under every preset; the
    manifest's status says how it ended (`medprobe.manifest.RunStatus`).
    One process writes a run folder at a time: a second one is refused at once (RunLockedError)."""
    from medprobe.runlock import RunLock

    fresh = not out.exists()
    try:
        with RunLock(out):
            return _run(spec, out, progress, derive_progress)
    except BaseException:
        if fresh and out.is_dir() and not (out / MANIFEST).exists():
            shutil.rmtree(out, ignore_errors=True)  # failed before starting: leave no empty run folder behind
        raise


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The garbage collector paused: loading a benchmark and concluding a run make many small objects and no
    cycles worth collecting, so collections would only rescan them (a third of the time; bench/throughput.py)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _run(spec: RunSpec, out: Path, progress: Progress | None = None,
         derive_progress: probes.DeriveProgress | None = None) -> Results:  # fmt: skip
    with _no_collection():
        loaded = benchmarks.load(spec.benchmark, spec.load)
    bench = benchmarks.spec_for(spec.benchmark)
    template = load_template(spec.prompt or (bench.prompt if bench else "default"))
    manifest = Manifest(
        medprobe_version=__version__, command="run", status=RunStatus.RUNNING, created=_now(),
        benchmark=loaded.provenance.model_dump(mode="json"), load_errors=tuple(loaded.errors[:100]),
        load_error_count=len(loaded.errors), default_preset=bench.default_preset if bench else "strict",
        prompt=PromptInfo(name=template.name, hash=template.hash, template=template.model_dump(mode="json")),
        backend=spec.backend.public(), generation=spec.generation.model_dump(mode="json"),
        settings=spec.settings.model_dump(mode="json"), seed=spec.seed, turns=1 + len(template.followups),
        answer_mode=spec.answer_mode, probes=spec.probes, max_errors=spec.max_errors,
        identity=identity(spec, loaded.provenance, template),
    )  # fmt: skip
    # a wrong model spec, a missing API key or an unsupported answer mode fails here, before anything is written
    backend = create(spec.backend)
    check_supported(backend, spec.answer_mode)
    resuming = (out / MANIFEST).is_file()
    if resuming:
        previous = read_manifest(out)
        if diff := _mismatch(previous, manifest):
            raise ValueError(
                f"{out} already holds a different run ({previous.model_name} on "
                f"{previous.benchmark.get('benchmark')}); what differs: {'; '.join(diff)}. "
                "Pass another --out, or delete that folder to start over."
            )
        manifest = manifest.model_copy(update={"created": previous.created or manifest.created, "judge": previous.judge})
    with asyncio.Runner(loop_factory=_loop_factory()) as aio:
        # a resumed run may need no request at all (re-scoring a finished run): there the gate request,
        # sent only when something is missing, is the check
        if not resuming:
            _preflight(aio, backend)
        fetch_failed: tuple[str, ...] = ()
        if spec.settings.fetch_images:  # before deriving probes: blind and corrupt read the images
            fetched, failed = aio.run(image_fetch.prefetch(loaded.samples, out / "image_cache",
                                                           max_bytes=imaging.MAX_FILE_BYTES, timeout_s=30.0,
                                                           concurrency=spec.settings.initial_concurrency))  # fmt: skip
            loaded, fetch_failed = replace(loaded, samples=fetched), tuple(failed)
        derived = _derive_probes(spec, bench, template, loaded.samples, out, derive_progress)
        samples = loaded.samples + derived.samples
        if derived.probes:
            manifest = manifest.model_copy(update={"probes": derived.probes, "probe_skipped": derived.skipped[:100],
                                                   "probe_skipped_count": len(derived.skipped)})
        if fetch_failed:
            manifest = manifest.model_copy(update={"images_not_fetched": fetch_failed[:100],
                                                   "images_not_fetched_count": len(fetch_failed)})
        # a damaged records.sqlite fails here, before the manifest says running; answers are scored as they come
        scored = ScoreCache()
        store = ScoringStore(out / RECORDS, samples, 1 + len(template.followups), scored)
        try:
            write_json(out / MANIFEST, manifest.to_json())
            store.put_samples(samples)
            job = Job(samples=samples, template=template, model=f"{spec.backend.provider}/{spec.backend.model}",
                      config=spec.generation, answer_mode=spec.answer_mode,
                      options=answer_options(spec.backend.options))  # fmt: skip
            counts = aio.run(_execute(spec, bench, job, store, progress, backend))
        except BaseException as exc:
            reason = ("interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
                      if isinstance(exc, StorageError) else f"{type(exc).__name__}: {exc}")  # fmt: skip
            _finish_anyway(out, manifest.model_copy(update={"status": RunStatus.INTERRUPTED, "finished": _now(),
                                                            "stop_reason": reason[:500]}))  # fmt: skip
            store.close()
            raise
        store.close()
    manifest, results = conclude(out, manifest, counts, samples, store.written, scored)
    return results


def _preflight(aio: asyncio.Runner, backend) -> None:
    """The backend's own check of endpoint, key and model (seconds), before anything is written."""
    check = getattr(backend, "preflight", None)
    if check is None:
        return
    try:
        aio.run(check())
    except PermanentError as exc:
        aio.run(backend.aclose())
        raise PreflightError(str(exc)) from None


def conclude(out: Path, manifest: Manifest, counts: Counts, samples: list, written: dict | None = None,
             scored: ScoreCache | None = None) -> tuple[Manifest, Results]:
    """Score what is stored, decide the status from the coverage, and write manifest, results and summary.
    `written` (the run store's) and `scored` (its ScoreCache) spare re-parsing and re-scoring what this
    process stored and scored already; the records read back stay the source of truth."""
    with _no_collection():
        records = read_records(out, samples, written)[1]
        results = compute_results(manifest, records, scored=scored.score if scored is not None else None, out=out)
    coverage = results.coverage
    assert coverage is not None
    status, stopped_by, reason = _status(counts, coverage, manifest.max_errors)
    execution = counts.execution()  # counts, and the concurrency level over the run
    manifest = manifest.model_copy(update={"status": status, "stopped_by": stopped_by, "stop_reason": reason,
                                           "finished": _now(), "last_execution": execution, "coverage": coverage,
                                           "usage": counts.usage_report(records)})
    _finish(out, manifest)
    write_results(out, manifest, results, records, scored.score if scored is not None else None)
    return manifest, results


def _finish(out: Path, manifest: Manifest) -> None:
    write_json(out / MANIFEST, manifest.to_json())


def _finish_anyway(out: Path, manifest: Manifest) -> None:
    """Record how a failed run ended without hiding why it failed. On a full disk the atomic write
    (a new file, then a rename) has no room; rewriting the old manifest in place reuses its own blocks."""
    try:
        _finish(out, manifest)
    except StorageError as exc:
        if exc.kind != "full":
            return
        data = orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        path = out / MANIFEST
        try:
            # only within the blocks the file already holds: a write that needs a new block could stop
            # half-way and leave a manifest that no longer parses
            if len(data) <= os.stat(path).st_blocks * 512:
                with open(path, "r+b") as f:
                    f.write(data)
                    f.truncate(len(data))
        except OSError:
            pass  # nothing more can be written; the message the user sees says what is safe


def tolerated(errors: int, planned: int, max_errors: str | None) -> bool:
    """`--max-errors`: a count ('5') or a percentage of the planned samples ('2%'); default 0."""
    text = (max_errors or "0").strip()
    if text.endswith("%"):
        return planned > 0 and 100.0 * errors / planned <= float(text[:-1])
    return errors <= int(text)


def parse_max_errors(text: str) -> str:
    """Check --max-errors early, with a message that shows the two accepted forms."""
    body = text.strip().removesuffix("%")
    try:
        value = float(body) if text.strip().endswith("%") else int(body)
    except ValueError:
        raise ValueError(f"--max-errors takes a count (5) or a percentage (2%); got {text!r}") from None
    if value < 0:
        raise ValueError(f"--max-errors cannot be negative; got {text!r}")
    return text.strip()


def _status(counts: Counts, coverage: Coverage, max_errors: str | None) -> tuple[RunStatus, str | None, str | None]:
    if counts.gate_failed:
        return RunStatus.FAILED, None, counts.stopped
    if counts.stopped:
        return RunStatus.STOPPED, counts.stopped_by, counts.stopped
    errors = coverage.errors + coverage.variants_failed
    if errors == 0:
        return RunStatus.COMPLETE, None, None
    planned = coverage.samples + coverage.variants
    if tolerated(errors, planned, max_errors):
        return RunStatus.COMPLETE, None, f"{errors} of {planned} samples ended in errors, within --max-errors {max_errors}"
    return RunStatus.PARTIAL, None, (f"{errors} of {planned} samples ended in errors; --max-errors N or P% sets how "
                                     f"many a run may have (now {max_errors or 0})")


def exit_code(manifest: Manifest) -> ExitCode:
    """The process exit code for a finished `medprobe run` (README: exit codes)."""
    return {
        RunStatus.COMPLETE: ExitCode.OK,
        RunStatus.PARTIAL: ExitCode.ERRORS,
        RunStatus.FAILED: ExitCode.FAILED,
        RunStatus.STOPPED: ExitCode.BUDGET if manifest.stopped_by == "budget" else ExitCode.STOPPED,
        RunStatus.INTERRUPTED: ExitCode.INTERRUPTED,
        RunStatus.RUNNING: ExitCode.INTERNAL,
    }[manifest.status]


@dataclass(frozen=True)
class Derived:
    samples: list = field(default_factory=list)
    probes: tuple[str, ...] = ()  # the specs, normalised
    skipped: tuple[str, ...] = ()  # parents no variant could be derived from, with why


def _derive_probes(spec: RunSpec, bench, template: PromptTemplate, samples: list, out: Path,
                   progress: probes.DeriveProgress | None = None) -> Derived:  # fmt: skip
    """Probe variants of the clean samples (run beside them, same cache)."""
    if not spec.probes:
        return Derived()
    from medprobe import probes

    specs = probes.parse(spec.probes)
    train = []
    if any(s.name in probes.NEEDS_TRAIN for s in specs):
        split = spec.train_split or (bench.train_split if bench else None)
        if split and split != spec.load.split:
            train = benchmarks.load(spec.benchmark, spec.load.model_copy(update={"split": split, "limit": None})).samples
    made = probes.derive(specs, samples, seed=spec.seed, template=template, train=train,
                         allow_outside_root=spec.settings.allow_outside_root,
                         image_dir=str((out / "probe_images").resolve()), progress=progress)  # fmt: skip
    return Derived(samples=list(made.samples), probes=tuple(str(s) for s in specs), skipped=made.skipped)


async def _execute(spec: RunSpec, bench, job: Job, store: RunStore, progress: Progress | None, backend) -> Counts:
    try:
        if hasattr(backend, "bind"):
            train = None
            if getattr(backend, "needs_train", False):
                split = spec.train_split or (bench.train_split if bench else None)
                if split:
                    train = benchmarks.load(spec.benchmark, spec.load.model_copy(update={"split": split, "limit": None})).samples
            backend.bind(job.samples, train)
        warm_up()  # the end-of-run modules import while the first requests are in flight
        return await execute(job, backend, store, spec.settings, progress)
    finally:
        await backend.aclose()


def compute_results(manifest: Manifest, records: list, presets: list[str] | None = None,
                    cluster: str | None = IMAGE_CLUSTERS, scored=None, out: Path | None = None) -> Results:  # fmt: skip
    """Every preset, probe, calibration and judge row of stored records, with the run's coverage;
    intervals resample `cluster` (medprobe.clusters: the image by default, a metadata column, or none).
    `scored(preset, record)`: scores computed already (medprobe.results.compute). No `presets`: the
    defaults and the on-request presets saved in `out` (the run folder)."""
    from medprobe.probes import ProbeSpec
    from medprobe.results import compute

    specs = [ProbeSpec.parse(s) for s in manifest.probes]
    rows = manifest.benchmark.get("rows")
    presets = presets or presets_with(out)
    return compute(records, presets, seed=manifest.seed, probes=specs,
                   probe_preset=manifest.default_preset, load_errors=manifest.load_errors,
                   load_error_count=manifest.load_error_count,
                   rows=None if rows is None else int(rows) + manifest.load_error_count, cluster=cluster,
                   scored=scored)  # fmt: skip


def write_results(out: Path, manifest: Manifest, results: Results, records: list | None = None,
                  scored=None) -> None:  # fmt: skip
    """results.json and summary.md into `out` (the run folder, or `score --out`); StorageError when
    the folder cannot be written. `records` let summary.md's verdicts read per-answer figures, and in
    the run folder each record's outcome is kept in outcomes.json (`scored`: as `compute_results`)."""
    from medprobe import outcomes
    from medprobe.summary import markdown

    write_json(out / RESULTS, results.model_dump(mode="json"))
    write_text(out / SUMMARY, markdown(results, manifest, records=records or ()))
    if records and (out / RECORDS).is_file():
        table = outcomes.table(records, [p.preset for p in results.presets], manifest.default_preset, scored)
        store = RunStore(out / RECORDS, read_only=True)
        try:
            fingerprint = store.fingerprint()
        finally:
            store.close()
        try:
            outcomes.write(out, table, fingerprint)
        except StorageError:  # a cache: results.json stands; readers score the records themselves
            with contextlib.suppress(OSError):
                (out / outcomes.FILE).unlink(missing_ok=True)


def score(out: Path, presets: list[str] | None = None, write: bool = True, samples=None,
          cluster: str | None = IMAGE_CLUSTERS) -> Results:  # fmt: skip
    """Re-score stored generations (no model calls) under the given presets, default all; intervals
    resample `cluster` (`--cluster-key`: image by default, a metadata column, or none)."""
    manifest, records, results = rescore(out, presets, samples, cluster)
    if write and presets is None:
        write_results(out, manifest, results, records)
    return results


def rescore(out: Path, presets: list[str] | None = None, samples=None,
            cluster: str | None = IMAGE_CLUSTERS) -> tuple[Manifest, list, Results]:  # fmt: skip
    """The manifest, the records and their results, nothing written (`score` writes them)."""
    from medprobe.judge_report import attach

    manifest, records = read_records(out, samples)
    results = compute_results(manifest, records, presets, cluster, out=out)
    return manifest, records, attach(out, records, results, manifest.seed, cluster)  # judge rows, if judged
