"""medprobe.textmetrics.coco against pycocoevalcap 1.2: recorded outputs (always) and the live library (when
installed). The recording script is tests/record_textmetrics_coco.py; the cases pin the library's quirks
(empty candidate, candidate shorter than every reference, repeated n-grams, punctuation and case left in
raw text, a tie for the closest reference length, ROUGE-L's split(" ") on double spaces)."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest

from medprobe import textmetrics
from medprobe.textmetrics import coco
from medprobe.textmetrics.corpus import StudyTable, study_table

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "textmetrics_coco.json").read_text())
HAS_COCO = importlib.util.find_spec("pycocoevalcap") is not None


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_matches_recorded_pycocoevalcap(name):
    case = FIXTURE[name]
    cands, refs = case["candidates"], case["references"]
    assert coco.corpus_bleu(cands, refs) == pytest.approx(case["bleu"], abs=1e-12)
    per = coco.bleu_from_sums(coco.bleu_table(cands, refs), 4)
    np.testing.assert_allclose(per.T, case["bleu_per_study"], rtol=1e-12, atol=1e-15)
    rouge = [coco.rouge_l_score(c, r) for c, r in zip(cands, refs)]
    assert rouge == pytest.approx(case["rougeL_per_study"], abs=1e-12)
    assert np.mean(rouge) == pytest.approx(case["rougeL"], abs=1e-12)
    if "cider" in case:
        cider = coco.cider_scores(cands, refs)
        assert cider.tolist() == pytest.approx(case["cider_per_study"], abs=1e-9)
        assert cider.mean() == pytest.approx(case["cider"], abs=1e-9)


def test_quirks_are_the_library_s():
    # an empty candidate: BLEU counts it (length 0, brevity penalty on the corpus), ROUGE-L 0, not an error
    empty = FIXTURE["empty_candidate"]
    assert empty["bleu_per_study"][0][0] < 1e-6 and empty["rougeL_per_study"][0] == 0.0
    # "closest" reference length: on a tie the shorter reference wins, so no brevity penalty here
    assert coco.BleuStats("a b c d e f", ["a b c d", "a b c d e f g h"]).reflen == 4
    # ROUGE-L splits on single spaces: a double space is an empty token (the library's behaviour)
    assert coco.rouge_l_score("heart  is normal", ["heart is normal"]) < 1.0
    # clipping: a repeated word earns only as many matches as the reference holds
    assert coco.BleuStats("the the the the", ["the cat the"]).correct[0] == 2


def test_corpus_bleu_is_not_the_mean_of_sentence_bleu():
    case = FIXTURE["reports_tokenised"]
    table = StudyTable(coco.bleu_table(case["candidates"], case["references"]), np.zeros(6), np.zeros(6))
    assert table.value("bleu4") == pytest.approx(case["bleu"][3], abs=1e-12)
    assert abs(np.mean(case["bleu_per_study"][3]) - case["bleu"][3]) > 1e-3


def test_public_api_tokenises_then_scores():
    cand, ref = "The heart is NORMAL.", "the heart is normal"
    assert textmetrics.rouge_l(cand, ref) == 1.0
    assert textmetrics.bleu([cand], [ref], n=1) == pytest.approx(1.0)
    assert textmetrics.bleu([cand, "no"], [[ref], ["no effusion"]], n=2) == pytest.approx(
        coco.corpus_bleu(["the heart is normal", "no"], [["the heart is normal"], ["no effusion"]], 2)[1])
    table = study_table([cand], [[ref]])
    assert table.per_study()["rougeL"].tolist() == [1.0]


def _random_corpus(rng: random.Random, studies: int):
    words = ["the", "heart", "lungs", "is", "are", "normal", "clear", "no", "effusion", "left", "right", "opacity", "mild", "size"]
    def sent(lo, hi):
        return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))
    cands = [sent(0, 12) for _ in range(studies)]
    refs = [[sent(1, 14) for _ in range(rng.randint(1, 3))] for _ in range(studies)]
    return cands, refs


@pytest.mark.skipif(not HAS_COCO, reason="pycocoevalcap not installed (pip install pycocoevalcap)")
@pytest.mark.parametrize("seed", range(5))
def test_matches_live_pycocoevalcap(seed):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    cands, refs = _random_corpus(random.Random(seed), 25)
    gts, res = dict(enumerate(refs)), {i: [c] for i, c in enumerate(cands)}
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    assert coco.corpus_bleu(cands, refs) == pytest.approx(bleu, abs=1e-12)
    np.testing.assert_allclose(coco.bleu_from_sums(coco.bleu_table(cands, refs), 4).T, bleu_per, rtol=1e-12, atol=1e-15)
    _, rouge_per = Rouge().compute_score(gts, res)
    assert [coco.rouge_l_score(c, r) for c, r in zip(cands, refs)] == pytest.approx(list(rouge_per), abs=1e-12)
    _, cider_per = Cider().compute_score(gts, res)
    assert coco.cider_scores(cands, refs).tolist() == pytest.approx(list(cider_per), abs=1e-9)


def test_meteor_not_available_without_java(monkeypatch):
    from medprobe.textmetrics import meteor

    # pycocoevalcap "installed", java missing: the reason names java (whether or not this machine has either)
    monkeypatch.setattr(meteor.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(meteor.shutil, "which", lambda name: None)
    m = meteor.meteor(["a b"], [["a b"]])
    assert m.value is None and m.unavailable.startswith("not available: java is not on PATH")


def test_meteor_not_available_without_pycocoevalcap(monkeypatch):
    from medprobe.textmetrics import meteor

    monkeypatch.setattr(meteor.importlib.util, "find_spec", lambda name: None)
    m = meteor.meteor(["a b"], [["a b"]])
    assert m.value is None and "pycocoevalcap is not installed" in m.unavailable and "pip install" in m.unavailable


@pytest.mark.skipif(not HAS_COCO or __import__("shutil").which("java") is None, reason="METEOR needs pycocoevalcap and java")
def test_meteor_matches_recorded_jar_output():
    from medprobe.textmetrics import meteor

    case = FIXTURE["reports_tokenised"]
    m = meteor.meteor(case["candidates"], case["references"])
    assert m.value == pytest.approx(case["meteor"], abs=1e-9)
    assert list(m.per_study) == pytest.approx(case["meteor_per_study"], abs=1e-9)


@pytest.mark.parametrize("name", [k for k, c in FIXTURE.items() if "meteor_stats" in c])
def test_meteor_sum_of_statistics_gives_the_jars_scores(name):
    """The jar's corpus METEOR is its formula on the summed statistics, not the mean of segment scores
    (0.240 vs 0.269 on reports_tokenised); medprobe sums them itself, so no JVM is needed per draw."""
    from medprobe.textmetrics import meteor

    case = FIXTURE[name]
    stats = np.array(case["meteor_stats"])
    assert meteor._score(stats).tolist() == pytest.approx(case["meteor_per_study"], abs=1e-12)
    assert meteor.corpus_weighted(stats, np.ones((1, len(stats))))[0] == pytest.approx(case["meteor"], abs=1e-12)


@pytest.mark.skipif(not HAS_COCO or __import__("shutil").which("java") is None, reason="METEOR needs pycocoevalcap and java")
def test_meteor_bootstrap_draw_is_the_jar_on_the_drawn_corpus():
    """A draw that counts a study twice and leaves another out scores like the jar on that corpus."""
    from pycocoevalcap.meteor.meteor import Meteor

    from medprobe.textmetrics import meteor

    case = FIXTURE["reports_tokenised"]
    counts = [2, 0, 1, 3, 0, 1][: len(case["candidates"])]
    picked = [i for i, k in enumerate(counts) for _ in range(k)]
    gts = {j: case["references"][i] for j, i in enumerate(picked)}
    res = {j: [case["candidates"][i]] for j, i in enumerate(picked)}
    jar, _ = Meteor().compute_score(gts, res)
    stats = meteor.segment_stats(case["candidates"], case["references"])
    assert meteor.corpus_weighted(stats, np.array([counts], float))[0] == pytest.approx(jar, abs=1e-12)


@pytest.mark.skipif(not HAS_COCO or __import__("shutil").which("java") is None, reason="METEOR needs pycocoevalcap and java")
def test_meteor_statistics_come_back_from_the_cache_without_the_jar(tmp_path, monkeypatch):
    """A second process (here: emptied memory, no JVM allowed) reads the jar's statistics from the cache."""
    from medprobe.textmetrics import meteor

    monkeypatch.setenv("MEDPROBE_CACHE", str(tmp_path))
    monkeypatch.setattr(meteor, "_stats", {})
    case = FIXTURE["reports_tokenised"]
    first = meteor.meteor(case["candidates"], case["references"])
    assert (tmp_path / "meteor-1.5-stats.sqlite").exists()
    monkeypatch.setattr(meteor, "_stats", {})
    monkeypatch.setattr(meteor, "_scorer", lambda: pytest.fail("started the JVM although every pair was cached"))
    again = meteor.meteor(case["candidates"], case["references"])
    assert again.value == first.value == pytest.approx(case["meteor"], abs=1e-12)


def test_meteor_approximate_randomisation_swaps_statistics_study_by_study():
    """compare_report's METEOR p: identical systems never differ (p = 1); a system that copies the references
    beats one that writes noise on every study (p near its floor, 1/1001)."""
    from medprobe.compare_report import _swap_p
    from medprobe.scoring.report import Column
    from medprobe.textmetrics import meteor

    rows = np.array(FIXTURE["reports_tokenised"]["meteor_stats"])
    perfect = rows.copy()
    perfect[:, 1] = perfect[:, 0]  # every word of the candidate matched in one chunk
    perfect[:, 4:8] = [[c, c, f, f] for c, f in zip(rows[:, 0] - rows[:, 2], rows[:, 2])]
    perfect[:, 8:20] = 0
    perfect[:, -3], perfect[:, -2], perfect[:, -1] = 1, rows[:, 0], rows[:, 0]

    def col(stats):
        return Column("meteor", "jar", stats=meteor.summable(np.tile(stats, (4, 1))), from_sums=meteor.score_sums)

    rng = np.random.default_rng(0)
    same = col(rows)
    assert _swap_p(same, same, 0.0, rng) == 1.0
    good, bad = col(perfect), col(rows)
    delta = float(meteor.score_sums(good.stats.sum(axis=0)[None])[0] - meteor.score_sums(bad.stats.sum(axis=0)[None])[0])
    assert delta > 0.3 and _swap_p(good, bad, delta, rng) < 0.01


def _lcs_table(a, b):
    """The dynamic programme pycocoevalcap's my_lcs runs."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def test_bit_parallel_lcs_equals_the_dynamic_programme():
    rng = random.Random(7)
    for _ in range(3000):
        words = [f"w{i}" for i in range(rng.randint(1, 9))]
        a = [rng.choice(words) for _ in range(rng.randint(0, 70))]
        b = [rng.choice(words) for _ in range(rng.randint(0, 70))]
        assert coco.lcs(a, b) == _lcs_table(a, b) == coco.lcs(b, a)
