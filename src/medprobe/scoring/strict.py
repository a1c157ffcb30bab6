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

from typing import ClassVar

from medprobe.parsing import normalize_open, parse_letter, parse_open, parse_yes_no, yes_no_value
from medprobe.scoring._base import Preset
from medprobe.scoring.normalize import normalize_vqa, token_f1
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

_PARSER_OF = {AnswerType.CLOSED: "yes_no", AnswerType.OPEN: "open", AnswerType.MULTIPLE_CHOICE: "letter"}


class Strict(Preset):
    name: ClassVar[str] = "strict"
    description: ClassVar[str] = (
        "medprobe default: explicit answer parsing (tag > boxed > 'Answer:' > text), yes/no and letter "
        "equality, normalised exact match for open answers (token F1 in extra); invalid reported apart"
    )
    reproduces: ClassVar[str] = "medprobe (no external script)"

    def score(self, sample: Sample, text: str | None) -> Score:
        kind = sample.answer_type
        gold_yes_no = yes_no_value(sample.answer) if kind is AnswerType.CLOSED else None
        if kind is AnswerType.CLOSED and gold_yes_no is None:
            kind = AnswerType.OPEN  # closed question with a non-yes/no gold: scored as open
        if text is None:
            answer = Answer(value=None, parser=_PARSER_OF[kind], valid=False, reason="error")
            return self._result(Outcome.INVALID, 0.0, answer)
        if kind is AnswerType.MULTIPLE_CHOICE:
            return self._letter(sample, text)
        if kind is AnswerType.CLOSED:
            answer = parse_yes_no(text)
            return self._compare(answer, answer.value == gold_yes_no)
        return self._open(sample, text)

    def _letter(self, sample: Sample, text: str) -> Score:
        # With no option texts stored, any letter A-Z is allowed (the gold letter is still required).
        answer = parse_letter(text, len(sample.options) or 26)
        gold = sample.answer.strip(" .()[]").upper()
        return self._compare(answer, answer.value == gold)

    def _open(self, sample: Sample, text: str) -> Score:
        answer = parse_open(text)
        if not answer.valid:
            return self._result(Outcome.INVALID, 0.0, answer)
        pred = normalize_vqa(answer.value)
        gold = normalize_vqa(normalize_open(sample.answer))
        return self._compare(answer, pred == gold, {"token_f1": token_f1(pred, gold)})

    def _compare(self, answer: Answer, correct: bool, extra: dict[str, float] | None = None) -> Score:
        if not answer.valid:
            return self._result(Outcome.INVALID, 0.0, answer, extra)
        outcome = Outcome.CORRECT if correct else Outcome.WRONG
        return self._result(outcome, 1.0 if correct else 0.0, answer, extra)

    def _result(self, outcome: Outcome, value: float, answer: Answer, extra: dict[str, float] | None = None) -> Score:
        if extra is None and answer.parser == "open":
            extra = {"token_f1": 0.0}  # keep the open metric's key on every open score
        return Score(outcome=outcome, value=value, preset=self.name, parser=answer.parser, answer=answer, extra=extra or {})
