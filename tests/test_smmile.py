"""SMMILE: presets on golden cases, the problem loader (ICL turns, 0-shot, MCQA options), and the
published per-sample result CSVs re-scored to the paper's numbers.

tests/fixtures/smmile/ holds three unchanged result files of eth-medical-ai-lab/smmile (results/,
CC BY 4.0). The official numbers were computed by running the official code on them
(evaluate_EM.py calculate_exact_match: 9.01 = 10/111; MCQA is_correct mean: 58.56 = 65/111), and
agree with results/model_comparison.txt (gpt-4o ICL 9.01). result_llava_7b_ICL_mcqa.csv (is_correct:
25/111) is an open-model file: its full_response is the decoded chat transcript, prompt included.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from medprobe import benchmarks, scoring
from medprobe.benchmarks import LoadOptions
from medprobe.importing import ImportSpec, import_predictions
from medprobe.scoring.smmile import extract_letter, normalize
from medprobe.types import AnswerType, Sample

FIXTURES = Path(__file__).parent / "fixtures" / "smmile"
OPEN_CSV = FIXTURES / "result_gpt-4o_ICL_open.csv"
MCQA_CSV = FIXTURES / "result_gpt-4o_ICL_mcqa.csv"
LLAVA_CSV = FIXTURES / "result_llava_7b_ICL_mcqa.csv"


@pytest.mark.parametrize("text, gold, right", [
    ("Hydropneumothorax, left", "Hydropneumothorax, left", True),
    ("hydropneumothorax left.", "Hydropneumothorax, left", True),
    ("  Black. ", "Black.", True),
    ("The lesion is black.", "Black.", False),  # whole-answer equality, no containment
])
def test_exact_match(text, gold, right):
    sample = Sample(id="p", benchmark="smmile", question="q", answer=gold, answer_type=AnswerType.OPEN)
    assert (scoring.get("smmile-em").score(sample, text).outcome == "correct") is right
    assert normalize("A  b,\tC!") == "a b c"


@pytest.mark.parametrize("text, letter, rule", [
    ("<think>x</think>\n<answer>c</answer>", "C", "answer_tag"),
    ("<think>x</think><answer>Option B is right</answer>", "O", "answer_tag"),  # first capital in the tag
    ("The answer is D. because", "D", "pattern"),
    ("I pick **B**", "B", "emphasis"),  # emphasis is tried before any standalone capital ("I")
    ("I think so", "I", "any_capital"),  # official quirk: the pronoun reads as option I
])
def test_extraction_order(text, letter, rule):
    assert extract_letter(text) == (letter, rule)


def test_option_text_is_the_last_rule_and_failures_are_invalid():
    options = ("pleural effusion", "pneumothorax")
    assert extract_letter("it looks like pneumothorax", options) == ("B", "option_text")
    assert extract_letter("no idea", options) == (None, None)
    sample = Sample(id="p", benchmark="smmile", question="q", options=options, answer="B",
                    answer_type=AnswerType.MULTIPLE_CHOICE)
    preset = scoring.get("smmile-mcqa")
    assert preset.score(sample, "no idea").outcome == "invalid"
    assert preset.score(sample, "<answer>E</answer>").answer.reason == "letter_out_of_range"
    assert preset.score(sample, "<answer>B</answer>").outcome == "correct"


def _problem_parquet(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, format="PNG")
    png = {"bytes": buf.getvalue(), "path": "x.png"}
    rows = [  # stored out of order: the loader sorts by `order`
        {"problem_id": "p1", "order": 3, "question": "Diagnosis?", "answer": "Gout", "image": png},
        {"problem_id": "p1", "order": 1, "question": "Diagnosis?", "answer": "Psoriasis", "image": png},
        {"problem_id": "p1", "order": 2, "question": "Diagnosis?", "answer": "Psoriasis", "image": png},
    ]
    folder = tmp_path / "smmile"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows), folder / "train-00000-of-00001.parquet")
    return folder


def test_loader_icl_zero_shot_and_mcqa(tmp_path):
    folder = _problem_parquet(tmp_path)
    icl = benchmarks.load("smmile", LoadOptions(data=str(folder))).samples[0]
    assert icl.answer == "Gout" and icl.answer_type is AnswerType.OPEN
    assert [m.role for m in icl.history] == ["user", "assistant", "user", "assistant"]
    assert icl.history[1].content[0].text == "Psoriasis" and icl.metadata["n_examples"] == 2
    zero = benchmarks.load("smmile", LoadOptions(data=str(folder), split="0-shot")).samples[0]
    assert zero.history == () and zero.answer == "Gout"
    mc = benchmarks.load("smmile", LoadOptions(data=str(folder), split="icl-mcqa")).samples[0]
    assert sorted(mc.options) == ["Gout", "Psoriasis"]  # the problem's unique answers
    assert mc.options["ABCD".index(mc.answer)] == "Gout"
    again = benchmarks.load("smmile", LoadOptions(data=str(folder), split="icl-mcqa")).samples[0]
    assert again.options == mc.options  # seeded shuffle: same order every load


def test_published_open_csv_rescores_to_the_paper_number(tmp_path):
    spec = ImportSpec(file=str(OPEN_CSV), benchmark="smmile", id_field="problem_id",
                      prediction_field="generated_answer", gold_field="true_answer")
    results = import_predictions(spec, tmp_path / "open")
    em = results.preset("smmile-em").get("overall")
    assert (em.correct, em.n) == (10, 111)
    assert round(100 * em.value, 2) == 9.01


@pytest.mark.parametrize("field", ["selected_option", "full_response", "generated_answer"])
def test_published_mcqa_csv_rescores_to_the_paper_number(tmp_path, field):
    gold = "true_answer" if field == "generated_answer" else None  # option text vs option letter
    spec = ImportSpec(file=str(MCQA_CSV), benchmark="smmile", id_field="problem_id", prediction_field=field,
                      gold_field=gold)
    results = import_predictions(spec, tmp_path / field)
    acc = results.preset("smmile-mcqa").get("overall")
    assert (acc.correct, acc.n) == (65, 111)
    assert round(100 * acc.value, 2) == 58.56
    assert acc.invalid == 3  # three failed API calls recorded in the file (scored wrong by the official code)


OPEN_OPTIONS = ("Psoriasis", "Gout")


@pytest.mark.parametrize("text, api, open_model", [
    # option text is matched only after an "assistant" marker in the open-model scripts
    ("Psoriasis", ("A", "option_text"), (None, None)),
    ("it looks like gout", ("B", "option_text"), (None, None)),
    ("Assistant: Psoriasis", ("A", "option_text"), ("A", "option_text")),
    # the reply is cut to the last assistant turn ...
    ("ASSISTANT: <answer>B</answer>\nUSER: and this one?\nASSISTANT: <answer>A</answer>",
     ("B", "answer_tag"), ("A", "answer_tag")),
    # ... and before the first user marker, markers tried in list order ("USER:" before "user:"), not by position
    ("Assistant: gout\nUser: or is it psoriasis", ("A", "option_text"), ("B", "option_text")),
    ("assistant: it is gout user: no, psoriasis USER: ok", ("A", "option_text"), ("A", "option_text")),
    ("Assistant: \nUser: gout", ("B", "option_text"), (None, None)),  # an empty assistant turn: no option text
    ("The answer is B.", ("B", "pattern"), ("B", "pattern")),  # letter rules are the same
])
def test_open_model_extraction_quirks(text, api, open_model):
    """inference_qwen.py / _llava_mcqa / _llavamed_mcqa / _llama33textonly_mcqa `extract_mcqa_answer` vs
    inference_openai.py's; expected values from running both official functions on these replies."""
    assert extract_letter(text, OPEN_OPTIONS) == api
    assert extract_letter(text, OPEN_OPTIONS, open_model=True) == open_model


def test_open_model_preset_is_its_own_named_preset():
    sample = Sample(id="p", benchmark="smmile", question="q", options=OPEN_OPTIONS, answer="A",
                    answer_type=AnswerType.MULTIPLE_CHOICE)
    api, open_model = scoring.get("smmile-mcqa"), scoring.get("smmile-mcqa-open")
    assert api.score(sample, "Psoriasis").outcome == "correct"
    failed = open_model.score(sample, "Psoriasis")
    assert (failed.outcome, failed.answer.reason, failed.preset, failed.parser) == (
        "invalid", "extraction_failed", "smmile-mcqa-open", "smmile_extract_open")
    assert open_model.score(sample, "Assistant: Psoriasis\nUser: thanks").outcome == "correct"
    assert open_model.benchmarks == api.benchmarks  # only SMMILE runs get its section


def test_open_model_transcript_rescores_with_the_open_model_preset(tmp_path):
    """inference_llava_mcqa.py stores the decoded prompt + reply ("USER: ... inside <answer>...</answer> tags.
    ... ASSISTANT: B"). The open-model rule reads the last assistant turn; the API rule reads the prompt's
    "<answer>...</answer>" and finds no letter. One correct answer is option text ("No fracture"), matched
    by the official script from the option texts, which the CSV does not hold: 24 of the official 25."""
    spec = ImportSpec(file=str(LLAVA_CSV), benchmark="smmile", id_field="problem_id", prediction_field="full_response")
    results = import_predictions(spec, tmp_path / "llava")
    assert results.preset("smmile-mcqa-open").get("overall").correct == 24
    assert results.preset("smmile-mcqa").get("overall").correct == 0
