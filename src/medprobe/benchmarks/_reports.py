"""What the report benchmarks (IU-Xray, MIMIC-CXR, CheXpert Plus) share: the section chosen as gold, the
order the views are sent in, and the clinical context the prompt carries.

A report sample's `answer` is the reference text of one section, its `question` the study's clinical
context as the model sees it ("Indication: ..." or empty), and its images the study's views in a stated
order, frontal then lateral. Metadata records `section`, `views` (the order sent, e.g. "frontal,lateral")
and `study_id`, so views and probes never have to guess which image is which.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from medprobe.benchmarks._base import LoadOptions
from medprobe.benchmarks._formats import LoadError, RowError
from medprobe.types import AnswerType, ImageRef, Sample, Scalar

SECTIONS = ("findings", "impression")
FRONTAL, LATERAL = "frontal", "lateral"
_SPACE = re.compile(r"\s+")


def pick_section(options: LoadOptions, sections: Sequence[str] = SECTIONS) -> str:
    """The section asked for with --section (default: the first of `sections`)."""
    section = (options.section or sections[0]).strip().lower()
    if section not in sections:
        raise LoadError(f"--section {options.section!r} is not one of {', '.join(sections)}.")
    return section


def clean(text: object) -> str:
    """Report text with its line layout folded into single spaces ('' for a missing value). The release files
    wrap reports at a fixed width; the line breaks are layout, not content, and word-level metrics ignore them."""
    if text is None or (isinstance(text, float) and math.isnan(text)):  # a missing cell read by pandas
        return ""
    return _SPACE.sub(" ", str(text)).strip()


def context(indication: str) -> str:
    """The prompt's context line for a study's indication or history ('' when there is none)."""
    return f"Indication: {indication}" if indication else ""


def report_sample(*, id: str, benchmark: str, split: str, section: str, gold: str, images: Sequence[ImageRef],
                  views: Sequence[str], indication: str = "", meta: dict[str, Scalar] | None = None) -> Sample:
    """One study as a report sample; a study without the section's text is a RowError (skipped, counted)."""
    if not gold:
        raise RowError(f"no {section.upper()} section in the report (the reference of --section {section})")
    if not images:
        raise RowError("the study lists no image")
    metadata: dict[str, Scalar] = {"section": section, "views": ",".join(views), "image_count": len(images),
                                   "language": "en"}
    if indication:
        metadata["has_indication"] = True
    metadata |= {k: v for k, v in (meta or {}).items() if v not in (None, "")}
    return Sample(id=id, benchmark=benchmark, split=split, question=context(indication), images=tuple(images),
                  answer=gold, answer_type=AnswerType.REPORT, metadata=metadata)
