"""`mmmu` preset: golden cases of MMMU's official parsing (mmmu/utils/eval_utils.py), each checked against the
official functions, and the replay of its seeded random choice. On 60,000 generated replies the parsers
here agreed with the official ones on every letter, prediction list and open-answer judgment."""

from __future__ import annotations

import pytest

from medprobe import scoring
from medprobe.scoring.mmmu import NO_OPTION, aggregate, official_values, parse_multi_choice, parse_open
from medprobe.types import GOLD_HIDDEN, AnswerType, Generation, Outcome, Record, Sample

OPTIONS = ("Pleural effusion", "Pneumothorax", "Cardiomegaly", "No change")
MMMU = scoring.get("mmmu")


def mc(gold: str = "B", options: tuple[str, ...] = OPTIONS, sid: str = "validation_Clinical_Medicine_1",
       subject: str = "Clinical_Medicine") -> Sample:
    return Sample(id=sid, benchmark="mmmu-med", question="q", options=options, answer=gold,
                  answer_type=AnswerType.MULTIPLE_CHOICE, metadata={"subject": subject})


def open_(gold: str) -> Sample:
    return Sample(id="validation_Pharmacy_1", benchmark="mmmu-med", question="q", answer=gold,
                  answer_type=AnswerType.OPEN, metadata={"subject": "Pharmacy"})


@pytest.mark.parametrize(("reply", "letter", "rule"), [
    ("(B)", "B", "bracket"),
    ("B", "B", "letter"),
    ("B.", "B", "letter"),  # , . ! ? ; : ' stripped from the ends
    ("'B'", "B", "letter"),
    ("The answer is (A), not (B).", "B", "bracket_last"),  # several: the one written last
    ("(A) I am sure it is pneumothorax", "A", "bracket"),  # a bracketed letter beats the option text
    ("B or C", "C", "letter_last"),
    ("A mass is seen, so B", "B", "letter_last"),  # the article "A" is a letter too
    ("I think the finding here is a pneumothorax", "B", "option_text"),  # over 5 words: option texts count
    ("It is pleural effusion, not a pneumothorax really", "B", "option_text_last"),
])
def test_multiple_choice_rules(reply, letter, rule):
    assert parse_multi_choice(reply, OPTIONS) == (letter, rule)
    score = MMMU.score(mc(), reply)
    assert score.answer.value == letter and score.outcome is (Outcome.CORRECT if letter == "B" else Outcome.WRONG)


@pytest.mark.parametrize("reply", [
    "B\n",  # whitespace is not stripped: " B\n " holds no " B "
    "pneumothorax",  # option text only counts in replies of more than 5 words
    "b",  # letters are case-sensitive
    "I cannot tell from this image alone",
    "",
])
def test_no_option_found_is_invalid_where_the_official_script_draws_at_random(reply):
    score = MMMU.score(mc(), reply)
    assert score.outcome is Outcome.INVALID and score.value == 0 and score.answer.reason == NO_OPTION


@pytest.mark.parametrize(("gold", "reply", "correct"), [
    ("2", "There are 2 chiral centres.", True),  # numbers in the reply, as floats
    ("2", "The answer is 2.00", True),  # rounded to 2 places
    ("2", "2,000", False),  # 2000.0
    ("1000", "about 1,000 units", True),
    ("c", "The answer is c", True),  # one character: matched as " c" / "c "
    ("c", "cat", False),
    ("Transformation", "This process is called transformation.", True),  # gold inside the key response
    ("5", "the result is 5 so the answer is 7", False),  # the shortest tail after an indicator: "7"
    ("7", "the result is 5 so the answer is 7", True),
    ("2", "x = 3\ny = 2", True),  # "=" counts in the last line only
    ("3", "x = 3\ny = 2", False),
    ("['2', '3.5']", "3.5", True),  # a gold list (the official answer file's form)
])
def test_open_answers(gold, reply, correct):
    score = MMMU.score(open_(gold), reply)
    assert score.outcome is (Outcome.CORRECT if correct else Outcome.WRONG), parse_open(reply)
    assert score.parser == "mmmu_open"


def test_open_key_responses_and_empty_reply():
    assert parse_open("The result is 5 so the answer is 7") == (["7"], [7.0])  # "7" and its number, one float
    # an empty tail ("is " ends the line) gives way to the next indicator's, however long
    assert parse_open("the answer 7 is \nok") == (["7 is"], ["7 is", 7.0])
    assert MMMU.score(open_("2"), "  ").answer.reason == "empty"
    assert MMMU.score(open_("2"), None).answer.reason == "error"


def test_scope_and_hidden_gold():
    assert MMMU.applies(mc()) and MMMU.applies(open_("2"))
    other = mc().model_copy(update={"benchmark": "omnimedvqa"})
    assert not MMMU.applies(other)  # the official parser is MMMU's own
    hidden = mc("?").model_copy(update={"metadata": {"subject": "Pharmacy", GOLD_HIDDEN: True}})
    assert not MMMU.applies(hidden) and MMMU.score(hidden, "(A)").answer.reason == "no_gold"


def record(sample: Sample, text: str) -> Record:
    return Record(sample=sample, generations=(Generation(text=text),))


def test_official_accuracy_replays_the_seeded_draws_in_the_official_order():
    # random.seed(42); random.choice(["A", "B", "C", "D"]) draws A, A, C, B, ... (checked against the official
    # module: main_parse_and_eval.py over these replies prints the same per-item judgments)
    records = [
        record(mc("C", sid="validation_Public_Health_1", subject="Public_Health"), "no idea"),  # 3rd draw: C
        record(mc("A", sid="validation_Basic_Medical_Science_1", subject="Basic_Medical_Science"), "hmm"),  # 1st: A
        record(mc("B", sid="validation_Basic_Medical_Science_2", subject="Basic_Medical_Science"), "(B)"),
        record(mc("B", sid="validation_Clinical_Medicine_1", subject="Clinical_Medicine"), "unsure"),  # 2nd: A
        record(open_("2"), "It is 2"),
    ]
    scores = [MMMU.score_generation(r.sample, r.final) for r in records]
    assert [s.outcome for s in scores] == [Outcome.INVALID, Outcome.INVALID, Outcome.CORRECT, Outcome.INVALID,
                                           Outcome.CORRECT]
    idx, values = official_values(records, scores)
    assert idx == [1, 2, 3, 4, 0]  # subjects in the official order, dataset order within each
    assert values.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]
    rows = {m.subset: m for m in aggregate(records, scores, "mmmu", seed=0)}
    overall = rows["overall"]
    assert overall.metric == "official_accuracy" and overall.value == 0.8 and overall.fallback == 3
    assert (overall.correct, overall.wrong, overall.invalid, overall.n) == (4, 1, 0, 5)
    assert rows["subject=Clinical_Medicine"].value == 0.0 and rows["subject=Public_Health"].value == 1.0
    assert aggregate(records, scores, "strict", seed=0) == []


def test_registered():
    assert "mmmu" in scoring.names() and scoring.describe()["mmmu"][1].startswith("MMMU-Benchmark/MMMU")
