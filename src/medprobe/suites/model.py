"""What a suite is: a paper's table as a list of (benchmark, split, preset, prompt) entries, read
from TOML that holds names and scalars only (no code, no expressions, no nested tables).

    name = "my-suite"
    average = "mean"            # "mean": the unweighted mean of the headlines; "none": no average

    [[entry]]
    benchmark = "vqa-rad"       # a registered name (`medprobe list`)
    split = "test"              # optional: the benchmark's default split
    preset = "medevalkit"       # optional: the benchmark's default preset (every preset is computed)
    subset = "closed"           # optional: the row of the headline (default overall)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from medprobe.types import Frozen

Scalar = (str, int, float, bool)


class SuiteError(ValueError):
    """A suite that cannot run as written; the message names the entry and what to change."""


class SuiteEntry(Frozen):
    """One column of the paper's table."""

    benchmark: str = Field(description="a registered benchmark name (`medprobe list`)")
    split: str | None = Field(None, description="None = the benchmark's default split")
    preset: str | None = Field(None, description="preset of the headline; None = the benchmark's default "
                               "(every preset is computed and kept in the run folder)")
    subset: str = Field("overall", description="row of the headline: overall, closed, open, multiple_choice, "
                        "or a subgroup such as modality=CT")
    metric: str | None = Field(None, description="metric of that row, e.g. token_f1; None = the preset's own")
    prompt: str = Field("", description="prompt template name or JSON file; empty = the benchmark's")
    label: str = Field("", description="column name in the combined table; empty = the benchmark name")
    run: str = Field("", description="sub-folder of the suite folder; empty = derived from benchmark, split, "
                     "prompt and file. Entries that name the same run share its answers")
    file: str = Field("", description="a file inside the benchmark's folder under --data-root, loaded instead "
                      "of the folder (e.g. test_2.csv)")
    data: str = Field("", description="the benchmark's data (file, folder or hub id), overriding --data-root; "
                      "a relative path is relative to the suite file")
    images_dir: str = Field("", description="folder of the images, when not where the data puts them")
    in_average: bool = Field(True, description="false: shown, but left out of the suite's average")
    source: str = Field("", description="where the paper reports this number")
    differs: str = Field("", description="where medprobe's protocol differs from the paper's, and why")

    @property
    def title(self) -> str:
        return self.label or self.benchmark

    @property
    def folder(self) -> str:
        if self.run:
            return self.run
        parts = [self.benchmark, self.split or "", Path(self.prompt).stem if self.prompt else "", Path(self.file).stem]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(p for p in parts if p)).strip("-")

    def run_key(self) -> tuple[str, ...]:
        """What makes two entries one run (presets, rows and labels only read its results)."""
        return (self.benchmark, self.split or "", self.prompt, self.file, self.data, self.images_dir)


class Suite(Frozen):
    name: str
    title: str = ""
    source: str = Field("", description="the paper or report whose table this is (citation)")
    protocol: str = Field("", description="the official evaluation code the paper used")
    average: Literal["mean", "none"] = Field("mean", description="mean: the unweighted mean of the entries' "
                                             "headline values, as the paper's own average; none: the paper has none")
    average_label: str = "average"
    notes: str = ""
    entries: tuple[SuiteEntry, ...] = Field(min_length=1)
    path: str | None = Field(None, description="the TOML file it was read from (set by `read`)")


def read(path: Path) -> Suite:
    """Read a suite TOML file (its name defaults to the file's stem)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"Cannot read suite file {path}: {exc}") from None
    return parse(text, str(path), default_name=path.stem)


def parse(text: str, where: str, default_name: str) -> Suite:
    """A suite from TOML text: names and scalars only, one `[[entry]]` table per entry."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{where} is not valid TOML: {exc}") from None
    entries = raw.pop("entry", None)
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise SuiteError(f"{where} has no entries: add one [[entry]] table per benchmark (benchmark = \"vqa-rad\").")
    _scalars(raw, where)
    for i, entry in enumerate(entries, 1):
        _scalars(entry, f"{where} entry {i}")
    raw.setdefault("name", default_name)
    try:
        suite = Suite.model_validate({**raw, "entries": entries, "path": where})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SuiteError(f"{where}: {problems}. The fields are listed in docs/suites.md.") from None
    return _with_shared_runs(suite)


def _scalars(table: dict, where: str) -> None:
    for key, value in table.items():
        if not isinstance(value, Scalar):
            raise SuiteError(f"{where}: {key!r} must be a string, number or true/false, not {type(value).__name__} "
                             "(a suite file holds names and scalars only).")


def _with_shared_runs(suite: Suite) -> Suite:
    """Entries with the same run key share one sub-folder; different runs may not share a folder."""
    folders: dict[str, tuple[str, ...]] = {}
    for entry in suite.entries:
        key = entry.run_key()
        if folders.setdefault(entry.folder, key) != key:
            raise SuiteError(f"suite {suite.name}: two entries use the folder {entry.folder!r} but differ in "
                             "benchmark, split, prompt or data; give one of them another `run` name.")
    return suite
