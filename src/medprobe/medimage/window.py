"""Windowing to 8 bits, slice choice and montage tiling: numpy only, shared by DICOM and NIfTI."""

from __future__ import annotations

import math

import numpy as np


def linear(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map [center - width/2, center + width/2] linearly onto 0..255, clipping outside.

    The plain linear window most viewers use; DICOM PS3.3 C.11.2.1.2.1 shifts it by half a unit
    (center - 0.5, width - 1), a difference below one grey level for CT widths.
    """
    low = center - width / 2.0
    scaled = (values.astype(np.float64) - low) / width
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def minmax(values: np.ndarray, over: np.ndarray | None = None) -> np.ndarray:
    """Stretch the range of `over` (default: `values`) onto 0..255; a constant image becomes 0."""
    ref = values if over is None else over
    finite = ref[np.isfinite(ref)]
    if finite.size == 0:
        return np.zeros(values.shape, np.uint8)
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    return linear(np.nan_to_num(values, nan=low), (low + high) / 2.0, high - low)


def pick(n: int, slice_spec: str | None, montage: int | None, what: str) -> list[int]:
    """Indexes of the slices to show out of `n`: one (middle, index, fraction) or k evenly spaced.

    A montage takes the centres of k equal bins ((i + 0.5) * n / k), so it never shows only the
    empty first and last slices of a volume.
    """
    if n <= 0:
        raise ValueError(f"{what} has no slices")
    if montage:
        k = min(montage, n)
        return [min(n - 1, int((i + 0.5) * n / k)) for i in range(k)]
    if slice_spec in (None, "middle"):
        return [n // 2]
    if "." in slice_spec:
        return [int(round(float(slice_spec) * (n - 1)))]
    index = int(slice_spec)
    if not -n <= index < n:
        raise ValueError(f"slice {index} is out of range: {what} has {n} slice(s) (0-{n - 1}); "
                         "use 'middle' or a fraction like 0.5")
    return [index % n]


def tile(images: list[np.ndarray]) -> np.ndarray:
    """Tiles in a near-square grid (row-major, black padding); all tiles must have one shape."""
    if len(images) == 1:
        return images[0]
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h, w = images[0].shape[:2]
    out = np.zeros((rows * h, cols * w, *images[0].shape[2:]), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = img
    return out
