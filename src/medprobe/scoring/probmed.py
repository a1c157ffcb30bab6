"""ProbMed presets and image-group metrics (eric-ai-lab/ProbMed eval/calculate_score.py).

`probmed` reproduces `get_score_binary`: with gold "yes" the reply (stripped) is right when it
contains the substring "Yes" (case-sensitive) or is exactly yes / yes. in any case; with gold "no"
when it contains "No" or is exactly no / no.. So "Not visible", "Normal" and "None" are right
answers to a "no" question, "yes" inside a sentence is not recognised, and a reply holding both
"Yes" and "No" is right whatever the gold. Nothing is invalid (except a failed request).
`probmed-strict` is medprobe's `parse_yes_no` (both yes and no, refusals, no yes/no -> invalid).

`aggregate` follows `get_score_dict` / `get_score_float` / `get_scores_probmed`: within each
image_type, per image, modality and body_part count when both questions of the pair are right;
entity and grounding when every gt/adversarial pair of the image is right (or the lone
"entity_hallu" question is); abnormality per question. Category accuracy = share of images whose
group is right; categories are weighted by their counts across image types, and the overall score
is the count-weighted mean across question types (entity and grounding count every image of the
type, including images without such questions, as the official `num` does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from medprobe.metrics import Metric
from medprobe.parsing import parse_yes_no
from medprobe.scoring._base import Preset
from medprobe.stats import N_RESAMPLES, rng_for
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

QUESTION_TYPES = ("abnormality", "modality", "body_part", "entity", "grounding")


def question_type(qa_type: str) -> str | None:
    """The question type a qa_type belongs to, tested in the official order."""
    if "modality" in qa_type:
        return "modality"
    if "body_part" in qa_type:
        return "body_part"
    if qa_type == "abnormality":
        return "abnormality"
    if "entity" in qa_type:
        return "entity"
    return "grounding" if "grounding" in qa_type else None


def official_hit(text: str, gold: str) -> bool:
    """`get_score_binary`."""
    text = text.strip()
    if gold == "yes":
        return "Yes" in text or text.lower() in ("yes", "yes.")
    return "No" in text or text.lower() in ("no", "no.")


class ProbMed(Preset):
    name: ClassVar[str] = "probmed"
    description: ClassVar[str] = ('ProbMed official: gold yes right if "Yes" in reply (case-sensitive) or exactly '
                                  'yes; gold no right if "No" in reply ("Normal", "None", "Not" count) or exactly no')
    reproduces: ClassVar[str] = "eric-ai-lab/ProbMed eval/calculate_score.py (get_score_binary, get_scores_probmed)"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.CLOSED: "accuracy"}
    benchmarks: ClassVar[tuple[str, ...]] = ("probmed",)

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if text is None:
            answer = Answer(value=None, parser="probmed_substring", valid=False, reason="error")
            return Score(outcome=Outcome.INVALID, value=0.0, preset=self.name, parser=answer.parser, answer=answer)
        hit = official_hit(text, sample.answer)
        # the rule only asks "is the gold recognised?"; the value records what it recognised
        value = sample.answer if hit else ("no" if sample.answer == "yes" else "yes")
        answer = Answer(value=value, parser="probmed_substring", method="substring" if hit else None)
        return Score(outcome=Outcome.CORRECT if hit else Outcome.WRONG, value=float(hit), preset=self.name,
                     parser=answer.parser, answer=answer)


class ProbMedStrict(Preset):
    name: ClassVar[str] = "probmed-strict"
    description: ClassVar[str] = "medprobe strict yes/no parsing on ProbMed (both/neither/refusal = invalid)"
    reproduces: ClassVar[str] = "medprobe (no external script); ProbMed's pair and group metrics"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.CLOSED: "accuracy"}
    benchmarks: ClassVar[tuple[str, ...]] = ("probmed",)

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        answer = parse_yes_no(text) if text is not None else Answer(value=None, parser="yes_no", valid=False,
                                                                   reason="error")
        if not answer.valid:
            return Score(outcome=Outcome.INVALID, value=0.0, preset=self.name, parser=answer.parser, answer=answer)
        ok = answer.value == sample.answer
        return Score(outcome=Outcome.CORRECT if ok else Outcome.WRONG, value=float(ok), preset=self.name,
                     parser=answer.parser, answer=answer)


# --------------------------------------------------------------------------------- group metrics
def _image_groups(rows: list[tuple[str, float]]) -> dict[str, list]:
    """One image's rows (qa_type, 0/1) -> per question type: a pair, a list of pairs, or scores."""
    out: dict[str, list] = {"modality": [], "body_part": [], "abnormality": [], "entity": [], "grounding": []}
    pending: dict[str, tuple[str, list[float]] | None] = {"entity": None, "grounding": None}
    for qa_type, hit in rows:
        kind = question_type(qa_type)
        if kind in ("modality", "body_part", "abnormality"):
            out[kind].append(hit)
        elif kind == "entity" and qa_type == "entity_hallu":
            out["entity"] = [hit]  # the lone "no abnormality" question: the whole entity group
        elif kind in ("entity", "grounding"):
            suffix = qa_type.split("_")[-1]
            if "gt" in qa_type:
                pending[kind] = (suffix, [hit])
            elif pending[kind] is not None and pending[kind][0] == suffix:
                out[kind].append([*pending[kind][1], hit])  # a gt/adversarial pair, complete
                pending[kind] = None
    for kind in ("modality", "body_part"):
        if len(out[kind]) != 2:
            out[kind] = []  # one of the pair unanswered: the image does not count
    return out


def _cells(records: Sequence, scores: Sequence[Score | None]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(image_type, question type) -> (right, denominator, official num)."""
    images: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    order = sorted((r.sample.metadata.get("row", 0), i) for i, r in enumerate(records))
    for _, i in order:
        meta, score = records[i].sample.metadata, scores[i]
        if score is None or records[i].sample.is_variant or "qa_type" not in meta:
            continue
        images[str(meta.get("image_type"))][str(meta["image_id"])].append((str(meta["qa_type"]), score.value))
    cells: dict[tuple[str, str], tuple[int, int, int]] = {}
    for image_type, by_image in images.items():
        tally = {q: [0, 0, 0] for q in QUESTION_TYPES}
        for rows in by_image.values():
            groups = _image_groups(rows)
            for hit in groups["abnormality"]:
                tally["abnormality"][0] += int(hit == 1)
                tally["abnormality"][1] += 1
                tally["abnormality"][2] += 1
            for kind in ("modality", "body_part", "entity", "grounding"):
                group = groups[kind]
                if kind in ("entity", "grounding"):
                    tally[kind][2] += 1  # the official num counts every image of the type
                if not group:
                    continue
                flat = [x for item in group for x in (item if isinstance(item, list) else [item])]
                tally[kind][0] += int(all(x == 1 for x in flat))
                tally[kind][1] += 1
                if kind in ("modality", "body_part"):
                    tally[kind][2] += 1
        for q, (right, den, num) in tally.items():
            if den:
                cells[image_type, q] = (right, den, num)
    return cells


def _combine(accs: np.ndarray, nums: np.ndarray) -> np.ndarray:
    return (accs * nums).sum(axis=-1) / nums.sum()


def aggregate(records: Sequence, scores: Sequence[Score | None], preset: str, seed: int) -> list:
    """Category accuracy per question type (weighted across image types) and the overall score."""
    cells = _cells(records, scores)
    if not cells:
        return []
    keys = list(cells)
    right, den, num = (np.array([cells[k][j] for k in keys], float) for j in range(3))
    acc = right / den
    # bootstrap: each cell's accuracy resampled as Binomial(den, acc)/den (images are 0/1), then
    # combined with the official weights; the same draws serve every row
    rng = rng_for(seed, f"{preset}/probmed")
    draws = rng.binomial(den.astype(int), acc, size=(N_RESAMPLES, len(keys))) / den
    parsers = tuple(sorted({s.parser for s in scores if s is not None}))
    rows = []

    def row(subset: str, mask: np.ndarray) -> None:
        value = float(_combine(acc[mask], num[mask]))
        low, high = np.quantile(_combine(draws[:, mask], num[mask]), [0.025, 0.975])
        n_right = int(right[mask].sum())
        rows.append(Metric(subset=subset, metric="probmed_accuracy", preset=preset, parsers=parsers, value=value,
                           ci_low=float(low), ci_high=float(high), n=int(den[mask].sum()), correct=n_right,
                           wrong=int(den[mask].sum()) - n_right, invalid=0,
                           interval=f"parametric bootstrap per (image type, question type) cell, {N_RESAMPLES} "
                                    "resamples, 95% percentile"))  # fmt: skip

    qs = np.array([q for _, q in keys])
    for q in QUESTION_TYPES:
        if (qs == q).any():
            row(f"question_type={q}", qs == q)
    # overall: per question type a weighted accuracy with weight sum(num), i.e. one weighted mean
    row("overall", np.ones(len(keys), bool))
    return rows
