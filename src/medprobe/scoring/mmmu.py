"""`mmmu`: MMMU's official answer parsing (MMMU-Benchmark/MMMU, mmmu/utils/eval_utils.py, commit bb0b95a).

Multiple choice, `parse_multi_choice_response`, rule by rule:
* the characters , . ! ? ; : ' are stripped from both ends (one `str.strip` per character, in that
  order; whitespace is not stripped, so "A\\n" names no letter), then a space is added on each side;
* candidates are the letters written "(A)"; if none, the letters standing alone (" A "); if none and
  the reply has more than 5 words, the options whose text occurs in it (case-insensitive);
* several candidates: the one found last (`rfind`; the first of equals); one candidate: it.
* **The one difference**: when nothing is found the official script picks a letter with
  `random.choice` (the module calls `random.seed(42)` on import). medprobe never guesses: the answer
  is INVALID (`no_option_found`, value 0). The official figure, with those draws replayed in the
  official order, is the benchmark row `official_accuracy` (`aggregate` below).

Open answers, `parse_open_response` + `eval_open`: the reply is lowercased and cut into lines; in each,
the text after the last of "could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ",
"result " (and "=" in the last line), the shortest such tail, is a key response (the whole reply when
no line has one); every number in them is added (with commas, scientific, plain), numbers become floats
rounded to 2 places and one-character strings get a space on one side. Correct when a float equals a
number of the gold or the normalised gold string is a substring of a string prediction. An empty reply
is INVALID here (the official script scores it wrong; both count 0).
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from medprobe import clusters
from medprobe.letters import LETTERS
from medprobe.metrics import Metric
from medprobe.scoring._base import Preset
from medprobe.stats import bootstrap_ci
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "mmmu"
MC_PARSER, OPEN_PARSER = "mmmu_multi_choice", "mmmu_open"
NO_OPTION = "no_option_found"
OFFICIAL_SEED = 42  # eval_utils.py: `random.seed(42)` at import, before every parse
# DOMAIN_CAT2SUB_CAT["Health and Medicine"] of the official utils/data_utils.py, in its order
SUBJECTS = ("Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
            "Public_Health")
_STRIP = (",", ".", "!", "?", ";", ":", "'")


# --------------------------------------------------------------------------------- multiple choice
def parse_multi_choice(response: str, options: Sequence[str]) -> tuple[str | None, str | None]:
    """(letter, rule) as `parse_multi_choice_response` finds it; (None, None) where it would draw at random."""
    for char in _STRIP:
        response = response.strip(char)
    response = f" {response} "
    choices = LETTERS[: len(options)]
    candidates = [c for c in choices if f"({c})" in response]
    rule = "bracket"
    if not candidates:
        candidates, rule = [c for c in choices if f" {c} " in response], "letter"
    if not candidates and len(response.split()) > 5:
        low = response.lower()
        candidates, rule = [c for c, text in zip(choices, options) if text.lower() in low], "option_text"
    if not candidates:
        return None, None
    if len(candidates) == 1:
        return candidates[0], rule
    if rule == "option_text":
        where = [response.lower().rfind(options[choices.index(c)].lower()) for c in candidates]
    else:
        where = [response.rfind(f"({c})" if rule == "bracket" else f" {c} ") for c in candidates]
    return candidates[int(np.argmax(where))], f"{rule}_last"


# --------------------------------------------------------------------------------------- open answers
def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(text: str) -> list[str | float]:
    """`normalize_str`: a number as a float rounded to 2 places, else lowercase (one character padded)."""
    text = text.strip()
    if _is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def extract_numbers(text: str) -> list[str]:
    return _COMMAS.findall(text) + _SCIENTIFIC.findall(text) + _SIMPLE.findall(text)


_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")


def key_responses(response: str) -> list[str]:
    """`get_key_subresponses`. The split's `(?=[A-Z])` follows `lower()`, so only newlines split."""
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for i, part in enumerate(parts):
        indicators = _INDICATORS + ("=",) if i == len(parts) - 1 else _INDICATORS
        shortest = None
        for indicator in indicators:
            if indicator in part:
                tail = part.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # `not`: an empty tail is replaced by the next
                    shortest = tail
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    return keys or [response]


def parse_open(response: str) -> tuple[list[str], list[str | float]]:
    """(key responses, normalised predictions) of `parse_open_response`."""
    keys = key_responses(response)
    preds = keys + [n for key in keys for n in extract_numbers(key)]
    normalised: list[str | float] = []
    for p in preds:
        normalised += normalize_str(p)
    return keys, list(dict.fromkeys(normalised))  # the official set(), in a stable order


def gold_answers(gold: str) -> list[str]:
    """The gold as a list: the hub stores one string, the official answer file sometimes a list ("['a', 'b']")."""
    if gold.startswith("["):
        try:
            value = ast.literal_eval(gold)
        except (ValueError, SyntaxError):
            return [gold]
        if isinstance(value, list) and value:
            return [str(v) for v in value]
    return [gold]


def eval_open(gold: str, preds: Sequence[str | float]) -> bool:
    """`eval_open`: a float prediction equal to a float gold, or a gold string inside a string prediction."""
    golds = [g for answer in gold_answers(gold) for g in normalize_str(answer)]
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in golds):
                return True
        elif pred in golds:
            return True
    return False


# ------------------------------------------------------------------------------------------ preset
def _result(answer: Answer, ok: bool) -> Score:
    outcome = Outcome.INVALID if not answer.valid else Outcome.CORRECT if ok else Outcome.WRONG
    return Score(outcome=outcome, value=float(ok and answer.valid), preset=NAME, parser=answer.parser, answer=answer)


class MMMU(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = ("MMMU official parsing: (A) / lone letter / option text (last one wins); open "
                                  "answers by key phrases and numbers; no option found = invalid (official: random)")
    reproduces: ClassVar[str] = "MMMU-Benchmark/MMMU mmmu/utils/eval_utils.py (bb0b95a), random choice -> invalid"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.MULTIPLE_CHOICE: "accuracy",
                                                    AnswerType.OPEN: "accuracy"}
    benchmarks: ClassVar[tuple[str, ...]] = ("mmmu-med",)

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        mc = sample.answer_type is AnswerType.MULTIPLE_CHOICE
        parser = MC_PARSER if mc else OPEN_PARSER
        if text is None:
            return _result(Answer(value=None, parser=parser, valid=False, reason="error"), False)
        if mc:
            letter, rule = parse_multi_choice(text, sample.options)
            if letter is None:
                return _result(Answer(value=None, parser=parser, valid=False, reason=NO_OPTION), False)
            return _result(Answer(value=letter, parser=parser, method=rule), letter == sample.answer)
        if not text.strip():
            return _result(Answer(value=None, parser=parser, valid=False, reason="empty"), False)
        keys, preds = parse_open(text)
        answer = Answer(value=" | ".join(keys), parser=parser, method="key_response")
        return _result(answer, eval_open(sample.answer, preds))


# ------------------------------------------------------------------ the official figure, draws replayed
def official_values(records: Sequence, scores: Sequence[Score | None]) -> tuple[list[int], np.ndarray]:
    """(record indices in the official order, 1/0 each): the `mmmu` scores with every `no_option_found` answer
    replaced by the letter the official script draws, `random.Random(42).choice(letters)` in that order.

    The order of `main_parse_and_eval.py --subject bas_med cli_med diag_med phar pub_health`: subject by
    subject (SUBJECTS), each in dataset order, which is the order the records were loaded in (a stable sort).
    Answers invalid for another reason (a reasoning chain cut off, an empty reply) stay 0: the official
    script has no rule for a reply medprobe could not read, and draws only where its parser found nothing.
    """
    order = {s: i for i, s in enumerate(SUBJECTS)}
    idx = sorted((i for i, s in enumerate(scores) if s is not None),
                 key=lambda i: order.get(str(records[i].sample.metadata.get("subject")), len(order)))
    rng = random.Random(OFFICIAL_SEED)
    values = []
    for i in idx:
        score, sample = scores[i], records[i].sample
        if score.answer.reason == NO_OPTION:  # type: ignore[union-attr]
            values.append(float(rng.choice(list(LETTERS[: len(sample.options)])) == sample.answer))
        else:
            values.append(score.value)  # type: ignore[union-attr]
    return idx, np.asarray(values, float)


def aggregate(records: Sequence, scores: Sequence[Score | None], preset: str, seed: int) -> list[Metric]:
    """Under `mmmu`: `official_accuracy`, overall and per subject, the figure `main_parse_and_eval.py` prints
    for the same replies, its random draws included (`fallback` counts them). Other presets: nothing."""
    if preset != NAME:
        return []
    idx, values = official_values(records, scores)
    if not idx:  # nothing scored (MMMU test: no gold)
        return []
    samples = [records[i].sample for i in idx]
    labels = clusters.labels(samples) if any(s.images for s in samples) else None
    subjects = np.array([str(s.metadata.get("subject")) for s in samples])
    rows = []
    for subset in ["overall", *(f"subject={s}" for s in SUBJECTS if s in subjects)]:
        keep = np.ones(len(idx), bool) if subset == "overall" else subjects == subset.split("=", 1)[1]
        part, chosen = values[keep], [scores[i] for i, k in zip(idx, keep) if k]
        low, high = bootstrap_ci(part, seed, f"{preset}/{subset}/official_accuracy",
                                 clusters=None if labels is None else labels[keep])
        hits = int(part.sum())
        parsers = tuple(sorted({s.parser for s in chosen}))  # type: ignore[union-attr]
        drawn = sum(s.answer.reason == NO_OPTION for s in chosen)  # type: ignore[union-attr]
        rows.append(Metric(subset=subset, metric="official_accuracy", preset=preset, parsers=parsers,
                           value=float(part.mean()), ci_low=low, ci_high=high, n=len(part), correct=hits,
                           wrong=len(part) - hits, invalid=0, fallback=drawn,
                           interval=clusters.method(clusters.IMAGE if labels is not None else clusters.NONE)))
    return rows
