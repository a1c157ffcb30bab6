"""SLAKE 1.0 (Liu et al., 2021): bilingual radiology VQA, loaded one language at a time.

PROTOCOLS.md: English and Chinese are never mixed silently, so "slake-en" and "slake-zh" are two
benchmarks filtered on `q_lang`; the English test split is 1,061 questions (416 closed, 645 open).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import (
    LoadError, Table, file_sha256, is_saved_dataset, read_file, read_hf, to_image_ref,
)
from medprobe.benchmarks.custom import collect, finish, parse_answer_type, pick_split, table_provenance
from medprobe.types import Sample

HUB = "BoKelvin/SLAKE"
SPLITS = ("test", "validation", "train")
FILES = {"test": "test.json", "validation": "validate.json", "train": "train.json"}  # release file names


def load(options: LoadOptions, lang: str) -> Loaded:
    name = f"slake-{lang}"
    split = pick_split(options.split, SPLITS, "test", aliases={"validate": "validation", "val": "validation"})
    source = options.data or HUB
    path = Path(source).expanduser()
    file = path if path.is_file() else path / FILES[split]
    if not file.is_file() and split == "validation" and (path / "validation.json").is_file():
        file = path / "validation.json"  # the hub copy renamed validate.json in 2024
    if not file.is_file() and path.is_dir() and not is_saved_dataset(path) and not any(path.rglob("*.parquet")):
        raise LoadError(f"{path} has no {FILES[split]}: pass the SLAKE release folder (test.json, validate.json, "
                        "train.json, imgs/) or one of its JSON files as --data.")
    local = file.is_file()
    if options.images_dir:
        root = Path(options.images_dir).expanduser()
    elif local:
        root = file.parent / "imgs"  # the release keeps images at imgs/xmlab<N>/source.jpg
    else:  # the hub copy (or a save_to_disk / parquet copy of it) has the questions; images come separately
        raise LoadError(f"SLAKE images are not part of {source}: download imgs.zip from the {HUB} dataset, unzip it "
                        "and pass --images-dir <folder>/imgs.")
    table = Table(read_file(file), source, sha256=file_sha256(file)) if local else read_hf(source, split)
    convert = partial(_sample, name=name, lang=lang, split=split, root=root)
    samples, errors = collect(table.rows, convert, options.limit)
    prov = table_provenance(name, source, table, split, options)
    prov = prov.model_copy(update={"filters": {"q_lang": lang, **prov.filters}})  # one language per benchmark
    return finish(samples, errors, prov)


def _sample(row: dict[str, Any], *, name: str, lang: str, split: str, root: Path) -> Sample | None:
    if row["q_lang"] != lang:
        return None
    meta = {"modality": row.get("modality"), "organ": row.get("location"), "content_type": row.get("content_type"),
            # content_type is SLAKE's question category, the analogue of VQA-RAD's question_type
            "question_type": row.get("content_type"), "language": lang, "base_type": row.get("base_type"),
            "img_name": row.get("img_name")}
    return Sample(id=str(row["qid"]), benchmark=name, split=split, question=str(row["question"]).strip(),
                  images=(to_image_ref(str(row["img_name"]), root),), answer=str(row["answer"]).strip(),
                  answer_type=parse_answer_type(row["answer_type"]),
                  metadata={k: v for k, v in meta.items() if v is not None})


def _spec(lang: str, label: str) -> BenchmarkSpec:
    return BenchmarkSpec(
        name=f"slake-{lang}",
        description=f"SLAKE 1.0, {label} questions only (q_lang == {lang!r}); images from the SLAKE release",
        load=partial(load, lang=lang),
        splits=SPLITS,
        train_split="train",
        source=HUB,
    )


SPEC_EN = _spec("en", "English")
SPEC_ZH = _spec("zh", "Chinese")
SPEC = SPEC_EN
