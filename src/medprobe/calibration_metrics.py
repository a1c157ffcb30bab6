"""Calibration and selective-prediction metrics on (confidence, correct) arrays. Pure numpy/scipy.

`conf` is a float array in [0, 1]; `correct` a 0/1 array of the same length. Ties in confidence
are handled explicitly (never by an arbitrary sort order):

- AUROC counts a tied correct/wrong pair as 1/2 (average ranks; equals Mann-Whitney U / (n1 n0)).
- The risk-coverage curve, AURC and accuracy at a coverage use the *expected* number of errors
  among the k most confident answers when the answers tied at the cut-off are taken in random
  order: errors above the tie group + (share of the group taken) x (errors in the group).
"""

from __future__ import annotations

import math

import numpy as np

N_BINS = 10


def ece_equal_width(conf: np.ndarray, correct: np.ndarray, bins: int = N_BINS) -> float:
    """Expected calibration error over `bins` equal-width bins [0, 1/B), ..., [(B-1)/B, 1] (the last
    bin is closed): sum over bins of (n_bin / n) * |accuracy_bin - mean confidence_bin|."""
    if len(conf) == 0:
        return float("nan")
    return _ece(equal_width_bin(conf, bins), conf, correct, bins)


def equal_width_bin(conf: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """Bin index of each confidence: b such that edge_b <= conf < edge_b+1, edge_b = b / B as a float.
    Compared with the edges, never floor(conf * B): that product rounds, and put 0.8999999999999999
    (just below 0.9) into the 0.9 bin. A confidence exactly on an edge belongs to the bin above it."""
    edges = np.arange(bins + 1) / bins
    return np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)


def ece_equal_mass(conf: np.ndarray, correct: np.ndarray, bins: int = N_BINS) -> float:
    """ECE over `bins` bins of (near) equal size: answers sorted by confidence (stable), split into
    contiguous groups with sizes differing by at most one (`np.array_split`); tied confidences may
    fall into adjacent bins."""
    n = len(conf)
    if n == 0:
        return float("nan")
    order = np.argsort(conf, kind="stable")
    which = np.empty(n, int)
    for b, idx in enumerate(np.array_split(order, min(bins, n))):
        which[idx] = b
    return _ece(which, conf, correct, bins)


def _ece(which: np.ndarray, conf: np.ndarray, correct: np.ndarray, bins: int) -> float:
    conf_sum = np.bincount(which, conf, minlength=bins)
    acc_sum = np.bincount(which, correct.astype(float), minlength=bins)
    return float(np.abs(acc_sum - conf_sum).sum() / len(conf))  # sum_b n_b/n |acc_b - conf_b|


def brier(conf: np.ndarray, correct: np.ndarray) -> float:
    """Mean squared error of the confidence as a probability of being correct."""
    return float(np.mean((conf - correct) ** 2)) if len(conf) else float("nan")


def auroc(conf: np.ndarray, correct: np.ndarray) -> float:
    """P(confidence of a random correct answer > that of a random wrong one), ties 1/2; NaN if one class is empty."""
    pos = correct.astype(bool)
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata  # scipy.stats costs 0.7 s to import: only when AUROC is needed

    ranks = rankdata(conf)  # average ranks for ties
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def expected_errors(conf: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """E[errors among the k most confident answers], k = 1..n, ties taken in random order."""
    n = len(conf)
    order = np.argsort(-conf, kind="stable")
    c, err = conf[order], 1.0 - correct[order].astype(float)
    _, start, counts = np.unique(-c, return_index=True, return_counts=True)
    group = np.repeat(np.arange(len(counts)), counts)
    cum = np.concatenate([[0.0], np.cumsum(err)])
    group_err = cum[start + counts] - cum[start]
    before = start[group]
    k = np.arange(1, n + 1)
    return cum[before] + (k - before) * group_err[group] / counts[group]


def risk_coverage(conf: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, coverage, risk) at each distinct confidence, most confident first: answering only
    when confidence >= threshold covers `coverage` of the items with error rate `risk`."""
    n = len(conf)
    if n == 0:
        return np.array([]), np.array([]), np.array([])
    errs = expected_errors(conf, correct)
    thresholds = np.unique(conf)[::-1]
    k = n - np.searchsorted(np.sort(conf), thresholds, side="left")  # answers with confidence >= threshold
    return thresholds, k / n, errs[k - 1] / k


def aurc(conf: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve: mean over k = 1..n of E[errors in the top k] / k (Geifman et al.)."""
    n = len(conf)
    if n == 0:
        return float("nan")
    return float(np.mean(expected_errors(conf, correct) / np.arange(1, n + 1)))


def accuracy_at_coverage(conf: np.ndarray, correct: np.ndarray, coverage: float) -> float:
    """Accuracy on the ceil(coverage * n) most confident answers (expected value over ties)."""
    n = len(conf)
    if n == 0:
        return float("nan")
    k = max(1, math.ceil(coverage * n - 1e-9))
    return float(1 - expected_errors(conf, correct)[k - 1] / k)


METRICS = {
    "ece": ece_equal_width,
    "ece_equal_mass": ece_equal_mass,
    "brier": brier,
    "auroc": auroc,
    "aurc": aurc,
    "accuracy_at_80": lambda c, y: accuracy_at_coverage(c, y, 0.8),
    "accuracy_at_90": lambda c, y: accuracy_at_coverage(c, y, 0.9),
}


def bootstrap_all(conf: np.ndarray, correct: np.ndarray, rng: np.random.Generator, n_resamples: int,
                  level: float = 0.95) -> dict[str, tuple[float, float]]:  # fmt: skip
    """Percentile intervals of every metric in METRICS from the same item resamples (NaN resamples,
    e.g. AUROC with one class, are skipped)."""
    n = len(conf)
    draws = {name: np.empty(n_resamples) for name in METRICS}
    for i in range(n_resamples):
        idx = rng.integers(0, n, n)
        c, y = conf[idx], correct[idx]
        for name, fn in METRICS.items():
            draws[name][i] = fn(c, y)
    alpha = (1 - level) / 2
    out = {}
    for name, values in draws.items():
        values = values[~np.isnan(values)]
        out[name] = tuple(float(x) for x in np.quantile(values, [alpha, 1 - alpha])) if len(values) else (math.nan, math.nan)
    return out  # type: ignore[return-value]
