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
    # average ranks for ties (what scipy.stats.rankdata does, without its 0.7 s import, which a
    # re-scored run with 1,000 bootstrap resamples paid for on every start)
    _, which, counts = np.unique(conf, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[which]
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
    # one draw per resample, as before (the same intervals for a seed), then every metric on all
    # resamples at once: 7,000 small numpy calls cost a re-scored run most of a second
    idx = np.stack([rng.integers(0, n, n) for _ in range(n_resamples)]) if n else np.zeros((n_resamples, 0), int)
    draws = resampled_metrics(conf[idx], correct[idx].astype(float))
    alpha = (1 - level) / 2
    out = {}
    for name, values in draws.items():
        values = values[~np.isnan(values)]
        out[name] = tuple(float(x) for x in np.quantile(values, [alpha, 1 - alpha])) if len(values) else (math.nan, math.nan)
    return out  # type: ignore[return-value]


def resampled_metrics(conf: np.ndarray, correct: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric in METRICS of each row of (resamples x n) arrays, equal to calling the metric on
    that row (same tie rules, same sums in the same order)."""
    rows, n = conf.shape
    nan = np.full(rows, np.nan)
    if n == 0:
        return {name: nan for name in METRICS}
    out = {"brier": np.mean((conf - correct) ** 2, axis=1)}
    offset = (np.arange(rows) * N_BINS)[:, None]

    def ece(which: np.ndarray) -> np.ndarray:
        flat = (which + offset).ravel()
        conf_sum = np.bincount(flat, conf.ravel(), minlength=rows * N_BINS).reshape(rows, N_BINS)
        acc_sum = np.bincount(flat, correct.ravel(), minlength=rows * N_BINS).reshape(rows, N_BINS)
        return np.abs(acc_sum - conf_sum).sum(axis=1) / n

    out["ece"] = ece(equal_width_bin(conf))
    order = np.argsort(conf, axis=1, kind="stable")
    by_position = np.empty(n, int)
    for b, part in enumerate(np.array_split(np.arange(n), min(N_BINS, n))):
        by_position[part] = b
    which = np.empty_like(order)
    np.put_along_axis(which, order, np.broadcast_to(by_position, order.shape), axis=1)
    out["ece_equal_mass"] = ece(which)
    # AUROC: average ranks of tie groups in ascending order
    c = np.take_along_axis(conf, order, axis=1)
    start, end = _tie_groups(c)
    y = np.take_along_axis(correct, order, axis=1)
    n1 = y.sum(axis=1)
    n0 = n - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        ranks = (start + end) / 2 + 1
        auc = ((ranks * y).sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    out["auroc"] = np.where((n1 == 0) | (n0 == 0), np.nan, auc)
    # expected errors among the k most confident (descending, ties in random order)
    order = np.argsort(-conf, axis=1, kind="stable")
    start, end = _tie_groups(-np.take_along_axis(conf, order, axis=1))
    err = 1.0 - np.take_along_axis(correct, order, axis=1)
    cum = np.concatenate([np.zeros((rows, 1)), np.cumsum(err, axis=1)], axis=1)
    before = np.take_along_axis(cum, start, axis=1)
    group_err = np.take_along_axis(cum, end + 1, axis=1) - before
    k = np.arange(1, n + 1)
    expected = before + (k - start) * group_err / (end - start + 1)
    out["aurc"] = np.mean(expected / k, axis=1)
    for name, coverage in (("accuracy_at_80", 0.8), ("accuracy_at_90", 0.9)):
        top = max(1, math.ceil(coverage * n - 1e-9))
        out[name] = 1 - expected[:, top - 1] / top
    return {name: out[name] for name in METRICS}


def _tie_groups(sorted_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position of rows sorted along axis 1: the first and last position of its run of equal values."""
    rows, n = sorted_rows.shape
    pos = np.broadcast_to(np.arange(n), (rows, n))
    new = np.ones((rows, n), bool)
    new[:, 1:] = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    last = np.ones((rows, n), bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, pos, n - 1)[:, ::-1], axis=1)[:, ::-1]
    return start, end
