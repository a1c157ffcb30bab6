"""Report-generation fixtures in the real layouts (IU-Xray R2Gen and MedEvalKit, MIMIC-CXR-JPG, CheXpert Plus),
with synthetic images and invented reports, built into a test's tmp_path.

Each view is a PNG/JPEG of its own size, so a test can tell which image reached the model in which place.
Quirks planted on purpose: a study missing its lateral image on disk, a report with an empty section, a
report with only IMPRESSION, one with no FINDINGS or IMPRESSION header, a split row whose images were
never downloaded, a hand-sectioned MIMIC study, a study listed lateral-first.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import PIL.Image

SIZES = {"frontal": (48, 40), "lateral": (36, 40), "other": (30, 30)}


def image(path: Path, view: str, shade: int = 90) -> str:
    """Write a synthetic X-ray of the view's size; returns its sha256 (what Request.image_hashes holds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.new("L", SIZES[view], shade).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- IU-Xray


IU_REPORTS = {
    "CXR10_IM-0010": "The heart is normal in size.\n The lungs are clear. No pneumothorax.",
    "CXR11_IM-0011": "Mild cardiomegaly. No focal consolidation.",  # its lateral 1.png is not on disk
    "CXR12_IM-0012": "  ",  # an empty report: skipped at load
    "CXR13_IM-0013": "Left lower lobe calcified granuloma.",  # lists a frontal only
}


def iu_xray_r2gen(tmp: Path) -> Path:
    """iu_xray/annotation.json + images/<id>/0.png, 1.png (R2Gen). Returns the folder that holds iu_xray/."""
    root = tmp / "iu_download" / "iu_xray"
    test = []
    for i, (sid, report) in enumerate(IU_REPORTS.items()):
        paths = [f"{sid}/0.png"] if sid == "CXR13_IM-0013" else [f"{sid}/0.png", f"{sid}/1.png"]
        test.append({"id": sid, "report": report, "image_path": paths, "split": "test"})
        image(root / "images" / sid / "0.png", "frontal", 60 + i)
        if sid not in ("CXR11_IM-0011", "CXR13_IM-0013"):
            image(root / "images" / sid / "1.png", "lateral", 60 + i)
    val = [{"id": "CXR20_IM-0020", "report": "Normal chest.", "image_path": ["CXR20_IM-0020/0.png",
                                                                             "CXR20_IM-0020/1.png"], "split": "val"}]
    train = [{"id": "CXR30_IM-0030", "report": "No acute disease.", "image_path": ["CXR30_IM-0030/0.png",
                                                                                  "CXR30_IM-0030/1.png"], "split": "train"}]
    (root / "annotation.json").write_text(json.dumps({"train": train, "val": val, "test": test}), encoding="utf-8")
    return root.parent


def iu_xray_medevalkit(tmp: Path) -> Path:
    """MedEvalKit's datas/IU_XRAY: test.json (id, image, findings, impression) + flat NLMCXR PNGs in images/."""
    root = tmp / "IU_XRAY"
    rows = [
        {"id": "open_i_1", "image": ["CXR1_1_IM-0001-4001.png", "CXR1_1_IM-0001-3001.png"],
         "findings": "The cardiac silhouette is normal. The lungs are clear.", "impression": "Normal chest x-XXXX."},
        {"id": "open_i_2", "image": ["CXR2_IM-0652-1001.png", "CXR2_IM-0652-2001.png", "CXR2_IM-0652-3001.png"],
         "findings": "Borderline cardiomegaly. Midline sternotomy XXXX.", "impression": ""},
    ]
    for k, row in enumerate(rows):
        for j, name in enumerate(row["image"]):
            image(root / "images" / name, ("frontal", "lateral", "other")[j], 100 + k)
    (root / "test.json").write_text(json.dumps(rows), encoding="utf-8")
    return root


# ---------------------------------------------------------------- MIMIC-CXR


def mimic_report(*sections: tuple[str, str]) -> str:
    """A report as the release writes it: a title line, then ' HEADER:  text' blocks, every line indented."""
    lines = ["                                 FINAL REPORT"]
    for header, text in sections:
        lines += [f" {header}:  {text}" if "\n" not in text else f" {header}:\n " + text.replace("\n", "\n "), " "]
    return "\n".join(lines) + "\n"


MIMIC = {
    # study: (subject, split, [(dicom, ViewPosition, on disk)], report or None)
    "50000001": ("10000001", "test", [("lat-a", "LATERAL", True), ("pa-a", "PA", True)], mimic_report(
        ("EXAMINATION", "CHEST (PA AND LAT)"),
        ("INDICATION", "___F with cough and fever  // eval for pneumonia"),
        ("COMPARISON", "None."),
        ("FINDINGS", "\nNo focal consolidation is seen.\nFindings: the heart size is normal.  No pneumothorax."),
        ("IMPRESSION", "No acute cardiopulmonary process."))),
    "50000002": ("10000002", "test", [("ap-b", "AP", True)], mimic_report(  # only IMPRESSION
        ("HISTORY", "Intubated patient."), ("IMPRESSION", "Endotracheal tube 4 cm above the carina."))),
    "50000003": ("10000003", "test", [("pa-c", "PA", True)],  # neither FINDINGS nor IMPRESSION
                 mimic_report(("COMPARISON", "\nPrior study.\n \nLungs are clear."))),
    "50000004": ("10000004", "test", [("ll-d", "LL", False), ("ap-d", "AP", False)], mimic_report(  # not on disk
        ("REASON FOR EXAM", "Chest pain."), ("PA AND LATERAL VIEWS OF THE CHEST", "Heart size is normal."),
        ("CONCLUSION", "Normal chest."))),
    "50913680": ("10000005", "test", [("pa-e", "PA", True)], mimic_report(  # hand-sectioned by the official script
        ("FINDINGS", "Clear lungs."), ("IMPRESSION", "Normal."))),
    "50000006": ("10000006", "test", [("pa-f", "PA", True)], None),  # its report was never unzipped
    "50000007": ("10000007", "train", [("pa-g", "PA", True)], mimic_report(("FINDINGS", "Train study."))),
    "50000008": ("10000008", "validate", [("pa-h", "PA", True), ("xx-h", "", True)], mimic_report(
        ("FINDINGS", "Validation study."))),
}


def _write_csv_gz(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def mimic_cxr(tmp: Path, reports_folder: str = "") -> tuple[Path, dict[str, str]]:
    """The MIMIC-CXR-JPG folder (split and metadata csv.gz, files/), reports unzipped into
    `reports_folder` inside it ('' = beside the images). Returns (folder, dicom_id -> sha256 of its JPEG)."""
    root = tmp / "mimic-cxr-jpg"
    root.mkdir(parents=True)
    hashes, split_rows, meta_rows = {}, [], []
    for study, (subject, split, dicoms, report) in MIMIC.items():
        folder = f"files/p{subject[:2]}/p{subject}"
        for k, (dicom, view, on_disk) in enumerate(dicoms):
            split_rows.append([dicom, study, subject, split])
            meta_rows.append([dicom, subject, study, "CHEST (PA AND LAT)", view, "2544", "3056", "21800506",
                              f"{213014 + k}.531", "CHEST (PA AND LAT)", "postero-anterior", "Erect"])
            kind = {"PA": "frontal", "AP": "frontal", "LATERAL": "lateral", "LL": "lateral"}.get(view, "other")
            if on_disk:
                jpg = root / folder / f"s{study}" / f"{dicom}.jpg"
                jpg.parent.mkdir(parents=True, exist_ok=True)
                PIL.Image.new("L", SIZES[kind], 70).save(jpg, format="JPEG")
                hashes[dicom] = hashlib.sha256(jpg.read_bytes()).hexdigest()
        if report is not None:
            txt = root / reports_folder / folder / f"s{study}.txt"
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text(report, encoding="utf-8")
    _write_csv_gz(root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"], split_rows)
    _write_csv_gz(root / "mimic-cxr-2.0.0-metadata.csv.gz",
                  ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
                   "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                   "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"], meta_rows)
    return root, hashes


# ---------------------------------------------------------------- CheXpert Plus


CHEXPERT_COLUMNS = ["", "path_to_image", "path_to_dcm", "frontal_lateral", "ap_pa", "deid_patient_id",
                    "patient_report_date_order", "report", "section_narrative", "section_clinical_history",
                    "section_history", "section_comparison", "section_technique", "section_procedure_comments",
                    "section_findings", "section_impression", "section_end_of_impression", "section_summary",
                    "section_accession_number", "age", "sex", "race", "ethnicity", "interpreter_needed",
                    "insurance_type", "recent_bmi", "deceased", "split"]


def chexpert_plus(tmp: Path) -> Path:
    """df_chexpert_plus_240401.csv + PNG/<split>/patientN/studyM/viewK_*.png (the csv names .jpg paths)."""
    root = tmp / "chexpert-plus"
    rows = [  # path, frontal_lateral, ap_pa, patient, clinical history, history, findings, impression, split
        ("valid/patient64541/study1/view2_lateral.jpg", "Lateral", "", "PAT1", "Shortness of breath.", "",
         "Small left pleural effusion.\nNo pneumothorax.", "1. Small left effusion.", "valid"),
        ("valid/patient64541/study1/view1_frontal.jpg", "Frontal", "AP", "PAT1", "Shortness of breath.", "",
         "Small left pleural effusion.\nNo pneumothorax.", "1. Small left effusion.", "valid"),
        ("valid/patient64542/study1/view1_frontal.jpg", "Frontal", "PA", "PAT2", "", "Fever.", "",
         "No acute process.", "valid"),
        ("train/patient00001/study1/view1_frontal.jpg", "Frontal", "AP", "PAT3", "", "", "Train findings.",
         "Train impression.", "train"),
    ]
    root.mkdir(parents=True)
    with open(root / "df_chexpert_plus_240401.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CHEXPERT_COLUMNS)
        for i, (path, fl, ap_pa, patient, clinical, history, findings, impression, split) in enumerate(rows):
            values = {"path_to_image": path, "path_to_dcm": path.replace(".jpg", ".dcm"), "frontal_lateral": fl,
                      "ap_pa": ap_pa, "deid_patient_id": patient, "report": f"{findings} {impression}",
                      "section_clinical_history": clinical, "section_history": history,
                      "section_findings": findings, "section_impression": impression, "split": split, "": str(i)}
            writer.writerow([values.get(c, "") for c in CHEXPERT_COLUMNS])
            image(root / "PNG" / path.replace(".jpg", ".png"), fl.lower(), 50 + i)
    return root
