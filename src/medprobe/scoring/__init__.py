"""Scoring presets, registered lazily by name: a preset's module is imported only when asked for.

    from medprobe import scoring
    score = scoring.get("llava-med").score(sample, "Yes, there is a fracture.")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medprobe.scoring._base import Preset

__all__ = ["describe", "get", "names"]

# name -> (module, class). The only thing this package defines at import time.
_REGISTRY: dict[str, tuple[str, str]] = {
    "strict": ("medprobe.scoring.strict", "Strict"),
    "llava-med": ("medprobe.scoring.llava_med", "LlavaMed"),
    "multimedeval": ("medprobe.scoring.multimedeval", "MultiMedEval"),
    "lmms-eval": ("medprobe.scoring.lmms_eval", "LmmsEval"),
    "medevalkit": ("medprobe.scoring.medevalkit", "MedEvalKit"),
    "mediconfusion": ("medprobe.scoring.mediconfusion", "MediConfusion"),
    "probmed": ("medprobe.scoring.probmed", "ProbMed"),
    "probmed-strict": ("medprobe.scoring.probmed", "ProbMedStrict"),
    "smmile-em": ("medprobe.scoring.smmile", "SmmileEM"),
    "smmile-mcqa": ("medprobe.scoring.smmile", "SmmileMCQA"),
    "mmmu": ("medprobe.scoring.mmmu", "MMMU"),
    "smmile-mcqa-open": ("medprobe.scoring.smmile", "SmmileMCQAOpen"),
    "vlmevalkit-mcq": ("medprobe.scoring.vlmevalkit", "VLMEvalKitMCQ"),
    "report": ("medprobe.scoring.report", "Report"),
    "rexrank": ("medprobe.scoring.report_sets", "ReXrank"),
    "medevalkit-report": ("medprobe.scoring.report_sets", "MedEvalKitReport"),
    "multimedeval-report": ("medprobe.scoring.report_sets", "MultiMedEvalReport"),
    "medgemma-vqa": ("medprobe.scoring.medgemma", "MedGemmaVQA"),
}
_instances: dict[str, Preset] = {}


def names() -> list[str]:
    """Registered preset names, default ("strict") first."""
    return list(_REGISTRY)


def known(name: str) -> bool:
    """Whether `name` is a rule preset `get` gives (a judge's rows in results.json, `judge:<model>`, are not)."""
    return name.strip().lower().replace("_", "-") in _REGISTRY


def _load(name: str) -> type[Preset]:
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def get(name: str) -> Preset:
    """The preset called `name` ("llava_med" is accepted for "llava-med"); presets are stateless."""
    key = name.strip().lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(f"Unknown scoring preset {name!r}. Available presets: {', '.join(names())}.")
    if key not in _instances:
        _instances[key] = _load(key)()
    return _instances[key]


def describe() -> dict[str, tuple[str, str]]:
    """name -> (description, the official script it reproduces). Imports every preset module."""
    return {name: (_load(name).description, _load(name).reproduces) for name in names()}
