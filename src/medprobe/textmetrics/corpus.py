"""Corpus lexical metrics on per-study statistics, their study-level bootstrap and paired comparisons.

A `StudyTable` holds, for one model's reports on a list of studies, what each corpus metric needs per study:
pycocoevalcap's BLEU counts (so corpus BLEU over any multiset of studies is a sum of rows), per-study
ROUGE-L and per-study CIDEr-D. Resampling studies then costs a matrix product, not a re-tokenisation.

CIDEr-D under resampling: its idf weights are the document frequencies of the *evaluated corpus's*
references (pycocoevalcap `compute_doc_freq`), with ref_len = log(number of studies). The table computes
them once, on all studies, and holds them fixed in every resample: the interval says how much the score
moves with the draw of studies, not with the idf weights (recomputing them per resample would count a
study drawn twice as two documents, a corpus nobody evaluates). The point value is exactly pycocoevalcap's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from medprobe.stats import N_RESAMPLES, rng_for
from medprobe.textmetrics import coco
from medprobe.textmetrics.tokenize import tokens

BLEU_N = 4
#: the lexical metric names, as `Metric.metric` and `Score.extra` keys carry them
LEXICAL = ("bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "cider")
_CHUNK = 64  # resamples summed at once: bounds memory at _CHUNK x studies x 10 floats


def interval_name(n_resamples: int = N_RESAMPLES, level: float = 0.95) -> str:
    """`Metric.interval` of every report metric."""
    return f"bootstrap by study, {n_resamples} resamples, {round(100 * level)}% percentile"


class StudyTable:
    """Per-study statistics of one corpus: `bleu` (studies x 10 pycocoevalcap counts), `rouge`, `cider`."""

    def __init__(self, bleu: np.ndarray, rouge: np.ndarray, cider: np.ndarray):
        self.bleu, self.rouge, self.cider = bleu, rouge, cider

    def __len__(self) -> int:
        return len(self.rouge)

    def value(self, metric: str) -> float:
        """The corpus value (pycocoevalcap's number for these studies)."""
        return float(self.weighted(metric, np.ones((1, len(self))))[0])

    def weighted(self, metric: str, weights: np.ndarray) -> np.ndarray:
        """The metric for each row of `weights` (resamples x studies: how often each study was drawn)."""
        if metric.startswith("bleu"):
            k = int(metric[4:])
            return coco.bleu_from_sums(weights @ self.bleu, BLEU_N)[:, k - 1]
        values = {"rougeL": self.rouge, "cider": self.cider}[metric]
        return (weights @ values) / weights.sum(axis=1)

    def per_study(self) -> dict[str, np.ndarray]:
        """Each study's own values (pycocoevalcap's per-image lists: sentence BLEU-k with the same constants)."""
        out = {f"bleu{k + 1}": col for k, col in enumerate(coco.bleu_from_sums(self.bleu, BLEU_N).T)}
        return out | {"rougeL": self.rouge, "cider": self.cider}


def study_table(candidates: Sequence[str], references: Sequence[Sequence[str]],
                tokenizer: Callable[[str], list[str]] = tokens) -> StudyTable:
    """Tokenise raw candidates and references (one list of reference texts per study) and count."""
    cands = [" ".join(tokenizer(c)) for c in candidates]
    refs = [[" ".join(tokenizer(r)) for r in rs] for rs in references]
    return StudyTable(coco.bleu_table(cands, refs, BLEU_N),
                      np.array([coco.rouge_l_score(c, r) for c, r in zip(cands, refs)], dtype=float),
                      coco.cider_scores(cands, refs))


def draws(n: int, rng: np.random.Generator, n_resamples: int):
    for start in range(0, n_resamples, _CHUNK):
        size = min(_CHUNK, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        yield np.stack([np.bincount(row, minlength=n) for row in idx]).astype(float)


def bootstrap_weighted(statistic: Callable[[np.ndarray], np.ndarray], n: int, seed: int, name: str,
                       n_resamples: int = N_RESAMPLES, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of `statistic` (resamples x n draw counts -> one value per resample) over
    resamples of the n studies with replacement, seeded by (seed, name)."""
    if n == 0:
        return float("nan"), float("nan")
    rng = rng_for(seed, name)
    with np.errstate(invalid="ignore", divide="ignore"):
        stats = np.concatenate([statistic(w) for w in draws(n, rng, n_resamples)])
    alpha = (1 - level) / 2
    low, high = np.nanquantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_interval(table: StudyTable, metric: str, seed: int = 0, n_resamples: int = N_RESAMPLES,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the corpus metric over resamples of studies (seeded by seed and metric)."""
    return bootstrap_weighted(lambda w: table.weighted(metric, w), len(table), seed, f"report:{metric}",
                              n_resamples, level)


def paired(a: StudyTable, b: StudyTable, metric: str, seed: int = 0, n_resamples: int = N_RESAMPLES,
           level: float = 0.95) -> tuple[float, float, float, float]:
    """(delta a - b, interval low, high, p). The interval: paired bootstrap by study (the same studies drawn
    for both). p: approximate randomisation (Noreen 1989; radeval `compare_systems`): swap the two systems'
    rows study by study at random, p = (1 + #|delta*| >= |delta|) / (1 + resamples). Rows must be the same
    studies in the same order."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same studies: {len(a)} vs {len(b)} rows.")
    n = len(a)
    if n == 0:
        return (float("nan"),) * 4
    delta = a.value(metric) - b.value(metric)
    rng = rng_for(seed, f"report-paired:{metric}")
    deltas = np.concatenate([a.weighted(metric, w) - b.weighted(metric, w) for w in draws(n, rng, n_resamples)])
    alpha = (1 - level) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    hits = 0
    for _ in range(n_resamples):
        swap = rng.random(n) < 0.5
        sa, sb = _swapped(a, b, swap), _swapped(b, a, swap)
        hits += abs(sa.value(metric) - sb.value(metric)) >= abs(delta) - 1e-12
    return float(delta), float(low), float(high), (hits + 1) / (n_resamples + 1)


def _swapped(x: StudyTable, y: StudyTable, swap: np.ndarray) -> StudyTable:
    return StudyTable(np.where(swap[:, None], y.bleu, x.bleu), np.where(swap, y.rouge, x.rouge),
                      np.where(swap, y.cider, x.cider))


PAIRED_METHOD = ("paired bootstrap by study (same studies drawn for both models), {n} resamples, 95% percentile; "
                 "p by approximate randomisation (swap the models' reports study by study), {n} shuffles")
