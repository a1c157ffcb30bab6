"""Non-identifying DICOM header fields a user may let into sample metadata (`--dicom-tag`).

By default no header value leaves a DICOM file. A user may allow a few fields that describe the
acquisition, not the patient, so reports can break accuracy down by them (Modality -> the
`modality` subgroup, BodyPartExamined -> `organ`). The list is closed on purpose: free-text fields
such as StudyDescription or SeriesDescription routinely carry names and dates, and are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medprobe import imaging
from medprobe.imaging import ImageError
from medprobe.types import ImageRef, Scalar

#: DICOM keyword -> metadata key (the subgroup keys of medprobe.results where one exists)
ALLOWED: dict[str, str] = {
    "Modality": "modality",
    "BodyPartExamined": "organ",
    "ViewPosition": "view_position",
    "ImageLaterality": "laterality",
    "Laterality": "laterality",
    "SliceThickness": "slice_thickness",
}
_MAX_CHARS = 64


def check(names: Sequence[str]) -> tuple[str, ...]:
    """The requested keywords, or ValueError naming the refused ones and the allowed list."""
    refused = [n for n in names if n not in ALLOWED]
    if refused:
        raise ValueError(
            f"--dicom-tag {', '.join(refused)} is not allowed: only non-identifying acquisition fields may enter "
            f"metadata ({', '.join(ALLOWED)}); patient, study and free-text fields never leave the file."
        )
    return tuple(dict.fromkeys(names))


def read(ref: ImageRef, names: Sequence[str], allow_outside_root: bool = False) -> dict[str, Scalar]:
    """The allowed fields of a DICOM file (or a series folder's first file), as metadata; {} when the
    image is not DICOM or cannot be read (the image's own error is reported when it is rendered)."""
    from medprobe.medimage import dicom
    from medprobe.medimage.render import DICOM_SUFFIXES

    if not names or ref.path is None or ref.data is not None:
        return {}
    try:
        path = imaging.resolve_path(ref, allow_outside_root)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.name.upper() != "DICOMDIR")
            path = files[0] if files else path
        elif not path.name.lower().endswith(DICOM_SUFFIXES) and not _has_marker(path):
            return {}
        ds = dicom.read(path, ref.describe(), tags=list(check(names)))
    except (ImageError, OSError):
        return {}
    out: dict[str, Scalar] = {}
    for keyword in names:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        number = isinstance(value, (int, float)) or type(value).__name__ in ("DSfloat", "IS", "DSdecimal")
        out[ALLOWED[keyword]] = float(value) if number else str(value).strip()[:_MAX_CHARS]
    return out


def _has_marker(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False
