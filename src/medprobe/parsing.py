"""Named answer parsers: model text -> `Answer` (a value and the rule that found it, or invalid).

Every parser prefers explicit markers over guesses (`<answer>` tag > `\\boxed{}` > "Answer:" prefix
> the text itself) and records the rule in `Answer.method`, so a number always says how it was
parsed. There is never a random or nearest-option fallback: when no rule applies the answer is
invalid with a reason ("empty", "refusal", "both_yes_and_no", "no_yes_no", "no_letter",
"several_letters", "letter_out_of_range").

A reasoning chain (`<think>...</think>` and the other delimiters of medprobe.reasoning) is split off
first: only the answer after it is parsed, so "yes", "no" and option letters inside the chain never count.
A chain that never closes is invalid ("unfinished_reasoning"), one followed by nothing
"no_answer_after_reasoning".

Chinese (SLAKE-zh) is handled minimally by `parse_yes_no`: a whole answer 是/是的/有 (yes) or
否/不是/没有/无 (no), or one of them leading the text before punctuation ("不是，这是CT"). There is
no substring search in Chinese, because 是 is also the copula ("这是肺") and 有 also means "has".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from medprobe.construct import answer as _built
from medprobe.letters import letter_index, letter_pattern
from medprobe.reasoning import may_hold_chain, split_text
from medprobe.types import Answer

YES_NO_PARSER = "yes_no"
LETTER_PARSER = "letter"
OPEN_PARSER = "open"

_ZH_YES = frozenset({"是", "是的", "有"})
_ZH_NO = frozenset({"否", "不是", "没有", "无"})
_YES_WORDS = frozenset({"yes"}) | _ZH_YES
_NO_WORDS = frozenset({"no"}) | _ZH_NO
# Characters stripped around an answer: ASCII and CJK punctuation, markdown emphasis, quotes.
_EDGE = " \t\r\n!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~“”‘’。，、！？：；（）【】《》「」"

_TAG = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S | re.I)
_BOXED = "\\boxed{"
# "Answer: x", "The answer is x", "Final answer: x", "**Answer:** x" (the last one wins).
_PREFIX = re.compile(r"\banswer\b\W{0,3}?\s*(?::|\bis\b)[\s*:]*", re.I)
_YN_WORD = re.compile(r"[yn](?<=\b[yn])(?:es|o)\b")  # = \b(yes|no)\b, but lets re skip fast to y/n
_YN_PAIR = re.compile(r"\b(?:yes\s*(?:or|/)\s*no|no\s*(?:or|/)\s*yes)\b")  # "yes or no" answers nothing
_YN_FIRST = re.compile(r"^[\W_]*(yes|no)\b")
_ZH_FIRST = re.compile(r"^[\W_]*(不是|没有|是的|是|否|有|无)(?=$|[\s，。、,.!！?？;；:：])")

# Refusals: the model declines to answer. Deliberately narrow: "I cannot see any fracture" is an
# answer ("no"), so bare "cannot see" is not a refusal; "cannot see the image" is.
_REFUSAL = re.compile(
    r"\bas an ai\b"
    r"|\bi(?:'m| am) (?:sorry|unable|not able)\b"
    r"|\bi apologi[sz]e\b"
    r"|\bi (?:do not|don't) know\b"
    r"|\b(?:cannot|can't|can not|could not|couldn't|unable to|not possible to|impossible to|not able to)"
    r" (?:be )?(?:determined?|tell|say|answer|assess|provide|diagnose|comment|interpret|confirm)\b"
    r"|\b(?:cannot|can't|can not|unable to|not able to) (?:see|view|access|analy[sz]e|open|process)"
    r" (?:the |this |any |your )?(?:image|picture|photo|scan|x-ray|radiograph)"
    r"|\b(?:insufficient|not enough) (?:information|context|detail)"
)

# Letter rules, applied to text with markdown asterisks removed.
class _LetterRules(NamedTuple):
    lone: re.Pattern[str]
    lead: re.Pattern[str]
    after_prefix: re.Pattern[str]
    several: re.Pattern[str]
    paren: re.Pattern[str]
    option_word: re.Pattern[str]


@lru_cache(maxsize=64)
def _letter_rules(n_options: int) -> _LetterRules:
    """The letter rules for an n-option question. Up to 26 options a label is one letter ([A-Za-z],
    capitals where prose could hold the letter); past Z the in-range labels AA, AB, ... are added
    (medprobe.letters), so a 27-option question can be answered "AA"."""
    one, cap = letter_pattern(n_options), letter_pattern(n_options, lowercase=False)
    return _LetterRules(
        lone=re.compile(rf"^\s*[(\[]?({one})[)\]]?\s*[.:)]?\s*$"),
        lead=re.compile(rf"^\s*(?:\(({one})\)|\[({one})\]|({one})[.):])(?:\s|$)"),
        after_prefix=re.compile(rf"^\s*(?:(?:option|choice|letter)\s*)?[(\[]?({one})[)\]]?(?=$|[^\w'\-])", re.I),
        several=re.compile(
            rf"(?<![\w'\-])[(\[]?({cap})[)\]]?\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?({cap})[)\]]?(?![\w'\-])"
        ),
        paren=re.compile(rf"\(({cap})\)"),
        option_word=re.compile(rf"\b(?i:option|choice)\s*(?:(?i:is)\s+)?[(\[]?({cap})[)\]]?(?![\w'\-])"),
    )


# Every refusal pattern contains one of these; plain substring tests are far cheaper than the regex.
_REFUSAL_KEYS = ("not", "n't", "unable", "sorry", "apologi", "as an ai", "impossible", "insufficient")


def _refusal(text: str) -> bool:
    """True when the text declines to answer ("I cannot determine...", "As an AI...")."""
    return _refusal_lowered(text.lower())


def _refusal_lowered(low: str) -> bool:
    """`_refusal` of a text lowercased already."""
    low = low.replace("\u2019", "'")
    for key in _REFUSAL_KEYS:
        if key in low:
            return _REFUSAL.search(low) is not None
    return False


# The parsers below are cached by their text, so they call the uncached helpers (`_refusal`,
# `_normalize_open`): a second cache level would only add a miss per unique reply (bench/scoring.py).
is_refusal = lru_cache(maxsize=8192)(_refusal)


def yes_no_value(text: str) -> str | None:
    """'yes' / 'no' when the whole text is a yes/no word (used for gold answers), else None."""
    word = text.strip(_EDGE).lower()
    return "yes" if word in _YES_WORDS else "no" if word in _NO_WORDS else None


def _normalize_open(text: str) -> str:
    """Lowercase, collapse whitespace, strip surrounding punctuation."""
    return " ".join(text.lower().split()).strip(_EDGE)


normalize_open = lru_cache(maxsize=8192)(_normalize_open)  # golds repeat: presets normalise them through this


def _boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` with balanced braces, or None."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, i = 0, start + len(_BOXED)
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            if depth == 0:
                return text[i:j]
            depth -= 1
    return None


def _explicit(text: str) -> tuple[str, str] | None:
    """(content, method) of the most explicit answer marker, or None."""
    tags = _TAG.findall(text) if "<" in text else None
    if tags:
        return tags[-1], "answer_tag"
    boxed = _boxed(text) if "\\" in text else None
    if boxed is not None:
        return boxed, "boxed"
    return None


def _after_prefix(text: str, low: str | None = None) -> str | None:
    """The text after the last "Answer:" marker, or None; `low`: the text lowercased, when known."""
    if "answer" not in (text.lower() if low is None else low):
        return None
    last = None
    for last in _PREFIX.finditer(text):
        pass
    return text[last.end() :] if last else None


# Answers are immutable, and yes/no and letter answers come from a few values and rules: one shared
# object each, so a parse builds no object (open answers carry the reply's own text and are built).
@lru_cache(maxsize=256)
def _invalid(parser: str, reason: str) -> Answer:
    return Answer(value=None, parser=parser, valid=False, reason=reason)


@lru_cache(maxsize=1024)
def _found(value: str, parser: str, method: str) -> Answer:
    return Answer(value=value, parser=parser, method=method)


def _after_chain(text: str, parser: str) -> str | Answer:
    """The answer part of `text` (after any reasoning chain), or the invalid Answer when it has none."""
    if not may_hold_chain(text):
        return text  # no delimiter, so no chain: what split_text would return, without building a Split
    part = split_text(text)
    reason = part.invalid_reason
    return _invalid(parser, reason) if reason else part.answer


# ---------------------------------------------------------------- yes / no


def _yes_no_in(segment: str, method: str) -> Answer:
    """Resolve an explicit answer segment (tag, boxed, prefix): it decides on its own."""
    low = segment.lower()
    if _yes_no_pair(low):
        return _invalid(YES_NO_PARSER, "both_yes_and_no")
    value = yes_no_value(low) or _first_yes_no(low)
    if value:
        return _found(value, YES_NO_PARSER, method)
    found = _yes_no_words(low)
    if len(found) == 1:
        return _found(found.pop(), YES_NO_PARSER, method)
    if found:
        return _invalid(YES_NO_PARSER, "both_yes_and_no")
    if not low.strip(_EDGE):
        return _invalid(YES_NO_PARSER, "empty")
    return _invalid(YES_NO_PARSER, "refusal" if _refusal_lowered(low) else "no_yes_no")


def _yes_no_words(low: str) -> set[str]:
    return set(_YN_WORD.findall(low)) if "yes" in low or "no" in low else set()


def _yes_no_pair(low: str) -> bool:
    return "yes" in low and "no" in low and _YN_PAIR.search(low) is not None


def _first_yes_no(low: str) -> str | None:
    m = _YN_FIRST.match(low) or _ZH_FIRST.match(low)
    if not m:
        return None
    return "yes" if m.group(1) in _YES_WORDS else "no"


@lru_cache(maxsize=8192)
def parse_yes_no(text: str | None) -> Answer:
    """Parse a yes/no answer: tag > boxed > exact > "Answer:" prefix > first word > (refusal) > contains."""
    if text is None or not text.strip(_EDGE):
        return _invalid(YES_NO_PARSER, "empty")
    text = _after_chain(text, YES_NO_PARSER)
    if isinstance(text, Answer):
        return text
    marked = _explicit(text)
    if marked:
        return _yes_no_in(*marked)
    low = text.lower()
    value = yes_no_value(low)
    if value:
        return _found(value, YES_NO_PARSER, "exact")
    tail = _after_prefix(low, low)
    if tail is not None:
        return _yes_no_in(tail, "answer_prefix")
    if _yes_no_pair(low):
        return _invalid(YES_NO_PARSER, "both_yes_and_no")
    value = _first_yes_no(low)
    if value:  # a leading yes/no beats a hedge later on ("Yes, though the cause cannot be determined")
        return _found(value, YES_NO_PARSER, "first_word")
    if _refusal_lowered(low):
        return _invalid(YES_NO_PARSER, "refusal")
    found = _yes_no_words(low)
    if len(found) == 2:
        return _invalid(YES_NO_PARSER, "both_yes_and_no")
    if found:
        return _found(found.pop(), YES_NO_PARSER, "contains")
    return _invalid(YES_NO_PARSER, "no_yes_no")


# ---------------------------------------------------------------- option letters


def _strong_letter(text: str, rules: _LetterRules) -> tuple[str, str] | str | None:
    """(letter, method) from an "Answer:" prefix or a lone/leading letter, a failure reason, or None."""
    tail = _after_prefix(text)
    if tail is not None:
        m = rules.after_prefix.match(tail)
        if m and rules.several.match(tail.lstrip()):
            return "several_letters"
        if m:
            letter, rest = m.group(1), tail[m.end() :]
            # "The answer is a mass": a lowercase letter, or "A"/"I" followed by a lowercase word,
            # is prose, not an option letter.
            prose = (letter.islower() or letter in ("A", "I")) and re.match(r"\s+[a-z]", rest)
            if not prose:
                return letter.upper(), "answer_prefix"
    m = rules.lone.match(text) or rules.lead.match(text)
    if m:
        return next(g for g in m.groups() if g).upper(), "lone_letter"
    return None


def _weak_letter(text: str, rules: _LetterRules) -> tuple[str, str] | str | None:
    """Letters inside prose: "A or B" is ambiguous; else a single "(B)" or "option B"."""
    if rules.several.search(text):
        return "several_letters"
    for rule, method in ((rules.paren, "paren"), (rules.option_word, "option_word")):
        found = {x.upper() for x in rule.findall(text)}
        if len(found) == 1:
            return found.pop(), method
        if found:
            return "several_letters"
    return None


@lru_cache(maxsize=8192)
def parse_letter(text: str | None, n_options: int) -> Answer:
    """Parse an option letter A.. (n_options letters): tag > boxed > "Answer:" prefix > lone letter
    ("B", "B.", "(B)", "B) text") > (refusal) > several-letter check > "(B)" in text > "option B".

    Inside a tag or box the same rules run on the tag's content only."""
    if text is None or not text.strip(_EDGE):
        return _invalid(LETTER_PARSER, "empty")
    text = _after_chain(text, LETTER_PARSER)
    if isinstance(text, Answer):
        return text
    text = text.replace("*", "")
    marked = _explicit(text)
    segment, method = marked if marked else (text, None)
    rules = _letter_rules(n_options)
    found = _strong_letter(segment, rules)
    if found is None:
        if _refusal(segment):
            return _invalid(LETTER_PARSER, "refusal")
        found = _weak_letter(segment, rules)
    if found is None:
        return _invalid(LETTER_PARSER, "empty" if not segment.strip(_EDGE) else "no_letter")
    if isinstance(found, str):
        return _invalid(LETTER_PARSER, found)
    letter, rule = found
    if letter_index(letter) >= n_options:
        return _invalid(LETTER_PARSER, "letter_out_of_range")
    return _found(letter, LETTER_PARSER, method or rule)


# ---------------------------------------------------------------- open answers


@lru_cache(maxsize=8192)
def parse_open(text: str | None) -> Answer:
    """Parse a free-text answer: content of tag > boxed > "Answer:" prefix > whole text, normalised."""
    if text is None or not text.strip(_EDGE):
        return _invalid(OPEN_PARSER, "empty")
    text = _after_chain(text, OPEN_PARSER)
    if isinstance(text, Answer):
        return text
    marked = _explicit(text)
    low = None
    if marked:
        segment, method = marked
    else:
        low = text.lower()
        tail = _after_prefix(text, low)
        segment, method = (tail, "answer_prefix") if tail is not None else (text, "full_text")
        if tail is not None:
            low = None
    # the whole text lowercased once, for the refusal test and the normalisation (a segment lowercases itself)
    low = segment.lower() if low is None else low
    if _refusal_lowered(low):
        return _invalid(OPEN_PARSER, "refusal")
    value = " ".join(low.split()).strip(_EDGE)  # = _normalize_open(segment)
    if not value:
        return _invalid(OPEN_PARSER, "empty")
    return _built(value, OPEN_PARSER, method)
