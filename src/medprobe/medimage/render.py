"""The hook `medprobe.imaging` calls for every image: DICOM/NIfTI sources become PNG bytes plus a
hash of the rendered pixels and the rendering settings (so a new window is a new request key).

Plain PNG/JPEG references are recognised by their extension and cost nothing here.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson

from medprobe import imaging
from medprobe.imaging import ImageError
from medprobe.medimage.view import RASTER_SUFFIXES, suffix
from medprobe.types import ImageRef, ImageView

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: bump when rendering changes in a way that changes pixels for the same settings
RENDER_VERSION = 1


@dataclass(frozen=True)
class Rendered:
    png: bytes
    sha256: str
    shape: tuple[int, ...]


def maybe_render(ref: ImageRef, allow_outside_root: bool = False) -> Rendered | None:
    """The rendered image when `ref` is a DICOM file/series or NIfTI volume, else None (a plain image)."""
    if ref.url is not None:
        return None
    if ref.data is not None:
        kind = _sniff(ref.data[:352])
        return None if kind is None else _render_bytes(ref, kind)
    if ref.path is None:
        return None
    ext = suffix(ref.path)
    if ext in RASTER_SUFFIXES and ref.view is None:
        return None
    path = imaging.resolve_path(ref, allow_outside_root)
    try:
        st = path.stat()
    except FileNotFoundError:
        if ext in (*DICOM_SUFFIXES, *NIFTI_SUFFIXES) or ref.view is not None:
            raise ImageError(f"Image not found: {ref.path}. Check the dataset's image column, or pass --images-dir "
                             "pointing at the folder that holds the images.") from None
        return None  # imaging reports the missing file in its own words
    except OSError as exc:
        raise ImageError(f"Image {ref.path} cannot be read ({exc.strerror}).") from None
    if stat.S_ISDIR(st.st_mode):
        kind, stamp = "dicom", _dir_stamp(path)
    else:
        stamp = (st.st_size, st.st_mtime_ns)
        kind = ("dicom" if ext in DICOM_SUFFIXES else "nifti" if ext in NIFTI_SUFFIXES
                else _sniff_file(str(path), *stamp))  # fmt: skip
    if kind is None:
        if ref.view is not None:
            raise ImageError(f"Image {ref.describe()} is neither DICOM nor NIfTI, but its row sets window/slice/"
                             "montage/plane; drop those settings for plain images.")
        return None
    root = Path(ref.root).resolve() if ref.root else None
    return _render_path(kind, str(path), stamp, ref.view or ImageView(), ref.describe(), root, allow_outside_root)


def _sniff(head: bytes) -> str | None:
    if head[128:132] == b"DICM":
        return "dicom"
    if head[344:348] in (b"n+1\x00", b"ni1\x00"):
        return "nifti"
    if head[:2] == b"\x1f\x8b":  # gzip: a .nii.gz is the only compressed volume we read
        return "nifti-gz"
    return None


@lru_cache(maxsize=65536)
def _sniff_file(path: str, size: int, mtime_ns: int) -> str | None:
    with open(path, "rb") as f:
        kind = _sniff(f.read(352))
    return None if kind == "nifti-gz" else kind  # a .gz without .nii.gz is not assumed to be a volume


def _dir_stamp(folder: Path) -> tuple:
    """Changes when any file in the series folder changes, so an edited series is rendered again."""
    out = []
    with os.scandir(folder) as it:
        for e in it:
            try:
                s = e.stat()
            except OSError:
                continue
            out.append((e.name, s.st_size, s.st_mtime_ns))
    return tuple(sorted(out))


@lru_cache(maxsize=64)
def _render_path(kind: str, path: str, stamp: tuple, view: ImageView, name: str, root: Path | None,
                 allow_outside_root: bool) -> Rendered:
    if kind == "dicom":
        from medprobe.medimage import dicom

        tiles = dicom.render(Path(path), view, name, root, allow_outside_root)
    else:
        from medprobe.medimage import nifti

        tiles = nifti.render(Path(path), view, name)
    return _encode(tiles, view, name)


@lru_cache(maxsize=64)
def _render_bytes(ref: ImageRef, kind: str) -> Rendered:
    view, name = ref.view or ImageView(), ref.describe()
    assert ref.data is not None
    if kind == "dicom":
        from medprobe.medimage import dicom

        return _encode(dicom.render(ref.data, view, name), view, name)
    from medprobe.medimage import nifti

    return _encode(nifti.render(ref.data, view, name), view, name)


def _encode(tiles: list[np.ndarray], view: ImageView, name: str) -> Rendered:
    from PIL import Image

    from medprobe.medimage.window import tile

    if len({t.shape for t in tiles}) > 1:  # NIfTI tiles share a shape; DICOM series are checked earlier
        raise ImageError(f"{name}: slices to tile differ in size.")
    pixels = np.ascontiguousarray(tile(tiles))
    if pixels.shape[0] * pixels.shape[1] > imaging.MAX_PIXELS:
        raise ImageError(f"{name} renders to {pixels.shape[1]}x{pixels.shape[0]} pixels, over the "
                         f"{imaging.MAX_PIXELS:,} limit; use a smaller montage.")
    h = hashlib.sha256(f"medprobe-medimage-{RENDER_VERSION}\n".encode())
    h.update(orjson.dumps(view.model_dump(), option=orjson.OPT_SORT_KEYS))
    h.update(repr((pixels.shape, str(pixels.dtype))).encode())
    h.update(pixels.tobytes())
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB" if pixels.ndim == 3 else "L").save(buf, format="PNG")
    return Rendered(buf.getvalue(), h.hexdigest(), pixels.shape)
