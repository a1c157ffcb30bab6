"""Study-level bootstrap of corpus BLEU-4: re-summing per-study counts vs re-counting n-grams per resample.

    python bench/report_metrics.py [studies] [resamples]

Prints both timings, their ratio and the load average (timings under load are pessimistic).
"""

from __future__ import annotations

import os
import random
import sys
import time

import numpy as np

from medprobe.textmetrics import coco
from medprobe.textmetrics.corpus import bootstrap_interval, study_table


def corpus(n: int, seed: int = 0):
    rng = random.Random(seed)
    words = ["the", "heart", "lungs", "is", "are", "normal", "clear", "no", "effusion", "left", "right", "opacity", "mild", "size", "pleural", "acute"]
    sent = lambda: " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
    return [sent() for _ in range(n)], [[sent()] for _ in range(n)]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    resamples = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    cands, refs = corpus(n)
    t0 = time.perf_counter()
    table = study_table(cands, refs)
    bootstrap_interval(table, "bleu4", seed=0, n_resamples=resamples)
    fast = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    naive_resamples = max(1, resamples // 20)
    t0 = time.perf_counter()
    for _ in range(naive_resamples):
        idx = rng.integers(0, n, n)
        coco.corpus_bleu([cands[i] for i in idx], [refs[i] for i in idx])
    naive = (time.perf_counter() - t0) * resamples / naive_resamples
    print(f"{n} studies, {resamples} resamples: sufficient statistics {fast:.2f} s, re-counting {naive:.2f} s "
          f"(extrapolated from {naive_resamples}), ratio {naive / fast:.0f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
