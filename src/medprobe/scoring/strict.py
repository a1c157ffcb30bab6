"""`strict`: medprobe's default preset. Parse first, then compare; invalid answers are reported apart.

* Closed: `parse_yes_no` on the prediction against the gold yes/no. A few closed questions have a
  gold that is not yes/no (VQA-RAD: "Is this an MRI or a CT scan?" -> "MRI"); those are scored like
  open questions (normalised exact match of `parse_open`), because a yes/no parser cannot answer them.
* Open: `parse_open`, then VQA-v2 normalisation of both sides, exact match (1/0); token F1 in
  `extra["token_f1"]`.
* Multiple choice: `parse_letter` against the gold letter (`sample.answer`).

Outcome INVALID when the parser is invalid (empty, refusal, ambiguous, ...) or generation failed
(text None, reason "error"); its value is 0.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from medprobe.construct import score as _built
from medprobe.parsing import normalize_open, parse_letter, parse_open, parse_yes_no, yes_no_value
from medprobe.scoring._base import Preset
from medprobe.scoring.normalize import _normalize_vqa, normalize_vqa, token_f1
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "strict"
# enum members as module constants: `AnswerType.X` is a class attribute look-up per record (bench/scoring.py)
_CLOSED, _CHOICE = AnswerType.CLOSED, AnswerType.MULTIPLE_CHOICE
# The scoring functions below are cached by the reply, so they call the parsers' uncached functions:
# a second cache would only add a miss per unique reply (bench/scoring.py).
_yes_no, _letter, _open_answer = parse_yes_no.__wrapped__, parse_letter.__wrapped__, parse_open.__wrapped__


def _result(outcome: Outcome, value: float, answer: Answer, extra: dict[str, float] | None = None) -> Score:
    if extra is None and answer.parser == "open":
        extra = {"token_f1": 0.0}  # every open score carries the open metric's key
    return _built(outcome, value, NAME, answer.parser, answer, extra or {})


_VERDICTS: dict[tuple, Score] = {}


def _verdict(answer: Answer, correct: bool) -> Score:
    """The score of a yes/no or letter answer (or an invalid one): few distinct ones, each built once (keyed
    by the answer's fields: cheaper than hashing the model)."""
    key = (answer.parser, answer.value, answer.method, answer.valid, answer.reason, correct)
    score = _VERDICTS.get(key)
    if score is None:
        if not answer.valid:
            score = _result(Outcome.INVALID, 0.0, answer)
        else:
            score = _result(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, answer)
        if len(_VERDICTS) < 4096:  # bounded: the few parser rules times the letters of the largest option list
            _VERDICTS[key] = score
    return score


@lru_cache(maxsize=64)
def _failed(parser: str) -> Score:
    return _result(Outcome.INVALID, 0.0, Answer(value=None, parser=parser, valid=False, reason="error"))


_gold_yes_no = lru_cache(maxsize=1024)(yes_no_value)  # golds repeat


# One function per answer type, each pure in its arguments (Score is immutable) and cached, so repeated
# outputs like "Yes" cost one lookup.
@lru_cache(maxsize=8192)
def _closed(gold: str, text: str | None) -> Score:
    gold_yes_no = _gold_yes_no(gold)
    if gold_yes_no is None:
        return _open_score(gold, text)  # closed question with a non-yes/no gold: scored as open
    if text is None:
        return _failed("yes_no")
    answer = _yes_no(text)
    return _verdict(answer, answer.value == gold_yes_no)


@lru_cache(maxsize=8192)
def _choice(gold: str, n_options: int, text: str | None) -> Score:
    if text is None:
        return _failed("letter")
    # With no option texts stored, any letter A-Z is allowed (the gold letter is still required).
    answer = _letter(text, n_options or 26)
    return _verdict(answer, answer.value == gold.strip(" .()[]").upper())


@lru_cache(maxsize=1024)
def _open_gold(gold: str) -> str:
    return normalize_vqa(normalize_open(gold))


def _open_score(gold: str, text: str | None) -> Score:
    if text is None:
        return _failed("open")
    answer = _open_answer(text)
    if not answer.valid:
        return _verdict(answer, False)
    pred, gold = _normalize_vqa(answer.value), _open_gold(gold)
    correct = pred == gold
    return _built(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, NAME, answer.parser, answer,
                  {"token_f1": token_f1(pred, gold)})


_open = lru_cache(maxsize=8192)(_open_score)


class Strict(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "medprobe default: explicit answer parsing (tag > boxed > 'Answer:' > text), yes/no and letter "
        "equality, normalised exact match for open answers (token F1 in extra); invalid reported apart"
    )
    reproduces: ClassVar[str] = "medprobe (no external script)"

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        kind = sample.answer_type
        if kind is _CLOSED:
            return _closed(sample.answer, text)
        if kind is _CHOICE:
            return _choice(sample.answer, len(sample.options), text)
        return _open(sample.answer, text)
