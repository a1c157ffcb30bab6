"""DICOM files and series folders to 8-bit pixels (pydicom, extra `medprobe[dicom]`).

PHI stays in the file: every read asks pydicom for the pixel-module tags only (`specific_tags`), so
patient, study, institution and date elements are never even parsed, and no message built here can
quote them. Pixels go through the modality LUT (rescale slope/intercept) and then the chosen window,
or the file's own VOI LUT / window; MONOCHROME1 is inverted so that bright always means dense.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medprobe.imaging import ImageError
from medprobe.medimage import window as win
from medprobe.medimage.view import parse_window
from medprobe.types import ImageView

#: refuse to decode more pixels than this (a tiny file may declare huge dimensions)
MAX_PIXELS = 256_000_000
MAX_FILE_BYTES = 2 * 2**30
MAX_SERIES_FILES = 5000
_PIXEL_TAGS = [
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames", "Rows", "Columns",
    "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept",
    "RescaleType", "ModalityLUTSequence", "VOILUTSequence", "WindowCenter", "WindowWidth", "VOILUTFunction",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths",
    "PixelData", "FloatPixelData", "DoubleFloatPixelData",
]  # fmt: skip
_SORT_TAGS = ["Rows", "Columns", "NumberOfFrames", "SeriesInstanceUID", "ImagePositionPatient",
              "ImageOrientationPatient", "InstanceNumber"]  # fmt: skip
_HANDLER_HINT = ("pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (JPEG, JPEG-LS, JPEG 2000), "
                 "or convert the file to an uncompressed transfer syntax (e.g. gdcmconv --raw)")


def _require():
    try:
        import pydicom
    except ImportError:
        raise ImageError("Reading DICOM needs pydicom: pip install 'medprobe[dicom]'.") from None
    return pydicom


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """pydicom warns about odd values on stderr; only pixel tags are read, but stay silent anyway."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def read(source: Path | bytes, name: str, tags: list[str] = _PIXEL_TAGS) -> Any:
    """A dataset holding only `tags` (plus file meta); ImageError for non-DICOM, truncated or corrupt files."""
    pydicom = _require()
    from pydicom.errors import InvalidDicomError

    fp = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with _quiet():
            return pydicom.dcmread(fp, specific_tags=tags, stop_before_pixels=tags is _SORT_TAGS)
    except InvalidDicomError:
        raise ImageError(f"{name} is not a DICOM file (no 'DICM' marker at byte 128). Check the image column, "
                         "or re-export the file as DICOM Part 10.") from None
    except Exception as exc:  # truncated/corrupt files raise EOFError, ValueError, struct.error, ...
        raise ImageError(f"DICOM image {name} cannot be read ({type(exc).__name__}); the file is truncated or corrupt. "
                         "Re-export or replace it.") from None


@dataclass(frozen=True)
class _Frames:
    values: np.ndarray  # (n, h, w) modality values as float, or (n, h, w, 3) uint8 colour
    ds: Any
    color: bool
    invert: bool


def _frames(ds: Any, name: str) -> _Frames:
    """All frames of one dataset after the modality LUT."""
    from pydicom import pixels

    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageError(f"DICOM image {name} has no pixel data (a report, presentation state or DICOMDIR?). "
                         "Point the image column at an image file or a series folder.")
    n = int(ds.get("NumberOfFrames") or 1)
    total = int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * n * int(ds.get("SamplesPerPixel") or 1)
    if total > MAX_PIXELS:
        raise ImageError(f"DICOM image {name} declares {total:,} pixel values, over the {MAX_PIXELS:,} limit "
                         "(possible decompression bomb). Split or downsample it before evaluation.")
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    try:
        with _quiet():
            arr = ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        if "missing" in str(exc) or "plugin" in str(exc) or "handler" in str(exc):
            missing = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip())
            what = syntax.name if syntax is not None else "this transfer syntax"
            raise ImageError(f"DICOM image {name} is compressed with {what}, which no installed decoder handles"
                             f"{f' ({missing})' if missing else ''}. Install one: {_HANDLER_HINT}.") from None
        raise ImageError(f"DICOM image {name} pixel data cannot be decoded ({exc}). Re-export or replace it.") from None
    except Exception as exc:
        raise ImageError(f"DICOM image {name} pixel data cannot be decoded ({type(exc).__name__}: {exc}); the file is "
                         "truncated or corrupt. Re-export or replace it.") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        arr, photometric = pixels.apply_color_lut(arr, ds), "RGB"
    color = int(ds.get("SamplesPerPixel") or 1) == 3 or photometric == "RGB"
    if n == 1:
        arr = arr[None]
    if color:
        if arr.dtype != np.uint8:
            arr = win.minmax(arr.astype(np.float32))
        return _Frames(arr, ds, True, False)
    values = pixels.apply_modality_lut(arr, ds).astype(np.float32)
    return _Frames(values, ds, False, photometric == "MONOCHROME1")


def _to_8bit(frames: list[_Frames], view: ImageView, name: str) -> list[np.ndarray]:
    """Window every shown frame: an explicit window, else the file's VOI LUT / window, else min-max."""
    from pydicom import pixels

    mode = parse_window(view.window)
    if frames[0].color:
        if mode is not None:
            raise ImageError(f"DICOM image {name} is a colour image; a window applies to greyscale only. "
                             "Drop the window setting for this row.")
        return [img for f in frames for img in f.values]
    if mode == "minmax" or (mode in (None, "dicom") and not _has_voi(frames[0].ds)):
        stack = np.stack([img for f in frames for img in f.values])
        out = [win.minmax(img, over=stack) for img in stack]
    elif isinstance(mode, tuple):
        out = [win.linear(img, *mode) for f in frames for img in f.values]
    else:  # the file's own VOI: a LUT sequence or window center/width (first pair when several)
        out = []
        for f in frames:
            if "VOILUTSequence" in f.ds:
                out += [win.minmax(pixels.apply_voi_lut(img, f.ds, index=0).astype(np.float32)) for img in f.values]
            elif _has_voi(f.ds):
                center, width = (float(_first(f.ds.WindowCenter)), float(_first(f.ds.WindowWidth)))
                out += [win.linear(img, center, max(width, 1.0)) for img in f.values]
            else:
                out += [win.minmax(img) for img in f.values]
    inverted = (255 - img if f.invert else img for f, img in zip(_each_frame(frames), out, strict=True))
    return list(inverted)


def _each_frame(frames: list[_Frames]) -> Iterator[_Frames]:
    for f in frames:
        for _ in range(len(f.values)):
            yield f


def _has_voi(ds: Any) -> bool:
    return "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else value


def render(source: Path | bytes, view: ImageView, name: str, root: Path | None = None,
           allow_outside_root: bool = False) -> list[np.ndarray]:
    """The 8-bit tiles to show: chosen frame(s) of a file, or chosen slice(s) of a series folder."""
    if isinstance(source, Path) and source.is_dir():
        files = series(source, name, root, allow_outside_root)
        picked = _pick(len(files), view, f"DICOM series {name}")
        frames = [_frames(read(_checked_size(files[i], name), name), name) for i in picked]
        if any(len(f.values) != 1 for f in frames):
            raise ImageError(f"DICOM series {name} mixes multi-frame files with slices; give the multi-frame "
                             "file itself as the image.")
        if len({f.values.shape[1:] for f in frames}) > 1:
            raise ImageError(f"DICOM series {name} has slices of different sizes; split it into one folder per series.")
        return _to_8bit(frames, view, name)
    one = _frames(read(_checked_size(source, name) if isinstance(source, Path) else source, name), name)
    picked = _pick(len(one.values), view, f"DICOM image {name}")
    return _to_8bit([_Frames(one.values[picked], one.ds, one.color, one.invert)], view, name)


def _pick(n: int, view: ImageView, what: str) -> list[int]:
    try:
        return win.pick(n, view.slice, view.montage, what)
    except ValueError as exc:
        raise ImageError(f"{exc}.") from None


def _checked_size(path: Path, name: str) -> Path:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImageError(f"DICOM image {name} is over the {MAX_FILE_BYTES // 2**30} GB limit.")
    return path


def series(folder: Path, name: str, root: Path | None, allow_outside_root: bool) -> list[Path]:
    """The folder's DICOM slices in spatial order (position along the slice normal, else InstanceNumber).

    Non-DICOM files (README, .DS_Store, DICOMDIR) are skipped; a file or symlink resolving outside the
    dataset root is refused like any image path.
    """
    _require()  # a missing pydicom must not look like a folder without DICOM files
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name.upper() != "DICOMDIR")
    if len(entries) > MAX_SERIES_FILES:
        raise ImageError(f"DICOM series {name} holds {len(entries)} files, over the {MAX_SERIES_FILES} limit; "
                         "give one file, or split the folder.")
    found: list[tuple[tuple, Path]] = []
    uids = set()
    for path in entries:
        real = path.resolve()
        if root is not None and not allow_outside_root and not real.is_relative_to(root.resolve()):
            raise ImageError(f"DICOM series {name}: {path.name} points outside the dataset root; refusing to read it. "
                             "Replace the link with the file, or pass --allow-outside-root if you trust it.")
        if not real.is_file():
            continue
        try:
            ds = read(path, name, _SORT_TAGS)
        except ImageError:
            continue  # not a DICOM file: skipped
        if "Rows" not in ds:
            continue  # no image (a report, a presentation state)
        uids.add(str(ds.get("SeriesInstanceUID", "")))
        found.append((_position(ds), path))
    if not found:
        raise ImageError(f"DICOM series folder {name} holds no readable DICOM image files. "
                         "Check the image column points at the series folder.")
    if len(uids) > 1:  # the UIDs themselves are never shown
        raise ImageError(f"DICOM folder {name} mixes {len(uids)} series; put each series in its own folder.")
    found.sort(key=lambda item: (item[0], item[1].name))
    return [path for _, path in found]


def _position(ds: Any) -> tuple:
    try:
        orientation = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=float)
        position = np.array([float(v) for v in ds.ImagePositionPatient], dtype=float)
        normal = np.cross(orientation[:3], orientation[3:])
        return (0, float(position @ normal))
    except (AttributeError, ValueError, TypeError):
        pass
    try:
        return (1, float(ds.InstanceNumber))
    except (AttributeError, ValueError, TypeError):
        return (2, 0.0)
