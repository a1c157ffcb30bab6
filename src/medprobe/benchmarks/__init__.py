"""Benchmarks by name, loaded lazily: a module is imported only when its benchmark is asked for.

    from medprobe.benchmarks import load
    from medprobe.benchmarks._base import LoadOptions
    loaded = load("vqa-rad-demo", LoadOptions())          # a registered name
    loaded = load("my_questions.jsonl", LoadOptions())   # an existing path: a custom benchmark
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import LoadError

# name -> (module under medprobe.benchmarks, attribute holding its BenchmarkSpec)
_REGISTRY: dict[str, tuple[str, str]] = {
    "vqa-rad": ("vqa_rad", "SPEC"),
    "vqa-rad-demo": ("demo", "SPEC"),
    "slake-en": ("slake", "SPEC_EN"),
    "slake-zh": ("slake", "SPEC_ZH"),
    "pathvqa": ("pathvqa", "SPEC"),
    "pmc-vqa": ("pmc_vqa", "SPEC"),
    "medxpertqa-mm": ("medxpertqa", "SPEC"),
    "omnimedvqa": ("omnimedvqa", "SPEC"),
    "mmmu-med": ("mmmu", "SPEC"),
    "gmai-mmbench": ("gmai_mmbench", "SPEC"),
    "medframeqa": ("medframeqa", "SPEC"),
    "mediconfusion": ("mediconfusion", "SPEC"),
    "probmed": ("probmed", "SPEC"),
    "smmile": ("smmile", "SPEC"),
    "smmile-plus": ("smmile", "SPEC_PLUS"),
    "iu-xray": ("iu_xray", "SPEC"),
    "mimic-cxr": ("mimic_cxr", "SPEC"),
    "chexpert-plus": ("chexpert_plus", "SPEC"),
}


def names() -> list[str]:
    """Registered benchmark names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> BenchmarkSpec:
    """The spec of a registered benchmark (imports its module on first use)."""
    if name not in _REGISTRY:
        raise LoadError(f"Unknown benchmark {name!r}. Known: {', '.join(names())}. "
                        "To use your own questions, give the path of an existing file or folder.")
    module, attr = _REGISTRY[name]
    return getattr(import_module(f"medprobe.benchmarks.{module}"), attr)


def describe() -> dict[str, str]:
    """name -> one line: description, splits (default first), default preset and prompt set, source."""
    out = {}
    for name in names():
        spec = get(name)
        splits = [spec.default_split, *(s for s in spec.splits if s != spec.default_split)]
        out[name] = (f"{spec.description}. Splits: {', '.join(splits)}; preset {spec.default_preset}; "
                     f"prompt {spec.prompt}; source {spec.source}.")
    return out


def spec_for(bench: str) -> BenchmarkSpec | None:
    """The spec `load(bench)` uses, or None when `bench` is a custom benchmark (a path)."""
    return get(bench) if bench in _REGISTRY else None


def load(bench: str, options: LoadOptions | None = None) -> Loaded:
    """Load a benchmark: an existing file/folder path is a custom benchmark, else a registered name.

    A bare registered name ("vqa-rad") stays the built-in even if a folder of that name sits in the
    working directory (users often download a dataset into one); write "./vqa-rad" to mean the folder.
    """
    options = options or LoadOptions()
    if bench not in _REGISTRY and Path(bench).expanduser().exists():
        from medprobe.benchmarks.custom import load_custom

        if options.section is not None:
            raise LoadError(f"--section applies to the report benchmarks (iu-xray, mimic-cxr, chexpert-plus), not to "
                            f"the custom benchmark {bench}; drop --section.")
        if options.data:
            raise LoadError(f"{bench} is a file given as the benchmark; drop --data (it only overrides the source "
                            "of a registered benchmark).")
        return load_custom(bench, options)
    if bench in _REGISTRY:
        spec = get(bench)
        if options.section is not None and options.section.strip().lower() not in spec.sections:
            raise LoadError(f"--section {options.section} does not apply to {bench}: " + (
                f"its sections are {', '.join(spec.sections)}." if spec.sections else
                "it is not a report benchmark (--section is for iu-xray, mimic-cxr, chexpert-plus); drop --section."))
        return spec.load(options)
    raise LoadError(f"Unknown benchmark {bench!r}: not a registered name ({', '.join(names())}) and no file or "
                    "folder exists at that path. Check the spelling, or give the path of an existing file.")


__all__ = ["BenchmarkSpec", "LoadError", "LoadOptions", "Loaded", "Provenance", "describe", "get", "load", "names",
           "spec_for"]
