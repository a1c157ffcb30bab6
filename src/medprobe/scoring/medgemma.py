"""`medgemma-vqa`: the MedGemma technical report's VQA metrics (Sellergren et al., arXiv:2507.05201; the
google/medgemma-4b-it model card's "Visual question answering" rows for SLAKE and VQA-RAD):

* **tokenized F1 over every question**, closed and open together (the card's "Tokenized F1" row:
  MedGemma 4B 72.3 on SLAKE, 49.9 on VQA-RAD), and
* **accuracy on the closed subset** (the card's "Accuracy (on closed subset)" row: 87.6, 69.1).

Google publishes no evaluation code (the google-health/medgemma repository holds usage and
fine-tuning notebooks only), so what the report leaves open is medprobe's own rule, the same as
`strict`'s: the answer is `parse_open`'s text, both sides get VQA-v2 normalisation (lowercase,
punctuation, articles, number words), and F1 is SQuAD-style token F1 over whitespace tokens. Closed
accuracy is `strict`'s yes/no rule (a closed question whose gold is not yes/no: normalised exact
match). `Score.value` is the question's token F1 (the overall row's `token_f1`); closed questions
also carry `extra["accuracy"]`, so the closed row has both. An INVALID answer (empty, refused,
generation failed) scores 0 on both, counted in n, as every preset does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from medprobe.construct import score as _built
from medprobe.parsing import parse_open
from medprobe.scoring import strict
from medprobe.scoring._base import Preset
from medprobe.scoring.normalize import _normalize_vqa, token_f1
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "medgemma-vqa"
_open_answer = parse_open.__wrapped__


# uncached: `_closed` below, its only caller, is cached by the reply already (a second cache only adds a miss)
def _f1(gold: str, text: str) -> float:
    answer = _open_answer(text)
    return token_f1(_normalize_vqa(answer.value), strict._open_gold(gold)) if answer.valid else 0.0


@lru_cache(maxsize=8192)
def _closed(gold: str, text: str | None) -> Score:
    verdict = strict._closed(gold, text)  # the yes/no rule (open rule for a non-yes/no gold)
    correct = verdict.outcome is Outcome.CORRECT
    if text is None or verdict.outcome is Outcome.INVALID:
        f1 = 0.0
    elif verdict.parser == "open" and "token_f1" in verdict.extra:
        f1 = verdict.extra["token_f1"]  # a non-yes/no gold: strict scored parse_open's answer; its token F1 is _f1's
    else:
        f1 = _f1(gold, text)
    return _built(verdict.outcome, f1, NAME, verdict.parser, verdict.answer,
                  {"accuracy": 1.0 if correct else 0.0})  # fmt: skip


@lru_cache(maxsize=8192)
def _open(gold: str, text: str | None) -> Score:
    if text is None:
        answer = Answer(value=None, parser="open", valid=False, reason="error")
        return _built(Outcome.INVALID, 0.0, NAME, "open", answer, {})
    verdict = strict._open(gold, text)  # exact match decides correct / wrong; its token F1 is the value
    return _built(verdict.outcome, verdict.extra.get("token_f1", 0.0), NAME, verdict.parser, verdict.answer, {})


class MedGemmaVQA(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "MedGemma report's VQA metrics: tokenized F1 over every question (value), accuracy on the closed "
        "subset (extra); strict's parsing and VQA-v2 normalisation"
    )
    reproduces: ClassVar[str] = ("MedGemma technical report (arXiv:2507.05201) / medgemma-4b-it model card: "
                                 "'Tokenized F1' and 'Accuracy (on closed subset)'; no official code")
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.CLOSED: "token_f1", AnswerType.OPEN: "token_f1"}

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if sample.answer_type is AnswerType.CLOSED:
            return _closed(sample.answer, text)
        if sample.answer_type is AnswerType.OPEN:
            return _open(sample.answer, text)
        return self.unsupported("medgemma-vqa")
