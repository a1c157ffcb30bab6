"""Report presets: free-text reports (`AnswerType.REPORT`) measured by text metrics, never right or wrong.

The parser (`parse_report`) keeps the reply (after `Preset.score` split off any reasoning chain) minus a
leading section header ("Findings:", "**IMPRESSION:**", "## Report"). Empty or whitespace-only replies are
INVALID ("empty"); a reply that only declines ("I cannot provide a diagnosis ...") is INVALID ("refusal"):
a refusal sentence followed by a report is a report. A valid report's outcome is `Outcome.SCORED`; its
per-study values (those a study has on its own: sentence BLEU, ROUGE-L) are in `Score.extra`.

Corpus metrics (`corpus_rows`): one `Metric` row per metric and subset, its interval by a study-level
bootstrap (medprobe.textmetrics.corpus). A metric that cannot be computed here is a row with `unavailable`
set and a NaN value, never a 0. `n` counts every study of the subset; invalid reports are counted apart
and left out of the value, except where an official script counts them as 0 (MedEvalKit).

`report` (this module) is medprobe's default for reports: pycocoevalcap BLEU-1..4, ROUGE-L, CIDEr-D and
METEOR on the PTB tokens (medprobe.textmetrics.tokenize). `strict` and the VQA presets have no rule for
reports (their `value_names` lack REPORT), so they leave report samples out of their rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from medprobe.metrics import Metric
from medprobe.scoring._base import Preset
from medprobe.stats import N_RESAMPLES
from medprobe.textmetrics import coco, meteor, tokens
from medprobe.textmetrics.corpus import StudyTable, bootstrap_weighted, interval_name
from medprobe.types import Answer, AnswerType, Outcome, Record, Sample, Score

PARSER = "report"
_HEADER = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:final\s+|radiology\s+)?(?:findings|impressions?|report|conclusions?)"
    r"\s*(?:\*\*|__)?\s*(?::|-|\n)\s*(?:\*\*|__)?\s*", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
# Declining sentences. Narrower than medprobe.parsing's refusal test, whose impersonal "cannot be
# determined" is ordinary hedging in a report ("a small effusion cannot be determined on this view").
_DECLINE = re.compile(
    r"\b(?:i|we)(?:'m| am| are)?\s+(?:sorry|unable|not able|cannot|can't|can not|could not|won't|will not|"
    r"apologi[sz]e)\b|\bas an ai\b|\blanguage model\b"
    r"|\b(?:cannot|can't|unable to|not possible to)\s+(?:provide|generate|give|offer|make)\s+(?:a |an |any )?"
    r"(?:medical |radiology |definitive )?(?:diagnos|report|interpretation)"
    r"|\bconsult (?:a|an|your) (?:qualified |licensed )?(?:radiologist|doctor|physician|healthcare|medical)", re.IGNORECASE)


def parse_report(text: str | None) -> Answer:
    """The report text, or INVALID with reason "error" (no text), "empty" or "refusal"."""
    if text is None:
        return Answer(value=None, parser=PARSER, valid=False, reason="error")
    body = _HEADER.sub("", text, count=1).strip()
    if not body:
        return Answer(value=None, parser=PARSER, valid=False, reason="empty")
    sentences = [s for s in _SENTENCE.split(body) if s.strip()]
    declining = [s for s in sentences if _DECLINE.search(s)]
    if declining:
        rest = " ".join(s for s in sentences if s not in declining)
        if len(tokens(rest)) < 3:  # nothing left that could be a report
            return Answer(value=None, parser=PARSER, valid=False, reason="refusal")
    return Answer(value=body, parser=PARSER, valid=True)


@dataclass(frozen=True)
class Column:
    """One corpus metric over the valid studies: how to compute it on any weighting of those studies."""

    name: str
    source: str
    weighted: Callable[[np.ndarray], np.ndarray] | None = None  # (resamples x studies) -> values
    unavailable: str | None = None
    #: the official script averages over every study, an invalid report counting 0 (MedEvalKit)
    zero_invalid: bool = False
    per_study: np.ndarray | None = None
    #: a corpus statistic given only as a number (radeval's CheXbert micro F1): overall row, no interval
    value: float | None = None
    #: per-study sufficient statistics whose column sums `from_sums` scores (METEOR): a paired test can swap
    #: two models' studies one by one and rescore (approximate randomisation)
    stats: np.ndarray | None = None
    from_sums: Callable[[np.ndarray], np.ndarray] | None = None


def mean_column(name: str, source: str, values: np.ndarray, zero_invalid: bool = False) -> Column:
    values = np.asarray(values, float)
    return Column(name, source, lambda w: (w @ values) / w.sum(axis=1), zero_invalid=zero_invalid, per_study=values)


class ReportPreset(Preset):
    """Base of the report presets: subclasses set `metrics` and implement `columns` (and `study_values`)."""

    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.REPORT: "rougeL"}
    #: the corpus metrics this preset reports, in order (an unavailable one still gets its row)
    metrics: ClassVar[tuple[str, ...]] = ()

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if sample.answer_type is not AnswerType.REPORT:
            return self.unsupported(PARSER)
        answer = parse_report(text)
        if not answer.valid:
            return Score(outcome=Outcome.INVALID, value=0.0, preset=self.name, parser=PARSER, answer=answer)
        extra = self.study_values(answer.value, sample.answer)
        return Score(outcome=Outcome.SCORED, value=extra[self.value_names[AnswerType.REPORT]], preset=self.name,
                     parser=PARSER, answer=answer, extra=extra)

    def study_values(self, candidate: str, reference: str) -> dict[str, float]:
        """The per-study values a study has on its own (for `Score.extra`)."""
        raise NotImplementedError

    def columns(self, candidates: Sequence[str], references: Sequence[str], invalid: int) -> list[Column]:
        """The corpus metrics on the valid studies (`invalid`: how many more studies the corpus has)."""
        raise NotImplementedError

    def corpus_rows(self, records: Sequence[Record], scores: Sequence[Score | None], subsets, seed: int) -> list[Metric]:
        applies = [s is not None for s in scores]
        valid = [i for i, s in enumerate(scores) if s is not None and s.outcome is Outcome.SCORED]
        cands = [str(scores[i].answer.value) for i in valid]
        refs = [records[i].sample.answer for i in valid]
        n_invalid = sum(applies) - len(valid)
        cols = self.columns(cands, refs, n_invalid)
        position = {i: k for k, i in enumerate(valid)}
        out: list[Metric] = []
        for subset, idx in subsets:
            idx = [int(i) for i in idx if applies[int(i)]]
            if not idx:
                continue
            picked = np.array([position[i] for i in idx if i in position], int)
            invalid = len(idx) - len(picked)
            out += [self._row(c, subset, picked, len(valid), invalid, len(idx), seed) for c in cols
                    if subset == "overall" or (c.weighted is not None and not c.unavailable)]
        return out

    def _row(self, col: Column, subset: str, picked: np.ndarray, total: int, invalid: int, n: int, seed: int) -> Metric:
        common = {"subset": subset, "metric": col.name, "preset": self.name, "parsers": (PARSER,), "n": n,
                  "correct": 0, "wrong": 0, "invalid": invalid}
        if col.weighted is None and col.value is not None and not col.unavailable and subset == "overall":
            return Metric(value=col.value, ci_low=float("nan"), ci_high=float("nan"), clusters=len(picked),
                          interval=f"none: {col.source} gives only the corpus value", **common)
        if col.unavailable or col.weighted is None or len(picked) == 0:
            why = col.unavailable or ("not available: no valid report in this subset" if len(picked) == 0 else
                                      "not available: a corpus statistic with no per-study form")
            return Metric(value=float("nan"), ci_low=float("nan"), ci_high=float("nan"), unavailable=why,
                          interval="none", **common)
        pad = invalid if col.zero_invalid else 0  # invalid studies drawn as zeros (MedEvalKit's divisor)

        def on(weights: np.ndarray) -> np.ndarray:
            full = np.zeros((weights.shape[0], total))
            full[:, picked] = weights[:, :len(picked)]
            value = col.weighted(full)
            if pad:
                drawn = weights[:, :len(picked)].sum(axis=1)
                value = np.where(drawn > 0, value * drawn / (drawn + weights[:, len(picked):].sum(axis=1)), 0.0)
            return value

        size = len(picked) + pad
        value = float(on(np.ones((1, size)))[0])
        low, high = bootstrap_weighted(on, size, seed, f"{self.name}/{subset}/{col.name}")
        return Metric(value=value, ci_low=low, ci_high=high, interval=f"{interval_name(N_RESAMPLES)} ({col.source})",
                      clusters=size, **common)


def coco_columns(table: StudyTable, cands: Sequence[str], refs: Sequence[Sequence[str]], names: Sequence[str],
                 source: str) -> list[Column]:
    """pycocoevalcap columns from a StudyTable (and METEOR through the jar when asked for)."""
    cols = []
    for name in names:
        if name == "meteor":
            cols.append(meteor_column(cands, refs))
        else:
            per = table.per_study()[name]
            cols.append(Column(name, source, weighted=lambda w, k=name: table.weighted(k, w), per_study=per))
    return cols


def meteor_column(cands: Sequence[str], refs: Sequence[Sequence[str]]) -> Column:
    """The jar's corpus METEOR (its statistics summed over the drawn studies on every resample)."""
    m = meteor.meteor(cands, refs)
    if not m.ok:
        return Column("meteor", m.source, unavailable=m.unavailable)
    stats = meteor.segment_stats(cands, refs)  # kept from the call above: no second trip to the JVM
    return Column("meteor", m.source, weighted=lambda w: meteor.corpus_weighted(stats, w),
                  per_study=np.array(m.per_study), stats=meteor.summable(stats), from_sums=meteor.score_sums)


def study_metrics(preset: ReportPreset, records: Sequence[Record]) -> dict[str, dict[str, float]]:
    """sample id -> every per-study value of the preset for the valid reports among `records`: `Score.extra`
    plus those that need the corpus (CIDEr-D's idf, METEOR, clinical models), for the per-study view."""
    scores = [preset.score_generation(r.sample, r.final) if r.answered and preset.applies(r.sample) else None
              for r in records]
    valid = [(r, s) for r, s in zip(records, scores) if s is not None and s.outcome is Outcome.SCORED]
    out = {r.sample.id: dict(s.extra) for r, s in valid}
    cols = preset.columns([str(s.answer.value) for _, s in valid], [r.sample.answer for r, _ in valid], 0)
    for col in cols:
        if col.per_study is not None and len(col.per_study) == len(valid):
            for (r, _), v in zip(valid, col.per_study):
                out[r.sample.id].setdefault(col.name, float(v))
    return out


class Report(ReportPreset):
    name = "report"
    description = ("reports: pycocoevalcap BLEU-1..4 (corpus), ROUGE-L, CIDEr-D, METEOR on PTB tokens; "
                   "interval by study bootstrap")
    reproduces = ("pycocoevalcap 1.2 (github.com/salaniz/pycocoevalcap) Bleu/Rouge/Cider/Meteor, as R2Gen "
                  "modules/metrics.py calls them, on PTBTokenizer-style tokens")
    metrics = ("bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "cider", "meteor")

    def study_values(self, candidate: str, reference: str) -> dict[str, float]:
        c, r = " ".join(tokens(candidate)), [" ".join(tokens(reference))]
        bleu = coco.bleu_from_sums(np.array(coco.BleuStats(c, r).row(), float), 4)
        return {f"bleu{k + 1}": float(b) for k, b in enumerate(bleu)} | {"rougeL": coco.rouge_l_score(c, r)}

    def columns(self, candidates: Sequence[str], references: Sequence[str], invalid: int) -> list[Column]:
        cands = [" ".join(tokens(c)) for c in candidates]
        refs = [[" ".join(tokens(r))] for r in references]
        return coco_columns(_table(cands, refs), cands, refs, self.metrics, "pycocoevalcap")

    def study_table(self, candidates: Sequence[str], references: Sequence[str]) -> StudyTable:
        """Per-study BLEU counts, ROUGE-L and CIDEr-D of the reports (what a paired test swaps study by study)."""
        return _table([" ".join(tokens(c)) for c in candidates], [[" ".join(tokens(r))] for r in references])


def _table(cands: list[str], refs: list[list[str]]) -> StudyTable:
    if not cands:
        return StudyTable(np.zeros((0, 10)), np.zeros(0), np.zeros(0))
    return StudyTable(coco.bleu_table(cands, refs), np.array([coco.rouge_l_score(c, r) for c, r in zip(cands, refs)]),
                      coco.cider_scores(cands, refs))
