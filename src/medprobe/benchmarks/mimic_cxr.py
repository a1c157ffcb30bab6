"""MIMIC-CXR (Johnson et al., 2019) report generation on the JPG release, credentialed (PhysioNet).

Read as PhysioNet serves it, one folder (--data) holding:

    mimic-cxr-2.0.0-split.csv(.gz)      dicom_id, study_id, subject_id, split (train / validate / test)
    mimic-cxr-2.0.0-metadata.csv(.gz)   dicom_id, ..., ViewPosition, StudyDate, StudyTime, ...
    files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg           MIMIC-CXR-JPG images (or under --images-dir)
    files/pXX/pXXXXXXXX/sXXXXXXXX.txt                      reports, from MIMIC-CXR's mimic-cxr-reports.zip,
                                                           unzipped here or into mimic-cxr-reports/

One sample per study of the split: the gold is the study report's FINDINGS (default) or IMPRESSION section
(--section), cut by the official sectioner's rules (`mimic_sections`); a study without that section is
skipped at load with its reason, as create_section_files.py writes it no text. The INDICATION section
(else HISTORY) is the prompt's context line. Every image of the study is sent, ordered by ViewPosition:
frontal (PA, then AP) first, then lateral (LATERAL, LL), then any other view, ties by acquisition time and
dicom_id; `views` and `view_positions` record that order. An image listed but not on disk is that study's
`bad_input` error at run time, never a silent change to fewer views.

MultiMedEval (multimedeval/mimic.py) differs in two ways a comparison should know: it takes the *first*
findings section of `section_text` unstripped (the official script takes the last), and sends the images in
split-csv order; its prompt is "Can you provide a radiology report for this medical image?".
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medprobe.benchmarks import mimic_sections
from medprobe.benchmarks._base import BenchmarkSpec, Loaded, LoadOptions, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, RowError, files_sha256
from medprobe.benchmarks._reports import SECTIONS, clean, pick_section, report_sample
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.types import ImageRef, Sample

SPLIT_CSV, METADATA_CSV = "mimic-cxr-2.0.0-split.csv", "mimic-cxr-2.0.0-metadata.csv"
SPLITS = ("test", "validate", "train")
ALIASES = {"validation": "validate", "val": "validate"}
_RANK = {"PA": (0, "frontal"), "AP": (1, "frontal"), "LATERAL": (2, "lateral"), "LL": (3, "lateral")}
STEPS = ("MIMIC-CXR is credentialed: `medprobe data get mimic-cxr` prints how to get it. Then pass "
         "the MIMIC-CXR-JPG folder (the split and metadata csv.gz files, files/ with images and reports) as --data.")


def load(options: LoadOptions) -> Loaded:
    root = _root(options.data)
    split = pick_split(options.split, SPLITS, "test", ALIASES)
    section = pick_section(options, SECTIONS)
    split_csv, metadata_csv = _table(root, SPLIT_CSV), _table(root, METADATA_CSV)
    studies: dict[tuple[str, str], list[str]] = {}
    for row in _read_csv(split_csv, ("dicom_id", "study_id", "subject_id", "split")):
        if row["split"] == split:
            studies.setdefault((row["subject_id"], row["study_id"]), []).append(row["dicom_id"])
    wanted = {d for dicoms in studies.values() for d in dicoms}
    views = {r["dicom_id"]: r for r in _read_csv(metadata_csv, ("dicom_id", "ViewPosition"))
             if r["dicom_id"] in wanted}
    images = Path(options.images_dir).expanduser() if options.images_dir else root
    reports = [root, root / "mimic-cxr-reports", images]

    def convert(row: dict[str, Any]) -> Sample:
        subject, study = row["subject"], row["study"]
        folder = f"files/p{subject[:2]}/p{subject}"
        report = next((r / folder / f"s{study}.txt" for r in reports if (r / folder / f"s{study}.txt").is_file()), None)
        if report is None:
            raise RowError(f"report not found (unzip mimic-cxr-reports.zip into --data): {folder}/s{study}.txt")
        if f"s{study}" in mimic_sections.HAND_SECTIONED:
            raise RowError("sectioned by hand in the official script, which writes it no FINDINGS or IMPRESSION "
                           "(custom_mimic_cxr_rules)")
        text = report.read_text(encoding="utf-8", errors="replace")
        ordered = sorted(row["dicoms"], key=lambda d: _order(d, views.get(d, {})))
        positions = [str(views.get(d, {}).get("ViewPosition") or "").strip().upper() for d in ordered]
        refs = [ImageRef(path=f"{folder}/s{study}/{d}.jpg", root=str(images)) for d in ordered]
        indication = mimic_sections.section(text, "indication") or mimic_sections.section(text, "history")
        return report_sample(id=f"s{study}", benchmark=SPEC.name, split=split, section=section,
                             gold=clean(mimic_sections.section(text, section, f"s{study}")), images=refs,
                             views=[_RANK.get(p, (9, "other"))[1] for p in positions], indication=clean(indication),
                             meta={"study_id": f"s{study}", "patient_id": f"p{subject}",
                                   "view_positions": ",".join(p or "?" for p in positions)})

    rows = (RawRow(f"study s{study} (p{subject})", {"subject": subject, "study": study, "dicoms": dicoms})
            for (subject, study), dicoms in studies.items())
    samples, errors = collect(rows, convert, options.limit)
    prov = Provenance(benchmark=SPEC.name, source=options.data or "", sha256=files_sha256([split_csv, metadata_csv]),
                      split=split, filters={"section": section, **limit_filter(options)})
    return finish(samples, errors, prov)


def _order(dicom: str, meta: dict[str, str]) -> tuple[int, str, str, str]:
    """Frontal PA, AP, then lateral, LL, then the rest; within a view the earlier acquisition first."""
    rank = _RANK.get(str(meta.get("ViewPosition") or "").strip().upper(), (9, ""))[0]
    return rank, str(meta.get("StudyDate") or ""), str(meta.get("StudyTime") or "").zfill(13), dicom


def _root(data: str | None) -> Path:
    if not data:
        raise LoadError(STEPS)
    root = Path(data).expanduser()
    if root.is_file():
        root = root.parent  # --data pointed at one of the csv files
    if not root.is_dir():
        raise LoadError(f"No such folder: {data}. Pass the MIMIC-CXR-JPG folder (holding {SPLIT_CSV}.gz and files/) "
                        "as --data.")
    return root


def _table(root: Path, name: str) -> Path:
    found = next((root / n for n in (f"{name}.gz", name) if (root / n).is_file()), None)
    if found is None:
        raise LoadError(f"{root} has no {name}.gz (or {name}): download it from MIMIC-CXR-JPG "
                        "(https://physionet.org/content/mimic-cxr-jpg/2.1.0/) into that folder.")
    return found


def _read_csv(path: Path, columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise LoadError(f"{path.name} lacks the column(s) {', '.join(missing)}; is it the official file?")
            yield from reader
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # a truncated .gz or a file that is not gzip
        raise LoadError(f"{path} cannot be read ({exc}); download it again.") from None


SPEC = BenchmarkSpec(
    name="mimic-cxr",
    description="MIMIC-CXR-JPG report generation (credentialed): FINDINGS or IMPRESSION by the official "
                "sectioner, every view of the study (frontal first), the INDICATION in the prompt",
    load=load,
    splits=SPLITS,
    default_split="test",
    train_split="train",  # baseline/prior answers with the train split's most frequent report
    default_preset="report",  # lexical metrics that compute on every machine; rexrank etc. need model weights
    source="PhysioNet mimic-cxr-jpg 2.1.0 + mimic-cxr reports (credentialed)",
    sections=SECTIONS,
)
