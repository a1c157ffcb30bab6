"""`medprobe export`: one row per sample and probe variant with the raw output, reasoning, parsed
answer and rule, outcome per preset and error kind; jsonl, csv and parquet carry the same rows."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from runfolders import closed_samples, make_run
from typer.testing import CliRunner

from medprobe import export, runs
from medprobe.cli import app
from medprobe.types import ErrorKind, Generation, VariantTag


@pytest.fixture
def run(tmp_path):
    clean = closed_samples(3)
    tag = VariantTag(parent_id="q0", probe="blind", variant="none")
    blind = clean[0].model_copy(update={"id": "q0~blind:none", "images": (), "variant_of": tag})
    replies = [
        Generation(text="Yes.", reasoning="The mass is visible.", finish_reason="stop"),
        "maybe",  # invalid under strict
        Generation(error="HTTP 401: bad key", error_kind=ErrorKind.AUTH),
        "No.",
    ]
    return make_run(tmp_path / "run", [*clean, blind], replies)


def test_rows_carry_output_answer_outcome_and_error(run):
    rows = {r["id"]: r for r in export.rows(runs.load(run))}
    assert list(rows) == ["q0", "q1", "q2", "q0~blind:none"]
    q0 = rows["q0"]
    assert (q0["status"], q0["output"], q0["reasoning"], q0["gold"], q0["meta.modality"]) == (
        "answered", "Yes.", "The mass is visible.", "yes", "MRI")
    assert (q0["strict.outcome"], q0["strict.answer"], q0["strict.parser"], q0["strict.method"]) == (
        "correct", "yes", "yes_no", "exact")
    assert q0["llava-med.outcome"] == "correct" and q0["parent_id"] is None
    assert rows["q1"]["strict.outcome"] == "invalid" and rows["q1"]["strict.reason"]
    failed = rows["q2"]
    assert (failed["status"], failed["error_kind"], failed["strict.outcome"]) == ("error", "auth", None)
    assert "401" in failed["error"]
    blind = rows["q0~blind:none"]
    assert (blind["parent_id"], blind["probe"], blind["variant"]) == ("q0", "blind", "none")
    assert blind["strict.outcome"] == "wrong"  # no image, answered "No."


def test_jsonl_csv_and_parquet_agree(run, tmp_path):
    loaded = runs.load(run)
    jsonl = [json.loads(line) for line in export.to_text(loaded, "jsonl").splitlines()]
    table = list(csv.DictReader(io.StringIO(export.to_text(loaded, "csv"))))
    assert export.write(loaded, "parquet", tmp_path / "x.parquet") == 4
    parquet = pq.read_table(tmp_path / "x.parquet").to_pylist()
    assert [r["id"] for r in jsonl] == [r["id"] for r in table] == [r["id"] for r in parquet]
    assert list(jsonl[0]) == list(table[0]) == list(parquet[0])
    assert [r["strict.outcome"] for r in parquet] == [r["strict.outcome"] for r in jsonl]
    assert json.loads(table[0]["images"]) == jsonl[0]["images"] == parquet[0]["images"]


def test_cli_stdout_file_and_actionable_errors(run, tmp_path):
    out = CliRunner().invoke(app, ["export", str(run), "--format", "csv"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines()[0].startswith("id,parent_id,probe,variant,")
    assert len(list(csv.DictReader(io.StringIO(out.stdout)))) == 4
    target = tmp_path / "out" / "rows.jsonl"
    assert CliRunner().invoke(app, ["export", str(run), "--out", str(target)]).exit_code == 0
    assert len(target.read_text().splitlines()) == 4
    refused = CliRunner().invoke(app, ["export", str(run), "--format", "parquet"])
    assert refused.exit_code == 2 and "--out" in refused.output
    bad = CliRunner().invoke(app, ["export", str(run), "--format", "xlsx"])
    assert bad.exit_code == 2 and "jsonl, csv, parquet" in bad.output
