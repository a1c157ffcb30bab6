"""The trust card: probe figures that did not run say so; hand-made ProbeResults show with n and
preset; several runs give one column per model and a pairwise comparison; the JSON schema is stable."""

from __future__ import annotations

import json
import re

import pytest
from runfolders import closed_samples, make_run
from typer.testing import CliRunner

from medprobe.card import PROBE_FIGURES, TrustCard, build_card, model_card
from medprobe.cli import app
from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.store import RESULTS, write_json


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "a", closed_samples(10), ["yes"] * 7 + ["no", "maybe", "no"], model="a")


def _figure(card, key):
    return next(f for f in card.figures if f.key == key)


def test_card_without_probes_says_not_run(run, tmp_path):
    card = model_card(run)
    acc = _figure(card, "accuracy")
    assert acc.value == pytest.approx(0.7) and acc.n == 10 and "strict" in acc.protocol and acc.ci_low <= 0.7 <= acc.ci_high
    assert _figure(card, "invalid_rate").value == pytest.approx(0.1)
    for key, _label, probe, _metric in PROBE_FIGURES:
        f = _figure(card, key)
        assert f.status == "not_run" and f.note == f"not run: add --probe {probe}"
    ece = _figure(card, "ece")
    assert ece.status == "not_available" and "the backend returned no logprobs" in ece.note
    # every sample is closed: a "closed" row would repeat the overall one, so there is none
    assert {f.key for f in card.subgroups} == {"modality=CT", "modality=MRI"}
    assert card.status == "complete" and card.coverage.startswith("coverage: ") and "10 answered" in card.coverage
    assert acc.interval == "bootstrap by question, 1000 resamples, 95% percentile"  # the samples have no images
    result = CliRunner().invoke(app, ["card", str(run), "--out", str(tmp_path / "card")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "card" / "card.md").read_text()
    assert "not run: add --probe blind" in md and "not run: add --probe icl" in md and "n=10" in md
    assert "status: complete; coverage: " in md and "Intervals: ¹ bootstrap by question" in md
    assert not re.search(r"\d-\d", md.replace("vqa-rad", ""))  # ranges read "a to b", never "a-b"
    assert "## verdicts" in md and "could not be parsed" in md  # 1 of 10 answers is invalid
    TrustCard.model_validate(json.loads((tmp_path / "card" / "card.json").read_text()))


def test_card_shows_hand_made_probe_results(run):
    data = json.loads((run / RESULTS).read_text())
    data["probes"] = [
        ProbeResult(probe="blind", headline=(
            ProbeMetric(probe="blind", name="blind_gap", value=0.25, ci_low=0.1, ci_high=0.4, n=37, preset="llava-med"),
            ProbeMetric(probe="blind", name="blind_gap", value=0.2, ci_low=0.05, ci_high=0.35, n=36, preset="strict"),
            ProbeMetric(probe="blind", name="unchanged_rate", value=0.5, n=36, preset="strict"),
            ProbeMetric(probe="blind", name="blind_gap", value=0.1, n=36, preset="strict", detail={"variant": "blank"}),
        )).model_dump(mode="json"),
        ProbeResult(probe="permute", headline=(
            ProbeMetric(probe="permute", name="permutation_consistency", value=0.6, ci_low=0.4, ci_high=0.8, n=12,
                        preset="strict"),)).model_dump(mode="json"),  # fmt: skip
        ProbeResult(probe="negate", ran=False, note="no multiple-choice or attribute-tagged items").model_dump(mode="json"),
    ]
    write_json(run / RESULTS, data)
    card = model_card(run)
    blind = _figure(card, "blind_gap")
    assert (blind.value, blind.n, blind.ci_low) == (0.2, 36, 0.05) and blind.protocol == "probe blind, preset strict"
    perm = _figure(card, "permutation_consistency")
    assert (perm.value, perm.n) == (0.6, 12) and "preset strict" in perm.protocol
    negate = _figure(card, "negation_twin_accuracy")
    assert negate.status == "not_run" and "no multiple-choice" in negate.note
    assert _figure(card, "confusion_rate").note == "not run: add --probe pair"
    # a second blind gap (blank image) is shown beside the first, labelled by its variant
    assert [(f.key, f.value) for f in card.other_probe_figures] == [("unchanged_rate", 0.5), ("blind_gap", 0.1)]
    assert card.other_probe_figures[1].label == "blind_gap (blind) [variant=blank]"
    llava = model_card(run, preset="llava-med")
    assert _figure(llava, "blind_gap").n == 37  # the figure under the card's headline preset
    from medprobe.card_markdown import render

    md = render(build_card([run]))
    assert "20.0 (5.0 to 35.0)¹ · n=36 · probe blind, preset strict" in md


def test_several_runs_one_column_each_and_pairwise_compare(tmp_path, run):
    b = make_run(tmp_path / "b", closed_samples(10), ["yes"] * 4 + ["no"] * 6, model="b")
    other = make_run(tmp_path / "o", closed_samples(5, benchmark="other"), ["yes"] * 5, model="c")
    card = build_card([run, b, other])
    assert [m.model for m in card.models] == ["scripted/a", "scripted/b", "scripted/c"]
    first = card.comparisons[0]
    assert first.result is not None and (first.result.b, first.result.c, first.result.n) == (3, 0, 10)
    assert all(c.result is None and "different benchmarks" in c.note for c in card.comparisons[1:])
    from medprobe.card_markdown import render

    md = render(card)
    assert "| figure | scripted/a | scripted/b | scripted/c |" in md and "McNemar p" in md


def test_json_schema_is_stable():
    schema = TrustCard.model_json_schema()
    defs = schema["$defs"]
    assert set(schema["properties"]) == {"schema_version", "models", "comparisons"}
    assert set(defs["ModelCard"]["properties"]) == {"run_dir", "model", "benchmark", "split", "prompt",
                                                   "headline_preset", "status", "coverage", "figures",
                                                   "other_probe_figures", "subgroups"}  # fmt: skip
    assert set(defs["Figure"]["properties"]) == {"key", "label", "status", "value", "ci_low", "ci_high", "n",
                                                "protocol", "note", "interval"}  # fmt: skip
    assert set(defs["CardComparison"]["properties"]) == {"run_a", "run_b", "result", "note"}


def test_missing_results_is_an_actionable_error(tmp_path, run):
    (run / RESULTS).unlink()
    result = CliRunner().invoke(app, ["card", str(run)])
    assert result.exit_code == 2 and "medprobe score" in result.output
