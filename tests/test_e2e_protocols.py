"""End to end through the CLI for the protocols the core promises:
- `medprobe import` + `score --preset llava-med` reproduces the official LLaVA-Med script's numbers;
- MedXpertQA's two-turn chain of thought (reasoning, then the answer trigger);
- the offline demo and the honest baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from medprobe import scoring
from medprobe.backends.scripted import register_function
from medprobe.cli import app

HERE = Path(__file__).parent
VQA_RAD_FULL = HERE.parents[1] / "shared/data/vqa_rad/vqa_rad_public.json"
# the official run_eval.py (LLaVA-Med, commit b9a98a7) on this prediction set; see test_preset_llava_med.py
OFFICIAL_CLOSED_ACCURACY, OFFICIAL_OPEN_RECALL = 60.6061, 64.0333


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def metric(results: dict, preset: str, subset: str, name: str) -> dict:
    p = next(p for p in results["presets"] if p["preset"] == preset)
    return next(m for m in p["metrics"] if m["subset"] == subset and m["metric"] == name)


@pytest.mark.skipif(not VQA_RAD_FULL.is_file(), reason="needs shared/data beside the repo")
def test_import_llava_med_answer_file_reproduces_official_numbers(tmp_path):
    # an answer file in LLaVA-Med's own format: {"question_id", "prompt", "text", ...}
    rows = [json.loads(line) for line in (HERE / "fixtures/llava_med/vqa_rad_golden.jsonl").read_text().splitlines()]
    preds = tmp_path / "answers.jsonl"
    preds.write_text("".join(json.dumps({"question_id": r["qid"], "prompt": r["question"], "text": r["text"],
                                         "model_id": "llava-med"}) + "\n" for r in rows))  # fmt: skip
    out = tmp_path / "imported"
    result = cli("import", str(preds), "--benchmark", "vqa-rad", "--data", str(VQA_RAD_FULL), "--split", "test",
                 "--id-field", "question_id", "--prediction-field", "text", "--out", str(out))  # fmt: skip
    assert "393 benchmark samples have no prediction" in result.output  # 451 test rows, 58 predicted
    scored = json.loads(cli("score", str(out), "--preset", "llava-med", "--json").stdout)
    closed = metric(scored, "llava-med", "closed", "accuracy")
    recall = metric(scored, "llava-med", "open", "recall")
    assert (closed["n"], recall["n"]) == (33, 25)
    assert 100 * closed["value"] == pytest.approx(OFFICIAL_CLOSED_ACCURACY, abs=0.01)
    assert 100 * recall["value"] == pytest.approx(OFFICIAL_OPEN_RECALL, abs=0.01)
    assert scored["counts"]["errors"] == 393


def test_medxpertqa_two_turn_chain_of_thought(tmp_path):
    """Real MedXpertQA questions with synthetic placeholder images (the real ones are not shipped)."""
    data = HERE / "fixtures/medxpertqa/medxpertqa_mm_sample.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    images = tmp_path / "images"
    images.mkdir()
    for row in rows:
        for img in row["images"]:
            Image.new("RGB", (32, 24), (90, 90, 90)).save(images / img["image_path"], format="JPEG")
    gold = {r["id"]: r["label"][0] for r in rows}
    seen = []

    def model(request):
        seen.append(request)
        if request.turn == 0:
            return "The radiograph shows a fracture, so reconstruction matters. Options B and C are less likely."
        return f"({gold[request.sample_id]})" if request.sample_id != rows[0]["id"] else "(Z)"

    register_function("medxpertqa-cot-test", model)
    out = tmp_path / "run"
    cli("run", "medxpertqa-mm", "--data", str(data), "--images-dir", str(images), "--model",
        "scripted/fn:medxpertqa-cot-test", "--out", str(out))  # fmt: skip
    second = [r for r in seen if r.turn == 1]
    assert len(second) == len(rows) and len([r for r in seen if r.turn == 0]) == len(rows)
    msgs = second[0].messages
    assert [m.role for m in msgs] == ["user", "assistant", "user"]
    assert msgs[2].content[0].text == "Therefore, among A through E, the answer is"
    first_text = msgs[0].content[-1].text
    assert first_text.endswith("A: Let's think step by step.") and first_text.count("Answer Choices") == 1
    results = json.loads((out / "results.json").read_text())
    overall = metric(results, "strict", "overall", "accuracy")
    # the first sample's "(Z)" is no option letter: invalid, not wrong, and never re-mapped
    assert (overall["correct"], overall["invalid"], overall["n"]) == (len(rows) - 1, 1, len(rows))
    assert json.loads((out / "manifest.json").read_text())["turns"] == 2


def test_demo_runs_offline_and_baselines_are_honest(tmp_path):
    result = cli("demo", "--out", str(tmp_path))
    assert "baseline/prior" in result.output and "baseline/random" in result.output
    for kind in ("prior", "random"):
        res = json.loads((tmp_path / f"baseline-{kind}/results.json").read_text())
        assert res["counts"] == {"samples": 15, "answered": 15, "errors": 0, "error_reasons": {}}
        manifest = json.loads((tmp_path / f"baseline-{kind}/manifest.json").read_text())
        assert manifest["benchmark"]["split"] == "test" and manifest["status"] == "complete"
        headline = (tmp_path / f"baseline-{kind}/summary.md").read_text().split("## headline", 1)[1].split("\n## ")[0]
        # one headline row per preset that is not restricted to other benchmarks (report presets get no
        # section in a run without reports)
        assert headline.count("\n| `") == len([p for p in scoring.names() if not scoring.get(p).benchmarks
                                               and "report" not in scoring.get(p).value_names])


def test_prior_learns_from_train_only_and_random_is_seeded(tmp_path):
    import asyncio

    from medprobe.backends import BackendConfig, create
    from medprobe.types import AnswerType, Request, Sample

    def s(i, answer, kind=AnswerType.CLOSED, qtype="PRES", split="train"):
        return Sample(id=str(i), benchmark="b", split=split, question="q?", answer=answer, answer_type=kind,
                      metadata={"question_type": qtype})  # fmt: skip

    train = [s(1, "Yes"), s(2, "yes"), s(3, "no"), s(4, "liver", AnswerType.OPEN, "ORGAN"), s(9, "no")]
    test = [s(9, "no", split="test"), s(10, "no", split="test"), s(11, "?", AnswerType.OPEN, "ORGAN", "test"),
            s(12, "?", AnswerType.OPEN, "SIZE", "test")]  # fmt: skip
    prior = create(BackendConfig(provider="baseline", model="prior"))
    prior.bind(test, train)  # sample 9 is evaluated, so its train copy is left out: yes 2 : no 1
    reqs = [Request(sample_id=t.id, model="baseline/prior", messages=()) for t in test]
    texts = [g.text for g in asyncio.run(prior.generate(reqs))]
    assert texts == ["yes", "yes", "liver", "liver"]  # SIZE has no train rows: falls back to the open majority
    rand = create(BackendConfig(provider="baseline", model="random", options={"seed": 1}))
    rand.bind(test, train)
    again = create(BackendConfig(provider="baseline", model="random", options={"seed": 1}))
    again.bind(test, train)
    first = [g.text for g in asyncio.run(rand.generate(reqs))]
    assert first == [g.text for g in asyncio.run(again.generate(reqs))]
    assert set(first[:2]) <= {"yes", "no"} and first[2] == "liver"
