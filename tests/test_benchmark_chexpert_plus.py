"""CheXpert Plus report generation on a fixture of the release's csv and PNG folder (tests/reportdata.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from medprobe.backends.scripted import register_function
from medprobe.benchmarks import LoadError, LoadOptions, load
from medprobe.cli import app

from reportdata import chexpert_plus, image


def test_valid_split_groups_images_by_study_frontal_first(tmp_path):
    root = chexpert_plus(tmp_path)
    loaded = load("chexpert-plus", LoadOptions(data=str(root)))
    (s,) = loaded.samples
    assert s.id == "valid/patient64541/study1" and s.split == "valid"
    assert s.answer == "Small left pleural effusion. No pneumothorax." and s.question == "Indication: Shortness of breath."
    # the csv names .jpg files; the PNG release under PNG/ is found from the first row
    assert [i.path for i in s.images] == ["valid/patient64541/study1/view1_frontal.png",
                                          "valid/patient64541/study1/view2_lateral.png"]
    assert s.images[0].root == str(root / "PNG")
    assert (s.metadata["views"], s.metadata["view_positions"], s.metadata["patient_id"]) == \
        ("frontal,lateral", "AP,LATERAL", "PAT1")
    assert loaded.errors == [("df_chexpert_plus_240401.csv study valid/patient64542/study1: no FINDINGS section in the "
                             "report (the reference of --section findings)")]
    impression = load("chexpert-plus", LoadOptions(data=str(root / "df_chexpert_plus_240401.csv"),
                                                   section="impression"))
    assert [(s.answer, s.question) for s in impression.samples] == [
        ("1. Small left effusion.", "Indication: Shortness of breath."),
        ("No acute process.", "Indication: Fever.")]  # section_history when the clinical history is empty
    assert load("chexpert-plus", LoadOptions(data=str(root), split="train")).samples[0].answer == "Train findings."
    with pytest.raises(LoadError, match="medprobe data get chexpert-plus"):
        load("chexpert-plus", LoadOptions())


def test_original_jpgs_under_images_dir(tmp_path):
    root = chexpert_plus(tmp_path)
    jpgs = tmp_path / "CheXpert-v1.0"
    for name in ("view1_frontal", "view2_lateral"):
        image(jpgs / "valid/patient64541/study1" / f"{name}.jpg", name.split("_")[1])
    (s,) = load("chexpert-plus", LoadOptions(data=str(root), images_dir=str(jpgs))).samples
    assert s.images[0].path == "valid/patient64541/study1/view1_frontal.jpg" and s.images[0].root == str(jpgs)
    seen = {}
    register_function("chexpert-plus", lambda r: seen.setdefault(r.sample_id, len(r.image_hashes)) and "No findings.")
    result = CliRunner().invoke(app, ["run", "chexpert-plus", "--data", str(root), "--images-dir", str(jpgs),
                                      "--model", "scripted/fn:chexpert-plus", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert seen == {"valid/patient64541/study1": 2}
