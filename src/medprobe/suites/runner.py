"""Run a suite: each distinct run of its entries goes into its own sub-folder, an ordinary run folder
made by `medprobe.pipeline.run` (so re-running the suite resumes every run, as `medprobe run` does);
then one combined result, `suite.json`, with each entry's headline, status and the paper's average.

An entry that cannot run (its dataset is missing, its server refused) is that entry's status, not
the end of the suite. Only what every later entry would hit too stops the rest: a backend that
fails its preflight check, a storage error, Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


from medprobe import benchmarks, scoring
from medprobe.dataset_facts import FACTS, locate
from medprobe.hub_reach import unreachable
from medprobe.manifest import ExitCode
from medprobe.metrics import Metric
from medprobe.pipeline import PreflightError, RunSpec, exit_code
from medprobe.pipeline import run as run_pipeline
from medprobe.prompts import load_template
from medprobe.runner import Progress
from medprobe.store import StorageError, read_manifest, write_json, write_text
from medprobe.suites.model import Suite, SuiteEntry, SuiteError
from medprobe.suites.result import NOT_RUN, SUITE_JSON, SUITE_MD, EntryResult, SuiteAverage, SuiteResult
from medprobe.suites.summary import markdown

#: how bad an entry's exit code is, mildest first: the suite exits with its worst entry's code. A run
#: that could not start (2) is worse than one that ran part of its questions (3, 4, 5).
SEVERITY = (ExitCode.OK, ExitCode.ERRORS, ExitCode.STOPPED, ExitCode.BUDGET, ExitCode.FAILED, ExitCode.STORAGE,
            ExitCode.INTERNAL, ExitCode.INTERRUPTED)  # fmt: skip
Z95 = 1.959963984540054


@dataclass
class Hooks:
    """What the caller sees while a suite runs (the CLI's progress bars and lines)."""

    start: Callable[[str, int, int], Progress | None] = lambda run, i, n: None
    done: Callable[[str, list[EntryResult]], None] = lambda run, entries: None


@dataclass
class _Outcome:
    status: str
    code: ExitCode
    reason: str | None = None
    results: object = None  # medprobe.results.Results when the run finished
    default_preset: str | None = None
    data: str | None = None
    stop: str | None = None  # set: later runs are not started, for this reason


def validate(suite: Suite, base_dir: Path | None = None) -> None:
    """Refuse at start, naming every entry that names an unknown benchmark, split, preset or prompt."""
    problems = []
    known = benchmarks.names()
    for i, e in enumerate(suite.entries, 1):
        where = f"entry {i} ({e.title})"
        if e.benchmark not in known:
            problems.append(f"{where}: unknown benchmark {e.benchmark!r} (known: {', '.join(known)})")
            continue
        spec = benchmarks.get(e.benchmark)
        if e.split and e.split not in spec.splits:
            problems.append(f"{where}: {e.benchmark} has no split {e.split!r} (splits: {', '.join(spec.splits)})")
        preset = e.preset or spec.default_preset
        try:
            only = scoring.get(preset).benchmarks
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
        else:
            if only and e.benchmark not in only:
                problems.append(f"{where}: preset {preset!r} scores {', '.join(only)} only, not {e.benchmark}")
        if e.prompt:
            try:
                load_template(_relative(e.prompt, base_dir))
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        if e.file and not e.data and e.benchmark not in FACTS:
            problems.append(f"{where}: `file` needs the benchmark's folder under --data-root, and medprobe knows "
                            f"no folder for {e.benchmark}; give `data` instead")
    if problems:
        raise SuiteError(f"suite {suite.name} cannot run:\n  " + "\n  ".join(problems))


def run_suite(suite: Suite, base: RunSpec, out: Path, data_root: Path | None = None,
              hooks: Hooks | None = None) -> SuiteResult:  # fmt: skip
    """Run every entry of `suite` with `base` (model, generation and transport settings) into
    `out/<run>`, writing `out/suite.json` after each run; returns the combined result."""
    hooks = hooks or Hooks()
    base_dir = _suite_dir(suite)
    validate(suite, base_dir)
    runs: dict[str, list[int]] = {}  # run folder -> the entries (their positions) that read it
    for i, e in enumerate(suite.entries):
        runs.setdefault(e.folder, []).append(i)
    created = _now()
    done: dict[int, EntryResult] = {}
    stop: str | None = None
    try:
        for n, (folder, members) in enumerate(runs.items(), 1):
            if stop:
                outcome = _Outcome(NOT_RUN, ExitCode.FAILED, f"not started: {stop}")
            else:
                first = suite.entries[members[0]]
                outcome = _run_one(first, base, out / folder, base_dir, data_root, hooks.start(folder, n, len(runs)))
                stop = outcome.stop
            done.update({i: _entry_result(suite.entries[i], folder, outcome) for i in members})
            hooks.done(folder, [done[i] for i in members])
            _write(out, _result(suite, base, created, None, data_root, done))
    except KeyboardInterrupt:
        cut = _Outcome("interrupted", ExitCode.INTERRUPTED, "interrupted (Ctrl-C); re-run to resume")
        for i, e in enumerate(suite.entries):
            done.setdefault(i, _entry_result(e, e.folder, cut))
        _write(out, _result(suite, base, created, _now(), data_root, done), quiet=True)
        raise
    result = _result(suite, base, created, _now(), data_root, done)
    _write(out, result)
    return result


def _run_one(entry: SuiteEntry, base: RunSpec, folder: Path, base_dir: Path | None, data_root: Path | None,
             progress: Progress | None) -> _Outcome:  # fmt: skip
    data, images, hint = None, None, ""
    try:
        data, images, hint = _data(entry, base_dir, data_root)
        prompt = _relative(entry.prompt, base_dir) if entry.prompt else ""
        load = base.load.model_copy(update={"split": entry.split, "data": data, "images_dir": images})
        spec = base.model_copy(update={"benchmark": entry.benchmark, "prompt": prompt, "load": load})
        results = run_pipeline(spec, folder, progress=progress)
    except PreflightError as exc:
        why = f"the backend failed its preflight check: {exc}"
        return _Outcome("failed", ExitCode.FAILED, why, data=data, stop=why)
    except StorageError as exc:
        return _Outcome("failed", ExitCode.STORAGE, str(exc), data=data, stop=f"storage error in {folder}")
    except (ValueError, FileNotFoundError) as exc:  # a missing dataset, a folder holding another run, ...
        return _Outcome("failed", ExitCode.FAILED, f"{exc}{hint}", data=data)
    except Exception as exc:  # a bug in one benchmark's loader must not lose the other entries (Ctrl-C is no Exception)
        return _Outcome("failed", ExitCode.INTERNAL, f"internal error (please report it): {type(exc).__name__}: {exc}",
                        data=data)  # fmt: skip
    manifest = read_manifest(folder)
    return _Outcome(str(manifest.status), exit_code(manifest), manifest.stop_reason, results,
                    manifest.default_preset, data)  # fmt: skip


def _data(entry: SuiteEntry, base_dir: Path | None, data_root: Path | None) -> tuple[str | None, str | None, str]:
    """(--data, --images-dir, a hint for the failure message) of one entry."""
    images = _relative(entry.images_dir, base_dir) if entry.images_dir else None
    if entry.data:
        data = _relative(entry.data, base_dir)
        return (str(Path(data) / entry.file) if entry.file else _from_hub(entry, data, None)), images, ""
    if data_root is None:
        if entry.file:
            raise SuiteError(f"the entry reads the file {entry.file!r} of {entry.benchmark}'s folder: pass "
                             "--data-root (the folder holding it), or give the entry `data`")
        return _from_hub(entry, None, None), images, ""
    located = locate(entry.benchmark, data_root)
    row = FACTS.get(entry.benchmark)
    if located is None and entry.file:
        raise SuiteError(f"the entry reads {entry.file!r} inside {row.folder if row else entry.benchmark}/ under "
                         f"--data-root {data_root}, which has no such folder")
    if located is None:
        hint = (f" (no {row.folder} folder under --data-root {data_root}; `medprobe data get {entry.benchmark} "
                f"--to {data_root}` fetches it)") if row and row.folder else ""
        return _from_hub(entry, None, data_root), images, hint
    data = str(Path(located.folder) / entry.file) if entry.file else located.data
    return data, images or located.images_dir, ""


def _from_hub(entry: SuiteEntry, data: str | None, data_root: Path | None) -> str | None:
    """`data` when the entry may load it; refused at once (SuiteError) when it would come from the hub
    and the hub cannot be reached, so an offline machine does not wait out the hub's timeouts per entry."""
    row = FACTS.get(entry.benchmark)
    if data is None:
        repo = row.hub.repo_id if row and row.hub else None
    else:
        repo = data if data.count("/") == 1 and not Path(data).expanduser().exists() else None
    why = unreachable(repo) if repo else None
    if why is None:
        return data
    folder = row.folder if row and row.folder else entry.benchmark
    where = f"no {folder} folder under --data-root {data_root}" if data_root else "no --data-root given"
    raise SuiteError(f"{entry.benchmark}: {where}, and the hub cannot be reached ({why}). Fetch it on a machine "
                     f"with network (`medprobe data get {entry.benchmark} --to {data_root or 'DIR'}`) and copy it "
                     f"here, or pass --data-root DIR holding {folder}/ (or give the entry `data`).")


def _relative(value: str, base_dir: Path | None) -> str:
    """A path in a suite file is relative to the file; anything else (a hub id, a name) stays as written."""
    if base_dir is not None and not Path(value).expanduser().is_absolute() and (base_dir / value).exists():
        return str(base_dir / value)
    return value


def _suite_dir(suite: Suite) -> Path | None:
    path = Path(suite.path) if suite.path else None
    return path.parent if path is not None and path.is_file() else None


def _entry_result(entry: SuiteEntry, folder: str, outcome: _Outcome) -> EntryResult:
    preset = entry.preset or outcome.default_preset or _default_preset(entry.benchmark)
    headline, reason, code = None, outcome.reason, outcome.code
    if outcome.results is not None:
        headline, missing = _headline(outcome.results, preset, entry)
        if missing:
            reason = f"{missing}; {reason}" if reason else missing
            code = max(code, ExitCode.FAILED, key=SEVERITY.index)
    return EntryResult(label=entry.title, benchmark=entry.benchmark, split=entry.split, preset=preset,
                       subset=entry.subset, metric=headline.metric if headline else entry.metric, run=folder,
                       status=outcome.status, exit_code=int(code), reason=reason, headline=headline,
                       in_average=entry.in_average, data=outcome.data, source=entry.source,
                       differs=entry.differs)  # fmt: skip


def _default_preset(benchmark: str) -> str:
    return benchmarks.get(benchmark).default_preset if benchmark in benchmarks.names() else "strict"


def _headline(results, preset: str, entry: SuiteEntry) -> tuple[Metric | None, str | None]:
    try:
        rows = results.preset(preset)
    except KeyError:
        return None, f"preset {preset!r} has no rows for {entry.benchmark} (it scores other benchmarks only)"
    if not rows.metrics:
        return None, "no answered sample to score (see the run's summary.md for its errors)"
    try:
        return rows.get(entry.subset, entry.metric), None
    except KeyError:
        have = ", ".join(dict.fromkeys(f"{m.subset}/{m.metric}" for m in rows.metrics if "=" not in m.subset))
        return None, (f"preset {preset} has no {entry.subset}/{entry.metric or '*'} row for this run (rows: {have}); "
                      "set the entry's subset and metric to one of them")


def average(suite: Suite, entries: list[EntryResult]) -> SuiteAverage | None:
    """The paper's average: the unweighted mean of the entries' headlines (`average = "mean"`). Its
    interval treats the entries as independent (different questions): the variance of the mean is
    the sum of each entry's variance, read from its bootstrap interval, over k^2."""
    if suite.average == "none":
        return None
    counted = [e for e in entries if e.in_average]
    have = [e.headline for e in counted if e.headline is not None]
    missing = tuple(e.label for e in counted if e.headline is None)
    method = f"unweighted mean of the {len(counted)} entries' headline values"
    if not have:
        return SuiteAverage(label=suite.average_label, method=method, value=None, n=0, missing=missing)
    mean = sum(m.value for m in have) / len(have)
    se = math.sqrt(sum(((m.ci_high - m.ci_low) / (2 * Z95)) ** 2 for m in have)) / len(have)
    if missing:
        return SuiteAverage(label=suite.average_label, method=method, value=None, n=len(have), missing=missing,
                            partial_value=mean)  # fmt: skip
    return SuiteAverage(label=suite.average_label, method=method, value=mean, ci_low=max(0.0, mean - Z95 * se),
                        ci_high=min(1.0, mean + Z95 * se), n=len(have))  # fmt: skip


def _result(suite: Suite, base: RunSpec, created: str, finished: str | None, data_root: Path | None,
            done: dict[int, EntryResult]) -> SuiteResult:  # fmt: skip
    """The suite's result so far, its entries in the suite file's order."""
    entries = [done[i] for i in sorted(done)]
    worst = max((ExitCode(e.exit_code) for e in entries), key=SEVERITY.index, default=ExitCode.OK)
    status = "complete" if worst is ExitCode.OK else next(e.status for e in entries if e.exit_code == worst)
    return SuiteResult(suite=suite, model=f"{base.backend.provider}/{base.backend.model}", status=status,
                       exit_code=int(worst), created=created, finished=finished,
                       data_root=str(data_root) if data_root else None, entries=tuple(entries),
                       average=average(suite, entries) if finished else None)  # fmt: skip


def _write(out: Path, result: SuiteResult, quiet: bool = False) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / SUITE_JSON, result.model_dump(mode="json"))
        if result.finished:
            write_text(out / SUITE_MD, markdown(result))
    except (StorageError, OSError):
        if not quiet:
            raise


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
