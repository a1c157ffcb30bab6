"""Seeded bootstrap intervals, by question or by cluster.

Every headline number and every subgroup row gets a 95% percentile-bootstrap interval, seeded by
(run seed, metric name) so the same run always reports the same interval.

Questions about one image are not independent (VQA-RAD asks its 451 test questions about ~200
images; SLAKE and ProbMed likewise), so resampling questions makes intervals too narrow. With
`clusters` (a label per value, e.g. the image each question is about) whole clusters are resampled
instead: the cluster bootstrap of a mean (Davison & Hinkley 1997, sec. 3.8; Field & Welsh 2007,
"Bootstrapping clustered data"), each resample's mean being sum(values) / count over the drawn
clusters.
"""

from __future__ import annotations

import zlib

import numpy as np

N_RESAMPLES = 1000


def rng_for(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def interval_method(unit: str = "question", n_resamples: int = N_RESAMPLES, level: float = 0.95) -> str:
    """How an interval was computed, in words every figure carries, e.g. 'cluster bootstrap by
    image, 1000 resamples, 95% percentile' or 'bootstrap by question, 1000 resamples, 95% percentile'."""
    kind = f"bootstrap by {unit}" if unit.startswith("question") else f"cluster bootstrap by {unit}"
    return f"{kind}, {n_resamples} resamples, {round(100 * level)}% percentile"


def bootstrap_ci(
    values: np.ndarray, seed: int, name: str, n_resamples: int = N_RESAMPLES, level: float = 0.95,
    clusters: np.ndarray | None = None,
) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap interval of the mean of `values`.

    `clusters`: one label per value (any hashable dtype numpy can sort); whole clusters are resampled
    with replacement. A single cluster holding several values gives NaN (no spread can be estimated
    from one cluster). Labels all distinct = the per-value bootstrap, drawn exactly as without them.
    """
    n = len(values)
    if n == 0:
        return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    low, high = np.quantile(bootstrap_means(values, rng_for(seed, name), n_resamples, clusters), [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_means(
    values: np.ndarray, rng: np.random.Generator, n_resamples: int = N_RESAMPLES, clusters: np.ndarray | None = None
) -> np.ndarray:
    """The means of `n_resamples` bootstrap resamples of `values` (of its clusters, when given)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if clusters is not None:
        _, label = np.unique(np.asarray(clusters), return_inverse=True)
        k = int(label.max()) + 1 if n else 0
        if k == 1 and n > 1:
            return np.full(n_resamples, np.nan)
        if k < n:
            return _cluster_means(np.bincount(label, values, k), np.bincount(label, minlength=k).astype(float),
                                  rng, n_resamples)  # fmt: skip
    if np.all((values == 0) | (values == 1)):
        # For 0/1 values the mean of a resample of size n is Binomial(n, p)/n exactly, so we draw that
        # directly: the same distribution as resampling indices, at O(n_resamples) cost instead of
        # O(n * n_resamples) (matters for 100k-row benchmarks with many subgroups).
        return rng.binomial(n, float(values.mean()), size=n_resamples) / n
    return _cluster_means(values, np.ones(n), rng, n_resamples)


def _cluster_means(sums: np.ndarray, sizes: np.ndarray, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """Draw k of the k clusters with replacement per resample; mean = drawn sums / drawn sizes."""
    k = len(sums)
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // k)  # bound memory: at most ~2M indices at once
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, k, size=(stop - start, k))
        means[start:stop] = sums[idx].sum(axis=1) / sizes[idx].sum(axis=1)
    return means
