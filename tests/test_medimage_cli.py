"""`medprobe run cases.csv` over DICOM files, a DICOM series folder and NIfTI volumes, end to end
through the real CLI and the loopback OpenAI server: the PNG the server receives is checked pixel
by pixel against windows computed by hand from CT_small.dcm's rescale tags."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
from medfiles import ct, nifti_pair, sample_file, write_series
from PIL import Image
from typer.testing import CliRunner

from medprobe.cli import app


def write_cases(folder: Path) -> Path:
    shutil.copy(sample_file("CT_small.dcm"), folder / "ct.dcm")
    shutil.copy(sample_file("MR_small.dcm"), folder / "mr.dcm")
    write_series(folder / "series1", n=5)
    nifti_pair(folder / "vol")
    rows = [
        {"id": "ct-lung", "image": "ct.dcm", "window": "lung"},
        {"id": "ct-bone", "image": "ct.dcm", "window": "bone"},
        {"id": "ct-explicit", "image": "ct.dcm", "window": "-600,1500"},
        {"id": "series-middle", "image": "series1"},  # CLI default window applies
        {"id": "series-montage", "image": "series1", "montage": "4", "window": "brain"},
        {"id": "mr", "image": "mr.dcm", "window": "minmax"},
        {"id": "nifti-coronal", "image": "vol/lpi.nii.gz", "plane": "coronal", "slice": "0.5"},
    ]
    path = folder / "cases.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["id", "image", "question", "answer", "window", "slice", "montage", "plane"])
        w.writeheader()
        for r in rows:
            w.writerow({"question": f"Is there an abnormality? ({r['id']})", "answer": "no", **r})
    return path


def capture_images(server) -> dict[str, np.ndarray]:
    """Make the server keep each request's data URL; returns {sample id: decoded pixels}."""
    seen: dict[str, np.ndarray] = {}

    def script(rec):
        sid = rec.question.split("(", 1)[1].split(")")[0]
        part = next(p for m in rec.body["messages"] if isinstance(m["content"], list) for p in m["content"]
                    if p["type"] == "image_url")  # fmt: skip
        data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
        seen[sid] = np.asarray(Image.open(io.BytesIO(data)))
        return "no"

    server.inspect_images = False
    server.set_script(script)
    return seen


def test_dicom_and_nifti_csv_end_to_end_with_hand_computed_windows(tmp_path, openai_server):
    cases = write_cases(tmp_path)
    seen = capture_images(openai_server)
    out = tmp_path / "run"
    try:
        result = CliRunner().invoke(app, ["run", str(cases), "--model", "openai/tiny", "--base-url",
                                          openai_server.base_url, "--window", "mediastinum", "--out", str(out)])
    finally:
        openai_server.inspect_images = True
    assert result.exit_code == 0, result.output
    assert set(seen) == {"ct-lung", "ct-bone", "ct-explicit", "series-middle", "series-montage", "mr", "nifti-coronal"}

    ds = ct()  # by hand: HU = raw * RescaleSlope + RescaleIntercept, then the linear window
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    assert (slope, intercept) == (1.0, -1024.0)
    hu = ds.pixel_array.astype(np.float64) * slope + intercept
    lung = np.rint(np.clip((hu - (-600 - 1500 / 2)) / 1500, 0, 1) * 255)  # -1350 .. 150 HU
    bone = np.rint(np.clip((hu - (400 - 1800 / 2)) / 1800, 0, 1) * 255)  # -500 .. 1300 HU
    for sid, expected in (("ct-lung", lung), ("ct-bone", bone)):
        got = seen[sid].astype(np.float64)
        assert got.shape == (128, 128)
        assert np.array_equal(got, expected), sid
        assert got.mean() == expected.mean() and got.std() == expected.std()
        top, width = {"ct-lung": (150, 1500), "ct-bone": (1300, 1800)}[sid]  # white from half a grey level below the top
        assert (got == 255).sum() == (hu >= top - width * 0.5 / 255).sum()
    # CT_small spans 128..2191 raw (-896..1167 HU): the lung window saturates much of it, bone does not
    assert seen["ct-lung"].mean() > seen["ct-bone"].mean()
    assert np.array_equal(seen["ct-explicit"], seen["ct-lung"])
    middle_hu = (ds.pixel_array.astype(np.float64) + 20) * slope + intercept  # series slice 2 = raw + 10*2
    assert np.array_equal(seen["series-middle"], np.rint(np.clip((middle_hu - (50 - 175)) / 350, 0, 1) * 255))
    assert seen["series-montage"].shape == (256, 256)
    assert seen["mr"].min() == 0 and seen["mr"].max() == 255

    recs = json.loads((out / "results.json").read_text())["counts"]
    assert recs["samples"] == 7 and recs["answered"] == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["benchmark"]["filters"]["view.window"] == "mediastinum"


def test_changing_the_window_changes_the_request_key(tmp_path):
    cases = write_cases(tmp_path)
    keys = {}
    for window in ("lung", "bone"):
        out = tmp_path / window
        result = CliRunner().invoke(app, ["run", str(cases), "--model", "scripted/constant:no", "--window", window,
                                          "--out", str(out)])
        assert result.exit_code == 0, result.output
        import sqlite3

        db = sqlite3.connect(out / "records.sqlite")
        keys[window] = dict(db.execute("SELECT sample_id, key FROM plan"))
    assert keys["lung"]["series-middle"] != keys["bone"]["series-middle"]  # the default window applied
    assert keys["lung"]["ct-lung"] == keys["bone"]["ct-lung"]  # the row's own window wins
