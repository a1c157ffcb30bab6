"""`lmms-eval`: lmms-eval's SLAKE exact match after answer normalisation.

Reproduces EvolvingLMMs-Lab/lmms-eval `lmms_eval/tasks/slake/utils.py` (commit 75571cfe,
`slake_process_results` + `normalize_answer`). lmms-eval has no VQA-RAD or PathVQA task; this
preset applies the same rule to them, which is how "lmms-eval style" numbers for those are made.

`normalize_answer`, in order: strip + lowercase; drop "(...)" and "（...）" groups; every ASCII and
CJK punctuation mark becomes a space; collapse whitespace; "x ray"/"xray" -> "xray"; a *whole*
answer in a yes/no synonym set becomes "yes"/"no" (English: yeah, yep, true / nope, false; Chinese:
是, 是的, 有, 包含, 可以, 能, 会, 正常 / 否, 不是, 没有, 无, 不包含, 不能, 不会, 不可以, 不正常, 异常).
Then prediction == gold. Nothing else: no article or number-word handling, no yes/no search inside
a sentence ("Yes, it is" is wrong against "yes"), the same rule for open and closed questions.

Generation failures (text None) are INVALID with value 0; everything else is CORRECT or WRONG.
Multiple choice is not defined by lmms-eval's SLAKE task: such samples are INVALID with reason
"unsupported_answer_type" (the preset's `value_names` list the answer types it scores).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import ClassVar

from medprobe.construct import answer as _answer
from medprobe.construct import score as _score_of
from medprobe.scoring._base import Preset
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "lmms-eval"
PARSER = "lmms-eval-exact"

# utils.py: EN_YES / EN_NO / ZH_YES / ZH_NO / ZH_PUNCTUATION
_YES = frozenset({"yes", "yeah", "yep", "true", "是", "是的", "有", "包含", "可以", "能", "会", "正常"})
_NO = frozenset({"no", "nope", "false", "否", "不是", "没有", "无", "不包含", "不能", "不会", "不可以", "不正常", "异常"})
_ZH_PUNCTUATION = "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～、，。；：《》？【】（）"
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in string.punctuation + _ZH_PUNCTUATION})
# the same table for ASCII text, as bytes: one C pass instead of a dictionary look-up per character
_ASCII_PUNCT_TO_SPACE = bytes(32 if chr(b) in string.punctuation else b for b in range(256))
_PARENS = re.compile(r"\([^)]*\)")
_FULLWIDTH_PARENS = re.compile(r"（[^）]*）")


def _normalize_answer(text: str) -> str:
    """lmms-eval slake/utils.py `normalize_answer`."""
    text = text.strip().lower()
    if "(" in text and ")" in text:  # the two substitutions change nothing without a whole parenthesis
        text = _PARENS.sub(" ", text)
    if "（" in text:
        text = _FULLWIDTH_PARENS.sub(" ", text)
    spaced = text.encode().translate(_ASCII_PUNCT_TO_SPACE).decode() if text.isascii() else text.translate(_PUNCT_TO_SPACE)
    # = re.sub(r"\s+", " ", spaced).strip(): `\s` and str.split() are the same whitespace (str.isspace)
    text = " ".join(spaced.split())
    if text in ("x ray", "xray"):
        return "xray"
    return "yes" if text in _YES else "no" if text in _NO else text


normalize_answer = lru_cache(maxsize=8192)(_normalize_answer)  # golds repeat; `_score` caches the reply


@lru_cache(maxsize=8192)
def _score(gold: str, text: str | None) -> Score:
    if text is None:
        answer = Answer(value=None, parser=PARSER, valid=False, reason="error")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=PARSER, answer=answer)
    pred = _normalize_answer(text)
    correct = pred == normalize_answer(gold)
    return _score_of(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, NAME, PARSER,
                     _answer(pred, PARSER, "exact"))


class LmmsEval(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "lmms-eval SLAKE: exact match after lowercasing, dropping parentheses, punctuation to spaces, "
        "and mapping whole-answer yes/no synonyms"
    )
    reproduces: ClassVar[str] = "EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/slake/utils.py (75571cfe)"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.CLOSED: "accuracy", AnswerType.OPEN: "accuracy"}

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if sample.answer_type not in self.value_names:
            return self.unsupported(PARSER)  # the SLAKE task has no multiple-choice rule
        return _score(sample.answer, text)
