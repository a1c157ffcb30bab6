"""medprobe: can this medical vision-language model be trusted, and how do we know?

The Python API (README, "Python API"): `medprobe.run(...)`, `medprobe.score(...)`,
`medprobe.load_run(dir)` (a typed `Run`: manifest, results, records) and `medprobe.report(...)`.
`import medprobe` imports nothing else: each name is loaded on first use (PEP 562).
"""

from __future__ import annotations

__version__ = "0.1.0"

#: public name -> the module that defines it (imported on first access)
_LAZY = {
    "run": "medprobe.api", "score": "medprobe.api", "load_run": "medprobe.api", "report": "medprobe.api",
    "Run": "medprobe.runs", "Results": "medprobe.results", "Manifest": "medprobe.manifest",
}  # fmt: skip

__all__ = ["Manifest", "Results", "Run", "__version__", "load_run", "report", "run", "score"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~20 ms)
if TYPE_CHECKING:
    from medprobe.api import load_run, report, run, score
    from medprobe.manifest import Manifest
    from medprobe.results import Results
    from medprobe.runs import Run


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medprobe' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
