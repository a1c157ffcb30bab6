"""Parse and validate rendering settings (window, slice, montage, plane) from CLI flags and CSV cells.

Pure Python: loading a benchmark checks every row's settings without importing pydicom or nibabel.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from medprobe.types import ImageRef, ImageView

#: CT windows as (center, width) in Hounsfield units, from Radiopaedia's "Windowing (CT)" article
PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (50.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
ALIASES = {"soft-tissue": "soft_tissue", "softtissue": "soft_tissue", "soft": "soft_tissue",
           "mediastinal": "mediastinum"}
MODES = ("dicom", "minmax")
PLANES = ("axial", "coronal", "sagittal")
#: row columns that set the view of that row's images (they do not become metadata)
COLUMNS = ("window", "slice", "montage", "plane")
#: plain raster files: a view never applies to them
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def parse_window(text: str | None) -> tuple[float, float] | str | None:
    """(center, width), a mode ('dicom', 'minmax'), or None; ValueError says what is accepted."""
    if text is None or not str(text).strip():
        return None
    name = str(text).strip().lower()
    name = ALIASES.get(name, name)
    if name in PRESETS:
        return PRESETS[name]
    if name in MODES:
        return name
    parts = name.replace(";", ",").split(",")
    try:
        center, width = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"window {text!r} is not a preset ({', '.join([*PRESETS, *MODES])}) nor CENTER,WIDTH "
                         "(e.g. -600,1500)") from None
    if not width > 0:
        raise ValueError(f"window {text!r}: the width must be positive")
    return center, width


def parse_slice(text: str | None) -> str | None:
    """'middle', an integer index, or a fraction in [0, 1] written with a dot; returned normalised."""
    if text is None or not str(text).strip():
        return None
    s = str(text).strip().lower()
    if s in ("middle", "mid", "center", "centre"):
        return "middle"
    try:
        if "." in s:
            f = float(s)
            if not 0.0 <= f <= 1.0:
                raise ValueError
            return repr(f)
        return str(int(s))
    except ValueError:
        raise ValueError(f"slice {text!r} is not 'middle', an index (e.g. 12, -1) or a fraction 0.0-1.0 "
                         "(e.g. 0.25)") from None


def make_view(window: Any = None, slice: Any = None, montage: Any = None, plane: Any = None) -> ImageView | None:
    """A validated ImageView, or None when nothing is set; ValueError on a bad value."""
    parse_window(window)
    if montage is not None and str(montage).strip():
        try:
            montage = int(str(montage).strip())
        except ValueError:
            raise ValueError(f"montage {montage!r} must be a whole number of slices (e.g. 4)") from None
        if not 1 <= montage <= 64:
            raise ValueError(f"montage {montage} must be between 1 and 64 slices")
    else:
        montage = None
    if plane is not None and str(plane).strip():
        plane = str(plane).strip().lower()
        if plane not in PLANES:
            raise ValueError(f"plane {plane!r} must be one of {', '.join(PLANES)}")
    else:
        plane = None
    window = str(window).strip() if window is not None and str(window).strip() else None
    view = ImageView(window=window, slice=parse_slice(slice), montage=montage, plane=plane)
    return view if view != ImageView() else None


def applies_to(ref: ImageRef) -> bool:
    """False for plain raster images (by extension), where a default --window must not apply."""
    name = ref.path or ref.name or ""
    return not (ref.url or name.lower().endswith(RASTER_SUFFIXES))


def with_row_view(images: tuple[ImageRef, ...], row: dict[str, Any], default: ImageView | None) -> tuple[ImageRef, ...]:
    """Images with the row's view columns applied over the run's defaults (CLI flags)."""
    cells = {c: row.get(c) for c in COLUMNS if row.get(c) not in (None, "")}
    base = default.model_dump() if default else {}
    view = make_view(**{**base, **cells}) if cells or default else None
    if view is None:
        return images
    return tuple(r.model_copy(update={"view": view}) if applies_to(r) else r for r in images)


def suffix(name: str) -> str:
    """'.nii.gz' for gzipped NIfTI, else the last suffix, lower case."""
    lower = name.lower()
    return ".nii.gz" if lower.endswith(".nii.gz") else PurePath(lower).suffix
