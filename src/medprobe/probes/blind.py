"""blind: does the model look at the image? Three variants of every sample with images:

* `none`: no image at all (the question alone);
* `blank`: a black image of the same size and mode;
* `mismatch`: the image(s) of another sample showing a different image, of the same modality
  when the samples carry a `modality` (else `organ`) label, chosen with the probe's seed.

Blind gap = accuracy seeing minus accuracy blind, paired by parent (a model that ignores images
has a gap of 0 and answers unchanged everywhere). A sample whose image does not decode gets no
variant (listed as skipped) and never lends its image to a mismatch.

On reports (`AnswerType.REPORT`) the same variants are compared as text: ROUGE-L and BLEU-4 of the blind
report against the seeing one (how much of a report is template) and against the reference, with
study-level intervals (medprobe.probes._similarity).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache

from medprobe.probes import _similarity
from medprobe.probes._base import ProbeResult
from medprobe.probes._kit import (Group, ProbeContext, ProbeSpec, by_variant, correct, failed_by_variant,
                                  generated_image, metric, paired_rows, rng, variant)
from medprobe.probes._text import split_reports
from medprobe.types import ImageRef, Sample

NAME = "blind"
KINDS = ("none", "blank", "mismatch")


def check(spec: ProbeSpec) -> None:
    spec.check(KINDS)


@lru_cache(maxsize=64)
def blank_png(width: int, height: int, mode: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (width, height), 0).save(buf, format="PNG")
    return buf.getvalue()


def _blank(ctx: ProbeContext, width: int, height: int, mode: str) -> ImageRef:
    return generated_image(ctx, f"blank/{width}x{height}/{mode}", "blank.png", lambda _: blank_png(width, height, mode))


def _identity(ref: ImageRef) -> str:
    return ref.path and f"{ref.root}/{ref.path}" or ref.url or str(hash(ref.data))


def _group_key(sample: Sample) -> str | None:
    for key in ("modality", "organ"):
        if sample.metadata.get(key) not in (None, ""):
            return f"{key}={sample.metadata[key]}"
    return None


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    kinds = ctx.spec.words or KINDS
    # (sample, (width, height, mode) of each image): only samples whose every image decodes
    readable = []
    for s in samples:
        if s.images and (sizes := ctx.sizes(s)) is not None:
            readable.append((s, sizes))
        ctx.advance()  # the decoding is the slow part; the variants below are quick
    with_images = [s for s, _ in readable]
    by_group: dict[str | None, list[Sample]] = {}
    for s in with_images:
        by_group.setdefault(_group_key(s), []).append(s)
    out = []
    for s, sizes in readable:
        if "none" in kinds:
            out.append(variant(s, NAME, "none", images=()))
        if "blank" in kinds:
            blanks = tuple(_blank(ctx, *size) for size in sizes)
            out.append(variant(s, NAME, "blank", images=blanks))
        if "mismatch" in kinds:
            mine = {_identity(r) for r in s.images}
            pool = [o for o in by_group.get(_group_key(s), []) if not mine & {_identity(r) for r in o.images}]
            same = bool(pool) and _group_key(s) is not None
            if not pool:  # no other image in the same group: any other image
                pool = [o for o in with_images if not mine & {_identity(r) for r in o.images}]
            if pool:
                other = pool[int(rng(ctx.seed, s.id, NAME).integers(len(pool)))]
                out.append(variant(s, NAME, "mismatch", images=other.images,
                                   detail={"mismatch_from": other.id, "mismatch_same_group": same}))  # fmt: skip
    return out


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    reports, groups = split_reports(groups)
    headline, rows = _reports(reports, preset, seed) if reports else ([], [])
    kinds, failed = by_variant(groups), failed_by_variant(groups)
    for kind in [k for k in KINDS if k in kinds or k in failed]:
        pairs, lost = kinds.get(kind, []), failed.get(kind, 0)
        rows.append(metric(NAME, "clean_accuracy", [correct(p, preset) for p, _ in pairs], preset, seed, lost, variant=kind))
        block = paired_rows(NAME, pairs, preset, seed, drop="blind_gap", failed=lost, variant=kind)
        rows += block
        headline += [m for m in block if m.name in ("blind_gap", "unchanged_rate")]
    note = "; ".join(filter(None, [NOTE if groups else None, REPORT_NOTE if reports else None]))
    return ProbeResult(probe=NAME, headline=tuple(headline), rows=tuple(rows), note=note)


NOTE = ("blind_gap = clean accuracy minus accuracy without the real image, per variant kind (none = no image, "
        "blank = black image, mismatch = another sample's image)")
REPORT_NOTE = ("on reports: rouge_l/bleu4_to_seeing = similarity of the blind report to the seeing one (1 = "
               "all template), *_to_reference = blind report vs the reference, *_drop = seeing minus blind, "
               "paired by study; intervals resample studies")


def _reports(groups: dict[str, Group], preset: str, seed: int) -> tuple[list, list]:
    """(headline, rows) of the report studies: text similarity per variant kind (medprobe.probes._similarity)."""
    kinds, failed = by_variant(groups), failed_by_variant(groups)
    rows = _similarity.clean_rows(NAME, [g.parent for g in groups.values()], preset, seed)
    headline = []
    for kind in [k for k in KINDS if k in kinds or k in failed]:
        block = _similarity.blind(NAME, kinds.get(kind, []), preset, seed, failed.get(kind, 0), {"variant": kind})
        rows += block
        headline += [m for m in block if m.name in ("rouge_l_to_seeing", "bleu4_to_seeing", "rouge_l_drop")]
    return headline, rows
