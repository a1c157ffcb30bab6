"""`llava-med`: the LLaVA-Med v1.0 evaluation, the closed accuracy / open recall most papers quote.

Reproduces microsoft/LLaVA-Med `llava/eval/run_eval.py::evaluate` at commit b9a98a7 (2023-12-11,
"fix closed accuracy calculation") with `llava/eval/eval_metrics/evaluate_metrics.py` and
`glossary.py`. Rules, each quirk kept on purpose:

* Both strings are lowercased and passed through `normalize_word` (VQA-v2 punctuation, number
  words -> digits, "none" -> "0", articles dropped, contractions, commas deleted).
* Closed vs open comes from the gold file's `answer_type` ("CLOSED"/"OPEN"), not from the gold
  answer: VQA-RAD closed questions with gold "MRI" or "left" go through the yes/no rule too.
* Closed (run_eval.py, `elif gt_item['answer_type'] == 'CLOSED'`): if the normalised prediction
  contains the *substring* "yes" or "no", hit = (normalised gold is a substring of it), else 0.
  So "normal", "not", "nodule", "know", "none"->"0"... and "eyes" all interact with the rule.
* Open: the "recall" of `calculate_f1score`, which normalises both strings a *second* time and
  counts whitespace words: tp adds each shared word's count in the prediction, fn adds the gold
  count of gold words missing from the prediction; recall = tp / (tp + fn), 0 when no word is
  shared or the prediction is empty. Repeating a gold word in the prediction raises recall.

Before b9a98a7, a closed prediction containing "yes"/"no" but not the gold appended nothing, so
wrong answers left the denominator; `run_eval_batch.py` drops the yes/no condition altogether.
This preset follows the fixed `run_eval.py`, as PROTOCOLS.md does.

Outcome: CORRECT when the value is 1 (closed hit, or open recall 1.0), else WRONG; INVALID only
when generation failed or for multiple choice, which the script does not score (value 0). The
official number is the mean value per answer type.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import ClassVar

from medprobe.construct import answer as _answer
from medprobe.construct import score as _score_of
from medprobe.scoring._base import Preset
from medprobe.scoring.normalize import _normalize_word, normalize_word, normalize_word_again
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "llava-med"
CLOSED_PARSER = "llava-med-substring"
OPEN_PARSER = "llava-med-recall"
# enum members as module constants: `AnswerType.X` is a class attribute look-up per record (bench/scoring.py)
_CLOSED = AnswerType.CLOSED


def closed_hit(pred: str, gold: str) -> tuple[float, str]:
    """(hit, method) of run_eval.py's closed rule on already-normalised strings."""
    if "yes" in pred or "no" in pred:
        return (1.0 if gold in pred else 0.0), "contains_yes_no"
    return 0.0, "no_yes_no_substring"


def f1_precision_recall(pred: str, gold: str) -> tuple[float, float, float]:
    """evaluate_metrics.py `calculate_f1score(candidate=pred, reference=gold)` -> (f1, precision, recall)."""
    return _f1(_normalize_word(pred), normalize_word(gold))  # sic: normalised again inside (golds repeat: cached)


def _f1(pred: str, gold: str) -> tuple[float, float, float]:
    pred_words, gold_words = pred.split(), gold.split()
    if not pred_words or not gold_words or set(gold_words).isdisjoint(pred_words):
        return 0.0, 0.0, 0.0  # no word shared: tp == 0 below, without counting
    cand, ref = Counter(pred_words), Counter(gold_words)
    tp = sum(n for w, n in cand.items() if w in ref)  # shared words count as often as *predicted*
    fp = sum(n for w, n in cand.items() if w not in ref)
    fn = sum(n for w, n in ref.items() if w not in cand)
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall), precision, recall


@lru_cache(maxsize=8192)
def _score(closed: bool, gold: str, text: str | None) -> Score:
    parser = CLOSED_PARSER if closed else OPEN_PARSER
    if text is None:
        answer = Answer(value=None, parser=parser, valid=False, reason="error")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=parser, answer=answer)
    # run_eval.py: gt_value / pred_value = normalize_word(x.lower()); the reply is cached by `_score` already
    gold, pred = normalize_word(gold), _normalize_word(text)
    extra: dict[str, float] = {}
    if closed:
        value, method = closed_hit(pred, gold)
    else:
        # = f1_precision_recall(pred, gold), knowing that both were normalised once already
        f1, precision, value = _f1(normalize_word_again(pred), normalize_word(gold))
        method, extra = "word_recall", {"f1": f1, "precision": precision}
    outcome = Outcome.CORRECT if value == 1.0 else Outcome.WRONG
    return _score_of(outcome, value, NAME, parser, _answer(pred, parser, method), extra)


class LlavaMed(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "LLaVA-Med v1.0: closed = gold substring of a prediction containing 'yes'/'no'; "
        "open = word-count recall (repeated words inflate it)"
    )
    reproduces: ClassVar[str] = "microsoft/LLaVA-Med llava/eval/run_eval.py (v1.0, commit b9a98a7)"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.CLOSED: "accuracy", AnswerType.OPEN: "recall"}

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if sample.answer_type not in self.value_names:
            return self.unsupported(NAME)  # run_eval.py has no rule beyond CLOSED/OPEN
        return _score(sample.answer_type is _CLOSED, sample.answer, text)
