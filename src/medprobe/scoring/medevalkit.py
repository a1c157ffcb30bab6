"""`medevalkit`: MedEvalKit's rule-based VQA and multiple-choice scoring (no LLM judge).

Reproduces alibaba-damo-academy/MedEvalKit (commit 9b12e3b): `utils/VQA_RAD/VQA_RAD.py`,
`utils/PATH_VQA/PATH_VQA.py` and `utils/SLAKE/SLAKE.py` `cal_metrics`, with `utils/utils.py`
(`parse_response`, `judge_judgement`, `judge_close_end_vqa`, `judge_open_end_vqa`,
`judge_multi_choice`) and mathruler's `extract_boxed_content`.

* First the response is cut to the last `\\boxed{...}`, else to the `<answer>` tags' content.
* VQA-RAD / PathVQA: gold and response are lowercased and stripped; closed vs open is decided by
  the gold (`answer in ["yes","no"]`). Closed (`judge_judgement`): after `parse_response` (which
  keeps only the text after the last of several "answer is"/"answer:" markers) and deleting "\\n"
  and ".", correct iff exactly one of the substrings "yes"/"no" occurs and the gold is a
  substring ("not", "normal", "none" count as "no"; "yes, no doubt" is wrong). Open: exact match of
  `parse_response(response)` with the gold; the text after "answer:" keeps its leading space, so
  "Answer: liver" is wrong against "liver". The rows are grouped as `cal_metrics` counts "close" and
  "open" (`group_of`): by the gold here, by the answer type for SLAKE; the dataset's own grouping
  follows as `dataset_answer_type=...` rows when it differs.
* An open answer that is empty, whitespace or a run of periods once extracted ("", " ", ".",
  "Answer:") crashes the official open judge (`judge_open_end_vqa`: rouge raises "Hypothesis is
  empty.", or `calculate_f1` returns a bare 0 that cannot be unpacked), so the official script gives
  no number for a run holding one; medprobe scores it wrong (value 0), as its exact match would.
  ("?" or "Answer: ." do not crash it.)
* SLAKE (`sample.benchmark` contains "slake"): nothing is lowercased or stripped up front, closed
  vs open comes from the answer type, and the yes/no rule applies only when the raw gold is exactly
  "yes"/"no" (lowercase); other closed golds ("Yes", "Left") use `judge_close_end_vqa`: the
  response without "\\n" and "." must equal the lowercased gold.
* Multiple choice (`judge_multi_choice`): a letter, an option text, or else the option most similar
  to the response (difflib ratio) -- the official nearest-option fallback, kept here on purpose
  and marked: method "nearest_option_fallback" and `Answer.fallback`, counted per row as `fallback`
  (it turns a reply such as "no" into some option, right by chance).
* MedXpertQA (`sample.benchmark` contains "medxpertqa", `utils/MedXpertQA/MedXpertQA.py`): the
  response is first cut to its `<answer>` tags' content (`extract(response, "answer")`), and the
  choices are passed as "A. text", so an option's bare text never matches it exactly: a reply that
  names an option only by its text is scored by the similarity fallback (marked as above).

Generation failures (text None) are INVALID with value 0; everything else is CORRECT or WRONG.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import ClassVar

from medprobe.construct import answer as _answer
from medprobe.construct import score as _score_of
from medprobe.letters import LETTERS
from medprobe.scoring._base import NEAREST_OPTION, Preset
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

NAME = "medevalkit"
PARSER = "medevalkit-rules"
_ANSWER_PATTERNS = (  # utils.py parse_response, applied in this order
    "**answer**:", "**answer**", "*answer*:", "**answer:**", "answer is", "answer:", "答案:",
    "final answer", "final answer is",
)  # fmt: skip


def extract_boxed_content(text: str) -> str:
    """mathruler.grader.extract_boxed_content: last `\\boxed{...}` content (stripped) or "None"."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return "None"
    content, depth = text[start + len("\\boxed{") :], 0
    for i, char in enumerate(content):
        depth += 1 if char == "{" else -1 if char == "}" else 0
        if depth == -1:
            return content[:i].strip()
    return "None"


def extract_tag(text: str, tag: str) -> str:
    """utils.py `extract(text, tag)`: every <tag>...</tag> content joined by spaces, else the text."""
    if not text:
        return ""
    parts, open_, close = [], f"<{tag}>", f"</{tag}>"
    start = text.find(open_)
    while start != -1:
        end = text.find(close, start + len(open_))
        if end == -1:
            break
        parts.append(text[start + len(open_) : end])
        start = text.find(open_, end + len(close))
    joined = " ".join(parts).strip()  # the official appends " " after each part, then strips
    return joined or text


def parse_response(response: str) -> str:
    response = response.lower()
    if "boxed" in response:
        response = extract_boxed_content(response)
    elif "<answer>" in response:
        response = extract_tag(response, "answer")
    for pattern in _ANSWER_PATTERNS:
        if pattern in response:
            response = response.split(pattern)[-1]
    return response


def judge_judgement(answer: str, response: str) -> bool:
    response = parse_response(response).replace("\n", "").replace(".", "")
    return (("yes" in response) != ("no" in response)) and answer.lower() in response


def judge_close_end_vqa(answer: str, response: str) -> bool:
    return parse_response(response).replace("\n", "").replace(".", "") == answer.lower()


def judge_open_end_vqa(answer: str, response: str) -> bool:
    return parse_response(response) == answer.lower()


def judge_multi_choice(choices: list[str], answer: str, response: str) -> tuple[bool, str, str]:
    """utils.py `judge_multi_choice` -> (correct, chosen letter or text, method)."""
    alphas = [chr(ord("a") + i) for i in range(len(choices))]
    response = response.lower()
    if response.split("\n\n")[0] in alphas:
        response = response.split("\n\n")[0]
    elif response.split("\n\n")[-1].split(".")[0] in alphas:
        response = response.split("\n\n")[-1].split(".")[0]
    response = parse_response(response).strip().lower().replace("\n", "")
    choices = [c.lower() for c in choices]
    picked = response.split(".")[0].split(":")[-1]
    answer = answer.strip().lower()
    if picked == answer:
        return True, picked, "exact"
    if picked in alphas:
        return choices[ord(picked) - ord("a")] == answer, picked, "letter"
    if picked in choices:
        return answer in alphas and picked == choices[ord(answer) - ord("a")], picked, "option_text"
    best, best_ratio = 0, 0.0  # find_most_similar_index: first strictly greater ratio, default 0
    for i, choice in enumerate(choices):
        ratio = difflib.SequenceMatcher(None, choice, response).ratio()
        if ratio > best_ratio:
            best, best_ratio = i, ratio
    return alphas[best] == answer or choices[best] == answer, alphas[best], NEAREST_OPTION


def _result(correct: bool, value: str, method: str) -> Score:
    answer = _answer(value, PARSER, method, fallback=method == NEAREST_OPTION)  # unvalidated: bench/scoring.py
    return _score_of(Outcome.CORRECT if correct else Outcome.WRONG, 1.0 if correct else 0.0, NAME, PARSER, answer)


@lru_cache(maxsize=256)  # one look-up per record instead of lowercasing the benchmark name
def _flow(benchmark: str) -> str:
    """Which of MedEvalKit's `cal_metrics` scores the benchmark: SLAKE's and MedXpertQA's differ from the rest."""
    name = benchmark.lower()
    return "slake" if "slake" in name else "medxpertqa" if "medxpertqa" in name else "vqa"


@lru_cache(maxsize=8192)
def _score(kind: AnswerType, gold: str, options: tuple[str, ...], flow: str, text: str | None) -> Score:
    if text is None:
        answer = Answer(value=None, parser=PARSER, valid=False, reason="error")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=PARSER, answer=answer)
    if kind is AnswerType.MULTIPLE_CHOICE and not options:  # its rule needs the option texts
        answer = Answer(value=None, parser=PARSER, valid=False, reason="no_options")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=PARSER, answer=answer)
    if kind is AnswerType.MULTIPLE_CHOICE and len(options) > 26:
        # judge_multi_choice letters options chr(ord("a") + i): past "z" it has no letter for an option
        # (medprobe's AA, AB, ... are not its labels), so such a row is invalid here, never guessed
        answer = Answer(value=None, parser=PARSER, valid=False, reason="over_26_options")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=NAME, parser=PARSER, answer=answer)
    if kind is AnswerType.MULTIPLE_CHOICE:
        choices, response = list(options), text
        if flow == "medxpertqa":  # MedXpertQA.py: choices f"{option}. {label}"; cal_metrics extracts first
            choices = [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
            response = extract_tag(text, "answer")
        correct, value, method = judge_multi_choice(choices, gold, response)
        return _result(correct, value.upper() if len(value) == 1 else value, method)
    response = extract_boxed_content(text)  # cal_metrics: boxed content, else <answer> content
    if response == "None":
        response = extract_tag(text, "answer") if "<answer>" in text else text
    if flow == "slake":  # SLAKE.py cal_metrics: raw gold, answer_type decides open vs closed
        if kind is AnswerType.OPEN:
            return _result(judge_open_end_vqa(gold, response), response, "open_exact")
        if gold in ("yes", "no"):
            return _result(judge_judgement(gold, response), response, "yes_no_substring")
        return _result(judge_close_end_vqa(gold, response), response, "closed_exact")
    gold, response = gold.lower().strip(), response.lower().strip()  # VQA_RAD.py / PATH_VQA.py
    if gold in ("yes", "no"):
        return _result(judge_judgement(gold, response), response, "yes_no_substring")
    return _result(judge_open_end_vqa(gold, response), response, "open_exact")


class MedEvalKit(Preset):
    name: ClassVar[str] = NAME
    description: ClassVar[str] = (
        "MedEvalKit rules: closed correct if exactly one of 'yes'/'no' is a substring and the gold is a "
        "substring; open exact match after answer extraction; multiple choice with similarity fallback"
    )
    reproduces: ClassVar[str] = ("alibaba-damo-academy/MedEvalKit utils/{VQA_RAD,PATH_VQA,SLAKE,MedXpertQA} "
                                 "cal_metrics (9b12e3b)")

    def group_of(self, sample: Sample) -> AnswerType:
        # VQA_RAD.py / PATH_VQA.py count a question in "close" iff `answer.lower().strip() in ["yes","no"]`;
        # SLAKE.py by its answer_type
        if sample.answer_type is AnswerType.MULTIPLE_CHOICE or _flow(sample.benchmark) == "slake":
            return sample.answer_type
        return AnswerType.CLOSED if sample.answer.lower().strip() in ("yes", "no") else AnswerType.OPEN

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        return _score(sample.answer_type, sample.answer, sample.options, _flow(sample.benchmark), text)
