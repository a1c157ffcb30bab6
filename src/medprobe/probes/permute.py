"""permute: circular evaluation of multiple-choice questions (CircularEval, MMBench, Liu et al. 2023).

Every rotation of the options is asked (rotation 0 is the clean sample itself); the gold letter
moves with its option. A question counts only if it is right under every rotation. Position bias
compares the distribution of answered letters with the distribution of gold letters over all
rotations (total variation distance; 0 = no preference for a position). A question with a failed
rotation is not known to be right under every rotation: it counts as not consistent (`failed` says
how many rotations failed).

Questions whose options are written inside the question text (`options_in_question`) cannot be
rotated and are skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.probes._kit import (Group, ProbeContext, ProbeSpec, by_variant, correct, failed_by_variant, metric, score,
                                  variant)
from medprobe.prompts import LETTERS
from medprobe.stats import N_RESAMPLES, rng_for
from medprobe.types import AnswerType, Sample

NAME = "permute"


def check(spec: ProbeSpec) -> None:
    spec.check()


def rotate(sample: Sample, r: int) -> tuple[tuple[str, ...], str]:
    """Options rotated left by r, and the gold letter that follows its option."""
    n = len(sample.options)
    gold = LETTERS.index(sample.answer.strip().upper())
    return sample.options[r:] + sample.options[:r], LETTERS[(gold - r) % n]


def applies(sample: Sample) -> bool:
    return (sample.answer_type is AnswerType.MULTIPLE_CHOICE and len(sample.options) >= 2
            and not sample.metadata.get("options_in_question")
            and sample.answer.strip().upper() in LETTERS[: len(sample.options)])  # fmt: skip


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    out = []
    for s in filter(applies, samples):
        for r in range(1, len(s.options)):
            options, gold = rotate(s, r)
            out.append(variant(s, NAME, f"rot{r}", options=options, answer=gold, detail={"rotation": r}))
    return out


def _tvd(pred: Counter, gold: Counter) -> float:
    letters = set(pred) | set(gold)
    np_, ng = sum(pred.values()) or 1, sum(gold.values()) or 1
    return 0.5 * sum(abs(pred[k] / np_ - gold[k] / ng) for k in letters)


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    items = [g for g in groups.values()]
    # a failed rotation: not known to be right there, so the question is not counted consistent
    consistent = [0.0 if g.failed else min(correct(r, preset) for r in (g.parent, *g.variants)) for g in items]
    failed = sum(len(g.failed) for g in items)
    lost = failed_by_variant(groups)
    clean = [correct(g.parent, preset) for g in items]
    # per item: letters answered (valid ones) and gold letters, over every rotation
    answered, golds = [], []
    for g in items:
        recs = (g.parent, *g.variants)
        answered.append(Counter(a.value for r in recs if (a := score(r, preset).answer).valid and a.value))
        golds.append(Counter(r.sample.answer.strip().upper() for r in recs))
    pred_all, gold_all = sum(answered, Counter()), sum(golds, Counter())
    bias = _tvd(pred_all, gold_all)
    rng = rng_for(seed, f"probe/{NAME}/position_bias")
    boots = []
    for _ in range(N_RESAMPLES):
        idx = rng.integers(0, len(items), len(items))
        boots.append(_tvd(sum((answered[i] for i in idx), Counter()), sum((golds[i] for i in idx), Counter())))
    low, high = np.quantile(boots, [0.025, 0.975])
    n_valid = sum(pred_all.values())
    position = ProbeMetric(probe=NAME, name="position_bias", value=bias, ci_low=float(low), ci_high=float(high),
                           n=len(items), failed=failed, preset=preset,
                           detail={"answered_letters": n_valid, "top_letter": pred_all.most_common(1)[0][0] if n_valid else None,
                                   "top_share": pred_all.most_common(1)[0][1] / n_valid if n_valid else None})  # fmt: skip
    consistency = metric(NAME, "permutation_consistency", consistent, preset, seed, failed)
    rows = [metric(NAME, "clean_accuracy", clean, preset, seed),
            metric(NAME, "drop", np.array(clean) - np.array(consistent), preset, seed, failed)]
    answered = by_variant(groups)
    for name in sorted(set(answered) | set(lost)):
        pairs = answered.get(name, [])
        rows.append(metric(NAME, "accuracy", [correct(v, preset) for _, v in pairs], preset, seed, lost.get(name, 0),
                           variant=name))  # fmt: skip
    for letter in sorted(set(pred_all) | set(gold_all)):
        rows.append(ProbeMetric(probe=NAME, name="letter_share", value=pred_all[letter] / (n_valid or 1), n=n_valid,
                                preset=preset, detail={"letter": letter,
                                                       "gold_share": gold_all[letter] / (sum(gold_all.values()) or 1)}))  # fmt: skip
    return ProbeResult(probe=NAME, headline=(consistency, position), rows=tuple(rows),
                       note="permutation_consistency = right under every rotation of the options; position_bias = "
                            "total variation distance between answered and gold letter distributions")  # fmt: skip
