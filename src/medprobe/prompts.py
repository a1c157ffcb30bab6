"""Prompt templates: named, hashed into the manifest, chosen from question metadata only.

MedEvalKit and MultiMedEval pick their yes/no instruction by looking at the gold answer; a model
then gets a hint the benchmark never meant to give. Here the template is chosen by
`Sample.prompt_kind`, which loaders derive from question metadata or the question's form,
never from the gold.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TypeVar

from pydantic import Field, ValidationError

from medprobe.letters import LETTERS, letter  # noqa: F401 (LETTERS: re-exported for probes, judge, backends)
from medprobe.types import AnswerType, Frozen, Message, Part, Sample

T = TypeVar("T", bound=Frozen)


class PromptTemplate(Frozen):
    """One instruction per answer kind. `{question}` and `{options}` are filled in."""

    name: str
    system: str | None = None
    closed: str = "{question}\nAnswer with yes or no."
    open: str = "{question}\nAnswer with a single word or short phrase."
    multiple_choice: str = "{question}\n{options}\nAnswer with the option's letter from the given choices directly."
    followups: tuple[str, ...] = Field(
        (),
        description="extra user turns sent after the model's reply (e.g. MedXpertQA's answer trigger); "
        "the answer is parsed from the last turn",
    )

    option_line: str | None = Field(None, description="how one option is written, '{letter}' and '{text}'; "
                                    "None: '{letter}. {text}'")
    report: str | None = Field(None, description="report generation (answer type report): '{question}' is the "
                               "study's clinical context (an 'Indication: ...' line, empty when the benchmark has "
                               "none) and '{section}' the section asked for; None: REPORT_PROMPT")

    @property
    def hash(self) -> str:
        # option_line and report enter the hash only when set, so templates without them keep their hash
        exclude = {k for k in ("option_line", "report") if getattr(self, k) is None} or None
        return hashlib.sha256(self.model_dump_json(exclude=exclude).encode()).hexdigest()[:16]

    def for_kind(self, kind: AnswerType) -> str:
        if kind is AnswerType.REPORT:
            return self.report if self.report is not None else REPORT_PROMPT
        return {AnswerType.CLOSED: self.closed, AnswerType.OPEN: self.open}.get(kind, self.multiple_choice)


#: the report instruction of templates without their own `report`. A plain request for one section, as
#: MedEvalKit asks for a report (utils/question_formats.py get_report_generation_prompt) and the MedGemma
#: model card asks "Describe this X-ray", but naming the section the reference holds. It is outside
#: the template hash (so VQA templates keep theirs): changing it would leave report runs' identity
#: unchanged, so never edit it; give a template its own `report` instead (tests/test_report_prompt.py pins it).
REPORT_PROMPT = "{question}\nWrite the {section} section of the radiology report for this chest X-ray."


_VERBAL = ("Give your final answer inside <answer></answer> tags. Then, on a new line, write "
           "'Confidence: NN', where NN (0-100) is the probability that your answer is correct.")

BUILTIN: dict[str, PromptTemplate] = {
    "default": PromptTemplate(name="default"),
    # MedXpertQA (TsinghuaC3I/MedXpertQA, eval/): zero-shot chain of thought, then a second turn
    # "Therefore, among A through E, the answer is"; the first option letter after it is the answer.
    "medxpertqa-cot": PromptTemplate(
        name="medxpertqa-cot",
        closed="Q: {question}\nA: Let's think step by step.",
        open="Q: {question}\nA: Let's think step by step.",
        multiple_choice="Q: {question}\nA: Let's think step by step.",
        followups=("Therefore, among A through E, the answer is",),
    ),
    # MMMU (MMMU-Benchmark/MMMU mmmu/configs/llava1.5.yaml + construct_prompt): options as "(A) text";
    # the official text has one more blank line before the instruction (first_turn folds triple newlines)
    "mmmu": PromptTemplate(
        name="mmmu",
        open="{question}\n\nAnswer the question using a single word or phrase.",
        multiple_choice="{question}\n\n{options}\n\nAnswer with the option's letter from the given choices directly.",
        option_line="({letter}) {text}",
    ),
    # VLMEvalKit ImageMCQDataset.build_prompt (vlmeval/dataset/image_mcq.py): GMAI-MMBench's prompt
    "vlmevalkit-mcq": PromptTemplate(
        name="vlmevalkit-mcq",
        multiple_choice="Question: {question}\nOptions:\n{options}\n"
        "Please select the correct answer from the options above. \n",
    ),
    # MedFrameQA (haojinw0027/MedFrameQA config/prompt.yaml eval_system_prompt, eval_prompt_template; its
    # quote marks as written), plus medprobe's sentence on frame order; the official options are a Python list
    "medframeqa": PromptTemplate(
        name="medframeqa",
        system="Answer the following multiple-choice question. Images are provided. The last line of your response "
        "should be strictly of the following format: \u2019Answer: $LETTER\u2019 (without quotes) where LETTER is one "
        "of the options. For example, if the correct answer is A, your response should be: \u2019Answer: A\u2019. "
        'Think step by step before answering."',
        multiple_choice="The images are frames from a medical video, given in order (first frame first).\n"
        "Question:{question} \n\nOptions:\n{options}\n",
    ),
    # verbalised confidence for calibration (medprobe.calibration parses "Confidence: NN"); the
    # answer goes inside <answer> tags so every parser reads it without the confidence line
    "verbal-confidence": PromptTemplate(
        name="verbal-confidence",
        closed="{question}\nAnswer with yes or no. " + _VERBAL,
        open="{question}\nAnswer with a single word or short phrase. " + _VERBAL,
        multiple_choice="{question}\n{options}\nAnswer with the option's letter from the given choices. " + _VERBAL,
    ),
}
# the official prompts of MediConfusion, ProbMed and SMMILE live beside (they need PromptTemplate)
from medprobe.prompts_reliability import RELIABILITY_PROMPTS  # noqa: E402

BUILTIN.update(RELIABILITY_PROMPTS)


def load_named(name_or_path: str, builtin: dict[str, T], model: type[T], what: str, fields: str) -> T:
    """A built-in by name, or a JSON file holding the model's fields (its name defaults to the file's)."""
    if name_or_path in builtin:
        return builtin[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"Unknown {what} {name_or_path!r}: not a built-in ({', '.join(builtin)}) and not a file. "
            f"Pass a JSON file with fields {fields}."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data.setdefault("name", path.stem)
        return model.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"{what.capitalize()} {path} is not valid: {exc}") from None


def load_template(name_or_path: str) -> PromptTemplate:
    """A built-in template by name, or a JSON file with the PromptTemplate fields."""
    return load_named(name_or_path, BUILTIN, PromptTemplate, "prompt template",
                      "name, closed, open, multiple_choice (and optionally system, followups, option_line, report)")


def format_options(options: tuple[str, ...], line: str | None = None) -> str:
    line = line or "{letter}. {text}"
    # past Z the labels go on AA, AB, ... (medprobe.letters), as parse_letter reads them back
    return "\n".join(line.format(letter=letter(i), text=text) for i, text in enumerate(options))


def first_turn(template: PromptTemplate, sample: Sample) -> tuple[Message, ...]:
    """System message (if any) and the user turn: images first, then the instruction."""
    options = "" if sample.metadata.get("options_in_question") else format_options(sample.options, template.option_line)
    section = str(sample.metadata.get("section") or "findings")  # the report section a report sample's gold is
    text = template.for_kind(sample.prompt_kind).format(question=sample.question, options=options, section=section)
    text = text.replace("\n\n\n", "\n\n")  # an empty {options} must not leave a hole
    if sample.prompt_kind is AnswerType.REPORT:
        text = text.lstrip("\n")  # a study without clinical context: no empty first line
    parts = tuple(Part(type="image", image=img) for img in sample.images) + (Part(type="text", text=text),)
    messages = sample.history + (Message(role="user", content=parts),)  # history: in-context demonstrations
    if template.system:
        messages = (Message(role="system", content=(Part(type="text", text=template.system),)),) + messages
    return messages


def next_turn(messages: tuple[Message, ...], reply: str, followup: str) -> tuple[Message, ...]:
    """The conversation so far, the model's reply, and the next user instruction."""
    return messages + (
        Message(role="assistant", content=(Part(type="text", text=reply),)),
        Message(role="user", content=(Part(type="text", text=followup),)),
    )
