"""`medprobe report RUN [RUN ...] --out DIR`: one HTML page (DIR/index.html) with its assets beside it.

The page opens from disk with no network request at all: styles, script, plots, thumbnails and sample
data are files in DIR, referenced by relative paths (hospital machines are often offline). Runs of one
benchmark and split share a section (headlines side by side, paired comparisons, the same sample
across models); runs of other benchmarks get sections of their own.

Layout of DIR: index.html, assets/ (report.css, report.js), plots/ (every plot as SVG and PNG),
thumbs/ (one JPEG per image content hash), data/ (the sample browser's script files).
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import Field, TypeAdapter

from medprobe import __version__, scoring, verdicts
from medprobe.compare_report import headline_diff
from medprobe.figures import (
    Paired,
    RunFigures,
    paired_figures,
    run_figures,
)
from medprobe.probes._base import COUNT_DETAILS, ProbeMetric, ProbeResult
from medprobe.runs import Run
from medprobe.runs import load as load_run
from medprobe.store import MANIFEST
from medprobe.types import Frozen
from medprobe.verdicts import Verdict
from medprobe.views import browser, plots, reuse, studies, suite_table
from medprobe.views.thumbs import Thumbnails

OWN_FOLDERS = ("assets", "plots", "data")  # rewritten on every write (thumbs/ is kept and reused)
MARKER = ".medprobe-report"

#: plot name -> (title, caption); the caption names the interval each plot shows
PLOT_TEXT = {
    "reliability": ("Reliability diagram", ("Accuracy in each of 10 equal-width confidence bins (bars) against mean "
                    "confidence (dots) and the diagonal; below, the share of answers per bin. Correct = the preset's "
                    "outcome is correct; an invalid answer with a confidence counts as wrong.")),
    "risk_coverage": ("Risk-coverage curve", ("Error rate among the answers kept when the model answers only above a "
                      "confidence threshold (most confident first). Lower is better; AURC is the area under it.")),
    "corruption": ("Accuracy against corruption severity", ("Accuracy on corrupted copies of each image at every "
                   "severity tested; 'clean' is the same samples unperturbed. Bars: 95% bootstrap intervals.")),
    "gaps": ("Probe gaps", ("Paired differences (clean minus probed, per sample) with 95% paired bootstrap intervals. "
             "A gap whose interval contains 0 is indistinguishable from no effect.")),
    "subgroups": ("Subgroups", ("Headline metric per subgroup with its 95% interval (the interval method of "
                  "results.json); dashed line: overall. Keys with one value are left out.")),
    "paired": ("Paired differences", ("Accuracy difference on the items both runs answered, with the paired 95% "
               "interval and the exact McNemar p-value.")),
}  # fmt: skip


class ReportSummary(Frozen):
    """What `write_report` wrote."""

    index: str = Field(description="path of index.html")
    sections: int
    runs: int
    samples: int = Field(description="clean samples in the browser (all sections)")
    variants: int = Field(description="probe variants shown beside their parents")
    thumbnails: int = Field(description="distinct images shown")
    thumbnails_made: int
    thumbnails_reused: int = Field(description="already in DIR/thumbs from an earlier write")
    seconds: float
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per step of the write")


@dataclass
class PlotView:
    name: str
    anchor: str
    title: str
    caption: str
    svg: str
    png: str


@dataclass
class ProbeRow:
    """One probe figure across the runs of a section: a ProbeMetric per run, or why it is missing there."""

    probe: str
    name: str
    detail: str
    cells: list[ProbeMetric | str]


@dataclass
class SectionView:
    key: str
    benchmark: str
    split: str
    figures: list[RunFigures]
    verdicts: list[Verdict]
    pairs: list[Paired]
    plots: list[PlotView]
    names: list[str]
    probe_rows: list[ProbeRow]
    presets: list[str]
    data: list[str] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)
    #: the study view's data script (report runs only: medprobe.views.studies)
    studies: str | None = None

    def by_run(self) -> list[tuple[str, list[Verdict]]]:
        """Verdicts grouped by the run they are about (comparisons last)."""
        groups = [(n, [v for v in self.verdicts if v.run == f.label]) for n, f in zip(self.names, self.figures)]
        pairs = [v for v in self.verdicts if v.run is None]
        return [g for g in groups if g[1]] + ([("comparisons", pairs)] if pairs else [])

    def link(self, v: Verdict) -> str | None:
        """The anchor of the figure a verdict is read from (None when the figure is not on the page)."""
        anchor = f"{self.key}-{v.figure}"
        return anchor if anchor in self.anchors else None


def _sections(runs: Sequence[Run]) -> list[list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.benchmark, r.split), []).append(r)
    return list(groups.values())


def short_names(figs: Sequence[RunFigures]) -> list[str]:
    """Column names for the runs of a section: the model labels without the path parts they all share
    (openai/medgemma-4b, openai/lingshu-7b -> medgemma-4b, lingshu-7b), plus the run folder when one model
    appears twice (two prompts, two settings)."""
    labels = [f.label for f in figs]
    parts = [label.split("/") for label in labels]
    k = 0
    while len(labels) > 1 and all(len(p) > k + 1 for p in parts) and len({p[k] for p in parts}) == 1:
        k += 1
    names = ["/".join(p[k:]) for p in parts]
    if len(set(names)) < len(names):
        names = [f"{n} ({Path(f.run_dir).name})" for n, f in zip(names, figs)]
    return names


def probe_rows(results: Sequence[tuple[ProbeResult, ...]]) -> list[ProbeRow]:
    """Every probe headline figure of a section, one row per (probe, figure, detail), one cell per run."""
    rows: dict[tuple, ProbeRow] = {}
    for j, probes in enumerate(results):
        for p in probes:
            metrics = p.headline if p.ran else ()
            if not p.ran:
                key = (p.probe, "did not run", "")
                row = rows.setdefault(key, ProbeRow(p.probe, "did not run", "", [""] * len(results)))
                row.cells[j] = p.note or "the probe did not apply"
            for m in metrics:
                detail = ", ".join(f"{k}={v}" for k, v in m.detail.items() if k not in COUNT_DETAILS)
                key = (p.probe, m.name, detail)
                row = rows.setdefault(key, ProbeRow(p.probe, m.name.replace("_", " "), detail, ["not run"] * len(results)))
                row.cells[j] = m
    return list(rows.values())


def _presets(runs: Sequence[Run]) -> list[str]:
    """The rule presets of the runs' results (the browser's outcome columns; a judge's rows are not one)."""
    return list(dict.fromkeys(p.preset for r in runs for p in r.scored().presets if scoring.known(p.preset)))


PLOT_NAMES = (*plots.PLOTS, "paired")


def draw_plot(name: str, key: str, figs: list[RunFigures], pairs: list[Paired], folder: Path) -> PlotView | None:
    """One plot of a section, written as SVG and PNG; None when its figures are absent. Each plot is a job
    of its own in the worker pool: drawing (text layout above all) is most of a small report's time."""
    fig = plots.paired(pairs) if name == "paired" else plots.PLOTS[name](figs)
    if fig is None:
        return None
    svg, png = plots.save(fig, folder, f"{key}-{name}")
    title, caption = PLOT_TEXT[name]
    return PlotView(name=name, anchor=f"{key}-{name}", title=title, caption=caption, svg=f"{folder.name}/{svg}",
                    png=f"{folder.name}/{png}")  # fmt: skip


def _warm_up() -> None:
    """Import the plotting and imaging libraries in a worker while the parent reads the runs."""
    import PIL.Image  # noqa: F401 (thumbnails)

    plots.warm_up()


class _Inline:
    """Stands in for a process pool where fork is not available: runs each job at once."""

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        try:
            done.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 (raised again by .result(), as a pool would)
            done.set_exception(exc)
        return done

    def map(self, fn, jobs, chunksize=1):
        return map(fn, jobs)

    def shutdown(self) -> None:
        pass


def _pool(workers: int | None):
    """Worker processes for plots and thumbnails. Forked, so they inherit the loaded modules instead of
    importing them again; only on Linux (fork is unsafe on macOS and absent on Windows: one process there)."""
    from multiprocessing import get_context

    workers = workers or min(8, os.cpu_count() or 1)
    if workers < 2 or not sys.platform.startswith("linux"):
        return _Inline()
    pool = ProcessPoolExecutor(workers, mp_context=get_context("fork"))
    for _ in range(workers):  # forks every worker now, while this process is small, and warms each up
        pool.submit(_warm_up)
    return pool


def _prepare(out: Path) -> None:
    """Make `out` ready: new, empty, or an earlier report (whose own folders are cleared; thumbs/ is kept).
    Anything else is refused, so a mistyped --out never clears someone's data/ folder."""
    if (out / MANIFEST).is_file():
        raise ValueError(f"--out {out} is a run folder (it holds {MANIFEST}); pass another folder for the report, "
                         "e.g. --out reports/NAME.")  # fmt: skip
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ValueError(f"--out {out} is not empty and holds no medprobe report; pass a new or empty folder, "
                         "e.g. --out reports/NAME.")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for name in OWN_FOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    (out / MARKER).write_text("written by `medprobe report`; writing a report here again replaces it\n")
    _copy_assets(out)


def _copy_assets(out: Path) -> None:
    (out / "assets").mkdir(exist_ok=True)
    static = resources.files("medprobe.views") / "static"
    for item in static.iterdir():
        if item.name.endswith((".css", ".js")):
            (out / "assets" / item.name).write_bytes(item.read_bytes())


def write_report(run_dirs: Sequence[Path], out: Path, preset: str | None = None, allow_outside_root: bool = False,
                 workers: int | None = None) -> ReportSummary:  # fmt: skip
    """Read the runs, write DIR/index.html and its assets. `preset`: the headline preset of every run
    (default: each run's benchmark default); `workers`: processes drawing plots and thumbnails (default:
    the cores, at most 8; 1 draws everything in this process)."""
    start = time.perf_counter()
    if not run_dirs:
        raise ValueError("medprobe report needs at least one run folder.")
    with _no_gc():
        return _write(run_dirs, Path(out), preset, allow_outside_root, workers, start)


@contextmanager
def _no_gc():
    """The cycle collector off while the runs are in memory: a 10,000-sample run with probes is ~200,000
    frozen records, which hold no cycles, and every collection would walk all of them (it halves load time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass
class _Page:
    """What index.html is rendered from: saved after a full write, so writing again over unchanged inputs
    renders the page from it (medprobe.views.reuse)."""

    views: list[SectionView]
    runs: list[Run]
    summary: ReportSummary


@cache
def _page_json() -> TypeAdapter[_Page]:
    return TypeAdapter(_Page)  # built on first use: its schema spans results.json's types


def _write(run_dirs: Sequence[Path], out: Path, preset: str | None, allow_outside_root: bool, workers: int | None,
           start: float) -> ReportSummary:  # fmt: skip
    clock = _Clock(start)
    inputs = reuse.fingerprint(run_dirs, (preset, allow_outside_root))
    saved = reuse.load(out, inputs) if (out / MARKER).is_file() and not (out / MANIFEST).is_file() else None
    if saved is not None:
        return _write_page_again(out, _page_json().validate_json(saved), clock)
    reuse.forget(out)
    pool = _pool(workers)
    try:
        runs = [load_run(Path(d), scored=True) for d in run_dirs]
        for r in runs:
            r.variant_rows  # noqa: B018 (read now, with the clean records: every step below passes over them)
        clock.lap("read runs")
        _prepare(out)
        thumbs = Thumbnails(out, allow_outside_root)
        views, data, drawing, study_views = [], [], [], []
        for k, group in enumerate(_sections(runs)):
            key = f"s{k}"
            figs = [run_figures(r, preset) for r in group]
            pairs = paired_figures(group, preset) if len(group) > 1 else []
            found = [v for f in figs for v in verdicts.for_run(f)] + verdicts.for_pairs(pairs)
            clock.lap("figures and verdicts")
            names = short_names(figs)
            # plot legends use the short names
            named = [f.model_copy(update={"label": n}) for f, n in zip(figs, names)]
            order = [(i, j) for i in range(len(figs)) for j in range(i + 1, len(figs))]  # paired_figures' order
            named_pairs = [p.model_copy(update={"run_a": names[i], "run_b": names[j]}) for p, (i, j) in zip(pairs, order)]
            drawing.append([pool.submit(draw_plot, name, key, named, named_pairs, out / "plots") for name in PLOT_NAMES])
            views.append(SectionView(key=key, benchmark=figs[0].benchmark, split=figs[0].split, figures=figs,
                                     verdicts=found, pairs=pairs, plots=[], names=names,
                                     probe_rows=probe_rows([f.probes for f in figs]), presets=_presets(group)))  # fmt: skip
            data.append(browser.build(key, group, views[-1].presets, thumbs, names, pool))
            study_views.append(studies.build(key, group, [f.preset for f in figs], thumbs, names))
            clock.lap("sample browser")
        thumbs.write(pool)
        clock.lap("thumbnails")
        for view, sec in zip(views, data):
            browser.resolve_thumbnails(sec, thumbs)
            view.data = browser.write(sec, out / "data")
        for view, study_view in zip(views, study_views):
            view.studies = None if study_view is None else studies.write(study_view, thumbs, out / "data")
        clock.lap("browser data files")
        for view, plotted in zip(views, drawing):
            view.plots = [v for job in plotted if (v := job.result()) is not None]
            view.anchors = {p.anchor for p in view.plots} | {f"{view.key}-{a}" for a in ("health", "headline", "probes")}
        clock.lap("plots (waited for)")
    finally:
        pool.shutdown()
    (out / "index.html").write_text(_render(views, runs), encoding="utf-8")
    clock.lap("page")
    summary = ReportSummary(
        index=str(out / "index.html"), sections=len(views), runs=len(runs), samples=sum(len(s.rows) for s in data),
        variants=sum(len(d["vars"]) for s in data for d in s.details), thumbnails=len(thumbs._wanted),
        thumbnails_made=thumbs.made, thumbnails_reused=thumbs.reused, seconds=round(time.perf_counter() - start, 3),
        timings=clock.laps,
    )  # fmt: skip
    shown = [name for d in thumbs._wanted if (name := thumbs.name(d)) is not None]
    written = [str(p.relative_to(out)) for folder in ("plots", "data") for p in (out / folder).rglob("*") if p.is_file()]
    bare = [Run(dir=r.dir, manifest=r.manifest, results=r.results) for r in runs]  # the page needs no records
    reuse.save(out, inputs, _page_json().dump_json(_Page(views=views, runs=bare, summary=summary)), [*written, *shown])
    clock.lap("state for the next write")
    return summary.model_copy(update={"seconds": round(time.perf_counter() - start, 3), "timings": clock.laps})


def _write_page_again(out: Path, page: _Page, clock: _Clock) -> ReportSummary:
    """The runs, options and code are those of the last write: its plots, thumbnails and sample data stand;
    only the page (its date) and the assets are written again."""
    clock.lap("inputs unchanged: last write reused")
    _copy_assets(out)
    (out / "index.html").write_text(_render(page.views, page.runs), encoding="utf-8")
    clock.lap("page")
    s = page.summary
    return s.model_copy(update={"thumbnails_made": 0, "thumbnails_reused": s.thumbnails, "timings": clock.laps,
                                "seconds": round(time.perf_counter() - clock.start, 3)})  # fmt: skip


class _Clock:
    """Seconds spent per step of a write (the report's summary carries them; bench/report.py prints them)."""

    def __init__(self, start: float):
        self.start = self.last = start
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self.last, 3)
        self.last = now


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}"


def ci(low: float | None, high: float | None) -> str:
    return "no interval" if low is None or high is None or math.isnan(low) else f"{pct(low)} to {pct(high)}"


def _render(views: list[SectionView], runs: list[Run]) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("medprobe.views", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters.update(pct=pct, ci=ci, headline_diff=headline_diff)
    template = env.get_template("report.html.j2")
    # the combined table of each suite folder the runs come from, its entries linked to their sections
    anchors = {str(Path(f.run_dir).resolve()): v.key for v in views for f in v.figures}
    return template.render(sections=views, runs=runs, version=__version__,
                           suites=suite_table.tables([r.dir for r in runs], anchors),
                           written=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))  # fmt: skip
