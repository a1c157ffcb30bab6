"""What a suite run leaves behind: `suite.json` typed (`SuiteResult`), and the run folders of a suite
folder. Light on purpose (no run stack): `medprobe report SUITE_FOLDER` and the views read it without
importing the pipeline that wrote it."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import Field

from medprobe import __version__
from medprobe.metrics import Metric
from medprobe.store import MANIFEST
from medprobe.suites.model import Suite
from medprobe.types import Frozen

SUITE_JSON = "suite.json"
SUITE_MD = "suite.md"
SCHEMA_VERSION = 1
NOT_RUN = "not_run"


class EntryResult(Frozen):
    label: str
    benchmark: str
    split: str | None
    preset: str = Field(description="the preset the headline is read from")
    subset: str
    metric: str | None = Field(description="the headline's metric (None until the run has results)")
    run: str = Field(description="sub-folder of the suite folder holding the entry's run")
    status: str = Field(description="the run's status (complete, partial, stopped, failed, interrupted) or not_run")
    exit_code: int = Field(description="the run's exit code (README: exit codes)")
    reason: str | None = Field(None, description="why the entry has no headline, or how its run ended")
    headline: Metric | None = None
    in_average: bool = True
    data: str | None = Field(None, description="the --data the run read (None: the benchmark's default source)")
    source: str = ""
    differs: str = ""


class SuiteAverage(Frozen):
    label: str
    method: str
    value: float | None = Field(description="the average as the paper defines it; None when an entry has no value")
    ci_low: float | None = None
    ci_high: float | None = None
    interval: str = Field("normal approximation from each entry's 95% interval (entries are independent samples)")
    n: int = Field(description="entries averaged")
    missing: tuple[str, ...] = Field((), description="entries without a value (then `value` is None)")
    partial_value: float | None = Field(None, description="mean of the entries that have a value, when some do "
                                        "not: not the paper's average, shown apart")


class SuiteResult(Frozen):
    schema_version: int = SCHEMA_VERSION
    medprobe_version: str = __version__
    suite: Suite
    model: str
    status: str = Field(description="complete when every entry is; else the worst entry's status")
    exit_code: int = Field(description="the worst entry's exit code (runner.SEVERITY)")
    created: str
    finished: str | None = None
    data_root: str | None = None
    entries: tuple[EntryResult, ...]
    average: SuiteAverage | None = None


def read_result(out: Path) -> SuiteResult:
    """The suite.json of a suite folder, typed."""
    path = out / SUITE_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{out} has no {SUITE_JSON}: it is not a suite folder (run `medprobe suite` first).")
    return SuiteResult.model_validate(orjson.loads(path.read_bytes()))



def run_folders(paths: list[Path]) -> list[Path]:
    """`paths` with every suite folder (suite.json, no manifest.json) replaced by the run folders of its
    entries that ran, in the suite's order: what `medprobe report SUITE_FOLDER` renders."""
    out: list[Path] = []
    for path in paths:
        if (path / SUITE_JSON).is_file() and not (path / MANIFEST).is_file():
            runs = dict.fromkeys(e.run for e in read_result(path).entries)
            out += [path / r for r in runs if (path / r / MANIFEST).is_file()]
        else:
            out.append(path)
    return out
