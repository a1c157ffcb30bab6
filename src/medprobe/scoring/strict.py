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

from medprobe.parsing import normalize_open, parse_letter, parse_open, parse_yes_no, yes_no_value
from medprobe.scoring._base import Preset
from medprobe.scoring.normalize import normalize_vqa, token_f1
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "strict"
_PARSER_OF = {AnswerType.CLOSED: "yes_no", AnswerType.OPEN: "open", AnswerType.MULTIPLE_CHOICE: "letter"}


def _result(outcome: Outcome, value: float, answer: Answer, extra: dict[str, float] | None = None) -> Score:
    if extra is None and answer.parser == "open":
        extra = {"token_f1": 0.0}  # every open score carries the open metric's key
    return Score(outcome=outcome, value=value, preset=NAME, parser=answer.parser, answer=answer, extra=extra or {})


def _compare(answer: Answer, correct: bool, extra: dict[str, float] | None = None) -> Score:
    if not answer.valid:
        return _result(Outcome.INVALID, 0.0, answer, extra)
    return _result(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, answer, extra)


@lru_cache(maxsize=8192)
def _score(kind: AnswerType, gold: str, n_options: int, text: str | None) -> Score:
    """Pure in its arguments (Score is immutable), so repeated outputs like "Yes" cost one lookup."""
    gold_yes_no = yes_no_value(gold) if kind is AnswerType.CLOSED else None
    if kind is AnswerType.CLOSED and gold_yes_no is None:
        kind = AnswerType.OPEN  # closed question with a non-yes/no gold: scored as open
    if text is None:
        return _result(Outcome.INVALID, 0.0, Answer(value=None, parser=_PARSER_OF[kind], valid=False, reason="error"))
    if kind is AnswerType.MULTIPLE_CHOICE:
        # With no option texts stored, any letter A-Z is allowed (the gold letter is still required).
        answer = parse_letter(text, n_options or 26)
        return _compare(answer, answer.value == gold.strip(" .()[]").upper())
    if kind is AnswerType.CLOSED:
        answer = parse_yes_no(text)
        return _compare(answer, answer.value == gold_yes_no)
    answer = parse_open(text)
    if not answer.valid:
        return _result(Outcome.INVALID, 0.0, answer)
    pred, gold = normalize_vqa(answer.value), normalize_vqa(normalize_open(gold))
    return _compare(answer, pred == gold, {"token_f1": token_f1(pred, gold)})


class Strict(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "medprobe default: explicit answer parsing (tag > boxed > 'Answer:' > text), yes/no and letter "
        "equality, normalised exact match for open answers (token F1 in extra); invalid reported apart"
    )
    reproduces: ClassVar[str] = "medprobe (no external script)"

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        return _score(sample.answer_type, sample.answer, len(sample.options), text)
