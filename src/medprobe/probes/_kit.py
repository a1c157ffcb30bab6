"""What every probe shares: the option spec, the derive context, variant ids and seeding, and the
paired analysis helpers (score a parent and its variants under one preset, bootstrap every delta).

A probe module defines `NAME`, `derive(samples, context) -> list[Sample]` and
`analyze(groups, preset, seed) -> ProbeResult`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field

from medprobe import scoring
from medprobe.probes._base import ProbeMetric
from medprobe.stats import bootstrap_ci, rng_for
from medprobe.types import Frozen, ImageRef, Outcome, Record, Sample, Score

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


def generated_image(ctx: ProbeContext, data: bytes, name: str) -> ImageRef:
    """A reference to a probe-generated PNG: a file named by its sha256 under ctx.image_dir."""
    if ctx.image_dir is None:
        return ImageRef(data=data, name=name)
    digest = hashlib.sha256(data).hexdigest()
    path = Path(ctx.image_dir) / f"{digest}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: a killed run never leaves a half-written image
    return ImageRef(path=path.name, root=ctx.image_dir, name=name)


def rng(seed: int, sample_id: str, probe: str) -> np.random.Generator:
    """The generator a probe uses for one sample: seeded by (seed, sample id, probe)."""
    return rng_for(seed, f"{sample_id}\x00{probe}")


def variant(parent: Sample, probe: str, name: str, **update) -> Sample:
    """A copy of `parent` with a variant id and the parent/probe/variant metadata."""
    meta = {**parent.metadata, "parent_id": parent.id, "probe": probe, "variant": name}
    meta.update(update.pop("metadata", {}))
    return parent.model_copy(update={"id": f"{parent.id}{SEP}{probe}:{name}", "metadata": meta, **update})


def is_variant(sample: Sample) -> bool:
    return "parent_id" in sample.metadata and "probe" in sample.metadata


@dataclass(frozen=True)
class Group:
    """A clean (parent) record and its answered variants from one probe."""

    parent: Record
    variants: tuple[Record, ...]


def score(record: Record, preset: str) -> Score:
    return scoring.get(preset).score(record.sample, record.final.text if record.final else None)


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
            out.setdefault(str(v.sample.metadata.get("variant")), []).append((g.parent, v))
    return out


def metric(probe: str, name: str, values, preset: str, seed: int, **detail) -> ProbeMetric:
    """Mean of per-parent values (a paired difference when they are deltas) with its bootstrap CI."""
    arr = np.asarray(values, dtype=float)
    tag = ",".join(f"{k}={v}" for k, v in sorted(detail.items()))
    low, high = bootstrap_ci(arr, seed, f"probe/{probe}/{name}/{tag}") if len(arr) else (None, None)
    return ProbeMetric(probe=probe, name=name, value=float(arr.mean()) if len(arr) else float("nan"),
                       ci_low=low, ci_high=high, n=len(arr), preset=preset, detail=detail)  # fmt: skip


def paired_rows(probe: str, pairs: list[tuple[Record, Record]], preset: str, seed: int, drop: str = "drop",
                **detail) -> list[ProbeMetric]:
    """accuracy of the variant, the drop (clean minus variant, paired by parent) and the share of
    answers unchanged, for one variant kind."""
    clean = np.array([correct(p, preset) for p, _ in pairs])
    probed = np.array([correct(v, preset) for _, v in pairs])
    same = np.array([answer_key(p, preset) == answer_key(v, preset) for p, v in pairs], dtype=float)
    return [
        metric(probe, "accuracy", probed, preset, seed, **detail),
        metric(probe, drop, clean - probed, preset, seed, **detail),
        metric(probe, "unchanged_rate", same, preset, seed, **detail),
    ]
