"""`multimedeval`: MultiMedEval's VQA and multiple-choice scoring.

Reproduces corentin-ryr/MultiMedEval (commit d9ac283): `multimedeval/task_families.py::VQA.evaluate`
for VQA-RAD / SLAKE / PathVQA and `multimedeval/qa.py::MedQA.get_predicted_answer` for multiple
choice, with `utils.py::clean_str` (= VQA-v2 normalisation + comma deletion, `normalize_word`).

* Tokens are *sets* of whitespace words of the cleaned strings (`VQA._preprocess`), so repeats
  count once; recall = |pred & gold| / |gold|.
* Closed vs open is decided by the cleaned gold (`if clean_correct in ["yes", "no"]`), not by the
  dataset's answer type: a VQA-RAD "closed" question with gold "MRI" is scored as open here
  (`Answer.method` says which rule applied: "closed_recall>=0.4" or "open_recall>=0.75"). The rows
  are grouped the same way (`group_of`): the "closed" row is closedQuestionsAccuracy over every
  yes/no gold, "open" is openQuestionsAccuracy over the rest; the dataset's own grouping follows as
  `dataset_answer_type=closed` / `=open` rows when it differs.
* Closed: a gold "no" also accepts "not" (gold tokens {no, not}); correct if recall >= 0.4, so
  one of "no"/"not" suffices, and a prediction holding both "yes" and "no" is right either way.
* Open: correct ("openQuestionsAccuracy") if recall >= 0.75; `extra["recall"]` is the recall
  that "openQuestionsRecall" averages.
* Multiple choice: each option is cleaned as "<letter> <text>" (MedQA's `f'{key} {value}'`; note
  the letter "a" is then dropped as an article), scored with torchmetrics BLEU-1 against the cleaned
  prediction; the first option with the highest score wins. An empty prediction or a best score
  of 0 is MultiMedEval's "Invalid answer" (INVALID here, value 0, as it counts as wrong there).
  Every option is picked by similarity, so a pick the reply does not name itself (medprobe's letter
  parser reads another letter or none, and the cleaned reply is not the option's text) is marked as
  a nearest-option pick: method "nearest_option_fallback" and `Answer.fallback`, counted per row as
  `fallback`; a pick the reply names keeps method "max_bleu1".

Generation failures (text None) are INVALID with value 0; everything else is CORRECT or WRONG.
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from typing import ClassVar

from medprobe.construct import answer as _answer
from medprobe.construct import score as _score_of
from medprobe.letters import LETTERS
from medprobe.parsing import parse_letter
from medprobe.scoring._base import NEAREST_OPTION, Preset
from medprobe.scoring.normalize import _normalize_word, normalize_word
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "multimedeval"
VQA_PARSER = "multimedeval-token-recall"
MC_PARSER = "multimedeval-bleu1"
# enum members as module constants: `AnswerType.X` is a class attribute look-up per record (bench/scoring.py)
_CHOICE = AnswerType.MULTIPLE_CHOICE


def bleu1(pred: str, ref: str) -> float:
    """torchmetrics `BLEUScore(n_gram=1)` on one sentence pair (no smoothing)."""
    return _bleu1(Counter(pred.split()), _counts(ref))


@lru_cache(maxsize=8192)
def _counts(text: str) -> Counter[str]:
    return Counter(text.split())


def _bleu1(hyp: Counter[str], ref: Counter[str]) -> float:
    hyp_len, ref_len = hyp.total(), ref.total()
    matches = sum(min(n, ref[w]) for w, n in hyp.items() if w in ref)  # clipped unigram matches
    if matches == 0:
        return 0.0
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * matches / hyp_len


@lru_cache(maxsize=1024)
def _option_counts(options: tuple[str, ...]) -> tuple[Counter[str], ...]:
    # qa.py MedQA: clean_str(f'{option["key"]} {option["value"]}')
    return tuple(_counts(normalize_word(f"{LETTERS[i]} {opt}")) for i, opt in enumerate(options))


@lru_cache(maxsize=8192)
def _clean_gold(gold: str) -> str:
    return normalize_word(gold.lower().strip())  # get_correct_answer: answer.lower().strip(), then clean_str


@lru_cache(maxsize=8192)
def _vqa(gold: str, text: str) -> Score:
    gold = _clean_gold(gold)
    pred = _normalize_word(text)  # uncached: `_vqa` is cached by the reply already
    gold_tokens, pred_tokens = set(gold.split()), set(pred.split())
    shared = len(pred_tokens & gold_tokens)
    recall = shared / len(gold_tokens) if gold_tokens else 0.0
    precision = shared / len(pred_tokens) if pred_tokens else 0.0
    f1 = 2 * precision * recall / (precision + recall + 1e-8)  # sic: epsilon in the official F1
    if gold in ("yes", "no"):
        if gold_tokens == {"no"}:
            gold_tokens = {"no", "not"}
        correct = len(pred_tokens & gold_tokens) / len(gold_tokens) >= 0.4
        method = "closed_recall>=0.4"
    else:
        correct, method = recall >= 0.75, "open_recall>=0.75"
    return _score_of(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, NAME, VQA_PARSER,
                     _answer(pred, VQA_PARSER, method), {"recall": recall, "f1": f1})


@lru_cache(maxsize=8192)
def _choice(gold: str, options: tuple[str, ...], text: str) -> Score:
    pred = _normalize_word(text)
    hyp = Counter(pred.split())
    scores = [_bleu1(hyp, ref) for ref in _option_counts(options)]
    if not pred or not scores or max(scores) == 0:  # qa.py: "Invalid answer"
        answer = Answer(value=None, parser=MC_PARSER, valid=False, reason="empty" if not pred else "no_match")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=MC_PARSER, answer=answer)
    best = scores.index(max(scores))  # first best option wins ties
    letter = LETTERS[best]
    correct = letter == gold.strip().upper()
    named = parse_letter(text, len(options))
    # the reply did not name this option (by letter or text): only the similarity chose it
    nearest = not (named.valid and named.value == letter) and pred not in (
        normalize_word(options[best]), normalize_word(f"{letter} {options[best]}"))  # fmt: skip
    answer = _answer(letter, MC_PARSER, NEAREST_OPTION if nearest else "max_bleu1", fallback=nearest)
    return _score_of(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, NAME, MC_PARSER, answer,
                     {"bleu1": max(scores)})


class MultiMedEval(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "MultiMedEval: closed correct if token recall of the gold >= 0.4 (gold 'no' also accepts 'not'); "
        "open correct if recall >= 0.75; multiple choice = option with highest BLEU-1"
    )
    reproduces: ClassVar[str] = "corentin-ryr/MultiMedEval multimedeval/task_families.py VQA.evaluate, qa.py (d9ac283)"

    def group_of(self, sample: Sample) -> AnswerType:
        # VQA.evaluate: `closed_questions.append(clean_correct in ["yes", "no"])` decides both the rule and
        # which of closedQuestionsAccuracy / openQuestionsAccuracy the question counts in
        if sample.answer_type is AnswerType.MULTIPLE_CHOICE:
            return sample.answer_type
        return AnswerType.CLOSED if _clean_gold(sample.answer) in ("yes", "no") else AnswerType.OPEN

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if text is None:
            parser = MC_PARSER if sample.answer_type is _CHOICE else VQA_PARSER
            answer = Answer(value=None, parser=parser, valid=False, reason="error")
            return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=parser, answer=answer)
        if sample.answer_type is _CHOICE:
            return _choice(sample.answer, sample.options, text)
        return _vqa(sample.answer, text)
