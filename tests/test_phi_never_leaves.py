"""Planted PHI in every identifying DICOM tag never reaches anything a run writes or prints: not the
prompt sent to the model, records, manifest, results, summary, SQLite, stdout/stderr or logs,
also when a file fails to decode."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from medfiles import ct, plant_phi, write_series
from typer.testing import CliRunner

from medprobe.cli import app

MARKER = "ZQXPHI"


def build(folder: Path) -> tuple[Path, list[str]]:
    ds = ct()
    planted = plant_phi(ds, MARKER)
    ds.save_as(folder / "ct.dcm")
    bad = ct()  # same PHI, pixel data cut short: its error message must not quote the header either
    plant_phi(bad, MARKER)
    bad.PixelData = bad.PixelData[:100]
    bad.save_as(folder / "short.dcm")
    no_pixels = ct()
    plant_phi(no_pixels, MARKER)
    del no_pixels.PixelData
    no_pixels.save_as(folder / "nopix.dcm")
    write_series(folder / "series", n=3, marker=MARKER)
    path = folder / "cases.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "image", "question", "answer", "window"])
        for sid, image, window in [("a", "ct.dcm", "lung"), ("b", "series", ""), ("c", "short.dcm", ""),
                                   ("d", "nopix.dcm", "bone"), ("e", "series", "dicom")]:  # fmt: skip
            w.writerow([sid, image, f"Is the lung clear? ({sid})", "yes", window])
    return path, planted


def assert_clean(planted: list[str], out: Path, *texts: str) -> None:
    assert planted and len(planted) > 10
    blobs = [(str(p), p.read_bytes()) for p in out.rglob("*") if p.is_file()]
    blobs += [(f"text {i}", t.encode()) for i, t in enumerate(texts)]
    for where, blob in blobs:
        for value in planted:
            assert value.encode() not in blob, f"{value!r} leaked into {where}"
        assert MARKER.encode() not in blob, where


def test_planted_phi_stays_out_of_everything(tmp_path, openai_server, caplog):
    cases, planted = build(tmp_path)
    caplog.set_level(logging.DEBUG)
    runs = tmp_path / "runs"
    outputs = []
    for model, extra in (("scripted/constant:yes", []), ("openai/tiny", ["--base-url", openai_server.base_url])):
        out = runs / model.split("/")[0]
        result = CliRunner().invoke(app, ["run", str(cases), "--model", model, *extra, "--out", str(out)])
        assert result.exit_code == 3, result.output  # partial: two samples fail by design
        outputs.append(result.output)
        assert "errors: 2" in result.output  # short.dcm and nopix.dcm fail per sample; the rest run
    sent = [str(r.body) + r.question for r in openai_server.requests]
    assert len(sent) == 3
    assert_clean(planted, runs, *outputs, *sent, caplog.text)


@pytest.mark.slow
def test_planted_phi_stays_out_of_a_subprocess_stdout_and_stderr(tmp_path):
    cases, planted = build(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", "from medprobe.cli import main; main()", "run", str(cases),
                           "--model", "scripted/constant:no", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 3, proc.stderr  # partial: two samples fail by design
    assert_clean(planted, out, proc.stdout, proc.stderr)


def test_allowed_dicom_tags_enter_metadata_and_nothing_else(tmp_path):
    """--dicom-tag copies only allow-listed acquisition fields (here Modality -> the modality subgroup,
    BodyPartExamined -> organ); patient fields are refused, and planted PHI still stays out."""
    cases, planted = build(tmp_path)
    ds = ct()
    plant_phi(ds, MARKER)
    ds.BodyPartExamined = "CHEST"
    ds.save_as(tmp_path / "ct.dcm")  # case "a" now names its body part
    refused = CliRunner().invoke(app, ["run", str(cases), "--model", "scripted/constant:yes", "--dicom-tag",
                                       "PatientName", "--out", str(tmp_path / "refused")])  # fmt: skip
    assert refused.exit_code == 2 and "PatientName is not allowed" in refused.output
    out = tmp_path / "runs" / "tags"
    result = CliRunner().invoke(app, ["run", str(cases), "--model", "scripted/constant:yes", "--dicom-tag", "Modality",
                                      "--dicom-tag", "BodyPartExamined", "--dicom-tag", "SliceThickness",
                                      "--max-errors", "2", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output  # the two broken files are within --max-errors 2
    import json

    from medprobe.store import read_records

    _, records = read_records(out)
    meta = {r.sample.id: r.sample.metadata for r in records}
    assert meta["a"]["modality"] == "CT" and meta["b"]["modality"] == "CT"  # a file and a series folder
    assert meta["a"]["organ"] == "CHEST" and "organ" not in meta["b"]  # CT_small.dcm itself has no body part
    assert meta["a"]["slice_thickness"] == 5.0
    assert not any(k.lower().startswith("patient") for m in meta.values() for k in m)
    strict = next(p for p in json.loads((out / "results.json").read_text())["presets"] if p["preset"] == "strict")
    assert any(m["subset"] == "modality=CT" for m in strict["metrics"])
    assert_clean(planted, out, result.output)
