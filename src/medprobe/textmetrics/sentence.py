"""Sentence-level BLEU and ROUGE as the other report toolkits compute them, averaged over studies there.

- `nltk_bleu`: NLTK `sentence_bleu` (modified precision with max(1, count) denominators, closest reference
  length, brevity penalty 0 for an empty candidate, 0 when no unigram matches). `smoothing=0` is NLTK's
  default method0 (a zero precision becomes sys.float_info.min: the score is ~0), used by MedEvalKit
  `cal_report_metrics.py`; `smoothing=1` is method1 (epsilon 0.1 / count), which is what `fast_bleu.BLEU`
  (default `smoothing_func=1`) computes for CXR-Report-Metric's `add_bleu_col`, the BLEU-2 of ReXrank.
- `tm_bleu`, `tm_rouge`: torchmetrics `BLEUScore` (no smoothing, 0 when any precision is 0) and
  `ROUGEScore` (text lower-cased, non-alphanumerics to spaces, F1 with beta 1), which MultiMedEval's
  `ReportComparison` calls once per report.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Sequence

from medprobe.textmetrics.coco import lcs as _lcs  # longest common subsequence length, shared


def _grams(words: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def _precision(hyp: Sequence[str], refs: Sequence[Sequence[str]], n: int) -> tuple[int, int]:
    counts = _grams(hyp, n)
    max_ref: Counter[tuple[str, ...]] = Counter()
    for ref in refs:
        for gram, c in _grams(ref, n).items():
            max_ref[gram] = max(max_ref[gram], c)
    clipped = sum(min(c, max_ref[g]) for g, c in counts.items())
    return clipped, max(1, sum(counts.values()))


def _closest(refs: Sequence[Sequence[str]], hyp_len: int) -> int:
    return min((abs(len(r) - hyp_len), len(r)) for r in refs)[1]


def nltk_bleu(hyp: Sequence[str], refs: Sequence[Sequence[str]], weights: Sequence[float],
              smoothing: int = 0) -> float:
    """NLTK `sentence_bleu(refs, hyp, weights, smoothing_function=method0|method1)` on token lists."""
    p = [_precision(hyp, refs, i + 1) for i in range(len(weights))]
    if p[0][0] == 0:
        return 0.0
    hyp_len, ref_len = len(hyp), _closest(refs, len(hyp))
    bp = 1.0 if hyp_len > ref_len else (0.0 if hyp_len == 0 else math.exp(1 - ref_len / hyp_len))
    total = 0.0
    for w, (num, den) in zip(weights, p):
        if num == 0:
            value = sys.float_info.min if smoothing == 0 else 0.1 / den
        else:
            value = num / den
        total += w * math.log(value)
    return bp * math.exp(total)


def tm_bleu(hyp: str, ref: str, n: int = 4) -> float:
    """torchmetrics `BLEUScore(n_gram=n)([hyp], [[ref]])`: whitespace tokens, uniform weights, no smoothing."""
    h, r = hyp.split(), ref.split()
    if not h:
        return 0.0
    p = [_precision(h, [r], k + 1) for k in range(n)]
    if min(num for num, _ in p) == 0:
        return 0.0
    bp = 1.0 if len(h) > len(r) else math.exp(1 - len(r) / len(h))
    return bp * math.exp(sum(math.log(num / den) / n for num, den in p))


def _tm_tokens(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _f1(hits: int, n_hyp: int, n_ref: int) -> float:
    if hits == 0 or n_hyp == 0 or n_ref == 0:
        return 0.0
    p, r = hits / n_hyp, hits / n_ref
    return 2 * p * r / (p + r)


def tm_rouge(hyp: str, ref: str, key: str = "rougeL") -> float:
    """torchmetrics `ROUGEScore` F-measure for `key` "rougeL" (LCS) or "rouge1" (unigram overlap)."""
    h, r = _tm_tokens(hyp), _tm_tokens(ref)
    if key == "rougeL":
        return _f1(_lcs(h, r), len(h), len(r))
    return _f1(sum((Counter(h) & Counter(r)).values()), len(h), len(r))
