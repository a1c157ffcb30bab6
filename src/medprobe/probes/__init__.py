"""Reliability probes, registered lazily by name (a probe's module is imported only when asked for).

    from medprobe import probes
    spec = probes.ProbeSpec.parse("corrupt:gaussian_noise,jpeg@3,5")
    variants = probes.derive([spec], samples, seed=0)          # run them with the clean samples
    results = probes.analyze([spec], records, "strict", seed=0)  # -> list[ProbeResult]

Variants are ordinary samples with ids `PARENT~PROBE:VARIANT` and metadata `parent_id`, `probe`,
`variant`; their requests carry the probe name (and trial / generation overrides), so they are
cached and resumed like any request and never collide with the clean sample's.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence

from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec, is_variant
from medprobe.types import Record, Sample

__all__ = ["Group", "ProbeContext", "ProbeMetric", "ProbeResult", "ProbeSpec", "analyze", "derive", "get", "names",
           "split_records"]

_REGISTRY: dict[str, str] = {
    name: f"medprobe.probes.{name}"
    for name in ("blind", "corrupt", "permute", "negate", "pair", "paraphrase", "repeat", "icl")
}
#: probes that need the train split (derive reads `ProbeContext.train`)
NEEDS_TRAIN = frozenset({"icl"})


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str):
    """The probe module called `name` (has NAME, derive, analyze)."""
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"Unknown probe {name!r}. Available probes: {', '.join(names())}.")
    return importlib.import_module(_REGISTRY[key])


def parse(texts: Iterable[str]) -> list[ProbeSpec]:
    """`--probe` arguments to specs, validating names and options up front (before any request)."""
    specs = [ProbeSpec.parse(t) for t in texts]
    seen = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"--probe {spec.name} given twice; give its options once, e.g. --probe corrupt:jpeg,gaussian_noise@3,5")
        seen.add(spec.name)
        module = get(spec.name)
        if hasattr(module, "check"):
            module.check(spec)
    return specs


def derive(specs: Sequence[ProbeSpec], samples: Sequence[Sample], seed: int = 0, template=None,
           train: Sequence[Sample] = (), allow_outside_root: bool = False, image_dir: str | None = None) -> list[Sample]:
    """Every variant of every probe, in probe order then sample order."""
    out: list[Sample] = []
    for spec in specs:
        ctx = ProbeContext(seed=seed, spec=spec, template=template, train=train, allow_outside_root=allow_outside_root,
                           image_dir=image_dir)  # fmt: skip
        out += get(spec.name).derive(samples, ctx)
    return out


def split_records(records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """(clean records, variant records)."""
    clean, variants = [], []
    for r in records:
        (variants if is_variant(r.sample) else clean).append(r)
    return clean, variants


def analyze(specs: Sequence[ProbeSpec], records: Sequence[Record], preset: str, seed: int = 0) -> list[ProbeResult]:
    """One ProbeResult per spec, from clean and variant records (only answered ones are paired)."""
    clean, variants = split_records(records)
    parents = {r.sample.id: r for r in clean if r.answered}
    results = []
    for spec in specs:
        module = get(spec.name)
        # a probe that pairs clean samples with each other (pair) asks nothing new: every parent is a group
        groups: dict[str, Group] = {p: Group(r, ()) for p, r in parents.items()} if getattr(module, "USES_CLEAN", False) else {}
        for v in variants:
            if v.sample.metadata.get("probe") != spec.name or not v.answered:
                continue
            pid = str(v.sample.metadata["parent_id"])
            if pid in parents:
                g = groups.get(pid)
                groups[pid] = Group(parents[pid], (g.variants if g else ()) + (v,))
        if not groups:
            results.append(ProbeResult(probe=spec.name, ran=False,
                                       note=f"{spec}: no answered variant with an answered parent (the probe does not "
                                            "apply to these samples, or its requests failed)"))  # fmt: skip
            continue
        result = module.analyze(groups, preset, seed)
        results.append(result.model_copy(update={"note": "; ".join(filter(None, [f"spec {spec}", result.note]))}))
    return results
