"""IU-Xray (Open-i, Demner-Fushman et al., 2016): chest X-ray studies with their reports, for report generation.

Two layouts are read, as users download them:

- **R2Gen** (Chen et al., EMNLP 2020; the split most papers report, train 2,069 / val 296 / test 590
  studies): `iu_xray/annotation.json` = {"train": [...], "val": [...], "test": [...]}, each entry
  {id, report, image_path, split}, and `iu_xray/images/<id>/0.png, 1.png`. `image_path` is relative to
  images/ (zhjohnchan/R2Gen modules/datasets.py IuxrayMultiImageDataset opens image_path[0] and [1]
  and stacks them in that order). The views are sent in that order and recorded as frontal, lateral,
  the layout's convention (medprobe does not check the pixels). `report` is one text per study, as R2Gen
  prepared it (its published examples are the FINDINGS text), so only --section findings applies.
- **MedEvalKit** (alibaba-damo-academy/MedEvalKit utils/IU_XRAY/IU_XRAY.py): `test.json`, a list of
  {id, image: [NLMCXR png file names], findings, impression}, with the Open-i PNGs (NLMCXR_png.tgz)
  unpacked into `images/`. `--section findings|impression` picks the gold. The release does not label
  views, so the images go in the listed order and `views` says "unlabelled". (MedEvalKit's own gold is
  "Findings: F Impression: I." in one text; medprobe scores one section at a time.)

Neither layout has an indication, so the prompt carries none. A study whose section is empty is skipped
at load with its reason; an image listed but not on disk is that study's `bad_input` error at run time
(every report is generated from all the views the layout lists, never silently from fewer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, Loaded, LoadOptions, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, RowError, file_sha256
from medprobe.benchmarks._reports import FRONTAL, LATERAL, SECTIONS, clean, pick_section, report_sample
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.types import ImageRef, Sample

R2GEN, MEDEVALKIT = "annotation.json", "test.json"
SPLITS = ("test", "val", "train")
ALIASES = {"validation": "val", "validate": "val"}
STEPS = ("IU-Xray is not on a dataset hub: `medprobe data get iu-xray` prints how to get it. Then pass "
         "the R2Gen iu_xray folder (annotation.json and images/) or MedEvalKit's (test.json and images/) as --data.")


def load(options: LoadOptions) -> Loaded:
    path = _annotation(options.data)
    images = Path(options.images_dir).expanduser() if options.images_dir else path.parent / "images"
    if not images.is_dir():
        raise LoadError(f"No images folder at {images}: unpack the study images there (images/<id>/0.png for R2Gen, "
                        "the NLMCXR PNGs for MedEvalKit), or pass --images-dir.")
    section = pick_section(options, SECTIONS)
    data = _read(path)
    if isinstance(data, dict):  # R2Gen: {"train": [...], "val": [...], "test": [...]}
        if section != "findings":
            raise LoadError(f"{path} (the R2Gen layout) holds one report text per study, not its sections; "
                            "drop --section, or use MedEvalKit's test.json layout for --section impression.")
        split, layout = pick_split(options.split, SPLITS, "test", ALIASES), "r2gen"
        if not isinstance(data.get(split), list):
            raise LoadError(f"{path} has no {split!r} list (found {sorted(data)}); R2Gen's annotation.json holds "
                            "train, val and test lists.")
        rows = _rows(data[split], f"{path.name} {split}[{{}}]")
    elif isinstance(data, list):  # MedEvalKit: [{id, image, findings, impression}, ...]
        split, layout = pick_split(options.split, ("test",), "test", ALIASES), "medevalkit"
        rows = _rows(data, f"{path.name} item {{}}")
    else:
        raise LoadError(f"{path} is neither R2Gen's annotation.json (an object of split lists) nor MedEvalKit's "
                        "test.json (a list of studies).")

    def convert(row: dict[str, Any]) -> Sample:
        listed = row.get("image_path" if layout == "r2gen" else "image")
        if not isinstance(listed, list) or not all(isinstance(p, str) and p.strip() for p in listed):
            raise RowError(f"the image list must be a list of file names, not {listed!r}")
        refs = tuple(ImageRef(path=p.strip(), root=str(images), name=p.strip()) for p in listed)
        if layout == "r2gen":
            views = [FRONTAL, LATERAL, *(f"view{i + 1}" for i in range(2, len(refs)))][: len(refs)]
            gold = clean(row["report"])
        else:
            views, gold = ["unlabelled"] * len(refs), clean(row[section])
        return report_sample(id=str(row["id"]).strip(), benchmark=SPEC.name, split=split, section=section,
                             gold=gold, images=refs, views=views, meta={"layout": layout})

    samples, errors = collect(rows, convert, options.limit)
    filters = {"layout": layout, "section": section, **limit_filter(options)}
    prov = Provenance(benchmark=SPEC.name, source=options.data or "", sha256=file_sha256(path), split=split,
                      filters=filters)
    return finish(samples, errors, prov)


def _annotation(data: str | None) -> Path:
    if not data:
        raise LoadError(STEPS)
    path = Path(data).expanduser()
    if path.is_dir():
        for folder in (path, path / "iu_xray", path / "IU_XRAY"):  # the folder the zip was unpacked into
            found = next((folder / n for n in (R2GEN, MEDEVALKIT) if (folder / n).is_file()), None)
            if found:
                return found
        raise LoadError(f"{data} holds neither annotation.json (R2Gen layout) nor test.json (MedEvalKit layout). "
                        + STEPS)
    if not path.is_file():
        raise LoadError(f"No such file or folder: {data}. Check the path given to --data.")
    return path


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path} is not valid JSON ({exc}); is the download complete?") from None


def _rows(items: list[Any], where: str) -> list[RawRow]:
    return [RawRow(where.format(i), r) if isinstance(r, dict) else RawRow(where.format(i), error="not an object")
            for i, r in enumerate(items)]


SPEC = BenchmarkSpec(
    name="iu-xray",
    description="IU-Xray (Open-i) report generation, frontal + lateral views per study; R2Gen split "
                "(annotation.json) or MedEvalKit's test.json",
    load=load,
    splits=SPLITS,
    default_split="test",
    train_split="train",  # baseline/prior answers with the train split's most frequent report
    default_preset="report",  # lexical metrics that compute on every machine; rexrank etc. need model weights
    source="R2Gen iu_xray (annotation.json + images/)",
    sections=SECTIONS,
)
