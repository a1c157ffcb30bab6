"""`mediconfusion`: the official answer rule of MediConfusion's `mc` mode, and its pair metrics.

Answer rule (AIF4S/MediConfusion utils/answering.py, `clean_up_manual` + `check_answer`): the reply
is split on spaces (newlines first become spaces) and a letter counts as found when one of the
tokens is exactly `A`, `A:`, `.A`, `.A:`, `A.`, `A")`, `("A":`, `("A")` or `("A").` (same for B;
case-sensitive, so "(A)" or "**A**" are not found, while the article in "A mass is seen" is).
The found letter scores 10, the other 0, and an option is chosen only when its score beats the
other's by the margin 3; both letters found, or none, is invalid. The same margin rule turns a
judge's 1-10 scores into a choice (`choose`).

Metrics (`aggregate`, `print_score` of the same file): set accuracy = pairs with both images right
/ pairs; confusion = pairs whose two answers are the same valid option / pairs with both answers
valid; individual accuracy = right images / images; invalid rate = invalid images / images.
Category rows follow the official counting: categories are per image and overlap, and a pair adds
one count per occurrence of the category in `category_1 + category_2` (statistics.json holds
those occurrence counts, which are the denominators of the category set accuracy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from medprobe.metrics import Metric
from medprobe.scoring._base import Preset
from medprobe.stats import N_RESAMPLES, bootstrap_ci
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "mediconfusion"
PARSER = "mediconfusion_tokens"
MARGIN = 3  # `tr` of BaseAnsweringModel: a choice must beat the other option by 3 points (1-10 scale)
_FORMS = ("{}", "{}:", ".{}", ".{}:", "{}.", '{}")', '("{}":', '("{}")', '("{}").')


def choose(score_a: float, score_b: float, margin: float = MARGIN) -> str | None:
    """`check_answer`: A or B when its score beats the other's by `margin`, else None (invalid)."""
    if score_a >= score_b + margin:
        return "A"
    if score_b >= score_a + margin:
        return "B"
    return None


def letter_scores(text: str) -> dict[str, int]:
    """`clean_up_manual`: 10 for a letter found as a whole token, 0 otherwise; both found -> both 0."""
    tokens = set(text.replace("\n", " ").split(" "))
    scores = {la: 10 if any(f.format(la) in tokens for f in _FORMS) else 0 for la in "AB"}
    return {la: 0 for la in "AB"} if sum(v == 10 for v in scores.values()) > 1 else scores


def _score(sample: Sample, text: str | None) -> Score:
    if text is None:
        answer = Answer(value=None, parser=PARSER, valid=False, reason="error")
    else:
        scores = letter_scores(text)
        chosen = choose(scores["A"], scores["B"])
        found = [la for la in "AB" if la in set(text.replace("\n", " ").split(" "))]
        reason = None if chosen else ("both_letters" if not any(scores.values()) and found else "no_letter")
        answer = Answer(value=chosen, parser=PARSER, method="token" if chosen else None, valid=chosen is not None,
                        reason=reason)
    if not answer.valid:
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=PARSER, answer=answer)
    ok = answer.value == sample.answer
    return Score(outcome=Outcome.CORRECT if ok else Outcome.WRONG, value=float(ok), preset=NAME, parser=PARSER,
                 answer=answer)


class MediConfusion(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = ("MediConfusion mc mode: letter found as a whole space-separated token "
                                  "(case-sensitive), both or none found = invalid; pair metrics added")
    reproduces: ClassVar[str] = "AIF4S/MediConfusion utils/answering.py (clean_up_manual, check_answer, print_score)"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.MULTIPLE_CHOICE: "accuracy"}
    benchmarks: ClassVar[tuple[str, ...]] = ("mediconfusion",)

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        return _score(sample, text)


# ------------------------------------------------------------------------------------- pair metrics
Pair = tuple[tuple[list[str], list[str]], list[Score]]  # (categories of image 1, of image 2), [score 1, score 2]


def _pairs(records: Sequence, scores: Sequence[Score | None]) -> list[Pair]:
    """Every pair whose two images were scored (probe variants are left to their probe)."""
    by_pair: dict[str, dict[int, tuple[list[str], Score]]] = defaultdict(dict)
    for record, score in zip(records, scores):
        meta = record.sample.metadata
        if score is None or "pair" not in meta or record.sample.is_variant:
            continue
        cats = [c for c in str(meta.get("category") or "").split("|") if c]
        by_pair[str(meta["pair"])][int(meta.get("image_index", 1))] = (cats, score)
    return [((im[1][0], im[2][0]), [im[1][1], im[2][1]]) for im in by_pair.values() if set(im) == {1, 2}]


def pair_values(pair: list[Score]) -> tuple[float, float | None]:
    """(both right, same valid option) for one pair; the second is None unless both answers are valid."""
    valid = all(s.outcome is not Outcome.INVALID for s in pair)
    return (float(all(s.outcome is Outcome.CORRECT for s in pair)),
            float(pair[0].answer.value == pair[1].answer.value) if valid else None)


def aggregate(records: Sequence, scores: Sequence[Score | None], preset: str, seed: int) -> list:
    """Set accuracy, confusion, individual accuracy and invalid rate, overall and per category.

    Rows name their metric; for `confusion`, `correct` counts the confused pairs (the numerator) and
    `n` the pairs with both answers valid (the official denominator).
    """
    pairs = _pairs(records, scores)
    if not pairs:
        return []
    parsers = tuple(sorted({s.parser for _, pair in pairs for s in pair}))
    rows = []

    def row(subset: str, metric: str, values: list[float], invalid: int = 0) -> None:
        if not values:
            return
        arr = np.asarray(values, float)
        low, high = bootstrap_ci(arr, seed, f"{preset}/{subset}/{metric}")
        hits = int(arr.sum())
        rows.append(Metric(subset=subset, metric=metric, preset=preset, parsers=parsers, value=float(arr.mean()),
                           ci_low=low, ci_high=high, n=len(arr), correct=hits, wrong=len(arr) - hits - invalid,
                           invalid=invalid, interval=f"bootstrap by image pair, {N_RESAMPLES} resamples, 95% percentile"))

    categories = sorted({c for (c1, c2), _ in pairs for c in c1 + c2})
    for cat in [None, *categories]:
        # weight = occurrences of the category in category_1 + category_2 (1 per pair overall)
        sets, confused, images = [], [], []
        for (c1, c2), pair in pairs:
            weight = 1 if cat is None else (c1 + c2).count(cat)
            both, same = pair_values(pair)
            sets += [both] * weight
            if same is not None:
                confused += [same] * weight
            images += [s for s, cats in zip(pair, (c1, c2)) if cat is None or cat in cats]
        subset = "overall" if cat is None else f"category={cat}"
        bad_images = sum(s.outcome is Outcome.INVALID for s in images)
        row(subset, "set_accuracy", sets)
        row(subset, "confusion", confused)
        row(subset, "individual_accuracy", [float(s.outcome is Outcome.CORRECT) for s in images], bad_images)
        row(subset, "invalid_rate", [float(s.outcome is Outcome.INVALID) for s in images])
    return rows
