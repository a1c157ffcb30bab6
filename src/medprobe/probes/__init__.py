"""Reliability probes, registered lazily by name (a probe's module is imported only when asked for).

    from medprobe import probes
    spec = probes.ProbeSpec.parse("corrupt:gaussian_noise,jpeg@3,5")
    derived = probes.derive([spec], samples, seed=0)   # .samples run with the clean ones; .skipped says why not
    results = probes.analyze([spec], records, "strict", seed=0)  # -> list[ProbeResult]

Variants are ordinary samples with ids `PARENT~PROBE:VARIANT` and a `variant_of` tag (parent id,
probe, variant, the probe's detail), apart from the dataset's metadata; their requests carry the
probe name (and trial / generation overrides), so they are cached and resumed like any request and
never collide with the clean sample's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence

from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec
from medprobe.probes._store import ImageStore
from medprobe.types import Frozen, Record, Sample

__all__ = ["DeriveProgress", "Derived", "Group", "ProbeContext", "ProbeMetric", "ProbeResult", "ProbeSpec", "analyze", "derive", "get",
           "names", "split_records"]

_REGISTRY: dict[str, str] = {
    name: f"medprobe.probes.{name}"
    for name in ("blind", "corrupt", "permute", "negate", "pair", "paraphrase", "repeat", "icl", "think", "laterality")
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


class Derived(Frozen):
    """What `derive` made: the variants to run, and the parents it left out (one line each, with why)."""

    samples: tuple[Sample, ...]
    skipped: tuple[str, ...] = ()


#: derive's progress: (probe name, samples done, samples to do), counted over all probes
DeriveProgress = Callable[[str, int, int], None]


def derive(specs: Sequence[ProbeSpec], samples: Sequence[Sample], seed: int = 0, template=None,
           train: Sequence[Sample] = (), allow_outside_root: bool = False, image_dir: str | None = None,
           progress: DeriveProgress | None = None) -> Derived:  # fmt: skip
    """Every variant of every probe, in probe order then sample order. A parent a probe cannot read
    (an image that does not decode) is skipped and listed, never the end of the run. Images made
    before under `image_dir` are read back by their recipe, not rebuilt (`medprobe.probes._store`)."""
    out: list[Sample] = []
    skipped: list[str] = []
    store = ImageStore(image_dir)
    total = len(specs) * len(samples)
    try:
        for i, spec in enumerate(specs):
            base = i * len(samples)
            tick = None if progress is None else (lambda n, name=spec.name, base=base: progress(name, base + n, total))
            ctx = ProbeContext(seed=seed, spec=spec, template=template, train=train,
                               allow_outside_root=allow_outside_root, image_dir=image_dir, images=store,
                               progress=tick)  # fmt: skip
            out += get(spec.name).derive(samples, ctx)
            skipped += ctx.skipped
            if progress is not None:
                progress(spec.name, base + len(samples), total)
    except BaseException:
        try:
            store.save()  # what was made so far (interrupted): a re-run reads it back
        except OSError:
            pass  # the error in flight says more
        raise
    store.save()
    return Derived(samples=tuple(out), skipped=tuple(skipped))


def split_records(records: Iterable[Record]) -> tuple[list[Record], list[Record]]:
    """(clean records, variant records)."""
    clean, variants = [], []
    for r in records:
        (variants if r.sample.is_variant else clean).append(r)
    return clean, variants


def _groups(spec: ProbeSpec, module, parents: dict[str, Record], variants: list[Record]) -> tuple[dict[str, Group], int]:
    """parent id -> Group (answered and failed variants) for one probe, and the variants whose parent has no answer."""
    # a probe that pairs clean samples with each other (pair) asks nothing new: every parent is a group
    answered: dict[str, list[Record]] = {p: [] for p in parents} if getattr(module, "USES_CLEAN", False) else {}
    failed: dict[str, list[Record]] = {}
    unpaired = 0
    for v in variants:
        tag = v.sample.variant_of
        if tag is None or tag.probe != spec.name:
            continue
        if tag.parent_id not in parents:
            unpaired += 1
            continue
        answered.setdefault(tag.parent_id, [])
        (answered[tag.parent_id] if v.answered else failed.setdefault(tag.parent_id, [])).append(v)
    groups = {p: Group(parents[p], tuple(vs), tuple(failed.get(p, ()))) for p, vs in answered.items()}
    return groups, unpaired


def analyze(specs: Sequence[ProbeSpec], records: Sequence[Record], preset: str, seed: int = 0) -> list[ProbeResult]:
    """One ProbeResult per spec, from clean and variant records, paired by parent. A variant without
    an answer is counted in its figures' `failed` (never dropped silently); one whose parent has no
    answer is counted in `unpaired`."""
    clean, variants = split_records(records)
    parents = {r.sample.id: r for r in clean if r.answered}
    results = []
    for spec in specs:
        module = get(spec.name)
        groups, unpaired = _groups(spec, module, parents, variants)
        failed = sum(len(g.failed) for g in groups.values())
        counts = {"failed": failed, "unpaired": unpaired}
        if not groups or not (getattr(module, "USES_CLEAN", False) or any(g.variants for g in groups.values())):
            why = (f"{failed} variant request(s) failed, {unpaired} variant(s) of unanswered parents" if failed or unpaired
                   else "the probe does not apply to these samples")  # fmt: skip
            results.append(ProbeResult(probe=spec.name, ran=False, **counts,
                                       note=f"{spec}: no answered variant with an answered parent ({why})"))  # fmt: skip
            continue
        result = module.analyze(groups, preset, seed)
        lost = f"{failed} variant(s) failed, {unpaired} left out with an unanswered parent" if failed or unpaired else None
        note = "; ".join(filter(None, [f"spec {spec}", result.note, lost]))
        results.append(result.model_copy(update={"note": note, **counts}))
    return results
