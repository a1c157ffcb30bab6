"""repeat: ask every sample k times at temperature T (options `repeat:k=5,t=0.7`; defaults 5 and 0.7).

Each draw is a variant with its own `trial` index and generation overrides (temperature, and a
per-trial seed for servers that honour one), so every draw is its own cached request.

* agreement = share of the k draws that give the majority answer (mean over samples);
* majority_vote_accuracy = the majority answer is right (ties: the answer drawn first wins; an
  invalid majority is wrong);
* agreement as a confidence: one row per sample, name `sample_agreement`, `detail` holding
  `sample_id`, `majority_correct` and `clean_correct` (the T=0 clean answer), for calibration.

A draw whose request failed is not a vote: it counts as disagreeing in agreement and unanimity (not
known to agree), is left out of the majority and of sample accuracy, and is counted in `failed`.
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
                    detail={"temperature": t})
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
        clean.append(correct(g.parent, preset))
        if not recs:  # every draw failed: nothing agrees, there is no vote
            agreement.append(0.0)
            unanimous.append(0.0)
            continue
        keys = [answer_key(r, preset) for r in recs]
        winner, share = majority(keys)
        share *= len(recs) / (len(recs) + len(g.failed))  # failed draws count as disagreeing
        right = 0.0 if winner == "<invalid>" else correct(recs[keys.index(winner)], preset)
        agreement.append(share)
        vote.append(right)
        unanimous.append(float(share == 1.0))
        draws.append(sum(correct(r, preset) for r in recs) / len(recs))  # per sample, so CIs resample samples
        per_sample.append(ProbeMetric(probe=NAME, name="sample_agreement", value=share, n=len(recs), failed=len(g.failed),
                                      preset=preset, detail={"sample_id": pid, "majority_correct": bool(right),
                                                             "clean_correct": bool(clean[-1])}))  # fmt: skip
    failed = sum(len(g.failed) for g in groups.values())
    headline = (metric(NAME, "agreement", agreement, preset, seed, failed),
                metric(NAME, "majority_vote_accuracy", vote, preset, seed, failed))
    rows = (metric(NAME, "unanimous_rate", unanimous, preset, seed, failed),
            metric(NAME, "sample_accuracy", draws, preset, seed, failed),
            metric(NAME, "clean_accuracy", clean, preset, seed), *per_sample)  # fmt: skip
    return ProbeResult(probe=NAME, headline=headline, rows=rows,
                       note="agreement = share of draws giving the majority answer; per-sample agreement is in the "
                            "rows named sample_agreement (detail.sample_id) for calibration")  # fmt: skip
