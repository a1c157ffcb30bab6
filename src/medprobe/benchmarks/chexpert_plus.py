"""CheXpert Plus (Chambon et al., 2024) report generation, credentialed (Stanford AIMI research use agreement).

The release's table `df_chexpert_plus_240401.csv` has one row per image: `path_to_image`
("train/patient42142/study5/view1_frontal.jpg"), `frontal_lateral` (Frontal / Lateral), `ap_pa`,
`deid_patient_id`, `report` and its sections `section_findings`, `section_impression`,
`section_clinical_history`, `section_history`, ... and `split` (train / valid); column names as in
Stanford-AIMI/chexpert-plus README and the release. Images are the release's PNGs (or the original
CheXpert JPGs) under --images-dir, default the csv's folder or its PNG/ subfolder; a .png copy of a
.jpg path is found by the first row and used for all.

One sample per study (the path's patient/study folder): the gold is `section_findings` (default) or
`section_impression` (--section); a study without it is skipped at load with its reason.
`section_clinical_history` (else `section_history`) is the prompt's context line. The study's images
are sent frontal first (PA, then AP, then other frontal), then lateral, then by view number.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, Loaded, LoadOptions, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, file_sha256
from medprobe.benchmarks._reports import FRONTAL, LATERAL, SECTIONS, clean, pick_section, report_sample
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.types import ImageRef, Sample

TABLE = "df_chexpert_plus_240401.csv"
SPLITS = ("valid", "train")
ALIASES = {"validation": "valid", "val": "valid", "validate": "valid"}
COLUMNS = ("path_to_image", "frontal_lateral", "split", "section_findings", "section_impression")
KEPT = (*COLUMNS, "ap_pa", "deid_patient_id", "section_clinical_history", "section_history")
_VIEW = re.compile(r"view(\d+)")
STEPS = ("CheXpert Plus is credentialed: `medprobe data get chexpert-plus` prints how to get it. Then pass "
         "the folder holding df_chexpert_plus_240401.csv as --data.")


def load(options: LoadOptions) -> Loaded:
    table = _table(options.data)
    split = pick_split(options.split, SPLITS, "valid", ALIASES)
    section = pick_section(options, SECTIONS)
    studies: dict[str, list[dict[str, str]]] = {}
    for row in _rows(table):
        if row["split"].strip().lower() == split:
            kept = {k: row.get(k) or "" for k in KEPT}  # the train split is large: hold only what a sample uses
            studies.setdefault(row["path_to_image"].rsplit("/", 1)[0], []).append(kept)
    first = next((rows[0]["path_to_image"] for rows in studies.values()), "")
    images, suffix = _images(table.parent, options.images_dir, first)

    def convert(row: dict[str, Any]) -> Sample:
        views = sorted(row["rows"], key=_order)
        paths = [_path(v["path_to_image"], suffix) for v in views]
        refs = [ImageRef(path=p, root=str(images), name=p) for p in paths]
        head = views[0]
        indication = clean(head.get("section_clinical_history")) or clean(head.get("section_history"))
        positions = ["LATERAL" if _frontal(v) is False else (v.get("ap_pa") or "").strip().upper() or "?" for v in views]
        return report_sample(id=row["study"], benchmark=SPEC.name, split=split, section=section,
                             gold=clean(head[f"section_{section}"]), images=refs,
                             views=[{True: FRONTAL, False: LATERAL}.get(_frontal(v), "other") for v in views],
                             indication=indication,
                             meta={"patient_id": head.get("deid_patient_id"), "view_positions": ",".join(positions)})

    rows = (RawRow(f"{TABLE} study {study}", {"study": study, "rows": rows}) for study, rows in studies.items())
    samples, errors = collect(rows, convert, options.limit)
    prov = Provenance(benchmark=SPEC.name, source=options.data or "", sha256=file_sha256(table), split=split,
                      filters={"section": section, **limit_filter(options)})
    return finish(samples, errors, prov)


def _frontal(row: dict[str, str]) -> bool | None:
    return {"frontal": True, "lateral": False}.get((row.get("frontal_lateral") or "").strip().lower())


def _order(row: dict[str, str]) -> tuple[int, int, int, str]:
    frontal = _frontal(row)
    group = 0 if frontal else 1 if frontal is False else 2
    position = {"PA": 0, "AP": 1}.get((row.get("ap_pa") or "").strip().upper(), 2) if frontal else 0
    number = _VIEW.search(row["path_to_image"].rsplit("/", 1)[-1])
    return group, position, int(number.group(1)) if number else 0, row["path_to_image"]


def _path(path: str, suffix: str | None) -> str:
    return str(Path(path).with_suffix(suffix)) if suffix else path


def _images(folder: Path, given: str | None, first: str) -> tuple[Path, str | None]:
    """The images root and the suffix to swap in (the PNG release for .jpg paths), judged by the first image."""
    roots = [Path(given).expanduser()] if given else [folder, folder / "PNG", folder / "png"]
    for root in roots:
        for suffix in (None, ".png", ".jpg"):
            if first and (root / _path(first, suffix)).is_file():
                return root, suffix
    return roots[0], None  # not found: each image is its study's bad_input error at run time, naming the path


def _table(data: str | None) -> Path:
    if not data:
        raise LoadError(STEPS)
    path = Path(data).expanduser()
    if path.is_dir():
        path = path / TABLE
    if not path.is_file():
        raise LoadError(f"{path} not found. Pass the folder holding {TABLE} (or the csv itself) as --data. " + STEPS)
    return path


def _rows(table: Path):
    csv.field_size_limit(sys.maxsize)  # a report is one cell
    with open(table, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise LoadError(f"{table.name} lacks the column(s) {', '.join(missing)}; is it the release's {TABLE}?")
        yield from reader


SPEC = BenchmarkSpec(
    name="chexpert-plus",
    description="CheXpert Plus report generation (credentialed): section_findings or section_impression, "
                "frontal then lateral views, the clinical history in the prompt",
    load=load,
    splits=SPLITS,
    default_split="valid",
    train_split="train",  # baseline/prior answers with the train split's most frequent report
    default_preset="report",  # lexical metrics that compute on every machine; rexrank etc. need model weights
    source=f"Stanford AIMI CheXpert Plus ({TABLE}, credentialed)",
    sections=SECTIONS,
)
