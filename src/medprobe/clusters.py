"""Which questions belong together when intervals are resampled (`--cluster-key`).

Questions about one image are not independent: a model that misreads an image tends to miss every
question about it. The default cluster is therefore the image: the first image of the sample,
named by what is known at scoring time without reading pixels (its path under the dataset root, its
URL, or the sha256 of in-memory bytes). Any metadata column can be the key instead (a patient or
study id, when the benchmark has one); `none` resamples questions. A sample with no image, or
without the column, is a cluster of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medprobe.stats import N_RESAMPLES, bootstrap_ci, interval_method
from medprobe.types import ImageRef, Sample

IMAGE = "image"
NONE = "none"
DEFAULT = IMAGE


def labels(samples: Sequence[Sample], key: str | None = DEFAULT) -> np.ndarray | None:
    """One integer cluster label per sample, or None for per-question resampling (`key` none)."""
    if key in (None, NONE):
        return None
    if key != IMAGE and samples and not any(key in s.metadata for s in samples):
        have = sorted({k for s in samples for k in s.metadata})
        raise ValueError(f"--cluster-key {key}: no sample has a metadata column {key!r}. Use image (default), "
                         f"none, or one of: {', '.join(have) or '(no metadata columns)'}.")  # fmt: skip
    seen: dict[tuple, int] = {}
    return np.array([seen.setdefault(_identity(s, key), len(seen)) for s in samples], dtype=np.int64)


def unit(key: str | None = DEFAULT) -> str:
    """What one resampled unit is, in words: 'image', 'question' or the metadata column's name."""
    return "question" if key in (None, NONE) else key


def method(key: str | None = DEFAULT, n_resamples: int = N_RESAMPLES) -> str:
    """The interval method of figures computed with this key (see stats.interval_method)."""
    return interval_method(unit(key), n_resamples)


@dataclass(frozen=True)
class Resampling:
    """Cluster labels of one record list, computed once, and the interval method they give."""

    labels: np.ndarray | None
    key: str | None = DEFAULT
    n_resamples: int = N_RESAMPLES

    @classmethod
    def of(cls, samples: Sequence[Sample], key: str | None = DEFAULT, n_resamples: int = N_RESAMPLES) -> Resampling:
        if key == IMAGE and not any(s.images for s in samples):
            key = NONE  # text-only questions: each is its own cluster, so say so
        return cls(labels(samples, key), key, n_resamples)

    @property
    def method(self) -> str:
        return method(self.key, self.n_resamples)

    def ci(self, values: np.ndarray, idx: np.ndarray, seed: int, name: str) -> tuple[float, float]:
        """bootstrap_ci of `values` (the rows `idx` of the record list), resampling their clusters."""
        return bootstrap_ci(values, seed, name, self.n_resamples, clusters=self._groups(idx))

    def method_for(self, idx: np.ndarray) -> str:
        """The interval method of the rows `idx`: questions about a single image have no clusters to
        resample, so they fall back to resampling questions, and say so."""
        if self.labels is not None and self._groups(idx) is None:
            return interval_method(f"question ({len(idx)} questions, one {unit(self.key)})", self.n_resamples)
        return self.method

    def count(self, idx: np.ndarray) -> int | None:
        """Distinct clusters among the rows `idx` (None when questions are resampled)."""
        return None if self.labels is None else len(np.unique(self.labels[idx]))

    def _groups(self, idx: np.ndarray) -> np.ndarray | None:
        if self.labels is None or (len(idx) > 1 and self.count(idx) == 1):
            return None
        return self.labels[idx]


def _identity(sample: Sample, key: str) -> tuple:
    if key == IMAGE:
        return _image_identity(sample.images[0]) if sample.images else ("sample", sample.id)
    value = sample.metadata.get(key)
    return ("sample", sample.id) if value in (None, "") else ("value", str(value))


def _image_identity(image: ImageRef) -> tuple:
    if image.data is not None:
        return ("sha256", hashlib.sha256(image.data).hexdigest())
    if image.path is not None:
        return ("path", image.root or "", image.path)  # another window of the same scan is the same image
    return ("url", image.url or image.describe())
