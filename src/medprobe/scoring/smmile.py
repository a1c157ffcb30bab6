"""SMMILE presets (eth-medical-ai-lab/smmile, inference_and_evaluation/).

`smmile-em` reproduces evaluate_EM.py `normalize_answer` + `calculate_exact_match` (flexible
matching, the published default): lowercase, delete `string.punctuation`, collapse whitespace,
then equality of the whole prediction with the whole gold.

`smmile-mcqa` reproduces `extract_mcqa_answer` of the inference scripts, rule by rule in the
official order: the `<answer>...</answer>` tag (first capital letter inside, else its first
character), then the phrase patterns ("answer is X", "Answer: X", "option X", ...), then an
emphasised letter, then any standalone capital letter, then an option's text found in the reply.
When nothing is found, or the letter is not one of the options, the official script scores the
item wrong (EXTRACTION_FAILED / INVALID_OPTION); here it is INVALID (value 0, so accuracy is the
official number) and the invalid rate shows it. Rows imported from a published MCQA result CSV
without the dataset have no option texts: the option-text rule is then skipped, and a gold that
is option text (`--gold-field true_answer` with `--prediction-field generated_answer`) is
compared with the selected option's text as the CSV stores it.

`smmile-mcqa-open` reproduces the `extract_mcqa_answer` of the open-model scripts
(inference_qwen.py, inference_llava_mcqa.py, inference_llavamed_mcqa.py,
inference_llama33textonly_mcqa.py; one function, four copies), which those scripts run on decoded
text that may hold the chat transcript: the reply is first cut to what follows the last "assistant"
marker ("ASSISTANT:", "Assistant:", "assistant:" or the same with a space) and before the first
"user" marker found (tried in the order "USER:", "User:", "user:", "USER ", "User ", "user "), and
the option-text rule runs only when an assistant marker was found. So a reply that names its
option only by text ("Psoriasis") fails extraction (invalid) unless it holds such a marker, and a
reply that goes on to a "User:" turn is scored on the part before it. medprobe applies the function
to the stored reply, exactly as inference_llama33textonly_mcqa.py does with its Ollama reply (its
follow-up question after a failure, a second model call, is not reproduced); the Hugging Face
scripts also retry on the decoded prompt + reply, whose template markers medprobe never sees.
"""

from __future__ import annotations

import re
import string
from typing import ClassVar

from medprobe.prompts import LETTERS
from medprobe.scoring._base import Preset
from medprobe.types import Answer, AnswerType, Outcome, Sample, Score

BENCHMARKS = ("smmile", "smmile-plus")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """evaluate_EM.py `normalize_answer`."""
    return re.sub(r"\s+", " ", str(text).lower().translate(_PUNCT)).strip()


_TAG = re.compile(r"<answer>(.*?)</answer>|<answer>(.*?)($|\n\n)", re.S)
# extract_mcqa_answer's fallback patterns, in its order (all case-insensitive)
_PATTERNS = [re.compile(p, re.I) for p in (
    r"answer is:?\s*([A-Z])[.\s]", r"\banswer:?\s*([A-Z])[.\s]",
    r"\*\*Answer:\*\*\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)", r"\*\*Answer\*\*:\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)",
    r"\*Answer\*:\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)", r"Answer:\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)",
    r"The correct answer is\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)", r"The answer(?:\s+is)?:?\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)",
    r"The correct answer(?:\s+is)?:?\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)", r"answer\s*is\s*([A-Za-z])(?:\.\s*\w+|\.|\s+|$)",
    r"([A-Za-z])\s*is the (?:correct )?answer", r"option\s*([A-Za-z])\b", r"choice\s*([A-Za-z])\b",
    r"select\s*([A-Za-z])\b", r"best answer is:?\s*([A-Z])[.\s]", r"choice\s*([A-Z])[.\s]", r"option\s*([A-Z])[.\s]",
    r"select\s*([A-Z])[.\s]", r"chose\s*([A-Z])[.\s]", r"choose\s*([A-Z])[.\s]", r"final answer:?\s*([A-Z])",
)]
_EMPHASIS = re.compile(r"[*_](([A-Z])[*_])", re.I)
_ANY_CAPITAL = re.compile(r"\b([A-Z])\b")


_ASSISTANT_MARKERS = ("ASSISTANT:", "Assistant:", "assistant:", "ASSISTANT ", "Assistant ", "assistant ")
_USER_MARKERS = ("USER:", "User:", "user:", "USER ", "User ", "user ")


def assistant_turn(text: str) -> str | None:
    """The open-model scripts' cut: the text after the last assistant marker, up to the first user marker
    found (markers tried in list order, not by position), stripped; None when no assistant marker occurs."""
    start, marker = -1, ""
    for m in _ASSISTANT_MARKERS:
        if (pos := text.rfind(m)) > start:
            start, marker = pos, m
    if start == -1:
        return None
    turn = text[start + len(marker):].strip()
    for m in _USER_MARKERS:
        if (end := turn.find(m)) != -1:
            return turn[:end].strip()
    return turn


def extract_letter(text: str, options: tuple[str, ...] = (), open_model: bool = False) -> tuple[str | None, str | None]:
    """(letter, rule) as `extract_mcqa_answer` finds it, or (None, None) for EXTRACTION_FAILED.
    `open_model`: the open-model scripts' variant (cut at the assistant/user markers; option text only
    after an assistant marker)."""
    turn = assistant_turn(text) if open_model else None
    if open_model:
        text = text if turn is None else turn
        options = options if turn else ()  # `if last_assistant_text:` guards the option-text rule
    tag = _TAG.search(text)
    if tag:
        inner = (tag.group(1) if tag.group(1) is not None else tag.group(2) or "").strip()
        if inner:
            letter = re.search(r"([A-Z])", inner.upper())
            return (letter.group(1) if letter else inner[0].upper()), "answer_tag"
    clean = text.strip()
    for pattern in _PATTERNS:
        if m := pattern.search(clean):
            return m.group(1).upper(), "pattern"
    if m := _EMPHASIS.search(clean):
        return m.group(2).upper(), "emphasis"
    if m := _ANY_CAPITAL.search(clean):
        return m.group(1).upper(), "any_capital"
    for i, option in enumerate(options):  # exact, then contained (case-insensitive)
        if option.strip().lower() == clean.lower() or (option.strip() and clean and option.strip().lower() in clean.lower()):
            return LETTERS[i], "option_text"
    return None, None


def _result(name: str, answer: Answer, ok: bool) -> Score:
    outcome = Outcome.INVALID if not answer.valid else Outcome.CORRECT if ok else Outcome.WRONG
    return Score(outcome=outcome, value=float(ok and answer.valid), preset=name, parser=answer.parser, answer=answer)


class SmmileEM(Preset):
    name: ClassVar[str] = "smmile-em"
    description: ClassVar[str] = "SMMILE open answers: lowercase, strip punctuation, collapse spaces, exact match"
    reproduces: ClassVar[str] = "eth-medical-ai-lab/smmile inference_and_evaluation/evaluate_EM.py"
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.OPEN: "exact_match"}
    benchmarks: ClassVar[tuple[str, ...]] = BENCHMARKS

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        if text is None:
            return _result(self.name, Answer(value=None, parser="smmile_normalize", valid=False, reason="error"), False)
        answer = Answer(value=normalize(text), parser="smmile_normalize")
        return _result(self.name, answer, answer.value == normalize(sample.answer))


class SmmileMCQA(Preset):
    name: ClassVar[str] = "smmile-mcqa"
    description: ClassVar[str] = ("SMMILE multiple choice: <answer> tag, then letter patterns, then option text; "
                                  "extraction failures and letters outside the options are invalid (scored 0)")
    reproduces: ClassVar[str] = ("eth-medical-ai-lab/smmile inference_openai.py, inference_anthropic.py "
                                 "extract_mcqa_answer (the API-model scripts)")
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.MULTIPLE_CHOICE: "accuracy"}
    benchmarks: ClassVar[tuple[str, ...]] = BENCHMARKS
    parser: ClassVar[str] = "smmile_extract"
    open_model: ClassVar[bool] = False

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        parser = self.parser
        if text is None:
            return _result(self.name, Answer(value=None, parser=parser, valid=False, reason="error"), False)
        gold = sample.answer.strip()
        if not sample.options and not (len(gold) == 1 and gold.isupper()):
            # a published CSV's generated_answer: the selected option's text, or the failure marker
            failed = text.startswith(("EXTRACTION_FAILED", "INVALID_OPTION:", "ERROR"))  # ERROR: a failed API call
            answer = Answer(value=None if failed else text, parser="smmile_csv_option_text", valid=not failed,
                            reason="extraction_failed" if failed else None)
            # raw equality: a problem can hold answers differing only by a trailing space ('artifact ')
            return _result(self.name, answer, not failed and text == sample.answer)
        letter, rule = extract_letter(text, sample.options, self.open_model)
        if letter is None:
            answer = Answer(value=None, parser=parser, valid=False, reason="extraction_failed")
        elif sample.options and letter not in LETTERS[: len(sample.options)]:
            answer = Answer(value=letter, parser=parser, method=rule, valid=False, reason="letter_out_of_range")
        else:
            answer = Answer(value=letter, parser=parser, method=rule)
        return _result(self.name, answer, answer.valid and letter == gold.upper())


class SmmileMCQAOpen(SmmileMCQA):
    name: ClassVar[str] = "smmile-mcqa-open"
    description: ClassVar[str] = ("SMMILE multiple choice as the open-model scripts extract it: the reply cut after "
                                  "the last 'assistant' marker and before a 'user' one; option text only after an "
                                  "'assistant' marker; failures invalid (scored 0)")
    reproduces: ClassVar[str] = ("eth-medical-ai-lab/smmile inference_qwen.py, inference_llava_mcqa.py, "
                                 "inference_llavamed_mcqa.py, inference_llama33textonly_mcqa.py extract_mcqa_answer")
    parser: ClassVar[str] = "smmile_extract_open"
    open_model: ClassVar[bool] = True
