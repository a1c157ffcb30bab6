"""NIfTI volumes (.nii, .nii.gz) to 8-bit slices (nibabel, extra `medprobe[nifti]`).

Every volume is first reoriented to the closest canonical (RAS+) orientation, so "axial middle
slice" means the same anatomy whatever order the file stores its axes in. Slices are shown in the
radiological convention: patient right on the image left; anterior up (axial), superior up
(coronal, sagittal); anterior on the left in sagittal. Voxel spacing is honoured (thick slices are
stretched), and 4D files show their first volume.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from medprobe.imaging import ImageError
from medprobe.medimage import window as win
from medprobe.medimage.view import parse_window
from medprobe.types import ImageView

MAX_VOXELS = 256_000_000
MAX_FILE_BYTES = 2 * 2**30
_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


def _require():
    try:
        import nibabel
    except ImportError:
        raise ImageError("Reading NIfTI needs nibabel: pip install 'medprobe[nifti]'.") from None
    return nibabel


def _load(source: Path | bytes, name: str):
    nib = _require()
    try:
        if isinstance(source, bytes):
            data = gzip.decompress(source) if source[:2] == b"\x1f\x8b" else source
            return nib.Nifti1Image.from_bytes(data)
        if source.stat().st_size > MAX_FILE_BYTES:
            raise ImageError(f"NIfTI image {name} is over the {MAX_FILE_BYTES // 2**30} GB limit.")
        return nib.load(str(source))
    except ImageError:
        raise
    except Exception as exc:  # nibabel raises HeaderDataError, ImageFileError, EOFError, ...
        raise ImageError(f"NIfTI image {name} cannot be read ({type(exc).__name__}: {exc}). Check it is a .nii/.nii.gz "
                         "volume; re-export it if it is truncated.") from None


def render(source: Path | bytes, view: ImageView, name: str) -> list[np.ndarray]:
    """The 8-bit tiles to show: chosen slice(s) of the chosen plane, windowed."""
    img = _load(source, name)
    shape = tuple(int(d) for d in img.header.get_data_shape())
    if len(shape) < 3 or any(d <= 0 for d in shape):
        raise ImageError(f"NIfTI image {name} has shape {shape}; a volume needs 3 dimensions (4D: first volume is used).")
    if int(np.prod(shape[:3], dtype=np.int64)) > MAX_VOXELS:
        raise ImageError(f"NIfTI image {name} declares {shape[:3]} voxels, over the {MAX_VOXELS:,} limit "
                         "(possible decompression bomb). Crop or downsample it.")
    try:
        if len(shape) > 3:  # first volume only, without reading the others
            nib = _require()
            first = np.asarray(img.dataobj[(slice(None),) * 3 + (0,) * (len(shape) - 3)], dtype=np.float32)
            img = nib.Nifti1Image(first, img.affine, img.header)
        img = _require().as_closest_canonical(img)
        volume = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # the header promises more data than the file holds, or a singular affine
        raise ImageError(f"NIfTI image {name} is inconsistent with its header ({type(exc).__name__}: {exc}); "
                         "the file is truncated or its header is wrong. Re-export it.") from None
    zooms = tuple(float(z) for z in np.sqrt((np.asarray(img.affine)[:3, :3] ** 2).sum(axis=0)))  # voxel mm
    plane = view.plane or "axial"
    axis = _AXIS[plane]
    try:
        picked = win.pick(volume.shape[axis], view.slice, view.montage, f"NIfTI image {name} ({plane})")
    except ValueError as exc:
        raise ImageError(f"{exc}.") from None
    slices = [_display(np.take(volume, i, axis=axis)) for i in picked]
    mode = parse_window(view.window)
    if isinstance(mode, tuple):
        out = [win.linear(s, *mode) for s in slices]
    else:  # NIfTI has no stored window: 'dicom' means min-max too
        stack = np.stack(slices)
        out = [win.minmax(s, over=stack) for s in stack]
    spacing = [z for i, z in enumerate(zooms) if i != axis]  # (row axis, column axis) before _display
    return [_aspect(o, col_mm=spacing[0], row_mm=spacing[1]) for o in out]


def _display(s: np.ndarray) -> np.ndarray:
    """A 2D slice of a RAS volume (axes: first remaining, second remaining) in viewer orientation."""
    # second remaining axis (A or S) points up; the first (R or A) points left: patient right on the
    # image left in axial and coronal, anterior on the left in sagittal
    return np.flipud(s.T)[:, ::-1]


def _aspect(img: np.ndarray, col_mm: float, row_mm: float) -> np.ndarray:
    """Stretch so one pixel is square in millimetres (a coronal slice of 5 mm axial slices is not flat)."""
    if not (col_mm > 0 and row_mm > 0) or abs(col_mm - row_mm) / max(col_mm, row_mm) < 0.01:
        return img
    from PIL import Image

    h, w = img.shape
    base = min(col_mm, row_mm)
    size = (max(1, round(w * col_mm / base)), max(1, round(h * row_mm / base)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))
