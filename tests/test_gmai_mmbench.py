"""GMAI-MMBench on synthetic TSVs in VLMEvalKit's layout (tests/fixtures/gmai_mmbench, made by make_synthetic.py):
VAL with answers, TEST without, base64 images, blank options, image cells naming another row."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medprobe.benchmarks import LoadError, load
from medprobe.benchmarks._base import LoadOptions
from medprobe.cli import app
from medprobe.types import GOLD_HIDDEN

FIX = Path(__file__).parent / "fixtures" / "gmai_mmbench"


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result


def test_val_rows_options_and_lexical_tree():
    loaded = load("gmai-mmbench", LoadOptions(data=str(FIX)))
    by_id = {s.id: s for s in loaded.samples}
    assert list(by_id) == ["101", "102", "103", "104", "105"] and loaded.provenance.split == "val"
    assert by_id["101"].options == ("Pneumonia", "Normal", "Nodule", "Effusion") and by_id["101"].answer == "A"
    assert len(by_id["102"].options) == 5 and by_id["102"].answer == "E"
    assert by_id["103"].options == ("Benign", "Malignant")  # C-E blank
    assert by_id["104"].options == ("CT", "MRI", "X-ray")  # "None" is missing to pandas, so to VLMEvalKit
    assert by_id["104"].images[0] == by_id["101"].images[0]  # image cell "101": that row's image
    assert base64.b64encode(by_id["101"].images[0].data).decode() in (FIX / "GMAI-MMBench_VAL.tsv").read_text()
    assert by_id["101"].metadata == {"category": "pneumonia", "clinical_task": "Disease Diagnosis",
                                     "department": "Pulmonary Medicine", "granularity": "image level", "modality": "CT",
                                     "language": "en"}
    assert loaded.errors == ["GMAI-MMBench_VAL.tsv line 7: option C is blank but a later one is not",
                             "GMAI-MMBench_VAL.tsv line 8: answer 'F' is not one of the option letters A, B, C, D",
                             "GMAI-MMBench_VAL.tsv line 9: no image (VLMEvalKit skips rows whose image is empty)"]
    single = load("gmai-mmbench", LoadOptions(data=str(FIX / "GMAI-MMBench_VAL.tsv"), split="VAL", limit=2))
    assert [s.id for s in single.samples] == ["101", "102"] and single.provenance.filters == {"limit": 2}


def test_test_parts_load_without_gold(tmp_path):
    loaded = load("gmai-mmbench", LoadOptions(data=str(FIX), split="test"))
    assert [s.id for s in loaded.samples] == ["1", "2", "3"]  # part 1, then part 2
    assert all(s.answer == "" and s.metadata[GOLD_HIDDEN] for s in loaded.samples)
    assert loaded.provenance.filters["parts"] == "1,2 of 11" and "no answers" in loaded.provenance.filters["gold"]
    with pytest.raises(LoadError, match="holds no GMAI-MMBench_VAL.tsv or GMAI_mm_bench_VAL.tsv"):
        load("gmai-mmbench", LoadOptions(data=str(tmp_path)))
    with pytest.raises(LoadError, match="no 'answer' column: is this a TEST part"):
        load("gmai-mmbench", LoadOptions(data=str(FIX / "GMAI_mm_bench_TEST_part_1.tsv")))  # val by default
    with pytest.raises(LoadError, match="Unknown split"):
        load("gmai-mmbench", LoadOptions(data=str(FIX), split="train"))


def test_image_cell_naming_a_later_row(tmp_path):
    lines = (FIX / "GMAI-MMBench_VAL.tsv").read_text().splitlines()
    header, first, *_ = lines
    cells = first.split("\t")
    cells[0], cells[-1] = "100", "101"  # row 100 points at row 101, read after it
    (tmp_path / "GMAI-MMBench_VAL.tsv").write_text("\n".join([header, "\t".join(cells), first]) + "\n")
    loaded = load("gmai-mmbench", LoadOptions(data=str(tmp_path)))
    assert [s.id for s in loaded.samples] == ["101", "100"] and loaded.samples[0].images == loaded.samples[1].images


def test_default_source_is_vlmevals_hub_copy(monkeypatch, tmp_path):
    asked = []

    def download(repo, name, repo_type):
        asked.append((repo, name, repo_type))
        shutil.copy(FIX / "GMAI-MMBench_VAL.tsv", tmp_path / name)
        return str(tmp_path / name)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", download)
    loaded = load("gmai-mmbench", LoadOptions())
    assert asked == [("VLMEval/GMAI-MMBench", "GMAI-MMBench_VAL.tsv", "dataset")]
    assert loaded.provenance.source == "VLMEval/GMAI-MMBench" and len(loaded.samples) == 5

    def gated(repo, name, repo_type):
        raise PermissionError("403: accept the conditions")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", gated)
    with pytest.raises(LoadError, match="Accept the dataset.s conditions.*--data"):
        load("gmai-mmbench", LoadOptions(split="test"))


def test_run_val_with_vlmevalkit_prompt_and_preset(tmp_path, openai_server):
    openai_server.set_script(lambda rec: "B" if "organ" in rec.question else "The answer is A.")
    out = tmp_path / "run"
    cli("run", "gmai-mmbench", "--data", str(FIX), "--model", "openai/tiny", "--base-url", openai_server.base_url,
        "--preset", "vlmevalkit-mcq", "--preset", "strict", "--out", str(out))
    first = next(r for r in openai_server.requests if "chest CT" in r.question)
    assert first.image_count == 1 and first.question == (
        "Question: What abnormality does this chest CT show?\nOptions:\nA. Pneumonia\nB. Normal\nC. Nodule\n"
        "D. Effusion\nPlease select the correct answer from the options above. \n")  # VLMEvalKit's build_prompt
    res = json.loads((out / "results.json").read_text())
    rows = {m["subset"]: m for p in res["presets"] if p["preset"] == "vlmevalkit-mcq" for m in p["metrics"]}
    assert (rows["overall"]["n"], rows["overall"]["correct"]) == (5, 2)  # 101 and 104 are A; 102 answers B, not E
    assert {"clinical_task=Disease Diagnosis", "department=Oncology", "granularity=image level"} <= set(rows)


def test_run_test_split_scores_nothing_and_says_how_to_submit(tmp_path):
    out = tmp_path / "run"
    result = cli("run", "gmai-mmbench", "--split", "test", "--data", str(FIX), "--model", "scripted/constant:B",
                 "--preset", "vlmevalkit-mcq", "--out", str(out))
    assert "no answers" in result.output and "uni-medical/GMAI-MMBench" in result.output
    res = json.loads((out / "results.json").read_text())
    assert res["counts"]["answered"] == 3
    rows = [m for p in res["presets"] for m in p["metrics"]]
    assert all(m["correct"] == m["wrong"] == 0 and m["invalid"] == m["n"] for m in rows)  # never right or wrong


def test_image_cells_past_the_csv_field_limit(tmp_path):
    import csv
    import os

    big = os.urandom(300_000)  # a real VAL image cell runs to megabytes; csv's default limit is 128 KiB
    header, first, *_ = (FIX / "GMAI-MMBench_VAL.tsv").read_text().splitlines()
    cells = first.split("\t")
    cells[-1] = base64.b64encode(big).decode()
    (tmp_path / "GMAI-MMBench_VAL.tsv").write_text("\n".join([header, "\t".join(cells)]) + "\n")
    previous = csv.field_size_limit(131072)
    try:
        assert load("gmai-mmbench", LoadOptions(data=str(tmp_path))).samples[0].images[0].data == big
    finally:
        csv.field_size_limit(previous)


def test_subgroup_rows_are_the_papers_breakdowns():
    """VLMEvalKit reports GMAI-MMBench by clinical VQA task, department, perceptual granularity and category:
    each is a subgroup row (category only through the benchmark's own `subgroups`)."""
    from medprobe.metrics import subsets
    from medprobe.types import Record

    samples = load("gmai-mmbench", LoadOptions(data=str(FIX))).samples
    rows = dict(subsets([Record(sample=s) for s in samples]))
    keys = {k.split("=", 1)[0] for k in rows if "=" in k}
    assert {"category", "clinical_task", "department", "granularity", "modality"} <= keys
    assert len(rows["category=pneumonia"]) == sum(s.metadata.get("category") == "pneumonia" for s in samples)


def test_category_rows_are_subgroups_in_views():
    """Views without subgroups leave the category rows out, as they do modality or department rows."""
    from medprobe.metrics import distinct_rows
    from medprobe.results import compute
    from medprobe.types import Generation, Record

    samples = load("gmai-mmbench", LoadOptions(data=str(FIX))).samples
    results = compute([Record(sample=s, generations=(Generation(text="A"),)) for s in samples], ["strict"])
    rows = results.presets[0].metrics
    assert any(m.subset.startswith("category=") for m in rows)
    assert not any(m.subset.startswith(("category=", "department=")) for _, m in distinct_rows(rows, False))
    assert any(m.subset.startswith("category=") for _, m in distinct_rows(rows, True))
