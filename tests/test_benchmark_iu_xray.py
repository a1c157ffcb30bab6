"""IU-Xray report generation on fixtures in the R2Gen and MedEvalKit layouts (tests/reportdata.py): the loader,
--section, and a scripted run through the real CLI that gets the views in order and stores the reports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medprobe.backends.scripted import register_function
from medprobe.benchmarks import LoadError, LoadOptions, load
from medprobe.cli import app
from medprobe.prompts import REPORT_PROMPT
from medprobe.store import read_manifest, read_records
from medprobe.types import AnswerType, ErrorKind

from reportdata import IU_REPORTS, iu_xray_medevalkit, iu_xray_r2gen


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_r2gen_layout_test_split_with_views_in_order(tmp_path):
    data = iu_xray_r2gen(tmp_path)  # the folder the zip was unpacked into: iu_xray/ is found inside
    loaded = load("iu-xray", LoadOptions(data=str(data)))
    by_id = {s.id: s for s in loaded.samples}
    assert sorted(by_id) == ["CXR10_IM-0010", "CXR11_IM-0011", "CXR13_IM-0013"]
    s = by_id["CXR10_IM-0010"]
    assert s.answer_type is AnswerType.REPORT and s.question == "" and s.options == ()
    assert s.answer == "The heart is normal in size. The lungs are clear. No pneumothorax."  # layout folded
    assert [i.path for i in s.images] == ["CXR10_IM-0010/0.png", "CXR10_IM-0010/1.png"]
    assert Path(s.images[0].root) == data / "iu_xray" / "images"
    assert s.metadata == {"section": "findings", "views": "frontal,lateral", "image_count": 2, "language": "en",
                          "layout": "r2gen"}
    assert by_id["CXR13_IM-0013"].metadata["views"] == "frontal"  # a study listing its frontal view only
    assert loaded.errors == [("annotation.json test[2]: no FINDINGS section in the report (the reference of "
                             "--section findings)")]
    assert loaded.provenance.filters == {"layout": "r2gen", "section": "findings"} and loaded.provenance.sha256
    assert [s.id for s in load("iu-xray", LoadOptions(data=str(data), split="validation")).samples] == ["CXR20_IM-0020"]
    assert load("iu-xray", LoadOptions(data=str(data / "iu_xray" / "annotation.json"), split="train")).samples[0].split \
        == "train"


def test_section_is_checked_where_it_cannot_apply(tmp_path):
    data = iu_xray_r2gen(tmp_path)
    with pytest.raises(LoadError, match="one report text per study"):
        load("iu-xray", LoadOptions(data=str(data), section="impression"))
    with pytest.raises(LoadError, match="--section history does not apply to iu-xray: its sections are findings, "
                       "impression"):
        load("iu-xray", LoadOptions(data=str(data), section="history"))
    with pytest.raises(LoadError, match="not a report benchmark"):
        load("vqa-rad-demo", LoadOptions(section="findings"))
    with pytest.raises(LoadError, match="custom benchmark"):
        load(str(data / "iu_xray" / "annotation.json"), LoadOptions(section="findings"))
    with pytest.raises(LoadError, match="medprobe data get iu-xray"):
        load("iu-xray", LoadOptions())
    with pytest.raises(LoadError, match="--images-dir"):
        load("iu-xray", LoadOptions(data=str(data), images_dir=str(tmp_path / "nowhere")))


def test_medevalkit_layout_picks_the_section(tmp_path):
    data = iu_xray_medevalkit(tmp_path)
    findings = load("iu-xray", LoadOptions(data=str(data), section="Findings"))
    assert [s.answer for s in findings.samples] == ["The cardiac silhouette is normal. The lungs are clear.",
                                                    "Borderline cardiomegaly. Midline sternotomy XXXX."]
    assert findings.samples[1].metadata["views"] == "unlabelled,unlabelled,unlabelled"  # the release labels none
    assert [i.path for i in findings.samples[1].images] == ["CXR2_IM-0652-1001.png", "CXR2_IM-0652-2001.png",
                                                            "CXR2_IM-0652-3001.png"]
    impression = load("iu-xray", LoadOptions(data=str(data / "test.json"), section="impression"))
    assert [s.answer for s in impression.samples] == ["Normal chest x-XXXX."]
    assert impression.errors == [("test.json item 1: no IMPRESSION section in the report (the reference of "
                                 "--section impression)")]
    assert impression.provenance.filters == {"layout": "medevalkit", "section": "impression"}


def test_scripted_run_gets_every_view_in_order_and_stores_the_reports(tmp_path):
    data = iu_xray_r2gen(tmp_path)
    images = data / "iu_xray" / "images"
    seen: dict[str, tuple[tuple[str, ...], str]] = {}

    def write(request):
        text = next(p.text for p in request.messages[-1].content if p.type == "text")
        seen[request.sample_id] = (request.image_hashes, text)
        return f"Findings: report for {request.sample_id}."

    register_function("iu-xray-views", write)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "iu-xray", "--data", str(data), "--model", "scripted/fn:iu-xray-views",
                                      "--out", str(out), "--max-errors", "1"])
    assert result.exit_code == 0, result.output
    prompt = REPORT_PROMPT.format(question="", section="findings").lstrip("\n")
    assert prompt == "Write the findings section of the radiology report for this chest X-ray."
    assert seen == {
        "CXR10_IM-0010": ((sha(images / "CXR10_IM-0010/0.png"), sha(images / "CXR10_IM-0010/1.png")), prompt),
        "CXR13_IM-0013": ((sha(images / "CXR13_IM-0013/0.png"),), prompt),
    }  # CXR11's lateral is not on disk: never sent with its frontal alone
    manifest, records = read_records(out)
    assert manifest.status == "complete" and manifest.benchmark["filters"] == {"layout": "r2gen", "section": "findings"}
    assert manifest.identity["benchmark"]["filters"] == {"layout": "r2gen", "section": "findings"}
    assert manifest.load_errors == (("annotation.json test[2]: no FINDINGS section in the report (the reference of "
                                    "--section findings)"),)
    by_id = {r.sample.id: r for r in records}
    assert by_id["CXR10_IM-0010"].final.text == "Findings: report for CXR10_IM-0010."
    assert by_id["CXR10_IM-0010"].sample.answer == " ".join(IU_REPORTS["CXR10_IM-0010"].split())
    assert by_id["CXR11_IM-0011"].error_kind is ErrorKind.BAD_INPUT and "1.png" in by_id["CXR11_IM-0011"].error
    results = json.loads((out / "results.json").read_text())
    assert results["coverage"]["skipped"] == 1 and manifest.default_preset == "report"
    report = next(p for p in results["presets"] if p["preset"] == "report")  # the two answered studies are scored
    assert any(m["metric"] == "bleu4" and m["n"] == 2 for m in report["metrics"])


def test_section_enters_the_run_identity(tmp_path):
    data = iu_xray_medevalkit(tmp_path)
    out = tmp_path / "run"
    base = ["run", "iu-xray", "--data", str(data), "--model", "scripted/constant:No acute disease.", "--out", str(out)]
    assert CliRunner().invoke(app, base).exit_code == 0
    assert read_manifest(out).identity["benchmark"]["filters"]["section"] == "findings"
    refused = CliRunner().invoke(app, [*base, "--section", "impression"])
    assert refused.exit_code == 2 and "section" in refused.output and "impression" in refused.output
