"""Calibration metrics against hand-computed values; confidence extraction from logprobs, stated
confidence and repeat agreement; the calibration section of results."""

from __future__ import annotations

import math

import numpy as np
import pytest
from runfolders import closed_samples, make_run
from scipy.stats import mannwhitneyu

from medprobe import calibration_metrics as cm
from medprobe.calibration import compute_calibration, logprob_confidence, parse_verbal_confidence
from medprobe.card import model_card
from medprobe.backends.likelihood import FLOOR, scored
from medprobe.types import AnswerType, Generation, Record, Sample, Scoring, TokenLogprob

CONF = np.array([0.9, 0.8, 0.7, 0.6, 0.3])
OK = np.array([1, 1, 0, 1, 0])


def test_hand_computed_values():
    # 10 equal-width bins: one item per bin -> (.1 + .2 + .7 + .4 + .3) / 5
    assert cm.ece_equal_width(CONF, OK) == pytest.approx(0.34)
    # 2 equal-width bins: [0, .5) holds .3 (wrong): 1/5 * .3; [.5, 1] acc .75 = mean conf .75
    assert cm.ece_equal_width(CONF, OK, bins=2) == pytest.approx(0.06)
    # 2 equal-mass bins: {.3 .6 .7} acc 1/3 conf 1.6/3 -> 3/5 * .2; {.8 .9} acc 1 conf .85 -> 2/5 * .15
    assert cm.ece_equal_mass(CONF, OK, bins=2) == pytest.approx(0.18)
    assert cm.brier(CONF, OK) == pytest.approx(0.79 / 5)
    assert cm.auroc(CONF, OK) == pytest.approx(5 / 6)  # pairs (correct, wrong) ranked right: 5 of 6
    # top-k risks 0, 0, 1/3, 1/4, 2/5
    assert cm.aurc(CONF, OK) == pytest.approx((1 / 3 + 1 / 4 + 2 / 5) / 5)
    assert cm.accuracy_at_coverage(CONF, OK, 0.8) == pytest.approx(0.75)
    assert cm.accuracy_at_coverage(CONF, OK, 0.9) == pytest.approx(0.6)
    thresholds, coverage, risk = cm.risk_coverage(CONF, OK)
    assert list(thresholds) == [0.9, 0.8, 0.7, 0.6, 0.3]
    assert list(coverage) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0]) and list(risk) == pytest.approx([0, 0, 1 / 3, 1 / 4, 2 / 5])


def test_ties():
    conf, ok = np.array([0.8, 0.8, 0.5, 0.5]), np.array([1, 0, 1, 1])
    assert cm.auroc(conf, ok) == pytest.approx(1 / 6)  # the tied (correct, wrong) pair counts 1/2
    # expected errors in the top k with the tied pair in random order: .5, 1, 1, 1
    assert cm.aurc(conf, ok) == pytest.approx((0.5 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert cm.accuracy_at_coverage(conf, ok, 0.25) == pytest.approx(0.5)
    assert math.isnan(cm.auroc(conf, np.ones(4)))


def test_auroc_equals_mann_whitney_u():
    rng = np.random.default_rng(0)
    conf = rng.integers(0, 10, 300) / 10  # many ties
    ok = (rng.random(300) < conf).astype(int)
    u = mannwhitneyu(conf[ok == 1], conf[ok == 0]).statistic
    assert cm.auroc(conf, ok) == pytest.approx(u / (ok.sum() * (300 - ok.sum())))


def _record(kind: AnswerType, tokens, options=()) -> Record:
    sample = Sample(id="s", benchmark="b", question="q", answer="yes", answer_type=kind, options=options)
    text = "".join(t.token for t in tokens)
    return Record(sample=sample, generations=(Generation(text=text, logprobs=tuple(tokens)),))


def test_logprob_confidence_rules():
    ln = math.log
    yes = TokenLogprob(token="Yes", logprob=ln(0.6), top=(("Yes", ln(0.6)), (" yes", ln(0.1)), ("No", ln(0.2)), ("The", ln(0.1))))
    assert logprob_confidence(_record(AnswerType.CLOSED, [yes]), "yes") == pytest.approx(0.7 / 0.9)
    assert logprob_confidence(_record(AnswerType.CLOSED, [yes]), "no") == pytest.approx(0.2 / 0.9)
    bare = TokenLogprob(token="No", logprob=ln(0.8))
    assert logprob_confidence(_record(AnswerType.CLOSED, [bare]), "no") == pytest.approx(0.8)
    letter = [TokenLogprob(token="Answer:", logprob=ln(0.9)),
              TokenLogprob(token=" B", logprob=ln(0.5), top=((" B", ln(0.5)), (" A", ln(0.3)), (" C", ln(0.1))))]  # fmt: skip
    mc = _record(AnswerType.MULTIPLE_CHOICE, letter, options=("x", "y", "z"))
    assert logprob_confidence(mc, "B") == pytest.approx(0.5 / 0.9)
    words = [TokenLogprob(token="pleural", logprob=ln(0.5)), TokenLogprob(token=" effusion", logprob=ln(0.8))]
    assert logprob_confidence(_record(AnswerType.OPEN, words), "pleural effusion") == pytest.approx(0.4)
    assert logprob_confidence(_record(AnswerType.CLOSED, [bare]), None) is None


def test_parse_verbal_confidence():
    assert parse_verbal_confidence("<answer>yes</answer>\nConfidence: 85") == pytest.approx(0.85)
    assert parse_verbal_confidence("confidence level: 70%") == pytest.approx(0.7)
    assert parse_verbal_confidence("Confidence: 10\nConfidence: 90") == pytest.approx(0.9)
    assert parse_verbal_confidence("Confidence: 150") is None and parse_verbal_confidence("yes") is None


def _lp(word: str, p: float) -> Generation:
    other = "no" if word == "yes" else "yes"
    return Generation(text=word, logprobs=(TokenLogprob(token=word, logprob=math.log(p),
                                                        top=((word, math.log(p)), (other, math.log(1 - p)))),))  # fmt: skip


def test_results_carry_calibration_from_logprobs(tmp_path):
    samples = closed_samples(5)  # gold "yes"
    replies = [_lp("yes", 0.9), _lp("yes", 0.8), _lp("no", 0.7), _lp("yes", 0.6), _lp("no", 0.3)]
    run = make_run(tmp_path / "r", samples, replies)
    from medprobe.compare import load_run

    section = compute_calibration(load_run(run).all_records, "strict")
    (source,) = section.sources
    assert section.available and source.source == "logprob" and source.n == 5
    assert source.metric("ece").value == pytest.approx(0.34) and source.metric("auroc").value == pytest.approx(5 / 6)
    low, high = source.metric("brier").ci_low, source.metric("brier").ci_high
    assert low <= 0.158 <= high
    card = model_card(run)
    ece = next(f for f in card.figures if f.key == "ece")
    assert ece.value == pytest.approx(0.34) and ece.n == 5 and "10 bins" in ece.protocol
    assert next(f for f in card.figures if f.key == "accuracy_at_80").value == pytest.approx(0.75)


def test_no_confidence_says_not_available_and_agreement_is_accepted(tmp_path):
    run = make_run(tmp_path / "r", closed_samples(4), ["yes", "no", "yes", "yes"])
    from medprobe.compare import load_run

    records = load_run(run).all_records
    section = compute_calibration(records, "strict")
    assert not section.available and section.note.startswith("not available: the backend returned no logprobs")
    section = compute_calibration(records, "strict", agreement={"q0": 1.0, "q1": 0.4, "q2": 0.8})
    (source,) = section.sources
    assert source.source == "agreement" and source.n == 3 and source.missing == 1
    assert source.metric("auroc").value == pytest.approx(1.0)
    verbal = make_run(tmp_path / "v", closed_samples(2), ["<answer>yes</answer>\nConfidence: 90", "<answer>no</answer> Confidence: 60"])
    (source,) = compute_calibration(load_run(verbal).all_records, "strict").sources
    assert source.source == "verbal" and source.metric("brier").value == pytest.approx((0.01 + 0.36) / 2)


def test_cli_logprobs_flag_feeds_calibration_into_results_and_card(tmp_path, openai_server):
    import json

    from openai_server import Reply
    from test_e2e_cli import cli, make_cases

    def reply(rec):
        p = 0.9 if "q1)" not in rec.question else 0.6  # q1 answers "no" (wrong), less confidently
        word = "No" if "q1)" in rec.question else "Yes"
        other = "Yes" if word == "No" else "No"
        return Reply(word, logprobs=[(word, math.log(p), [(word, math.log(p)), (other, math.log(1 - p))])])

    openai_server.set_script(reply)
    cases = make_cases(tmp_path, 4)
    out = tmp_path / "run"
    cli("run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url, "--logprobs", "2", "--out", str(out))
    assert openai_server.requests[0].body["top_logprobs"] == 2
    calibration = json.loads((out / "results.json").read_text())["calibration"]
    (source,) = calibration["sources"]
    assert calibration["available"] and source["source"] == "logprob" and source["n"] == 4
    auroc = next(m for m in source["metrics"] if m["name"] == "auroc")
    assert auroc["value"] == pytest.approx(1.0)  # the one wrong answer is the least confident
    card = cli("card", str(out)).output
    assert "ECE (equal-width bins)" in card and "calibration logprob confidence, preset strict" in card


def test_all_correct_gives_undefined_auroc_and_the_card_still_reads_it(tmp_path):
    run = make_run(tmp_path / "r", closed_samples(3), [_lp("yes", 0.9), _lp("yes", 0.8), _lp("yes", 0.7)])
    card = model_card(run)  # results.json (with a null AUROC) reads back
    assert next(f for f in card.figures if f.key == "accuracy_at_80").value == pytest.approx(1.0)


def test_ece_bin_of_a_confidence_just_below_and_exactly_on_an_edge():
    below = np.nextafter(0.9, 0)  # 0.8999999999999999: floor(below * 10) would round up into bin 9
    conf = np.array([below, 0.9, np.nextafter(0.3, 0), 0.3, 0.0, 1.0, np.nextafter(1.0, 0)])
    assert list(cm.equal_width_bin(conf)) == [8, 9, 2, 3, 0, 9, 9]  # on an edge: the bin above; 1.0: the last bin
    # the two answers straddle the edge, so they are two bins: (|0 - below| + |1 - 0.9|) / 2, not |1/2 - 0.9|
    assert cm.ece_equal_width(np.array([below, 0.9]), np.array([0, 1])) == pytest.approx(0.5)


def _scored(kind: AnswerType, scores: dict[str, float], options=()) -> Record:
    sample = Sample(id="s", benchmark="b", question="q", answer="B" if options else "yes", answer_type=kind,
                    options=options)  # fmt: skip
    return Record(sample=sample, generations=(Generation(text=max(scores, key=scores.get), option_scores=scores),))


def test_option_scores_give_the_confidence_softmax_over_the_choices():
    ln = math.log
    mc = _scored(AnswerType.MULTIPLE_CHOICE, {"A": ln(0.1), "B": ln(0.35), "C": ln(0.05)}, options=("x", "y", "z"))
    assert logprob_confidence(mc, "B") == pytest.approx(0.35 / 0.5)  # renormalised over the choices
    assert logprob_confidence(mc, "b") == pytest.approx(0.7) and logprob_confidence(mc, "D") is None
    closed = _scored(AnswerType.CLOSED, {"yes": FLOOR, "no": -0.5})  # "yes" absent from the server's top-k
    assert logprob_confidence(closed, "no") == pytest.approx(1.0) and logprob_confidence(closed, "yes") < 1e-9


def test_likelihood_mode_runs_report_calibration(tmp_path):
    scoring = Scoring(mode="option-likelihood", choices=("yes", "no"), labels=("yes", "no"))
    p = [0.9, 0.8, 0.3, 0.6, 0.7]  # P(yes); gold is yes, so the third answer ("no", confidence 0.7) is wrong
    replies = [scored(scoring, [math.log(x), math.log(1 - x)]) for x in p]
    run = make_run(tmp_path / "r", closed_samples(5), replies)
    from medprobe.compare import load_run

    section = compute_calibration(load_run(run).all_records, "strict")
    (source,) = section.sources
    assert section.available and section.note is None and (source.source, source.n) == ("logprob", 5)
    assert source.mean_confidence == pytest.approx((0.9 + 0.8 + 0.7 + 0.6 + 0.7) / 5)
    assert source.metric("brier").value == pytest.approx((0.01 + 0.04 + 0.49 + 0.16 + 0.09) / 5)
    assert "option_scores" in source.rule


def test_cli_next_token_mode_reports_calibration(tmp_path, openai_server):
    import json

    from openai_server import Reply
    from test_e2e_cli import cli, make_cases

    # the choice's score is its best token ("yes", not "yes" + " yes"): confidences 0.6 / 0.8 and 0.5 / 0.9,
    # where the generate-mode rule on the same tokens (variants summed) would give 0.8 and 0.6
    def reply(rec):
        word, other, p, twin, q = ("no", "yes", 0.5, 0.1, 0.4) if "q1)" in rec.question else ("yes", "no", 0.6, 0.2, 0.2)
        top = [(word, math.log(p)), (" " + word, math.log(twin)), (other, math.log(q))]
        return Reply(word, logprobs=[(word, math.log(p), top)])

    openai_server.set_script(reply)
    out = tmp_path / "run"
    cli("run", str(make_cases(tmp_path, 4)), "--model", "openai/tiny", "--base-url", openai_server.base_url,
        "--answer-mode", "next-token", "--out", str(out))  # fmt: skip
    calibration = json.loads((out / "results.json").read_text())["calibration"]
    assert calibration["available"], calibration["note"]  # before: "not available: the backend returned no logprobs"
    (source,) = calibration["sources"]
    assert source["source"] == "logprob" and source["n"] == 4
    assert source["mean_confidence"] == pytest.approx((0.75 * 3 + 0.5 / 0.9) / 4)  # q1 answers "no": wrong
    assert next(m for m in source["metrics"] if m["name"] == "auroc")["value"] == pytest.approx(1.0)
