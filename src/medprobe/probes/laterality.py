"""laterality: does a report's left and right follow the image? One variant of every report study: each of its
images mirrored left to right (`mirror`). A model that reads the image should move every lateral finding to
the other side ("left pleural effusion" -> "right pleural effusion"); one that writes from a template, or
from the position of the heart alone, keeps them where they were.

Only report samples (`AnswerType.REPORT`) get a variant: a question's gold does not say which side it names,
so a mirrored question has no known right answer. On other samples the probe derives nothing and says so
(one line in the run's skipped list).

The mirrored image is the decoded source image flipped with Pillow's `ImageOps.mirror` and stored losslessly
as PNG, once, named by its sha256 (as the corrupt probe stores its images), so the request holds exactly
the mirrored pixels and a re-run reads the file back by its recipe.

Lateral findings (`lateral_findings`), a rule of medprobe's own, stated with its limits:

* a report is cut into clauses at . ; , : newlines and the words "and", "but", "with", "while", "whereas";
* in a clause, each "left" / "right" (or "left-sided"; the letters L / R are not read) is tied to the nearest
  finding word of `FINDINGS` at most `WINDOW` words away, after it first ("left lower lobe opacity") and
  else before it ("opacity in the right lower lobe"); the finding's name is the word's stem (effusions ->
  effusion); a side word with no finding word near it (a "right heart border" remark) is not a finding;
* a clause that negates or calls normal (`NEGATIONS`: "no left pneumothorax", "the right hilum is normal")
  or says "bilateral" / "both" is skipped: an absent finding has no side to follow, and a bilateral one the
  mirror leaves as it is;
* "left and right" is read as "bilateral", and a finding named on both sides in one report is left out as
  having no side.

Limits: a finding word outside `FINDINGS`, a side given only by anatomy ("cardiac apex"), a negation cue
farther than its clause, and compound clauses the cuts above miss are read wrong or not at all; the figures
are comparisons of one model's two reports, so a misread that is the same in both cancels out. Mirroring
also moves the heart to the right, which a model may read as dextrocardia or as a flipped film.

Figures, over the lateral findings of the seeing (clean) reports, each with a study-level bootstrap interval
(the studies are resampled, every finding of a study with it): `follow_rate` (the mirrored report names the
finding on the other side only), `stay_rate` (on the same side only), `lost_rate` (not named with one side).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from medprobe import imaging
from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.probes._kit import (
    Group,
    ProbeContext,
    ProbeSpec,
    generated_image,
    variant,
)
from medprobe.probes._text import is_report, report_text
from medprobe.stats import bootstrap_ci
from medprobe.types import ImageRef, Sample

NAME = "laterality"
#: enters every mirrored image's recipe: bump it when the mirrored bytes change
VERSION = 1
WINDOW = 6
SIDES = {"left": "left", "right": "right"}
OTHER = {"left": "right", "right": "left"}
#: finding words (stem -> the forms read as it); chest radiograph findings and lines / tubes, whose side the
#: image shows as well
FINDINGS: dict[str, tuple[str, ...]] = {
    "effusion": ("effusion", "effusions"),
    "pneumothorax": ("pneumothorax", "pneumothoraces"),
    "opacity": ("opacity", "opacities", "opacification", "opacifications"),
    "consolidation": ("consolidation", "consolidations", "consolidative"),
    "atelectasis": ("atelectasis", "atelectatic"),
    "nodule": ("nodule", "nodules", "nodular"),
    "mass": ("mass", "masses"),
    "infiltrate": ("infiltrate", "infiltrates", "infiltration"),
    "pneumonia": ("pneumonia",),
    "fracture": ("fracture", "fractures", "fractured"),
    "lesion": ("lesion", "lesions"),
    "granuloma": ("granuloma", "granulomas", "granulomata"),
    "scarring": ("scar", "scarring", "scars"),
    "thickening": ("thickening",),
    "calcification": ("calcification", "calcifications", "calcified"),
    "elevation": ("elevation", "elevated"),
    "catheter": ("catheter", "picc", "line", "port"),
    "tube": ("tube", "drain"),
    "pacemaker": ("pacemaker", "pacer", "icd"),
    "hilar enlargement": ("hilar", "hilum"),
    "airspace disease": ("airspace",),
}
_STEM = {form: stem for stem, forms in FINDINGS.items() for form in forms}
NEGATIONS = ("no", "without", "not", "negative", "free", "resolved", "resolution", "removed", "absent", "clear",
             "normal", "unremarkable")
NOT_LATERAL = ("bilateral", "bilaterally", "both", "bibasilar", "bibasal")
_CLAUSE = re.compile(r"[.;,:\n]+|\b(?:and|but|with|while|whereas)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_BOTH = re.compile(r"\b(?:left|right)\s+(?:and|or|&)\s+(?:left|right)\b")  # "left and right effusions"


def check(spec: ProbeSpec) -> None:
    spec.check()


def lateral_findings(text: str) -> set[tuple[str, str]]:
    """(side, finding) pairs a report names; findings named on both sides are left out (see the module doc)."""
    found: set[tuple[str, str]] = set()
    text = _BOTH.sub("bilateral", text.lower().replace("-sided", "").replace("-", " "))
    for clause in _CLAUSE.split(text):
        words = _WORD.findall(clause or "")
        if not words or any(w in NEGATIONS or w in NOT_LATERAL for w in words):
            continue
        stems = [(j, _STEM[w]) for j, w in enumerate(words) if w in _STEM]
        for i, w in enumerate(words):
            if w not in SIDES or not stems:
                continue
            near = min(stems, key=lambda js: (abs(js[0] - i), js[0] < i))
            if abs(near[0] - i) <= WINDOW:
                found.add((SIDES[w], near[1]))
    both = {f for s, f in found if (OTHER[s], f) in found}
    return {(s, f) for s, f in found if f not in both}


def follows(seeing: set[tuple[str, str]], mirrored: set[tuple[str, str]]) -> list[str]:
    """For each lateral finding of the seeing report: 'followed', 'stayed' or 'lost' in the mirrored one."""
    out = []
    for side, finding in sorted(seeing):
        same, other = (side, finding) in mirrored, (OTHER[side], finding) in mirrored
        out.append("followed" if other and not same else "stayed" if same and not other else "lost")
    return out


@lru_cache(maxsize=64)
def _mirrored(ref: ImageRef, allow: bool) -> bytes:
    from PIL import ImageOps

    buf = io.BytesIO()
    ImageOps.mirror(imaging.open_image(ref, allow_outside_root=allow)).save(buf, format="PNG")
    return buf.getvalue()


def mirror_ref(ref: ImageRef, ctx: ProbeContext) -> ImageRef:
    """`ref` mirrored left to right, from the probe store when made before."""
    digest = imaging.sha256(ref, ctx.allow_outside_root)
    return generated_image(ctx, f"{NAME}/v{VERSION}/mirror/{digest}", f"{ref.describe()}~mirror",
                           lambda _fmt: _mirrored(ref, ctx.allow_outside_root))  # fmt: skip


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    out, questions = [], 0
    for s in samples:
        try:
            if not is_report(s):
                questions += 1
            elif s.images:
                out.append(variant(s, NAME, "mirror", images=tuple(mirror_ref(r, ctx) for r in s.images)))
        except imaging.ImageError as exc:
            ctx.skip(s, exc)
        finally:
            ctx.advance()
    if questions:
        ctx.skipped.append(f"{NAME}: {questions} sample(s) are questions, not reports: a mirrored question has no "
                           "known answer, so the probe compares left/right findings of reports only")  # fmt: skip
    return out


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    labels, studies, invalid, lateral = [], [], 0, 0
    for pid, g in groups.items():
        seeing = report_text(g.parent, preset)
        for v in g.variants:
            mirrored = report_text(v, preset)
            if seeing is None or mirrored is None:
                invalid += 1
                continue
            found = lateral_findings(seeing)
            lateral += bool(found)
            got = follows(found, lateral_findings(mirrored))
            labels += got
            studies += [pid] * len(got)
    failed = sum(len(g.failed) for g in groups.values())
    arr, ids = np.array(labels), np.array(studies, dtype=object)
    rows = tuple(_rate(name, arr, ids, preset, seed, failed, invalid, lateral)
                 for name in ("followed", "stayed", "lost"))  # fmt: skip
    note = (f"{len(labels)} lateral finding(s) in {lateral} seeing report(s) with at least one; "
            f"{invalid} pair(s) with an invalid report left out. follow_rate = share of the seeing report's "
            "lateral findings the mirrored report names on the other side only (rule: medprobe.probes.laterality)")
    return ProbeResult(probe=NAME, headline=rows, note=note)  # every figure is a headline: no breakdown rows


def _rate(kind: str, labels: np.ndarray, studies: np.ndarray, preset: str, seed: int, failed: int, invalid: int,
          lateral: int) -> ProbeMetric:  # fmt: skip
    name = {"followed": "follow_rate", "stayed": "stay_rate", "lost": "lost_rate"}[kind]
    values = (labels == kind).astype(float)
    low, high = bootstrap_ci(values, seed, f"probe/{NAME}/{name}", clusters=studies) if len(values) else (None, None)
    return ProbeMetric(probe=NAME, name=name, value=float(values.mean()) if len(values) else float("nan"),
                       ci_low=low, ci_high=high, n=len(values), failed=failed, preset=preset,
                       detail={"unit": "lateral finding", "studies": lateral, "invalid_pairs": invalid})  # fmt: skip
