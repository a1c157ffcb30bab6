"""The combined table of a suite in the HTML report: `medprobe report SUITE_FOLDER` shows, above the
benchmark sections, the table `medprobe suite` printed and wrote to suite.json (one row per entry: its
headline with the 95% interval, n, invalid, status; then the paper's own average), read from suite.json.

The cells are medprobe.suites.summary.rows, the same ones the terminal table and suite.md show, so the
three views cannot disagree; each entry links to its benchmark's section of the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medprobe.store import MANIFEST
from medprobe.suites.result import SUITE_JSON, SuiteResult, read_result
from medprobe.suites.summary import COLUMNS, notes, rows

NUMERIC = frozenset({"value %", "95% CI", "n", "invalid"})


@dataclass
class SuiteRow:
    label: str
    cells: tuple[str, ...]
    average: bool = False
    value: float | None = None  # the headline (or the average) as suite.json holds it, a fraction
    link: str | None = None  # anchor of the section holding the entry's run


@dataclass
class SuiteTable:
    folder: str
    result: SuiteResult
    rows: list[SuiteRow]
    columns: tuple[str, ...] = COLUMNS
    notes: list[str] = field(default_factory=list)
    differs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def numeric(self) -> list[bool]:
        return [c in NUMERIC for c in self.columns]


def suite_folders(run_dirs: Iterable[Path | str]) -> list[Path]:
    """The suite folders (suite.json, no manifest.json) holding any of the runs, in order of first run."""
    found: dict[Path, None] = {}
    for run in run_dirs:
        parent = Path(run).resolve().parent
        if (parent / SUITE_JSON).is_file() and not (parent / MANIFEST).is_file():
            found.setdefault(parent)
    return list(found)


def tables(run_dirs: Sequence[Path | str], anchors: dict[str, str] | None = None) -> list[SuiteTable]:
    """One table per suite folder among the runs' parents. `anchors`: resolved run folder -> the page
    anchor of its section (an entry whose run is not on the page gets no link)."""
    anchors = anchors or {}
    return [table(folder, anchors) for folder in suite_folders(run_dirs)]


def table(folder: Path, anchors: dict[str, str] | None = None) -> SuiteTable:
    result = read_result(folder)
    anchors = anchors or {}
    out = [SuiteRow(label=e.label, cells=cells, value=e.headline.value if e.headline else None,
                    link=anchors.get(str((folder / e.run).resolve())))
           for e, cells in zip(result.entries, rows(result))]  # fmt: skip
    if result.average is not None:
        out.append(SuiteRow(label=result.average.label, cells=rows(result)[-1], average=True,
                            value=result.average.value))  # fmt: skip
    differs = list({e.label: e.differs for e in result.entries if e.differs}.items())
    return SuiteTable(folder=str(folder), result=result, rows=out, notes=notes(result), differs=differs)
