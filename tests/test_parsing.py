"""Answer parsers (medprobe.parsing) and the VQA-v2 normalisation (medprobe.scoring.normalize).

Normalisation expectations were checked against the official code: GT-Vision-Lab/VQA vqaEval.py
(processPunctuation + processDigitArticle) and LLaVA-Med glossary.normalize_word.
"""

import pytest

from medprobe.parsing import is_refusal, normalize_open, parse_letter, parse_open, parse_yes_no, yes_no_value
from medprobe.scoring.normalize import normalize_vqa, normalize_word, token_f1

# ---------------------------------------------------------------- parse_yes_no


@pytest.mark.parametrize(
    ("text", "value", "method"),
    [
        ("Yes", "yes", "exact"),
        ("no.", "no", "exact"),
        ("  NO!  ", "no", "exact"),
        ("<answer>yes</answer>", "yes", "answer_tag"),
        ("Let me think: no fracture... <answer> No </answer>", "no", "answer_tag"),
        ("Reasoning mentions yes. \\boxed{no}", "no", "boxed"),
        ("Answer: yes", "yes", "answer_prefix"),
        ("After review, the answer is no, because the cortex is intact.", "no", "answer_prefix"),
        ("**Answer:** Yes", "yes", "answer_prefix"),
        ("Yes, there is an effusion.", "yes", "first_word"),
        ("No. The lungs are clear.", "no", "first_word"),
        ("Yes, there is no pneumothorax.", "yes", "first_word"),  # leading yes beats a later "no"
        ("Yes, although the cause cannot be determined.", "yes", "first_word"),  # hedge is not a refusal
        ("There is no evidence of fracture.", "no", "contains"),
        ("Based on the image, yes.", "yes", "contains"),
        ("是", "yes", "exact"),
        ("没有", "no", "exact"),
        ("不是，这是CT图像", "no", "first_word"),
        ("是的。", "yes", "exact"),
    ],
)
def test_yes_no_values(text, value, method):
    answer = parse_yes_no(text)
    assert (answer.valid, answer.value, answer.method, answer.parser) == (True, value, method, "yes_no")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "empty"),
        ("", "empty"),
        ("  .  ", "empty"),
        ("<answer></answer>", "empty"),
        ("yes or no", "both_yes_and_no"),
        ("Yes/No", "both_yes_and_no"),
        ("It could be yes, or it could be no.", "both_yes_and_no"),
        ("Answer: maybe yes, maybe no", "both_yes_and_no"),
        ("I cannot determine this from the image.", "refusal"),
        ("I'm unable to assess the image.", "refusal"),
        ("As an AI, I am not able to provide a diagnosis.", "refusal"),
        ("I’m sorry, but I can’t help with that.", "refusal"),  # curly apostrophes
        ("The lungs are not normal.", "no_yes_no"),  # "not" is not "no"
        ("The eyes are unremarkable.", "no_yes_no"),  # "yes" inside "eyes" is not a word
        ("Nodular opacities are seen.", "no_yes_no"),
        ("<answer>maybe</answer> yes", "no_yes_no"),  # the tag decides on its own
        ("这是肺部CT", "no_yes_no"),  # 是 as a copula is not "yes"
    ],
)
def test_yes_no_invalid(text, reason):
    answer = parse_yes_no(text)
    assert (answer.valid, answer.value, answer.reason) == (False, None, reason)


def test_cannot_see_a_finding_is_an_answer_not_a_refusal():
    assert not is_refusal("I cannot see any fracture, so no.")
    assert is_refusal("I cannot see the image you provided.")
    assert parse_yes_no("I cannot see any fracture, so no.").value == "no"


@pytest.mark.parametrize(
    ("gold", "value"), [("Yes", "yes"), (" no ", "no"), ("是", "yes"), ("否", "no"), ("MRI", None), ("not", None)]
)
def test_yes_no_value_of_gold(gold, value):
    assert yes_no_value(gold) == value


# ---------------------------------------------------------------- parse_letter


@pytest.mark.parametrize(
    ("text", "value", "method"),
    [
        ("B", "B", "lone_letter"),
        ("b.", "B", "lone_letter"),
        ("(C)", "C", "lone_letter"),
        ("B) Pneumonia", "B", "lone_letter"),
        ("A. Pneumonia", "A", "lone_letter"),
        ("D: mass", "D", "lone_letter"),
        ("<answer>B</answer>", "B", "answer_tag"),
        ("A looks plausible but <answer>C</answer>", "C", "answer_tag"),
        ("<answer>Pneumonia (B)</answer>", "B", "answer_tag"),
        ("\\boxed{A}", "A", "boxed"),
        ("Answer: C", "C", "answer_prefix"),
        ("The answer is (B).", "B", "answer_prefix"),
        ("Thus the answer is D", "D", "answer_prefix"),
        ("**Answer:** B", "B", "answer_prefix"),
        ("Answer: A. Pneumonia", "A", "answer_prefix"),
        ("I think option B is right.", "B", "option_word"),
        ("The correct choice is C.", "C", "option_word"),
        ("It is most consistent with (D) given the margins.", "D", "paren"),
    ],
)
def test_letter_values(text, value, method):
    answer = parse_letter(text, 4)
    assert (answer.valid, answer.value, answer.method, answer.parser) == (True, value, method, "letter")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (None, "empty"),
        ("   ", "empty"),
        ("A mass is seen in the left lung.", "no_letter"),  # article, not an option
        ("The answer is a mass in the lung.", "no_letter"),
        ("A or B", "several_letters"),
        ("A and C", "several_letters"),
        ("Answer: A or B", "several_letters"),
        ("Both (A) and (C) are possible.", "several_letters"),
        ("E", "letter_out_of_range"),
        ("Answer: E", "letter_out_of_range"),
        ("<answer>F</answer>", "letter_out_of_range"),
        ("I cannot determine the answer from this image.", "refusal"),
        ("Pneumonia", "no_letter"),
    ],
)
def test_letter_invalid(text, reason):
    answer = parse_letter(text, 4)
    assert (answer.valid, answer.value, answer.reason) == (False, None, reason)


def test_letter_range_follows_n_options():
    assert parse_letter("E", 5).value == "E"
    assert parse_letter("E", 4).reason == "letter_out_of_range"


# ---------------------------------------------------------------- parse_open


@pytest.mark.parametrize(
    ("text", "value", "method"),
    [
        ("Liver.", "liver", "full_text"),
        ("  Right   Upper\nLobe ", "right upper lobe", "full_text"),
        ("<answer> The Left Lung </answer>", "the left lung", "answer_tag"),
        ("Long reasoning... \\boxed{Axial}", "axial", "boxed"),
        ("Answer: right kidney!", "right kidney", "answer_prefix"),
        ("“CT”", "ct", "full_text"),
    ],
)
def test_open_values(text, value, method):
    answer = parse_open(text)
    assert (answer.valid, answer.value, answer.method) == (True, value, method)


@pytest.mark.parametrize(
    ("text", "reason"),
    [(None, "empty"), ("...", "empty"), ("\\boxed{}", "empty"), ("I am unable to determine the organ.", "refusal")],
)
def test_open_invalid(text, reason):
    answer = parse_open(text)
    assert (answer.valid, answer.reason) == (False, reason)


def test_normalize_open():
    assert normalize_open(" (Left  lobe). ") == "left lobe"


# ---------------------------------------------------------------- VQA-v2 normalisation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.", "yes"),
        ("None", "0"),  # manualMap maps "none" to a digit
        ("Two nodules", "2 nodules"),
        ("the left lung", "left lung"),
        ("dont know", "don't know"),
        ("3.5 cm.", "3.5 cm"),  # a period before a digit stays
        ("x-ray", "x ray"),  # a mark not touching a space becomes a space
        ("left - right", "left right"),  # a mark touching a space is deleted
        ("a/b", "b"),  # "/" -> space, then the article "a" is dropped
        ("1,000 (approx)", "1000 approx"),  # a digit,digit group anywhere deletes every mark
        ("P.A.", "pa"),
        ("Im fine", "im fine"),  # capitalised contraction keys never match
        ("end" + "." * 40, "end" + "." * 8),  # only 32 periods are removed per call (re.UNICODE as count)
    ],
)
def test_normalize_vqa_official_rules(text, expected):
    assert normalize_vqa(text) == expected
    assert normalize_word(text) == expected


def test_normalize_word_skips_the_official_newline_replacement():
    # vqaEval replaces tabs by spaces first, so " (" is seen and "(" is deleted everywhere;
    # LLaVA-Med/MultiMedEval normalize_word does not, so "(" becomes a space and "a" is split off.
    assert normalize_vqa("x\t(y) a(b") == "x y ab"
    assert normalize_word("x\t(y) a(b") == "x y b"


@pytest.mark.parametrize(
    ("pred", "gold", "f1"),
    [
        ("left lung", "left lung", 1.0),
        ("left lung", "right lung", 0.5),
        ("lung lung", "lung", 2 / 3),
        ("", "", 0.0),
        ("a", "b", 0.0),
    ],
)
def test_token_f1(pred, gold, f1):
    assert token_f1(pred, gold) == pytest.approx(f1)
