"""Reasoning chains: the split (medprobe.reasoning), and a golden table of reasoning outputs through
every parser and every preset: only the answer after the chain is scored, under each preset's own rule.

The chains are written to mislead: they are full of option letters, yes/no words, `<answer>` tags and
`\\boxed{}` that a scorer reading the whole reply would take for the answer.
"""

from __future__ import annotations

import pytest

from medprobe import scoring
from medprobe.parsing import parse_letter, parse_open, parse_yes_no
from medprobe.reasoning import answer_start, split, split_generation, split_text
from medprobe.types import AnswerType, Generation, Outcome, Sample

# ---------------------------------------------------------------- the split


@pytest.mark.parametrize(
    ("text", "reasoning", "answer", "closed"),
    [
        ("<think>It is not B.</think>\n\nA", "It is not B.", "A", True),
        ("<thinking>could be liver</thinking> lung", "could be liver", "lung", True),
        ("◁think▷maybe yes◁/think▷no", "maybe yes", "no", True),  # Kimi-VL-Thinking
        # the chat template opened the chain in the prompt: only the closing tag is in the reply
        ("Looking at the image... yes or no?</think>\n\nNo", "Looking at the image... yes or no?", "No", True),
        ("<think>a<think>b</think>c</think> D", "a\nb\nc", "D", True),  # nested
        ("<think>a</think><think>b</think> D", "a\nb", "D", True),  # repeated
        ("<think>a</think> B </think> C", "a\nB", "C", True),  # a stray closing tag ends a second chain
        ("<think>\n\n</think>\n\nyes", "", "yes", True),  # an empty chain
        ("<think>Option A? Option B? The answer is", "Option A? Option B? The answer is", "", False),  # cut
        ("<think>done</think> yes <think>second thoughts", "done\nsecond thoughts", "yes", False),
        ("I think it is yes.", None, "I think it is yes.", True),  # the word is not a tag
        ("  Yes.  ", None, "  Yes.  ", True),  # no chain: the text itself, verbatim
    ],
)
def test_split_text(text, reasoning, answer, closed):
    assert tuple(split_text(text)) == (reasoning, answer, closed)


@pytest.mark.parametrize(
    ("text", "reasoning", "finish", "expected"),
    [
        ("", "the chain, cut", "length", ("the chain, cut", "", False)),  # vLLM: an unclosed chain fills reasoning_content
        ("", "a finished chain", "stop", ("a finished chain", "", True)),
        ("\n\nB", "it is not A", "stop", ("it is not A", "B", True)),
        ("<think>x</think>", None, "length", ("x", "", False)),  # closed, but the reply was cut before any answer
        ("plain answer", None, "length", (None, "plain answer", True)),  # no chain: a cut answer is still an answer
    ],
)
def test_split_with_the_server_field_and_finish_reason(text, reasoning, finish, expected):
    assert tuple(split(text, reasoning, finish)) == expected


def test_invalid_reasons_and_the_generation_view():
    assert split_text("<think>never closes").invalid_reason == "unfinished_reasoning"
    assert split_text("<think>done</think>  ").invalid_reason == "no_answer_after_reasoning"
    assert split_text("<think>done</think> A").invalid_reason is None
    assert split_text("A").invalid_reason is None
    view = split_generation(Generation(text="<think>inline</think> yes", reasoning="from the server"))
    assert view == ("from the server\ninline", "yes", True)


def test_answer_start_skips_the_chain_tokens():
    assert answer_start(["<think>", "Yes", "?", "</think>", "\n\n", "No"]) == 4
    assert answer_start(["</", "think", ">", " No"]) == 3  # a delimiter split over tokens
    assert answer_start(["No"]) == 0


# ---------------------------------------------------------------- parsers

MISLEADING = "Option B looks right. Answer: B. Is it yes? \\boxed{C} <answer>D</answer> No, yes, no."
QWEN = "<think>\n" + MISLEADING + "\n</think>\n\n"


@pytest.mark.parametrize(
    ("text", "value", "method"),
    [
        (QWEN + "A", "A", "lone_letter"),
        ("<thinking>" + MISLEADING + "</thinking>The answer is A.", "A", "answer_prefix"),
        ("◁think▷" + MISLEADING + "◁/think▷(A)", "A", "lone_letter"),
        (MISLEADING + "</think>A", "A", "lone_letter"),  # missing opening tag
        ("<think>" + MISLEADING + "<think>B?</think>" + MISLEADING + "</think> A", "A", "lone_letter"),  # nested
        (QWEN + "<answer>A</answer>", "A", "answer_tag"),
        (QWEN + "So \\boxed{A}", "A", "boxed"),
    ],
)
def test_parse_letter_reads_only_the_answer(text, value, method):
    answer = parse_letter(text, 4)
    assert (answer.valid, answer.value, answer.method) == (True, value, method)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (QWEN + "Yes", "yes"),
        ("<think>It could be yes, or it could be no.</think> No.", "no"),  # chain alone: both_yes_and_no
        ("Yes? No? Yes or no?</think>\n\nno", "no"),
        (QWEN + "<answer>yes</answer>", "yes"),
        (QWEN + "\\boxed{no}", "no"),
        ("◁think▷no no no◁/think▷Yes, there is an effusion.", "yes"),
    ],
)
def test_parse_yes_no_reads_only_the_answer(text, value):
    answer = parse_yes_no(text)
    assert (answer.valid, answer.value) == (True, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("<think>could be liver</think> lung", "lung"),
        ("could be liver</think>\n\nThe answer is: right lung", "right lung"),
        (QWEN + "<answer>Lung</answer>", "lung"),
        (QWEN + "\\boxed{lung}", "lung"),
    ],
)
def test_parse_open_reads_only_the_answer(text, value):
    assert parse_open(text).value == value


@pytest.mark.parametrize("parse", [parse_yes_no, lambda t: parse_letter(t, 4), parse_open])
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<think>Option A? yes? The answer is", "unfinished_reasoning"),
        ("◁think▷yes◁/think▷", "no_answer_after_reasoning"),
        ("<think>yes</think>\n\n", "no_answer_after_reasoning"),
    ],
)
def test_parsers_report_chains_without_an_answer(parse, text, reason):
    answer = parse(text)
    assert (answer.valid, answer.value, answer.reason) == (False, None, reason)


# ---------------------------------------------------------------- every preset

OPTIONS = ("pleural effusion", "pneumothorax", "cardiomegaly", "normal")
CLOSED, OPEN, MC = AnswerType.CLOSED, AnswerType.OPEN, AnswerType.MULTIPLE_CHOICE


def _sample(bench: str, kind: AnswerType, gold: str, options: tuple[str, ...] = ()) -> Sample:
    return Sample(id="s", benchmark=bench, question="q", answer=gold, answer_type=kind, options=options)


#: (preset, sample, an answer part the preset's official rule reads as right, one it reads as wrong)
CASES = [
    ("strict", _sample("vqa-rad", CLOSED, "yes"), "Yes", "No"),
    ("strict", _sample("vqa-rad", OPEN, "lung"), "lung", "liver"),
    ("strict", _sample("pmc-vqa", MC, "A", OPTIONS), "A", "B"),
    ("llava-med", _sample("vqa-rad", CLOSED, "no"), "no", "yes"),
    ("llava-med", _sample("vqa-rad", OPEN, "lung"), "lung", "liver"),
    ("multimedeval", _sample("vqa-rad", CLOSED, "no"), "no", "yes"),
    ("multimedeval", _sample("vqa-rad", OPEN, "lung"), "lung", "liver"),
    ("multimedeval", _sample("pmc-vqa", MC, "A", OPTIONS), "A pleural effusion", "B pneumothorax"),
    ("lmms-eval", _sample("slake-en", CLOSED, "yes"), "Yes", "No"),
    ("lmms-eval", _sample("slake-en", OPEN, "lung"), "lung", "liver"),
    ("medevalkit", _sample("vqa-rad", CLOSED, "no"), "No.", "Yes."),
    ("medevalkit", _sample("vqa-rad", OPEN, "lung"), "lung", "liver"),
    ("medevalkit", _sample("slake-en", OPEN, "lung"), "lung", "liver"),
    ("medevalkit", _sample("pmc-vqa", MC, "A", OPTIONS), "A", "B"),
    ("mediconfusion", _sample("mediconfusion", MC, "A", ("image 1", "image 2")), "A", "B"),
    ("probmed", _sample("probmed", CLOSED, "yes"), "Yes", "No"),
    ("probmed-strict", _sample("probmed", CLOSED, "yes"), "yes", "no"),
    ("smmile-em", _sample("smmile", OPEN, "lung"), "lung", "liver"),
    ("smmile-mcqa", _sample("smmile", MC, "A", OPTIONS), "<answer>A</answer>", "<answer>B</answer>"),
]
IDS = [f"{p}-{s.benchmark}-{s.answer_type}" for p, s, _, _ in CASES]
#: a chain that misleads toward the wrong answers: wrong letters, yes/no words, organs, tags and boxes
CHAIN = ("Is it B? Option C: cardiomegaly. No, not that. The answer is B. It could be yes or no. Yes? No. "
         "Maybe kidney or liver. \\boxed{B} <answer>B</answer> B. **B**")
#: a chain holding every gold answer: a lenient rule (substring, recall) reading the whole reply finds it
GOLDEN_CHAIN = ("Could it be A? Option A: pleural effusion. Yes. No. yes, no, not. The lung? A. \\boxed{A} "
                "<answer>A</answer> A pleural effusion in the lung.")


def _wrapped(answer: str, chain: str) -> list[tuple[str, str]]:
    """The answer after `chain` in every delimiter form models emit."""
    return [
        ("think", f"<think>\n{chain}\n</think>\n\n{answer}"),
        ("thinking", f"<thinking>{chain}</thinking>\n{answer}"),
        ("kimi", f"◁think▷{chain}◁/think▷{answer}"),
        ("no_opening_tag", f"{chain}\n</think>\n\n{answer}"),
        ("nested", f"<think>{chain}<think>{chain}</think>{chain}</think>{answer}"),
        ("repeated", f"<think>{chain}</think><think>{chain}</think>\n{answer}"),
    ]


@pytest.mark.parametrize(("preset", "sample", "right", "wrong"), CASES, ids=IDS)
def test_every_preset_scores_the_answer_after_the_chain(preset, sample, right, wrong):
    rule = scoring.get(preset)
    assert rule.applies(sample)
    assert rule.score(sample, right).outcome is Outcome.CORRECT  # the answer parts alone, as the official rule reads them
    assert rule.score(sample, wrong).outcome is Outcome.WRONG
    for form, text in _wrapped(right, CHAIN):
        score = rule.score(sample, text, "stop")
        assert score.outcome is Outcome.CORRECT, (form, score)
        assert score.value == rule.score(sample, right).value, form
    for form, text in _wrapped(wrong, GOLDEN_CHAIN):
        assert rule.score(sample, text, "stop").outcome is Outcome.WRONG, form
    # the chain kept apart by the server (reasoning_content) is never read as the answer
    assert rule.score(sample, "\n\n" + right, "stop", reasoning=CHAIN).outcome is Outcome.CORRECT
    assert rule.score(sample, "\n\n" + wrong, "stop", reasoning=GOLDEN_CHAIN).outcome is Outcome.WRONG


def test_reading_the_whole_reply_would_have_been_wrong():
    """Without the split every official rule misreads some of these replies (medprobe's own parsers split
    the chain themselves): the golden table tests the split, not luck."""
    misread = set()
    for preset, sample, right, wrong in CASES:
        rule = scoring.get(preset)
        if rule.score_answer(sample, f"<think>\n{CHAIN}\n</think>\n\n{right}").outcome is not Outcome.CORRECT:
            misread.add(preset)
        if rule.score_answer(sample, f"<think>\n{GOLDEN_CHAIN}\n</think>\n\n{wrong}").outcome is not Outcome.WRONG:
            misread.add(preset)
    assert misread == {name for name, *_ in CASES} - {"strict", "probmed-strict"}


@pytest.mark.parametrize(("preset", "sample", "right", "wrong"), CASES, ids=IDS)
def test_every_preset_marks_chains_without_an_answer_invalid(preset, sample, right, wrong):
    rule = scoring.get(preset)
    cases = [
        (f"<think>{CHAIN} {right}", "stop", None, "unfinished_reasoning"),  # never closed
        (f"{CHAIN} {right}", "length", None, None),  # no delimiter at all: an ordinary (cut) answer
        (f"<think>{CHAIN}</think>", "length", None, "unfinished_reasoning"),  # cut right after the chain
        ("", "length", CHAIN, "unfinished_reasoning"),  # the server's reasoning field holds the whole cut reply
        (f"<think>{CHAIN}</think>\n\n", "stop", None, "no_answer_after_reasoning"),
        ("", "stop", CHAIN, "no_answer_after_reasoning"),
    ]
    for text, finish, reasoning, reason in cases:
        score = rule.score(sample, text, finish, reasoning)
        if reason is None:
            assert score.answer.reason not in ("unfinished_reasoning", "no_answer_after_reasoning")
            continue
        assert (score.outcome, score.value, score.answer.reason) == (Outcome.INVALID, 0.0, reason), (text, finish)
        assert score.preset == rule.name and score.parser == rule.score(sample, None).parser


def test_score_generation_reads_the_stored_fields():
    rule = scoring.get("strict")
    sample = _sample("vqa-rad", CLOSED, "yes")
    cut = Generation(text="", reasoning="yes? no? ...", finish_reason="length")
    assert rule.score_generation(sample, cut).answer.reason == "unfinished_reasoning"
    assert rule.score_generation(sample, Generation(text="Yes", reasoning="no no", finish_reason="stop")).outcome == "correct"
    assert rule.score_generation(sample, None).answer.reason == "error"


# ---------------------------------------------------------------- local backends (hf, vllm)


class _Tokenizer:
    """The decode contract of a transformers tokenizer whose think tags are special tokens."""

    def __init__(self, special_think: bool):
        self.vocab = {"<think>": 1, "</think>": 2, "<eos>": 3, "yes": 4, " hmm": 5}
        self.all_special_ids = [3, 1, 2] if special_think else [3]
        self.added_tokens_decoder: dict = {}

    def get_vocab(self) -> dict[str, int]:
        return self.vocab

    def decode(self, ids, skip_special_tokens=False) -> str:
        names = {v: k for k, v in self.vocab.items()}
        return "".join(names[i] for i in ids if not (skip_special_tokens and i in self.all_special_ids))


@pytest.mark.parametrize("special_think", [True, False])
def test_local_decoding_keeps_the_think_tags(special_think):
    from medprobe.backends.chains import Delimiters

    tok = _Tokenizer(special_think)
    delimiters = Delimiters.of(tok)
    ids = [1, 5, 2, 4, 3]
    assert delimiters.decode(tok, ids) == "<think> hmm</think>yes"  # the end-of-sequence token is still dropped
    assert delimiters.chain_tokens(ids, opened=False) == 3
    assert delimiters.chain_tokens([5, 5], opened=True) == 2  # the prompt opened it and it never closed
    assert delimiters.chain_tokens([4], opened=False) is None


def test_local_backends_restore_the_opening_tag_of_the_template():
    from medprobe.backends.chains import restore_opening

    prompt = "<|im_start|>user\nIs there a mass?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    assert restore_opening(prompt, " hmm, yes or no") == ("<think> hmm, yes or no", True)
    assert split_text(restore_opening(prompt, " hmm, yes or no")[0]).invalid_reason == "unfinished_reasoning"
    assert restore_opening(prompt, "<think>x</think>yes") == ("<think>x</think>yes", True)
    no_thinking = prompt.removesuffix("<think>\n") + "<think>\n\n</think>\n\n"  # Qwen3, enable_thinking=False
    assert restore_opening(no_thinking, "yes") == ("yes", False)
