"""VQA-v2 answer normalisation and token helpers shared by the scoring presets.

Rules written from the official VQA evaluation, GT-Vision-Lab/VQA
`PythonEvaluationTools/vqaEvaluation/vqaEval.py` (commit c4e6a0e, `processPunctuation` and
`processDigitArticle`). LLaVA-Med (`llava/eval/eval_metrics/glossary.py::normalize_word`) and
MultiMedEval (`multimedeval/utils.py::clean_str`) copy those two steps and then delete every
comma; `normalize_word` below is that variant.

The official rules keep their quirks, because presets must reproduce published numbers:

* a punctuation mark is deleted (not replaced by a space) when it touches a space anywhere in the
  text, or when the text contains a digit-comma-digit group anywhere;
* the period regex `(?!<=\\d)(\\.)(?!\\d)` is a typo for a look-behind, so it removes every period
  not followed by a digit, and `periodStrip.sub("", text, re.UNICODE)` passes re.UNICODE (= 32) as
  the *count*, so at most 32 periods are removed per call;
* number words "zero".."ten" become digits and "none" becomes "0";
* the contraction map only adds apostrophes ("dont" -> "don't"); its capitalised keys ("Im")
  can never match because words are lowercased first, so they are left out here.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

# vqaEval.py: self.punct (note: no "." ":" "'" here; periods have their own rule)
PUNCT: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip
# vqaEval.py periodStrip is "(?!<=\d)(\.)(?!\d)": the leading group is a typo for a look-behind and,
# as a look-ahead at a ".", never fails; so it is exactly "a period not followed by a digit".
_PERIOD_STRIP = re.compile(r"\.(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")  # vqaEval.py commaStrip
_PERIOD_COUNT = int(re.UNICODE)  # sic: passed positionally as `count` in vqaEval.py

ARTICLES = frozenset({"a", "an", "the"})
NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip

# vqaEval.py: self.contractions, reachable non-identity entries, as "key=value" pairs.
_CONTRACTION_PAIRS = """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn't've
couldnt've=couldn't've didnt=didn't doesnt=doesn't dont=don't hadnt=hadn't hadnt've=hadn't've
hadn'tve=hadn't've hasnt=hasn't havent=haven't hed=he'd hed've=he'd've he'dve=he'd've hes=he's
howd=how'd howll=how'll hows=how's isnt=isn't itd=it'd itd've=it'd've it'dve=it'd've itll=it'll
maam=ma'am mightnt=mightn't mightnt've=mightn't've mightn'tve=mightn't've mightve=might've
mustnt=mustn't mustve=must've neednt=needn't notve=not've oclock=o'clock oughtnt=oughtn't
ow's'at='ow's'at 'ows'at='ow's'at 'ow'sat='ow's'at shant=shan't shed've=she'd've she'dve=she'd've
shouldve=should've shouldnt=shouldn't shouldnt've=shouldn't've shouldn'tve=shouldn't've
somebody'd=somebodyd somebodyd've=somebody'd've somebody'dve=somebody'd've somebodyll=somebody'll
somebodys=somebody's someoned=someone'd someoned've=someone'd've someone'dve=someone'd've
someonell=someone'll someones=someone's somethingd=something'd somethingd've=something'd've
something'dve=something'd've somethingll=something'll thats=that's thered=there'd
thered've=there'd've there'dve=there'd've therere=there're theres=there's theyd=they'd
theyd've=they'd've they'dve=they'd've theyll=they'll theyre=they're theyve=they've twas='twas
wasnt=wasn't wed've=we'd've we'dve=we'd've weve=we've werent=weren't whatll=what'll
whatre=what're whats=what's whatve=what've whens=when's whered=where'd wheres=where's
whereve=where've whod=who'd whod've=who'd've who'dve=who'd've wholl=who'll whos=who's
whove=who've whyll=why'll whyre=why're whys=why's wont=won't wouldve=would've wouldnt=wouldn't
wouldnt've=wouldn't've wouldn'tve=wouldn't've yall=y'all yall'll=y'all'll y'allll=y'all'll
yall'd've=y'all'd've y'alld've=y'all'd've y'all'dve=y'all'd've youd=you'd youd've=you'd've
you'dve=you'd've youll=you'll youre=you're youve=you've
"""
CONTRACTIONS: dict[str, str] = dict(pair.split("=", 1) for pair in _CONTRACTION_PAIRS.split())


_PUNCT_FIND = re.compile("[" + re.escape("".join(PUNCT)) + "]")
# One lookup per word: number words -> digits, articles -> "" (dropped), contractions. Merging is
# safe: no digit or contraction value is itself a key, so the official order is preserved.
_WORD_MAP: dict[str, str] = {**CONTRACTIONS, **NUMBER_WORDS, **{a: "" for a in ARTICLES}}


_PUNCT_BYTES = "".join(PUNCT).encode()
_NOT_PUNCT = bytes(b for b in range(256) if b not in _PUNCT_BYTES)
_TO_SPACE = bytes(32 if b in _PUNCT_BYTES else b for b in range(256))
# each mark's byte -> the two strings that say it touches a space ("; " or " ;"), and the mark as bytes
_TOUCH = {p.encode()[0]: (p + " ", " " + p, p.encode()) for p in PUNCT}


def process_punctuation(text: str) -> str:
    """vqaEval.py `processPunctuation`: delete or space out punctuation, then strip periods."""
    # The official test looks at the *input* text for every mark, so it is computed once here;
    # replacing one mark never creates or removes another, so only the marks present matter.
    if not text.isascii():
        return _punctuation(text)
    # ASCII (nearly every reply): bytes.translate finds the marks and rewrites them in one C pass each, where
    # a regex character class tests each character against every mark (bench/scoring.py)
    raw = text.encode()
    marks = raw.translate(None, _NOT_PUNCT)
    if marks:
        if 44 in marks and _COMMA_STRIP.search(text) is not None:  # 44 = ","; a digit-comma-digit: delete every mark
            raw = raw.translate(None, _PUNCT_BYTES)
        else:
            gone = b""
            for m in set(marks):
                space, spaced, mark = _TOUCH[m]
                if space in text or spaced in text:
                    gone += mark
            raw = raw.translate(_TO_SPACE, gone)  # the marks touching a space deleted, the others spaced out
        text = raw.decode()
    return _PERIOD_STRIP.sub("", text, count=_PERIOD_COUNT) if "." in text else text


def _punctuation(text: str) -> str:
    present = _PUNCT_FIND.findall(text)  # a regex scan is cheaper than a set intersection per character
    out = text
    if present:
        delete_all = "," in text and _COMMA_STRIP.search(text) is not None
        for p in set(present):
            if delete_all or (p + " " in text or " " + p in text):
                out = out.replace(p, "")
            else:
                out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_COUNT) if "." in out else out


def process_digit_article(text: str) -> str:
    """vqaEval.py `processDigitArticle`: lowercase, number words to digits, drop articles, contractions."""
    words = text.lower().split()
    return " ".join(filter(None, map(_WORD_MAP.get, words, words)))


def _normalize_vqa(text: str) -> str:
    """The official VQA-v2 answer normalisation, as vqaEval.py applies it to a predicted answer."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return process_digit_article(process_punctuation(text))


def _normalize_word(text: str) -> str:
    """LLaVA-Med `normalize_word` / MultiMedEval `clean_str`: VQA-v2 steps, then delete commas.

    Unlike `normalize_vqa` there is no newline replacement and no strip before the punctuation
    step, exactly as in those scripts (it matters for marks next to a tab or newline). The final
    comma deletion is kept for fidelity; it is a no-op, as "," is already a punctuation mark.
    """
    return process_digit_article(process_punctuation(text.lower())).replace(",", "")


# Cached for golds, which repeat. A preset's own scoring function is cached by the reply already, so it
# normalises the reply with the uncached `_normalize_*`: a second cache would only add a miss per unique reply.
normalize_vqa = lru_cache(maxsize=8192)(_normalize_vqa)
normalize_word = lru_cache(maxsize=8192)(_normalize_word)


def normalize_word_again(normalized: str) -> str:
    """`normalize_word(normalized)` for a string `normalize_word` returned (LLaVA-Med normalises twice).

    Such a string holds no punctuation mark (each mark present was deleted or spaced out), only
    lowercase words joined by single spaces, none of them a `_WORD_MAP` key (no value is a key, and
    a word left alone is none): when it is also ASCII and period-free (over 32 periods, or periods
    before digits, survive a pass), a second pass returns it unchanged, so it is not run.
    tests/test_normalize.py checks this on every text of the preset tests."""
    if normalized.isascii() and "." not in normalized:
        return normalized
    return _normalize_word(normalized)


def tokens(text: str) -> list[str]:
    """Whitespace tokens, the tokenisation every script here uses (`str.split()`)."""
    return text.split()


def token_f1(pred: str, gold: str) -> float:
    """SQuAD-style token F1 over whitespace-token multisets (0 if either side is empty)."""
    if pred == gold:
        return 1.0 if pred else 0.0
    pred_words, gold_words = pred.split(), gold.split()
    if set(gold_words).isdisjoint(pred_words):
        return 0.0
    pred_set, gold_set = set(pred_words), set(gold_words)
    if len(pred_set) == len(pred_words) and len(gold_set) == len(gold_words):
        common = len(pred_set & gold_set)  # no repeated word (the usual case): the multisets are sets; no Counter
    else:
        common = sum((Counter(pred_words) & Counter(gold_words)).values())
    precision = common / len(pred_words)  # = common / sum(Counter(pred_words).values())
    recall = common / len(gold_words)
    return 2 * precision * recall / (precision + recall)
