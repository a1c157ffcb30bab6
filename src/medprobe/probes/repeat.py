"""repeat: ask every sample k times at temperature T (options `repeat:k=5,t=0.7`; defaults 5 and 0.7).

Each draw is a variant with its own `trial` index and generation overrides (temperature, and a
per-trial seed for servers that honour one), so every draw is its own cached request.

* agreement = share of the k draws that give the majority answer (mean over samples);
* majority_vote_accuracy = the majority answer is right (ties: the answer drawn first wins; an
  invalid majority is wrong);
* agreement as a confidence: one row per sample, name `sample_agreement`, `detail` holding
  `sample_id`, `majority_correct` and `clean_correct` (the T=0 clean answer), for calibration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec, answer_key, correct, metric, variant
from medprobe.types import Sample

NAME = "repeat"
DEFAULT_K, DEFAULT_T = 5, 0.7


def check(spec: ProbeSpec) -> None:
    spec.check(known_params=("k", "t"))
    if not 2 <= spec.param("k", DEFAULT_K) <= 100:
        raise ValueError(f"--probe {spec}: k must be 2-100")


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    k, t = int(ctx.spec.param("k", DEFAULT_K)), ctx.spec.param("t", DEFAULT_T)
    return [variant(s, NAME, f"t{t:g}#{i}", trial=i, generation={"temperature": t, "seed": ctx.seed * 1000 + i},
                    metadata={"temperature": t})
            for s in samples for i in range(k)]  # fmt: skip


def majority(keys: Sequence[str]) -> tuple[str, float]:
    """The most frequent answer (first drawn wins a tie) and its share."""
    counts = Counter(keys)
    top = max(counts.values())
    winner = next(k for k in keys if counts[k] == top)
    return winner, top / len(keys)


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    agreement, vote, unanimous, draws, clean, per_sample = [], [], [], [], [], []
    for pid, g in groups.items():
        recs = sorted(g.variants, key=lambda r: r.sample.trial)
        keys = [answer_key(r, preset) for r in recs]
        winner, share = majority(keys)
        right = 0.0 if winner == "<invalid>" else correct(recs[keys.index(winner)], preset)
        agreement.append(share)
        vote.append(right)
        unanimous.append(float(share == 1.0))
        draws.append(sum(correct(r, preset) for r in recs) / len(recs))  # per sample, so CIs resample samples
        clean.append(correct(g.parent, preset))
        per_sample.append(ProbeMetric(probe=NAME, name="sample_agreement", value=share, n=len(recs), preset=preset,
                                      detail={"sample_id": pid, "majority_correct": bool(right),
                                              "clean_correct": bool(clean[-1])}))  # fmt: skip
    headline = (metric(NAME, "agreement", agreement, preset, seed),
                metric(NAME, "majority_vote_accuracy", vote, preset, seed))
    rows = (metric(NAME, "unanimous_rate", unanimous, preset, seed), metric(NAME, "sample_accuracy", draws, preset, seed),
            metric(NAME, "clean_accuracy", clean, preset, seed), *per_sample)  # fmt: skip
    return ProbeResult(probe=NAME, headline=headline, rows=rows,
                       note="agreement = share of draws giving the majority answer; per-sample agreement is in the "
                            "rows named sample_agreement (detail.sample_id) for calibration")  # fmt: skip
