"""What every probe shares: the option spec, the derive context, variant ids and seeding, and the
paired analysis helpers (score a parent and its variants under one preset, bootstrap every delta).

A probe module defines `NAME`, `derive(samples, context) -> list[Sample]` and
`analyze(groups, preset, seed) -> ProbeResult`. A parent derive cannot read (its image does not
decode) is left out with `context.skip`, never a variant and never an abort.

Failed variants are never dropped silently: every figure carries `failed` next to `n`. A paired
or accuracy figure leaves a failed variant out of n (an error is not a wrong answer); a
consistency figure ("right under every rotation", "every twin right") counts a set with a failed
variant as not consistent, since it is not known to be, so such figures are lower bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from medprobe import imaging, scoring
from medprobe.probes._base import ProbeMetric
from medprobe.probes._store import ImageStore
from medprobe.stats import bootstrap_ci, rng_for
from medprobe.types import Frozen, ImageRef, Outcome, Record, Sample, Score, VariantTag

SEP = "~"  # variant ids: f"{parent}~{probe}:{variant}"


class ProbeSpec(Frozen):
    """One `--probe` argument: a probe name and its options.

    Syntax: `NAME[:ITEM,ITEM,...][@VALUE,VALUE,...]`, where an ITEM is a bare word (a variant or
    corruption name) or `key=value`; the part after `@` is a list of levels (corrupt's severities).
    Examples: `corrupt:gaussian_noise,jpeg@3,5`, `repeat:k=5,t=0.7`, `blind:none,blank`, `icl:k=3`.
    """

    name: str
    words: tuple[str, ...] = Field((), description="bare items: which variants / corruptions")
    params: dict[str, str] = Field(default_factory=dict, description="key=value items")
    levels: tuple[int, ...] = Field((), description="items after '@' (severities)")

    @classmethod
    def parse(cls, text: str) -> ProbeSpec:
        head, _, tail = text.strip().partition("@")
        name, _, body = head.partition(":")
        words, params = [], {}
        for item in filter(None, (x.strip() for x in body.split(","))):
            key, eq, value = item.partition("=")
            if eq:
                params[key.strip()] = value.strip()
            else:
                words.append(item)
        try:
            levels = tuple(int(x) for x in tail.split(",") if x.strip())
        except ValueError:
            raise ValueError(f"--probe {text!r}: the part after '@' must be integers, e.g. corrupt:jpeg@1,3,5") from None
        return cls(name=name.strip().lower(), words=tuple(words), params=params, levels=levels)

    def __str__(self) -> str:
        body = ",".join([*self.words, *(f"{k}={v}" for k, v in self.params.items())])
        return self.name + (f":{body}" if body else "") + ("@" + ",".join(map(str, self.levels)) if self.levels else "")

    def param(self, key: str, default: float) -> float:
        try:
            return float(self.params.get(key, default))
        except ValueError:
            raise ValueError(f"--probe {self}: {key} must be a number") from None

    def check(self, known_words: Sequence[str] = (), known_params: Sequence[str] = ()) -> None:
        """Refuse options the probe does not understand, naming what it does."""
        bad = [w for w in self.words if w not in known_words] + [k for k in self.params if k not in known_params]
        if bad:
            raise ValueError(f"--probe {self}: unknown option(s) {', '.join(bad)}. {self.name} takes "
                             f"{', '.join([*known_words, *(k + '=' for k in known_params)]) or 'no options'}.")


@dataclass
class ProbeContext:
    """What derive may use besides the samples: the seed, the options, the prompt template, the
    train split (for icl) and whether image paths may leave the dataset root."""

    seed: int = 0
    spec: ProbeSpec = field(default_factory=lambda: ProbeSpec(name=""))
    template: object | None = None
    train: Sequence[Sample] = ()
    allow_outside_root: bool = False
    #: where generated images (corruptions, blanks) are written, content-addressed; None keeps them
    #: in memory (tests). A run folder holds them once each instead of inline in every sample's JSON.
    image_dir: str | None = None
    #: parents derive left out, one line each: which probe, which sample, why (the run's manifest lists them)
    skipped: list[str] = field(default_factory=list)
    #: the generated images made so far and their recipes (probes.derive shares one across probes)
    images: ImageStore | None = None
    #: called with the number of samples this probe has finished (slow probes call `advance`)
    progress: Callable[[int], None] | None = None
    _done: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.images is None:
            self.images = ImageStore(self.image_dir)

    def advance(self, n: int = 1) -> None:
        """Count `n` more samples done (for the derivation progress bar)."""
        self._done += n
        if self.progress is not None:
            self.progress(self._done)

    def skip(self, sample: Sample, error: Exception) -> None:
        self.skipped.append(f"{self.spec.name or 'probe'}: skipped sample {sample.id}: {error}")

    def sizes(self, sample: Sample) -> list[tuple[int, int, str]] | None:
        """(width, height, mode) of every image of `sample` as decoded, or None after recording why one
        cannot be decoded; an image seen decoding before (same sha256) is not decoded again."""
        assert self.images is not None
        out = []
        try:
            for ref in sample.images:
                digest = imaging.sha256(ref, self.allow_outside_root)
                if (size := self.images.size(digest)) is None:
                    img = imaging.open_image(ref, allow_outside_root=self.allow_outside_root)
                    size = (img.width, img.height, img.mode)
                    self.images.note_size(digest, size)
                out.append(size)
        except imaging.ImageError as exc:
            self.skip(sample, exc)
            return None
        return out

    def readable(self, sample: Sample) -> list | None:
        """Every image of `sample` decoded (PIL images), or None after recording why one cannot be."""
        try:
            return [imaging.open_image(ref, allow_outside_root=self.allow_outside_root) for ref in sample.images]
        except imaging.ImageError as exc:
            self.skip(sample, exc)
            return None


def generated_image(ctx: ProbeContext, recipe: str, name: str, make: Callable[[int], bytes | tuple]) -> ImageRef:
    """A probe-generated image: read back by its recipe when made before, else `make(format)` (PNG or
    JPEG bytes in the store's format, `medprobe.probes._store`) kept as a file named by its sha256.
    `make` may return (bytes, PIL image those bytes losslessly encode): the store draws its preview from it."""
    assert ctx.images is not None
    if (hit := ctx.images.get(recipe, name)) is not None:
        return hit
    made = make(ctx.images.format)
    data, pixels = made if isinstance(made, tuple) else (made, None)
    return ctx.images.put(recipe, data, name, pixels)


def rng(seed: int, sample_id: str, probe: str) -> np.random.Generator:
    """The generator a probe uses for one sample: seeded by (seed, sample id, probe)."""
    return rng_for(seed, f"{sample_id}\x00{probe}")


def variant(parent: Sample, probe: str, name: str, detail: dict | None = None, **update) -> Sample:
    """A copy of `parent` with a variant id and its `variant_of` tag (the parent's metadata stays as it is)."""
    tag = VariantTag(parent_id=parent.id, probe=probe, variant=name, detail=detail or {})
    return parent.model_copy(update={"id": f"{parent.id}{SEP}{probe}:{name}", "variant_of": tag, **update})


def is_variant(sample: Sample) -> bool:
    return sample.is_variant


def tag(record: Record) -> VariantTag:
    """The variant tag of a variant's record (analyze only sees variants)."""
    if record.sample.variant_of is None:
        raise ValueError(f"{record.sample.id} is not a probe variant")
    return record.sample.variant_of


@dataclass(frozen=True)
class Group:
    """A clean (parent) record, its answered variants from one probe, and those whose request failed."""

    parent: Record
    variants: tuple[Record, ...]
    failed: tuple[Record, ...] = ()


def score(record: Record, preset: str) -> Score:
    return scoring.get(preset).score_generation(record.sample, record.final)


def correct(record: Record, preset: str) -> float:
    return 1.0 if score(record, preset).outcome is Outcome.CORRECT else 0.0


def answer_key(record: Record, preset: str) -> str:
    """The parsed answer as a comparable string; every invalid answer is the same value '<invalid>'."""
    answer = score(record, preset).answer
    return (answer.value or "").strip().lower() if answer.valid else "<invalid>"


def by_variant(groups: dict[str, Group]) -> dict[str, list[tuple[Record, Record]]]:
    """variant name -> (parent, variant) pairs."""
    out: dict[str, list[tuple[Record, Record]]] = {}
    for g in groups.values():
        for v in g.variants:
            out.setdefault(tag(v).variant, []).append((g.parent, v))
    return out


def failed_by_variant(groups: dict[str, Group]) -> dict[str, int]:
    """variant name -> failed variants of that name (with an answered parent)."""
    out: dict[str, int] = {}
    for g in groups.values():
        for v in g.failed:
            out[tag(v).variant] = out.get(tag(v).variant, 0) + 1
    return out


def metric(probe: str, name: str, values, preset: str, seed: int, failed: int = 0, **detail) -> ProbeMetric:
    """Mean of per-parent values (a paired difference when they are deltas) with its bootstrap CI;
    `failed` = variants of this figure whose request failed (see the module docstring)."""
    arr = np.asarray(values, dtype=float)
    key = ",".join(f"{k}={v}" for k, v in sorted(detail.items()))
    low, high = bootstrap_ci(arr, seed, f"probe/{probe}/{name}/{key}") if len(arr) else (None, None)
    return ProbeMetric(probe=probe, name=name, value=float(arr.mean()) if len(arr) else float("nan"),
                       ci_low=low, ci_high=high, n=len(arr), failed=failed, preset=preset, detail=detail)  # fmt: skip


def paired_rows(probe: str, pairs: list[tuple[Record, Record]], preset: str, seed: int, drop: str = "drop",
                failed: int = 0, **detail) -> list[ProbeMetric]:
    """accuracy of the variant, the drop (clean minus variant, paired by parent) and the share of
    answers unchanged, for one variant kind; `failed` pairs (the variant's request failed) are left out."""
    clean = np.array([correct(p, preset) for p, _ in pairs])
    probed = np.array([correct(v, preset) for _, v in pairs])
    same = np.array([answer_key(p, preset) == answer_key(v, preset) for p, v in pairs], dtype=float)
    return [
        metric(probe, "accuracy", probed, preset, seed, failed, **detail),
        metric(probe, drop, clean - probed, preset, seed, failed, **detail),
        metric(probe, "unchanged_rate", same, preset, seed, failed, **detail),
    ]
