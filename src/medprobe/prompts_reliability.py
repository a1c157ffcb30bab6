"""Official prompts of the reliability benchmarks (MediConfusion, ProbMed, SMMILE), as built-in templates.

Each is copied in meaning (and wording, where the wording is the protocol) from the benchmark's own
script, cited beside it; `medprobe.prompts` registers them in `BUILTIN`.
"""

from __future__ import annotations

from medprobe.prompts import PromptTemplate

# AIF4S/MediConfusion configs/prompts/answering.json: "mc" prompt of the API models (gpt, gemini,
# claude, deepseek); system = init_prompts.default (init_prompt_id 1 in configs/Models/gpt/vanilla.json).
_MC = ("Based on the image, choose the correct option for the following question.\nQuestion: {question}\n{options}\n"
       "Answer with the option's letter from the given choices directly. Your answer should be just one letter.\n"
       "Answer: ")
MEDICONFUSION_MC = PromptTemplate(
    name="mediconfusion-mc",
    system="You are a helpful assitant expert in medical domain.",  # sic: the official spelling
    closed=_MC, open=_MC, multiple_choice=_MC, option_line="{letter}: {text}",
)
# the same file's free-form ("gpt4") prompt: the options are not shown; a judge maps the answer to them
_FREE = "Based on the image, answer following question.\n{question}"
MEDICONFUSION_FREE = PromptTemplate(
    name="mediconfusion-free",
    system="You are a helpful assitant expert in medical domain.",
    closed=_FREE, open=_FREE, multiple_choice=_FREE,
)
# eric-ai-lab/ProbMed eval/inference/GPT-4V/gpt4v.py: the system message, the question as stored
# (each ProbMed question already ends with its own "Please answer with yes or no." style instruction
# where the authors put one; medprobe adds nothing)
PROBMED = PromptTemplate(
    name="probmed",
    system=("You are a student in medical school. You are preparing for your final exam. Answer the following "
            "question in your practice exam as directed to earn higher scores. You answer will only be for "
            "academic purpose."),
    closed="{question}", open="{question}", multiple_choice="{question}",
)
# eth-medical-ai-lab/smmile inference_and_evaluation/inference_openai.py: system message; open
# questions as stored; multiple choice with format_mcqa_question's instruction and <answer> tag
_SMMILE_MC = """
{question}

Please select the best answer from the following options:
{options}

Your task:
1. Think through the question, enclose your reasoning process in <think>...</think> tags.
2. Then provide the correct single-letter choice (A, B, C, D, E, F, ...) inside <answer>...</answer> tags.
Example of the expected format:
<think>This is my thought.</think>
<answer>Correct letter.</answer>
"""
SMMILE = PromptTemplate(
    name="smmile",
    system="You are a highly skilled physician and an excellent writer.",
    closed="{question}", open="{question}", multiple_choice=_SMMILE_MC,
)

RELIABILITY_PROMPTS = {t.name: t for t in (MEDICONFUSION_MC, MEDICONFUSION_FREE, PROBMED, SMMILE)}
