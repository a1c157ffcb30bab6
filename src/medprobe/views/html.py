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
from importlib import resources
from pathlib import Path

from pydantic import Field

from medprobe import __version__, verdicts
from medprobe.figures import (
    Paired,
    RunData,
    RunFigures,
    load_run,
    paired_figures,
    run_figures,
)
from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.store import MANIFEST
from medprobe.types import Frozen
from medprobe.verdicts import Verdict
from medprobe.views import browser, plots
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

    def by_run(self) -> list[tuple[str, list[Verdict]]]:
        """Verdicts grouped by the run they are about (comparisons last)."""
        groups = [(n, [v for v in self.verdicts if v.run == f.label]) for n, f in zip(self.names, self.figures)]
        pairs = [v for v in self.verdicts if v.run is None]
        return [g for g in groups if g[1]] + ([("comparisons", pairs)] if pairs else [])

    def link(self, v: Verdict) -> str | None:
        """The anchor of the figure a verdict is read from (None when the figure is not on the page)."""
        anchor = f"{self.key}-{v.figure}"
        return anchor if anchor in self.anchors else None


def _sections(runs: Sequence[RunData]) -> list[list[RunData]]:
    groups: dict[tuple[str, str], list[RunData]] = {}
    for r in runs:
        groups.setdefault(r.benchmark, []).append(r)
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
                detail = ", ".join(f"{k}={v}" for k, v in m.detail.items())
                key = (p.probe, m.name, detail)
                row = rows.setdefault(key, ProbeRow(p.probe, m.name.replace("_", " "), detail, ["not run"] * len(results)))
                row.cells[j] = m
    return list(rows.values())


def _presets(runs: Sequence[RunData]) -> list[str]:
    return list(dict.fromkeys(p.preset for r in runs for p in r.results.presets))


def draw_plots(key: str, figs: list[RunFigures], pairs: list[Paired], folder: Path) -> list[PlotView]:
    """Every plot of a section, written as SVG and PNG (runs in a worker process beside the thumbnails)."""
    out = []
    drawn = [(name, fn(figs)) for name, fn in plots.PLOTS.items()] + [("paired", plots.paired(pairs))]
    for name, fig in drawn:
        if fig is None:
            continue
        svg, png = plots.save(fig, folder, f"{key}-{name}")
        title, caption = PLOT_TEXT[name]
        out.append(PlotView(name=name, anchor=f"{key}-{name}", title=title, caption=caption,
                            svg=f"{folder.name}/{svg}", png=f"{folder.name}/{png}"))  # fmt: skip
    return out


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
    return ProcessPoolExecutor(workers, mp_context=get_context("fork"))


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
    (out / "assets").mkdir()
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


def _write(run_dirs: Sequence[Path], out: Path, preset: str | None, allow_outside_root: bool, workers: int | None,
           start: float) -> ReportSummary:  # fmt: skip
    clock = _Clock(start)
    runs = [load_run(Path(d)) for d in run_dirs]
    clock.lap("read runs")
    _prepare(out)
    thumbs = Thumbnails(out, allow_outside_root)
    views, data, drawing = [], [], []
    pool = _pool(workers)
    try:
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
            drawing.append(pool.submit(draw_plots, key, named, named_pairs, out / "plots"))
            views.append(SectionView(key=key, benchmark=figs[0].benchmark, split=figs[0].split, figures=figs,
                                     verdicts=found, pairs=pairs, plots=[], names=names,
                                     probe_rows=probe_rows([f.probes for f in figs]), presets=_presets(group)))  # fmt: skip
            data.append(browser.build(key, group, views[-1].presets, thumbs, names))
            clock.lap("sample browser")
        thumbs.write(pool)
        clock.lap("thumbnails")
        for view, sec in zip(views, data):
            browser.resolve_thumbnails(sec, thumbs)
            view.data = browser.write(sec, out / "data")
        clock.lap("browser data files")
        for view, plotted in zip(views, drawing):
            view.plots = plotted.result()
            view.anchors = {p.anchor for p in view.plots} | {f"{view.key}-{a}" for a in ("health", "headline", "probes")}
        clock.lap("plots (waited for)")
    finally:
        pool.shutdown()
    (out / "index.html").write_text(_render(views, runs), encoding="utf-8")
    clock.lap("page")
    return ReportSummary(
        index=str(out / "index.html"), sections=len(views), runs=len(runs), samples=sum(len(s.rows) for s in data),
        variants=sum(len(d["vars"]) for s in data for d in s.details), thumbnails=len(thumbs._wanted),
        thumbnails_made=thumbs.made, thumbnails_reused=thumbs.reused, seconds=round(time.perf_counter() - start, 3),
        timings=clock.laps,
    )  # fmt: skip


class _Clock:
    """Seconds spent per step of a write (the report's summary carries them; bench/report.py prints them)."""

    def __init__(self, start: float):
        self.last = start
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self.last, 3)
        self.last = now


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}"


def ci(low: float | None, high: float | None) -> str:
    return "no interval" if low is None or high is None or math.isnan(low) else f"{pct(low)} to {pct(high)}"


def _render(views: list[SectionView], runs: list[RunData]) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("medprobe.views", "templates"), autoescape=select_autoescape(["j2", "html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters.update(pct=pct, ci=ci)
    template = env.get_template("report.html.j2")
    return template.render(sections=views, runs=runs, version=__version__,
                           written=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))  # fmt: skip
