"""Calibration and abstention: how well does a model's confidence separate its right answers from its wrong ones?

Confidence per answered sample comes from up to three sources (each reported separately):

* ``logprob`` (rule ``LOGPROB_RULE``). If the generation carries per-choice scores in
  `Generation.option_scores` (label -> log-likelihood, e.g. {"A": -0.2, "B": -1.9} or {"yes": ...,
  "no": ...}: what `--answer-mode next-token` and `option-likelihood` store, from the openai, hf and
  vllm backends), the confidence is the softmax over the choices' scores, at the parsed answer:
  exp(s_answer) / sum_c exp(s_c). In next-token mode the scores are first-token log-probabilities,
  so this is the probability of the answer renormalised over the choices; in option-likelihood mode
  they are mean per-token log-likelihoods, so it is the answer's share of the choices' geometric-mean
  token probabilities. A choice the server did not list gets the stored floor (probability ~0); an
  answer that is not one of the labels has no confidence. Otherwise, for closed (yes/no) and
  multiple-choice answers: the first reply token that is an answer label ("Yes", " no", "B", "(C",
  case and punctuation ignored); if it carries `top` alternatives, the softmax over the alternatives
  that are answer labels (variants of one label, e.g. "Yes" and " yes", are summed), probability of
  the parsed answer; without alternatives, exp(logprob) of that token when it is the parsed answer.
  Open answers: the joint probability of the reply, exp(sum of token logprobs).
* ``verbal``: a "Confidence: NN" (0-100) the model states; ask for it with the built-in prompt
  `verbal-confidence` (answer inside <answer> tags so the confidence line never reaches the parser).
* ``agreement``: the share of repeated samples agreeing with the answer, from the repeat probe,
  passed in as a mapping sample id -> agreement in [0, 1].

Correct means the preset's outcome is CORRECT; an invalid answer that has a confidence counts as
wrong. Metrics (calibration_metrics): ECE with 10 equal-width and 10 equal-mass bins, Brier score,
AUROC of correct vs wrong, risk-coverage curve, AURC, accuracy at 80% and 90% coverage; each with a
seeded percentile-bootstrap 95% interval over items.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from medprobe import calibration_metrics as cm
from medprobe import scoring
from medprobe.reasoning import answer_start, split_generation
from medprobe.stats import N_RESAMPLES, rng_for
from medprobe.types import AnswerType, Frozen, Generation, Outcome, Record

Source = Literal["logprob", "verbal", "agreement"]
NO_LOGPROBS = "not available: the backend returned no logprobs"
LOGPROB_RULE = ("option_scores (answer modes next-token / option-likelihood): softmax over the choices at the parsed "
                "answer; else closed/MC: softmax over answer-label alternatives in top_logprobs at the first "
                "answer-label token (or its own probability); open: exp(sum logprobs)")  # fmt: skip
RULES: dict[str, str] = {
    "logprob": LOGPROB_RULE,
    "verbal": "stated 'Confidence: NN' (0-100) / 100, last one in the reply",
    "agreement": "share of repeat-probe samples agreeing with the answer",
}
#: bootstrap work is O(n_resamples * n log n): above this many items fewer resamples are drawn
MAX_BOOTSTRAP_WORK = 20_000_000
_VERBAL = re.compile(r"confidence(?:\s+(?:level|score))?\s*(?:is|[:=])?\s*(\d{1,3}(?:\.\d+)?)\s*%?", re.IGNORECASE)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class CalibrationMetric(Frozen):
    name: str = Field(description="ece (equal-width), ece_equal_mass, brier, auroc, aurc, accuracy_at_80, accuracy_at_90")
    value: float | None = Field(description="None where undefined (AUROC when every answer is right or every one wrong)")
    ci_low: float | None
    ci_high: float | None


class CurvePoint(Frozen):
    threshold: float = Field(description="answer only when confidence >= threshold")
    coverage: float
    risk: float = Field(description="error rate among the answers kept")


class SourceCalibration(Frozen):
    source: Source
    rule: str = Field(description="how the confidence was obtained")
    n: int = Field(description="answered items with a confidence from this source")
    missing: int = Field(description="answered items without one (left out)")
    accuracy: float
    mean_confidence: float
    bins: int = Field(cm.N_BINS, description="bin count of both ECE variants")
    n_resamples: int
    metrics: tuple[CalibrationMetric, ...]
    curve: tuple[CurvePoint, ...] = Field((), description="risk-coverage curve (at most 51 points)")

    def metric(self, name: str) -> CalibrationMetric:
        return next(m for m in self.metrics if m.name == name)


class CalibrationSection(Frozen):
    available: bool
    preset: str = Field(description="scoring preset deciding correct vs wrong")
    note: str | None = Field(None, description="why calibration is not available, or what limits it")
    sources: tuple[SourceCalibration, ...] = ()


def parse_verbal_confidence(text: str | None) -> float | None:
    """The last 'Confidence: NN' (0-100, optional %) in `text` as a fraction; None if absent or out of range."""
    if not text:
        return None
    found = _VERBAL.findall(text)
    if not found:
        return None
    value = float(found[-1])
    return value / 100 if 0 <= value <= 100 else None


def _label(token: str) -> str:
    return token.strip().strip(".,:;()[]*\"'<>").lower()


def _softmax_of(target: str, scores: Mapping[str, float]) -> float | None:
    if target not in scores:
        return None
    top = max(scores.values())
    total = sum(math.exp(v - top) for v in scores.values())
    return math.exp(scores[target] - top) / total


def _merge(pairs: Sequence[tuple[str, float]], labels: set[str]) -> dict[str, float]:
    """label -> log of summed probability over token variants ("Yes", " yes") that are answer labels."""
    seen: dict[str, float] = dict(pairs)  # exact duplicates (the chosen token is usually in `top` too) count once
    merged: dict[str, float] = {}
    for token, logprob in seen.items():
        label = _label(token)
        if label in labels:
            merged[label] = float(np.logaddexp(merged[label], logprob)) if label in merged else logprob
    return merged


def logprob_confidence(record: Record, answer: str | None) -> float | None:
    """Confidence of the parsed `answer` from the final generation's scores (rule in the module docstring)."""
    gen: Generation | None = record.final
    if gen is None or answer is None:
        return None
    target = answer.strip().lower()
    if gen.option_scores:
        return _softmax_of(target, {k.strip().lower(): float(v) for k, v in gen.option_scores.items()})
    if not gen.logprobs:
        return None
    tokens = gen.logprobs[answer_start([t.token for t in gen.logprobs]):]  # the answer's tokens, after any chain
    sample = record.sample
    if sample.answer_type is AnswerType.OPEN or (sample.answer_type is AnswerType.CLOSED and target not in ("yes", "no")):
        return math.exp(sum(t.logprob for t in tokens))
    n_options = len(sample.options) or 26
    labels = {"yes", "no"} if sample.answer_type is AnswerType.CLOSED else set(_LETTERS[:n_options].lower())
    for tok in tokens:
        if _label(tok.token) in labels:
            if tok.top:
                return _softmax_of(target, _merge(((tok.token, tok.logprob), *tok.top), labels))
            return math.exp(tok.logprob) if _label(tok.token) == target else None
    return None


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN is not JSON: results.json must read back


def _summarise(source: Source, conf: np.ndarray, correct: np.ndarray, missing: int, seed: int) -> SourceCalibration:
    n = len(conf)
    n_resamples = max(100, min(N_RESAMPLES, MAX_BOOTSTRAP_WORK // max(1, n * max(1, int(math.log2(n + 1))))))
    intervals = cm.bootstrap_all(conf, correct, rng_for(seed, f"calibration/{source}"), n_resamples)
    metrics = tuple(CalibrationMetric(name=name, value=_num(fn(conf, correct)), ci_low=_num(intervals[name][0]),
                                      ci_high=_num(intervals[name][1])) for name, fn in cm.METRICS.items())  # fmt: skip
    thresholds, coverage, risk = cm.risk_coverage(conf, correct)
    keep = np.unique(np.linspace(0, len(thresholds) - 1, min(51, len(thresholds))).round().astype(int))
    curve = tuple(CurvePoint(threshold=float(thresholds[i]), coverage=float(coverage[i]), risk=float(risk[i])) for i in keep)
    return SourceCalibration(source=source, rule=RULES[source], n=n, missing=missing, accuracy=float(correct.mean()),
                             mean_confidence=float(conf.mean()), n_resamples=n_resamples, metrics=metrics, curve=curve)  # fmt: skip


def compute_calibration(records: Sequence[Record], preset: str, seed: int = 0,
                        agreement: Mapping[str, float] | None = None) -> CalibrationSection:  # fmt: skip
    """Calibration of answered, unprobed records under `preset`, for every confidence source present."""
    rule = scoring.get(preset)
    rows = [r for r in records if r.answered and not r.sample.is_variant and rule.applies(r.sample)]
    has_logprobs = any(r.final.logprobs or r.final.option_scores for r in rows)  # type: ignore[union-attr]
    verbal = {r.sample.id: parse_verbal_confidence(split_generation(r.final).answer) for r in rows}  # type: ignore[arg-type]
    agreement = agreement or {}
    if not has_logprobs and not any(v is not None for v in verbal.values()) and not any(r.sample.id in agreement for r in rows):
        return CalibrationSection(available=False, preset=preset,
                                  note=NO_LOGPROBS + " (nor a verbal confidence or repeat agreement)")  # fmt: skip
    confidences: dict[str, list[float | None]] = {"logprob": [], "verbal": [], "agreement": []}
    correct = []
    for r in rows:
        score = rule.score_generation(r.sample, r.final)
        correct.append(score.outcome == Outcome.CORRECT)
        confidences["logprob"].append(logprob_confidence(r, score.answer.value) if has_logprobs else None)
        confidences["verbal"].append(verbal[r.sample.id])
        confidences["agreement"].append(agreement.get(r.sample.id))
    y = np.array(correct, float)
    sources = []
    for source, values in confidences.items():
        mask = np.array([v is not None for v in values], bool)
        if mask.any():
            conf = np.clip(np.array([v for v in values if v is not None], float), 0.0, 1.0)
            sources.append(_summarise(source, conf, y[mask], int((~mask).sum()), seed))  # type: ignore[arg-type]
    note = None if has_logprobs else NO_LOGPROBS + " (calibration from the other sources only)"
    return CalibrationSection(available=bool(sources), preset=preset, note=note, sources=tuple(sources))
