"""MIMIC-CXR report generation on a fixture in the MIMIC-CXR-JPG layout (tests/reportdata.py): the official
sectioner's rules, the loader's sections, views and indication, and a scripted run through the real CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medprobe.backends.scripted import register_function
from medprobe.benchmarks import LoadError, LoadOptions, load
from medprobe.benchmarks.mimic_sections import normalise, section, split_sections
from medprobe.cli import app
from medprobe.store import read_records
from medprobe.types import ErrorKind

from reportdata import mimic_cxr, mimic_report

SKIPPED_FINDINGS = [
    "study s50000002 (p10000002): no FINDINGS section in the report (the reference of --section findings)",
    "study s50000003 (p10000003): no FINDINGS section in the report (the reference of --section findings)",
    ("study s50913680 (p10000005): sectioned by hand in the official script, which writes it no FINDINGS or "
    "IMPRESSION (custom_mimic_cxr_rules)"),
    ("study s50000006 (p10000006): report not found (unzip mimic-cxr-reports.zip into --data): "
    "files/p10/p10000006/s50000006.txt"),
]


def test_sections_follow_the_official_rules():
    text = mimic_report(("EXAMINATION", "CHEST (PA AND LAT)"), ("CLINICAL HISTORY", "Cough."),
                        ("FINDINGS", "\nLungs clear.\nFindings: stable."), ("IMPRESSION", ""),
                        ("CONCLUSION", "Normal chest."))
    names = [n for n, _ in split_sections(text)]
    # mixed-case "Findings:" is text; the empty IMPRESSION is dropped; CONCLUSION counts as impression
    assert names == ["preamble", "examination", "history", "findings", "impression"]
    assert section(text, "findings") == "Lungs clear.\n Findings: stable."
    assert section(text, "impression") == "Normal chest." and section(text, "history") == "Cough."
    last = mimic_report(("FINDINGS", "First."), ("FINDINGS", "Second."))
    assert section(last, "findings") == "Second."  # the last section of a name wins
    assert [normalise(n) for n in ("REASON FOR EXAM", "PA AND LATERAL VIEWS OF THE CHEST", "IMPRESSON",
                                   "PROVISIONAL FINDINGS IMPRESSION (PFI)", "WETREAD", "TECHNIQUE")] == \
        ["indication", "findings", "impression", "impression", "wet read", "technique"]  # impression beats findings
    assert split_sections("No headers at all.\n \nSecond paragraph.") == [("full report", "No headers at all."),
                                                                          ("last_paragraph", "Second paragraph.")]
    assert section(mimic_report(("FINDINGS", "Clear.")), "findings", "s50913680") == ""  # hand-sectioned
    # a header whose line break the header pattern took: the next line's header is text (official quirk)
    assert split_sections(" TITLE\n FINDINGS:\n IMPRESSION: No acute process.") == [
        ("preamble", " TITLE\n "), ("findings", " IMPRESSION: No acute process.")]


def test_test_split_findings_views_and_indication(tmp_path):
    root, _ = mimic_cxr(tmp_path)
    loaded = load("mimic-cxr", LoadOptions(data=str(root)))
    by_id = {s.id: s for s in loaded.samples}
    assert sorted(by_id) == ["s50000001", "s50000004"]
    s = by_id["s50000001"]
    assert s.question == "Indication: ___F with cough and fever // eval for pneumonia"
    assert s.answer == "No focal consolidation is seen. Findings: the heart size is normal. No pneumothorax."
    # the split csv lists the lateral first; the frontal goes first
    assert [i.path for i in s.images] == ["files/p10/p10000001/s50000001/pa-a.jpg",
                                          "files/p10/p10000001/s50000001/lat-a.jpg"]
    assert s.metadata == {"section": "findings", "views": "frontal,lateral", "image_count": 2, "language": "en",
                          "has_indication": True, "study_id": "s50000001", "patient_id": "p10000001",
                          "view_positions": "PA,LATERAL"}
    d = by_id["s50000004"]  # REASON FOR EXAM is the indication; a study-describing header is the findings
    assert (d.question, d.answer, d.metadata["view_positions"]) == ("Indication: Chest pain.", "Heart size is normal.",
                                                                    "AP,LL")
    assert loaded.errors == SKIPPED_FINDINGS
    assert loaded.provenance.filters == {"section": "findings"} and loaded.provenance.sha256


def test_impression_validation_split_and_reports_folder(tmp_path):
    root, _ = mimic_cxr(tmp_path, reports_folder="mimic-cxr-reports")
    impression = load("mimic-cxr", LoadOptions(data=str(root), section="impression"))
    assert {s.id: s.answer for s in impression.samples} == {
        "s50000001": "No acute cardiopulmonary process.", "s50000002": "Endotracheal tube 4 cm above the carina.",
        "s50000004": "Normal chest."}  # a report with only IMPRESSION loads here
    assert impression.samples[1].question == "Indication: Intubated patient."  # HISTORY when there is no INDICATION
    val = load("mimic-cxr", LoadOptions(data=str(root / "mimic-cxr-2.0.0-split.csv.gz"), split="validation"))
    (s,) = val.samples
    assert s.split == "validate" and s.question == "" and s.metadata["views"] == "frontal,other"
    assert s.metadata["view_positions"] == "PA,?" and "has_indication" not in s.metadata
    (root / "mimic-cxr-2.0.0-metadata.csv.gz").unlink()
    with pytest.raises(LoadError, match="mimic-cxr-2.0.0-metadata.csv.gz"):
        load("mimic-cxr", LoadOptions(data=str(root)))
    with pytest.raises(LoadError, match="medprobe data get mimic-cxr"):
        load("mimic-cxr", LoadOptions())


def test_scripted_run_sends_the_indication_and_the_frontal_first(tmp_path):
    root, hashes = mimic_cxr(tmp_path)
    seen = {}

    def write(request):
        seen[request.sample_id] = (request.image_hashes, request.messages[-1].content[-1].text)
        return "FINDINGS: No acute process."

    register_function("mimic-views", write)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "mimic-cxr", "--data", str(root), "--section", "findings", "--model",
                                      "scripted/fn:mimic-views", "--out", str(out)])
    assert result.exit_code == 3, result.output  # s50000004's images were never downloaded: partial, not hidden
    assert seen == {"s50000001": ((hashes["pa-a"], hashes["lat-a"]),
                                  ("Indication: ___F with cough and fever // eval for pneumonia\nWrite the findings "
                                  "section of the radiology report for this chest X-ray."))}
    manifest, records = read_records(out)
    assert manifest.identity["benchmark"]["filters"] == {"section": "findings"}
    assert manifest.coverage.skipped == 4 and manifest.coverage.answered == 1
    by_id = {r.sample.id: r for r in records}
    assert by_id["s50000001"].final.text == "FINDINGS: No acute process."
    assert by_id["s50000004"].error_kind is ErrorKind.BAD_INPUT and "ap-d.jpg" in by_id["s50000004"].error
    assert json.loads((out / "results.json").read_text())["coverage"]["errors"] == 1


def test_data_get_prints_the_physionet_steps_and_check_reads_the_copy(tmp_path):
    from medprobe import datasets_cmd

    got = datasets_cmd.get("mimic-cxr", tmp_path / "data")
    assert got.status == "manual" and not (tmp_path / "data").exists()
    assert "credentialed PhysioNet user" in got.steps and "mimic-cxr-reports.zip" in got.steps
    root, _ = mimic_cxr(tmp_path)
    assert datasets_cmd.check("mimic-cxr", root).ok
    (root / "mimic-cxr-2.0.0-metadata.csv.gz").unlink()
    (missing,) = datasets_cmd.check("mimic-cxr", root).differences
    assert missing.what.startswith("mimic-cxr-2.0.0-metadata.csv.gz") and missing.found == "missing"
