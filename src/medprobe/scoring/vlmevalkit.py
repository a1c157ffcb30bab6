"""`vlmevalkit-mcq`: VLMEvalKit's multiple-choice answer matching without the LLM judge.

Reproduces open-compass/VLMEvalKit (commit e8e78f0) `vlmeval/utils/matching_util.py` `can_infer`
(= `can_infer_option`, else `can_infer_text`) as `multiple_choice.py` `extract_answer_from_item` runs it
under the `exact_matching` policy (no judge model): GMAI-MMBench's `evaluate` and every `ImageMCQDataset`.
Choices are the option letters A-Z with their texts (blank options are not choices). In order:

1. A reply holding one of VLMEvalKit's refusal sentences ("Cannot determine the answer", ...) is "Z".
2. Letter tokens: each of `.()[],:;!*#{}` becomes a space, the reply is split on whitespace, and the tokens
   equal to a choice letter (case-sensitive) are counted. Exactly one distinct letter, whose first
   occurrence is among the last four tokens, is the answer ("B", "(B) Cyst", "The answer is B."; also
   the article in "A mass." and "It is a cyst, grade A"). No letter but a bare "Z" token: "Z".
3. Else the pattern `(?i)(?:correct\\s+)?answer\\s+is\\s+\\**([ABCD])\\**` (added 2026-06, #1552): note
   only A-D, case-insensitive and with no word boundary, so "the answer is definitely ..." reads D and
   "the answer is a cyst" reads A.
4. Else option text: a reply at most twice as long as all option texts together, lowercased, containing
   exactly one option's lowercased text is that option.
5. Else nothing: VLMEvalKit records "Z" (hit 0). Versions before 2025-08 (#1175) took a lone letter
   anywhere in the reply and had no length cap on text matching; the GMAI-MMBench paper predates both.

medprobe's outcomes: a letter or text match is CORRECT or WRONG; "Z" (refusal, a bare Z, several
letters or option texts, nothing) is INVALID with its reason and value 0, so accuracy equals
VLMEvalKit's hit rate while invalid answers are counted apart. No rule here picks a nearest option;
step 3 reading a letter the reply never wrote (lowercase, or the first letter of a longer word) is
marked `Answer.fallback` (method "answer_is_word") and counted per row as `fallback`. The judge path
(an LLM re-reads unmatched replies, then a random letter after three failures) is not reproduced.
A sample without a gold answer (GMAI-MMBench TEST) is INVALID with reason "no_gold".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import ClassVar

from medprobe.letters import LETTERS
from medprobe.scoring._base import Preset
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "vlmevalkit-mcq"
PARSER = "vlmevalkit-can-infer"
# matching_util.py can_infer_option: replies VLMEvalKit reads as "no answer" (Z)
_REFUSALS = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
             "I'm sorry, but without the image provided", "Cannot determine the answer")
_API_FAILURE = "Failed to obtain answer via API"  # skips the letter rules, not the text rule
_SEPARATORS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_VERBOSE = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def infer_option(reply: str, choices: dict[str, str]) -> tuple[str | None, str]:
    """`can_infer_option` -> (letter, method), ("Z", reason) or (None, why nothing matched)."""
    if _API_FAILURE in reply:
        return None, "no_option"
    if any(phrase in reply for phrase in _REFUSALS):
        return "Z", "refusal"
    tokens = reply.translate(_SEPARATORS).split()
    present = [c for c in choices if c in tokens]
    if len(present) == 1 and tokens.index(present[0]) > len(tokens) - 5:
        return present[0], "option_letter"
    if not present and "Z" in tokens:
        return "Z", "answered_z"
    m = _VERBOSE.search(reply)
    if m and m.group(1).upper() in choices:
        # the pattern has no word boundary: "answer is definitely" reads D, "answer is a cyst" reads A
        end = m.end(1)
        word = m.group(1).islower() or (end < len(reply) and reply[end].isalnum())
        return m.group(1).upper(), "answer_is_word" if word else "answer_is"
    return None, "ambiguous" if len(present) > 1 else "no_option"


def infer_text(reply: str, choices: dict[str, str]) -> tuple[str | None, str]:
    """`can_infer_text`: the one choice whose lowercased text the lowercased reply contains."""
    reply = reply.lower()
    if len(reply) > 2 * sum(len(text) for text in choices.values()):
        return None, "no_option"  # too long to be read as an option's text
    hits = [c for c, text in choices.items() if text.lower() in reply]
    if len(hits) == 1:
        return hits[0], "option_text"
    return None, "ambiguous" if hits else "no_option"


def can_infer(reply: str, choices: dict[str, str]) -> tuple[str | None, str]:
    """`can_infer`: (letter, method), or (None, reason) where VLMEvalKit records "Z"."""
    value, method = infer_option(reply, choices)
    if method in ("refusal", "answered_z"):
        return None, method
    if value is not None:
        return value, method
    value, why = infer_text(reply, choices)
    return (value, why) if value is not None else (None, "ambiguous" if "ambiguous" in (method, why) else why)


def _invalid(reason: str) -> Score:
    answer = Answer(value=None, parser=PARSER, valid=False, reason=reason)
    return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=PARSER, answer=answer)


@lru_cache(maxsize=8192)
def _score(gold: str, options: tuple[str, ...], text: str | None) -> Score:
    if not gold.strip():
        return _invalid("no_gold")
    if text is None:
        return _invalid("error")
    if not options:
        return _invalid("no_options")
    if len(options) > 26:  # VLMEvalKit's choices are the columns A-Z: past Z it has no label
        return _invalid("over_26_options")
    value, method = can_infer(text, dict(zip(LETTERS, options)))
    if value is None:
        return _invalid(method)
    correct = value == gold.strip().upper()
    answer = Answer(value=value, parser=PARSER, method=method, fallback=method == "answer_is_word")
    return Score(outcome=Outcome.CORRECT if correct else Outcome.WRONG, value=1.0 if correct else 0.0, preset=NAME,
                 parser=PARSER, answer=answer)


class VLMEvalKitMCQ(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "VLMEvalKit multiple-choice matching without a judge (can_infer): one option letter among the last "
        "tokens, 'answer is X', else one option text in a short reply; no match is invalid (VLMEvalKit: wrong)"
    )
    reproduces: ClassVar[str] = ("open-compass/VLMEvalKit e8e78f0 vlmeval/utils/matching_util.py can_infer "
                                 "(exact_matching)")
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.MULTIPLE_CHOICE: "accuracy"}

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if sample.answer_type is not AnswerType.MULTIPLE_CHOICE:
            return self.unsupported(PARSER)
        return _score(sample.answer, sample.options, text)
