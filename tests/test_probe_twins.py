"""negate, pair, repeat, paraphrase, icl, and the CLI end to end (`--probe blind --probe permute`)."""

from __future__ import annotations

import json

import pytest
from test_probe_basics import IMGS, bench, head, mc_rows, result, run, strict_only  # noqa: F401
from typer.testing import CliRunner

from medprobe import probes
from medprobe.backends.scripted import register_function
from medprobe.benchmarks import load
from medprobe.cli import app
from medprobe.probes import ProbeSpec, pair
from medprobe.probes._kit import Group
from medprobe.types import AnswerType, Generation, ImageRef, Record, Request, Sample

CLOSED = AnswerType.CLOSED


def sample(id: str, question: str, answer: str, image: str = "a.png", **meta) -> Sample:
    return Sample(id=id, benchmark="b", question=question, answer=answer, answer_type=CLOSED,
                  images=(ImageRef(path=image),), metadata=meta)  # fmt: skip


def record(s: Sample, text: str | None) -> Record:
    return Record(sample=s, keys=("k",), generations=(Generation(text=text),))


def test_negate_twins_have_the_right_golds():
    mc = Sample(id="m", benchmark="b", question="Which plane?", options=("Axial", "Coronal"), answer="B",
                answer_type=AnswerType.MULTIPLE_CHOICE)
    ct = sample("c", "Is this a CT scan?", "yes", modality="CT", organ="CHEST")
    finding = sample("f", "Is the lung clear?", "yes", image="b.png", organ="CHEST")  # never substituted
    out = {v.id: v for v in probes.derive([ProbeSpec.parse("negate")], [mc, ct, finding], seed=3).samples}
    assert out["m~negate:mc:A"].answer == "no" and out["m~negate:mc:B"].answer == "yes"
    assert out["m~negate:mc:B"].question.endswith('Is the answer "Coronal"?')
    assert out["m~negate:mc:A"].answer_type is CLOSED and out["m~negate:mc:A"].options == ()
    sub = out["c~negate:sub:modality"]
    assert sub.answer == "no" and sub.question in ("Is this an MRI scan?", "Is this an X-ray scan?",
                                                   "Is this an ultrasound scan?")  # fmt: skip
    assert "f~negate:sub:organ" not in out
    assert out["c~negate:attr:modality:gt"].question == "Is this a CT image?"
    assert out["c~negate:attr:modality:gt"].answer == "yes" and out["c~negate:attr:modality:adv"].answer == "no"
    assert out["f~negate:attr:organ:gt"].question == "Does this image show the chest?"
    # once per image and attribute: the chest organ pair of image a.png comes from sample c only
    assert "c~negate:attr:organ:gt" in out and sum(k.endswith("attr:organ:gt") for k in out) == 2


def test_negate_yes_sayer_fails_every_twin_set(tmp_path):
    path = bench(tmp_path, mc_rows(3))
    res = result(run(tmp_path, path, "constant:yes", "negate"), "negate")
    assert head(res, "negation_twin_accuracy").value == 0.0 and head(res, "false_yes_rate").value == 1.0
    demo = result(run(tmp_path, "vqa-rad-demo", "constant:yes", "negate", name="demo"), "negate")
    assert demo.ran and head(demo, "negation_twin_accuracy").value == 0.0  # organ pairs: the adversarial twin fails


def test_pair_metrics_equal_hand_computed_values():
    rows = [("Is there a mass?", "yes", "a", "yes"), ("Is there a mass?", "no", "b", "no"),  # both right
            ("Is it fractured?", "yes", "a", "yes"), ("is it fractured", "no", "b", "Yes."),  # confused
            ("Is it bleeding?", "yes", "a", "yes"), ("Is it bleeding?", "no", "b", "I cannot determine that."),
            ("Is it enlarged?", "yes", "a", "no"), ("Is it enlarged?", "no", "b", "yes"),  # both wrong
            ("Is it alone?", "yes", "c", "yes")]  # fmt: skip
    groups = {}
    for i, (q, gold, img, pred) in enumerate(rows):
        r = record(sample(f"s{i}", q, gold, image=img), pred)
        groups[r.sample.id] = Group(r, ())
    res = pair.analyze(groups, "strict", 0)
    assert head(res, "set_accuracy").value == 1 / 4 and head(res, "set_accuracy").n == 4
    assert head(res, "confusion_rate").value == pytest.approx(1 / 3) and head(res, "confusion_rate").n == 3
    rows_ = {m.name: m for m in res.rows}
    assert rows_["individual_accuracy"].value == 4 / 8 and rows_["invalid_rate"].value == 1 / 8


def test_repeat_agreement_with_a_stochastic_backend(tmp_path):
    register_function("flaky", lambda req: "no" if req.trial % 3 == 0 else "yes")
    seen: list[Request] = []
    register_function("spy", lambda req: seen.append(req) or "yes")
    rows = [{"id": f"q{i}", "image": f"imgs/{IMGS[i % 3]}", "question": f"Is there a mass? ({i})", "answer": "yes",
             "answer_type": "closed"} for i in range(4)]  # fmt: skip
    path = bench(tmp_path, rows)
    results = run(tmp_path, path, "fn:flaky", "repeat:k=3,t=0.9")
    res = result(results, "repeat")
    assert head(res, "agreement").value == pytest.approx(2 / 3) and head(res, "majority_vote_accuracy").value == 1.0
    per = [m for m in res.rows if m.name == "sample_agreement"]
    assert len(per) == 4 and all(m.value == pytest.approx(2 / 3) and m.detail["majority_correct"] for m in per)
    # repeat agreement feeds calibration: 4 answered clean samples (all "no" at trial 0: wrong), confidence 2/3
    source = next(c for c in results.calibration.sources if c.source == "agreement")
    assert (source.n, source.accuracy, source.mean_confidence) == (4, 0.0, pytest.approx(2 / 3))
    brier = next(m for m in source.metrics if m.name == "brier")
    assert brier.value == pytest.approx((2 / 3) ** 2)
    run(tmp_path, path, "fn:spy", "repeat:k=3,t=0.9", name="spy")
    draws = [r for r in seen if r.probe == "repeat"]
    assert sorted(r.trial for r in draws) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert {r.config.temperature for r in draws} == {0.9} and len({r.key for r in draws}) == 12


def test_paraphrase_on_demo_uses_dataset_rephrasings(tmp_path):
    res = result(run(tmp_path, "vqa-rad-demo", "constant:yes", "paraphrase"), "paraphrase")
    rephrase = [m for m in res.rows if m.detail.get("variant") == "rephrase"]
    assert rephrase and 0 < rephrase[0].n < 65
    assert head(res, "agreement").value == 1.0 and head(res, "worst_template_accuracy").n == 65


def test_icl_orders_demonstrations_as_specified():
    train = load("vqa-rad-demo").samples
    query = next(s for s in train if s.split == "test")
    out = {v.variant_of.variant: v for v in probes.derive([ProbeSpec.parse("icl:k=2")], [query], train=train).samples}
    first, last = out["similar_first"], out["similar_last"]
    ids_first = first.variant_of.detail["demonstrations"].split(",")
    assert last.variant_of.detail["demonstrations"].split(",") == ids_first[::-1]
    assert [m.role for m in first.history] == ["user", "assistant", "user", "assistant"]
    by_id = {s.id: s for s in train}
    assert first.history[1].content[0].text == by_id[ids_first[0]].answer  # most similar first
    assert first.history[0].content[0].image == by_id[ids_first[0]].images[0]
    irr = out["irrelevant"].variant_of.detail["demonstrations"].split(",")
    assert irr[1:] == ids_first[::-1] and by_id[irr[0]].metadata["organ"] != query.metadata["organ"]
    assert all(query.images[0] not in by_id[i].images for i in ids_first + irr)


def test_icl_on_demo_runs_through_the_pipeline(tmp_path):
    res = result(run(tmp_path, "vqa-rad-demo", "constant:yes", "icl"), "icl")
    assert {m.name for m in res.headline} == {"icl_gain", "irrelevant_example_effect", "order_effect"}
    assert all(m.value == 0.0 for m in res.headline)


def test_cli_end_to_end_with_blind_and_permute(tmp_path):
    rows = mc_rows(3) + [{"id": "c1", "image": f"imgs/{IMGS[0]}", "question": "Is there a mass?", "answer": "yes"}]
    path = bench(tmp_path, rows)
    out = tmp_path / "cli"
    args = ["run", path, "--model", "scripted/constant:A", "--probe", "blind", "--probe", "permute", "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "probes (paired" in first.output and "position_bias" in first.output
    data = json.loads((out / "results.json").read_text())
    by = {p["probe"]: p for p in data["probes"]}
    consistency = next(m for m in by["permute"]["headline"] if m["name"] == "permutation_consistency")
    assert consistency["value"] == 0.0 and consistency["n"] == 3
    strict = next(p for p in data["presets"] if p["preset"] == "strict")
    assert next(m for m in strict["metrics"] if m["subset"] == "overall")["n"] == 4  # clean samples only
    assert "## probes" in (out / "summary.md").read_text()
    again = CliRunner().invoke(app, args)  # resumes from the cache, same results
    assert again.exit_code == 0 and json.loads((out / "results.json").read_text())["probes"] == data["probes"]
    scored = CliRunner().invoke(app, ["score", str(out), "--json"])
    assert scored.exit_code == 0 and json.loads(scored.stdout)["probes"] == data["probes"]
