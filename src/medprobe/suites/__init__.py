"""Suites: a paper's table as one job. A suite is a TOML list of (benchmark, split, preset, prompt)
entries; `run_suite` runs each into a sub-folder (an ordinary, resumable run folder) and writes one
`suite.json` with every entry's headline and the paper's own average.

    from medprobe import suites
    suite = suites.load("lingshu-mm")            # a shipped suite, or the path of a TOML file
    result = suites.run_suite(suite, base_spec, Path("runs/lingshu"), data_root=Path("data"))

Shipped suites are TOML files in this package (their sources cited inside): `names()` lists them.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from medprobe.suites.model import Suite, SuiteEntry, SuiteError, parse, read
from medprobe.suites.result import SUITE_JSON, EntryResult, SuiteAverage, SuiteResult, read_result, run_folders

#: the run stack (pipeline, backends): imported on first use, so reading a suite folder stays light
_RUNNER = ("Hooks", "run_suite", "validate")


def __getattr__(name: str):
    if name in _RUNNER:
        from medprobe.suites import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def names() -> list[str]:
    """The shipped suites, sorted."""
    return sorted(p.name.removesuffix(".toml") for p in files(__package__).iterdir() if p.name.endswith(".toml"))


def load(name_or_path: str) -> Suite:
    """A shipped suite by name, or a suite TOML file."""
    if name_or_path in names():
        resource = files(__package__).joinpath(f"{name_or_path}.toml")
        if isinstance(resource, Path):  # a regular install: files beside it (prompt JSON) resolve
            return read(resource)
        return parse(resource.read_text(encoding="utf-8"), f"medprobe:suites/{name_or_path}.toml", name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return read(path)
    raise SuiteError(f"Unknown suite {name_or_path!r}: not a shipped suite ({', '.join(names())}) and no such file. "
                     "Give the path of a suite TOML file (docs/suites.md).")


def describe() -> dict[str, str]:
    """name -> title and source, for `medprobe list`."""
    out = {}
    for name in names():
        suite = load(name)
        benches = ", ".join(dict.fromkeys(e.title for e in suite.entries))
        out[name] = f"{suite.title}: {benches}. Source: {suite.source}"
    return out


__all__ = ["SUITE_JSON", "EntryResult", "Hooks", "Suite", "SuiteAverage", "SuiteEntry", "SuiteError", "SuiteResult",
           "describe", "load", "names", "read", "read_result", "run_folders", "run_suite", "validate"]
