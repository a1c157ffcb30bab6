"""Judge prompts: named, hashed, and the parser of each prompt's verdict.

Two verdict kinds, each from a benchmark's official judge:

- `binary` (SMMILE, eth-medical-ai-lab/smmile evaluate_LLMJudge.py): the judge answers 1 (the
  model is correct) or 0. The official script counts any other reply as 0; medprobe scores it 0
  too (so accuracy is the official number) and reports it as an invalid verdict.
- `option-scores` (MediConfusion, AIF4S/MediConfusion utils/answering.py `get_clean_up_prompt`,
  configs/prompts/answering.json `conversion`): the judge scores the free answer against each
  option on 1-10; an option is chosen only when it beats the other by the margin 3
  (`medprobe.scoring.mediconfusion.choose`), else the answer is invalid.
- `green` (reports; GREEN, Stanford-AIMI/GREEN): the judge counts the candidate report's clinically
  significant and insignificant errors in six categories and the matched findings; the study's score is
  matched / (matched + significant errors) (`medprobe.judge_green`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import Field

from medprobe import judge_green
from medprobe.prompts import LETTERS, load_named
from medprobe.types import AnswerType, Frozen, Sample

Kind = Literal["binary", "option-scores", "green"]


class JudgePrompt(Frozen):
    """One judge instruction. `user` is filled with {question}, {answer} (the gold, as text),
    {response} (the model's reply) and, for option scores, {options} (one block per option)."""

    name: str
    kind: Kind
    system: str | None = None
    user: str = Field(description="the judge's user message with the placeholders above")
    option_block: str = Field("[Answer {letter}]\n{text}\n\n", description="how one option is shown (option scores)")
    temperature: float = Field(0.0, description="judge sampling temperature (enters the request key)")
    max_tokens: int = 256

    @property
    def hash(self) -> str:
        """Every field enters the hash: changing a word of the prompt changes the verdicts' hash."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def render(self, sample: Sample, response: str) -> str:
        options = "".join(self.option_block.format(letter=LETTERS[i], text=t) for i, t in enumerate(sample.options))
        return self.user.format(question=sample.question, answer=gold_text(sample), response=response, options=options)


def gold_text(sample: Sample) -> str:
    """The gold as the judge should read it: an option letter becomes 'B: option text'."""
    gold = sample.answer.strip()
    if sample.answer_type is AnswerType.MULTIPLE_CHOICE and sample.options and gold in LETTERS[: len(sample.options)]:
        return f"{gold}: {sample.options[LETTERS.index(gold)]}"
    return sample.answer


# eth-medical-ai-lab/smmile inference_and_evaluation/evaluate_LLMJudge.py PROMPT, verbatim; one user
# message, no system. The official judge is llama3.3 through ollama at its default temperature;
# medprobe uses 0 so a verdict can be reproduced (the cache keeps the first one anyway).
SMMILE_BINARY = JudgePrompt(
    name="smmile-binary",
    kind="binary",
    user=(
        'A medical AI model is provided with an image and asked the question "{question}". '
        'The correct answer to this question is: "{answer}". The AI model outputs "{response}" as its '
        "response. Is the AI model correct? Please output your answer as a single digit, where 1 "
        "indicates that the AI model is correct and 0 indicates that the AI model is incorrect with "
        "respect to the correct answer. Do not provide anything other than the digit in your response."
    ),
    max_tokens=8,
)

# AIF4S/MediConfusion configs/prompts/answering.json "conversion" + get_clean_up_prompt, verbatim
# (temperature 0.7 as configured there; role "AI Assistant").
_MC_INSTRUCT = (
    "We would like to request your feedback on the performance of an AI assistant in response to the user "
    "question displayed above. The user asks the question on observing an image. We have provided two possible "
    "answers, [Answer A] and [Answer B] to the question. Your job is to evaluate how close the AI assistant's "
    "answer is to each of the answers. You don't have to decide whether the answers are correct or not. Each "
    "answer should receive an overall score on a scale of 1 to 10, where a higher score indicates the AI "
    "assistant's answer is closer to the specific answer. After providing the scores, concisely provide your "
    "explanation for the given scores. Remember, you don't need to comment on the correctness of the answers. "
    "Please provide your answer in the following format:\nA: <SCORE>\nB: <SCORE>\nYour explanation: <EXPLANATION>"
)
MEDICONFUSION_SCORES = JudgePrompt(
    name="mediconfusion-scores",
    kind="option-scores",
    system="You are a helpful and precise assistant for checking the quality of the answer.",
    user=("[Question]\n{question}\n\n{options}[AI Assistant]\n{response}\n\n[End of AI Assistant]\n\n"
          "[System]\n" + _MC_INSTRUCT.replace("{", "{{").replace("}", "}}") + "\n\n"),
    temperature=0.7,
    max_tokens=512,
)

# GREEN's task in medprobe's words (medprobe.judge_green): {answer} is the reference report
GREEN_REPORT = JudgePrompt(name=judge_green.NAME, kind="green", user=judge_green.USER, max_tokens=judge_green.MAX_TOKENS)

BUILTIN: dict[str, JudgePrompt] = {p.name: p for p in (SMMILE_BINARY, MEDICONFUSION_SCORES, GREEN_REPORT)}
DEFAULT: dict[str, str] = {"binary": SMMILE_BINARY.name, "option-scores": MEDICONFUSION_SCORES.name,
                           "green": GREEN_REPORT.name}


def load_judge_prompt(name_or_path: str) -> JudgePrompt:
    """A built-in judge prompt by name, or a JSON file with the JudgePrompt fields."""
    return load_named(name_or_path, BUILTIN, JudgePrompt, "judge prompt",
                      "name, kind (binary, option-scores or green), user (and optionally system, temperature, max_tokens); "
                      "user may use {question}, {answer}, {response} and {options}")


# ----------------------------------------------------------------------------------- verdict parsers
class Parsed(Frozen):
    """What a judge reply says: correct/wrong (binary), option scores and the chosen option, or why
    it is unusable (`error`: the verdict itself could not be read)."""

    correct: bool | None = None
    scores: dict[str, float] | None = None
    chosen: str | None = None
    error: str | None = None


def parse_binary(text: str) -> Parsed:
    """evaluate_LLMJudge.py accepts exactly '1' or '0'; medprobe strips surrounding whitespace first
    (a trailing newline is not a different verdict). Anything else is an unusable verdict."""
    reply = text.strip()
    if reply in ("0", "1"):
        return Parsed(correct=reply == "1")
    return Parsed(error=f"judge reply is not 1 or 0: {reply[:80]!r}")


def parse_option_scores(text: str, labels: str, margin: float) -> Parsed:
    """`process_gpt_response` reads 'A: <score>' and 'B: <score>' lines; medprobe finds each label's
    first 'X: number' line (markdown bold tolerated) and requires every score in 1-10. The chosen
    option must beat every other by `margin` (`check_answer`); for two options this is `choose`."""
    from medprobe.scoring.mediconfusion import choose

    scores: dict[str, float] = {}
    for label in labels:
        m = re.search(rf"^[\s*#]*\[?{label}\]?[\s*]*:[\s*]*(\d+(?:\.\d+)?)", text, re.M)
        if m is None:
            return Parsed(error=f"no score for option {label} in the judge reply: {text.strip()[:80]!r}")
        scores[label] = float(m.group(1))
    if any(not 1 <= s <= 10 for s in scores.values()):
        return Parsed(scores=scores, error=f"judge scores outside 1-10: {scores}")
    if len(labels) == 2:
        chosen = choose(scores[labels[0]], scores[labels[1]], margin)
        chosen = None if chosen is None else labels["AB".index(chosen)]
    else:
        best = max(scores, key=scores.__getitem__)
        chosen = best if all(scores[best] >= s + margin for k, s in scores.items() if k != best) else None
    return Parsed(scores=scores, chosen=chosen)
