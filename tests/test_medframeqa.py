"""MedFrameQA on a synthetic parquet in the hub layout (tests/fixtures/medframeqa, made by make_synthetic.py):
the loader, and every frame reaching the model in order, through the real CLI."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import PIL.Image
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from medprobe.backends.scripted import register_function
from medprobe.benchmarks import load
from medprobe.benchmarks._base import LoadOptions
from medprobe.cli import app

FIX = Path(__file__).parent / "fixtures" / "medframeqa"
PARQUET = FIX / "data" / "test-00000-of-00001.parquet"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def frame_hashes() -> dict[str, list[str]]:
    """question_id -> sha256 of image_1, image_2, ... as stored in the parquet (nulls skipped)."""
    rows = pq.read_table(PARQUET).to_pylist()
    return {r["question_id"]: [hashlib.sha256(r[f"image_{k}"]["bytes"]).hexdigest() for k in range(1, 6)
                               if r[f"image_{k}"] is not None] for r in rows}


def test_loads_the_hub_layout_with_every_frame_in_order():
    loaded = load("medframeqa", LoadOptions(data=str(FIX)))
    by_id = {s.id: s for s in loaded.samples}
    assert sorted(by_id) == ["mfq-0001", "mfq-0002", "mfq-0003"]
    assert [len(by_id[i].images) for i in sorted(by_id)] == [2, 3, 5]
    for qid, hashes in frame_hashes().items():
        if qid in by_id:
            assert [hashlib.sha256(i.data).hexdigest() for i in by_id[qid].images] == hashes
    s = by_id["mfq-0003"]
    assert s.options[-1] == "Emphysema" and s.answer == "F" and len(s.options) == 6
    assert s.metadata == {"system": "respiratory_system", "organ": "lung", "keyword": "pneumothorax",
                          "modality": "X-ray", "video_id": "vid003", "frame_count": 5,
                          "language": "en"}  # no reasoning_chain: it holds the answer
    assert s.images[0].name == "mfq-0003 image_1"
    assert loaded.errors == ["test-00000-of-00001.parquet row 4: correct_answer 'G' is not one of the 5 option letters"]
    assert loaded.provenance.split == "test" and loaded.provenance.rows == 3 and loaded.provenance.sha256
    assert len(load("medframeqa", LoadOptions(data=str(PARQUET), limit=1)).samples) == 1


def test_scripted_run_sends_every_frame_in_order(tmp_path):
    seen: dict[str, tuple[str, ...]] = {}

    def answer(request):
        seen[request.sample_id] = request.image_hashes
        return "Answer: A"

    register_function("medframeqa-frames", answer)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "medframeqa", "--data", str(FIX), "--model",
                                      "scripted/fn:medframeqa-frames", "--preset", "strict", "--preset",
                                      "vlmevalkit-mcq", "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = frame_hashes()
    assert seen == {qid: tuple(expected[qid]) for qid in ("mfq-0001", "mfq-0002", "mfq-0003")}
    res = json.loads((out / "results.json").read_text())
    strict = next(p for p in res["presets"] if p["preset"] == "strict")
    assert {m["subset"] for m in strict["metrics"]} >= {"frame_count=2", "frame_count=5", "system=respiratory_system"}


def test_server_gets_the_frames_in_order_after_the_order_note(tmp_path, openai_server):
    openai_server.set_script(lambda rec: "Step by step...\nAnswer: A")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "medframeqa", "--data", str(FIX), "--model", "openai/tiny", "--base-url",
                                      openai_server.base_url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["question_id"]: r for r in pq.read_table(PARQUET).to_pylist()}
    assert len(openai_server.requests) == 3
    for rec in openai_server.requests:
        qid = rec.question.split("(")[-1].split(")")[0]
        frames = [PIL.Image.open(io.BytesIO(rows[qid][f"image_{k}"]["bytes"])).size for k in range(1, 6)
                  if rows[qid][f"image_{k}"] is not None]
        assert rec.image_count == len(frames) and [(i.width, i.height) for i in rec.images] == frames
        assert rec.question.startswith("The images are frames from a medical video, given in order")
        system, user = rec.body["messages"]
        assert system["role"] == "system" and "Answer: $LETTER" in system["content"]
        assert [p["type"] for p in user["content"]] == ["image_url"] * len(frames) + ["text"]


def test_a_save_to_disk_copy_and_the_offline_hub(tmp_path):
    import datasets

    from medprobe.benchmarks import LoadError

    ds = datasets.Dataset.from_parquet(str(PARQUET))  # keeps the Image features of the parquet's metadata
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "copy"))
    copy = load("medframeqa", LoadOptions(data=str(tmp_path / "copy")))
    assert [len(s.images) for s in copy.samples] == [2, 3, 5] and copy.provenance.revision
    with pytest.raises(LoadError, match="save_to_disk"):
        load("medframeqa", LoadOptions())  # the hub, offline


def test_subgroup_rows_system_and_frame_count():
    """The paper reports accuracy by body system and by frame count: both are subgroup rows."""
    from medprobe.metrics import subsets
    from medprobe.types import Record

    rows = dict(subsets([Record(sample=s) for s in load("medframeqa", LoadOptions(data=str(FIX))).samples]))
    assert {"system=respiratory_system", "frame_count=2", "frame_count=3", "frame_count=5"} <= set(rows)
    assert len(rows["frame_count=5"]) == 1
