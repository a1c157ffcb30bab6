"""MediConfusion: loader on 6 real pairs, the official token rule, pair metrics on hand-computed cases."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from medprobe import benchmarks, scoring
from medprobe.benchmarks import LoadOptions
from medprobe.results import compute
from medprobe.scoring.mediconfusion import choose
from medprobe.types import AnswerType, Generation, ImageRef, Record, Sample

FIXTURE = Path(__file__).parent / "fixtures" / "mediconfusion" / "dataset.json"


def _load(**kw):
    return benchmarks.load("mediconfusion", LoadOptions(data=str(FIXTURE), **kw)).samples


def _records(samples, texts):
    return [Record(sample=s, keys=(s.id,), generations=(Generation(text=t),)) for s, t in zip(samples, texts)]


def test_loader_one_sample_per_image_options_as_stored():
    samples = _load(images_dir="/imgs")
    assert len(samples) == 12
    first, second = samples[0], samples[1]
    assert (first.id, second.id) == ("10001-1", "10001-2")
    assert first.options == ("Terminating into the ophthalmic artery with no cerebral contribution",
                             "Showing an aggravating pseudoaneurysm")
    assert (first.answer, second.answer) == ("A", "B")
    assert first.answer_type is AnswerType.MULTIPLE_CHOICE
    # the download script saves image `local` as <save_path>/<local>.jpg
    assert first.images[0].path == "20192.jpg" and first.images[0].root == "/imgs"
    assert samples[6].metadata["category"] == "Cerebral" and samples[7].metadata["category"] == "Cerebral|Head and Neck|Spinal"


def test_loader_default_images_folder_and_clear_errors(tmp_path):
    assert _load()[0].images[0].root == str(FIXTURE.parent / "images")
    with pytest.raises(benchmarks.LoadError, match="clone https://github.com/AIF4S/MediConfusion"):
        benchmarks.load("mediconfusion", LoadOptions())


@pytest.mark.parametrize("text, value", [
    ("A", "A"), ("B.", "B"), ("Answer: B", "B"), ('A")', "A"), ('("B").', "B"), (".A:", "A"),
    ("A\nbecause the artery terminates", "A"),
    ("A mass is seen", "A"),  # the official rule reads the article as the letter
    ("(A)", None), ("**A**", None), ("a", None), ("A or B", None), ("The answer is option", None), ("", None),
])
def test_official_token_rule(text, value):
    sample = _load()[0]
    score = scoring.get("mediconfusion").score(sample, text)
    assert score.answer.value == value
    assert (score.outcome == "invalid") == (value is None)


def test_judge_margin():
    assert choose(9, 6) == "A" and choose(2, 5) == "B"
    assert choose(8, 6) is None and choose(5, 5) is None


def _metrics(texts, preset="mediconfusion"):
    results = compute(_records(_load(), texts), [preset])
    return {(m.subset, m.metric): m for m in results.preset(preset).metrics}


# pair golds: 10001 A/B, 10002 B/A, 10003 A/B, 10009 A/B, 10010 A/B, 10011 A/B
MIXED = ["A", "B",      # both right, different answers
         "A", "A",      # one right, confused
         "A", "(B)",    # second invalid: not a valid pair
         "B", "B",      # one right, confused
         "A", "B",      # both right
         "A B", "B"]    # first invalid (both letters)


def test_pair_metrics_hand_computed():
    m = _metrics(MIXED)
    assert m["overall", "set_accuracy"].value == pytest.approx(2 / 6)
    assert m["overall", "set_accuracy"].n == 6
    assert m["overall", "confusion"].value == pytest.approx(2 / 4)  # 4 pairs with both answers valid
    assert (m["overall", "confusion"].n, m["overall", "confusion"].correct) == (4, 2)
    assert m["overall", "individual_accuracy"].value == pytest.approx(8 / 12)
    assert m["overall", "individual_accuracy"].invalid == 2
    assert m["overall", "invalid_rate"].value == pytest.approx(2 / 12)
    assert m["overall", "accuracy"].value == pytest.approx(8 / 12)  # the per-image row agrees


def test_category_rows_count_occurrences_like_the_official_script():
    m = _metrics(MIXED)
    # Head and Neck occurs once in 10009, twice in 10010 (both images), once in 10011: 2 / 4, not 1 / 3
    assert m["category=Head and Neck", "set_accuracy"].value == pytest.approx(0.5)
    assert m["category=Spinal", "set_accuracy"].value == pytest.approx(1 / 3)
    assert m["category=Spinal", "confusion"].value == pytest.approx(1 / 2)
    assert m["category=Spinal", "individual_accuracy"].value == pytest.approx(2 / 3)
    assert m["category=Spinal", "invalid_rate"].value == pytest.approx(1 / 3)
    assert m["category=Cerebral", "set_accuracy"].value == pytest.approx(2 / 6)


def test_strict_preset_gets_pair_rows_too():
    m = _metrics(MIXED, "strict")
    # strict reads "(B)" as B: pair 10003 becomes valid and both right
    assert m["overall", "set_accuracy"].value == pytest.approx(3 / 6)


def test_always_same_letter_is_fully_confused_and_never_sets():
    m = _metrics(["A"] * 12)
    assert m["overall", "set_accuracy"].value == 0.0
    assert m["overall", "confusion"].value == 1.0


def test_random_guessing_gives_a_quarter_set_accuracy_and_half_confusion():
    rng = random.Random(0)
    samples, texts = [], []
    for p in range(4000):
        for k, gold in ((1, "A"), (2, "B")):
            samples.append(Sample(id=f"{p}-{k}", benchmark="mediconfusion", question="q", options=("x", "y"),
                                  images=(ImageRef(path="1.jpg"),), answer=gold, answer_type=AnswerType.MULTIPLE_CHOICE,
                                  metadata={"pair": str(p), "image_index": k, "category": "Cerebral"}))
            texts.append(rng.choice("AB"))
    results = compute(_records(samples, texts), ["mediconfusion"])
    m = {(x.subset, x.metric): x for x in results.preset("mediconfusion").metrics}
    assert m["overall", "set_accuracy"].value == pytest.approx(0.25, abs=0.02)
    assert m["overall", "confusion"].value == pytest.approx(0.50, abs=0.02)
    low, high = m["overall", "set_accuracy"].ci_low, m["overall", "set_accuracy"].ci_high
    assert low < 0.25 < high or abs(m["overall", "set_accuracy"].value - 0.25) < 0.02


def test_other_benchmarks_get_no_mediconfusion_section():
    sample = Sample(id="1", benchmark="custom", question="q", options=("x", "y"), answer="A",
                    answer_type=AnswerType.MULTIPLE_CHOICE)
    results = compute(_records([sample], ["A"]), ["strict", "mediconfusion"])
    assert [p.preset for p in results.presets] == ["strict"]
