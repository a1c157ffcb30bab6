"""PMC-VQA (Zhang et al., 2023): four-option questions on PubMed Central figures; accuracy.

The hub repo `xmcmic/PMC-VQA` holds CSV metafiles (train.csv, test.csv, test_clean.csv) and
images.zip. Its README documents test_clean.csv as the cleaned test set, which is the default
here ("test"); pass `--data test.csv` for the uncleaned one. Choices are stored as "A:text".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import (
    LoadError, RowError, Table, file_sha256, read_csv, read_hf, to_image_ref, with_index,
)
from medprobe.benchmarks.custom import collect, finish, table_provenance, pick_split
from medprobe.types import AnswerType, Sample

HUB = "xmcmic/PMC-VQA"
FILES = {"test": "test_clean.csv", "train": "train.csv"}
LETTERS = "ABCD"


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, tuple(FILES), "test")
    source = options.data or HUB
    path = Path(source).expanduser()
    if path.is_dir() and (path / FILES[split]).is_file():
        path = path / FILES[split]
    local = path.is_file() and path.suffix == ".csv"
    if options.images_dir:
        root = Path(options.images_dir).expanduser()
    elif local:
        root = path.parent / "images"  # where images.zip unpacks beside the CSV
    else:
        raise LoadError(f"PMC-VQA images are not in the CSV: download images.zip from {HUB}, unzip it and pass "
                        "--images-dir <folder>/images.")
    if local:
        table = Table(read_csv(path), source, sha256=file_sha256(path))
    else:
        table = read_hf(source, split, data_files={split: FILES[split]} if source == HUB else None)

    def convert(row: dict[str, Any]) -> Sample:
        # "Choice B" holds "B:Focal uptake pattern": drop only that column's own letter prefix
        texts = [re.sub(rf"^\s*{c}\s*:\s*", "", str(row.get(f"Choice {c}") or ""), count=1).strip() for c in LETTERS]
        while texts and not texts[-1]:
            texts.pop()
        if "" in texts:  # a gap would shift every later letter
            raise RowError(f"empty 'Choice {LETTERS[texts.index('')]}' before a filled one")
        options_ = tuple(texts)
        gold = str(row["Answer_label"]).strip().upper()
        if len(gold) != 1 or gold not in LETTERS[: len(options_)]:
            raise RowError(f"Answer_label {row['Answer_label']!r} is not one of the {len(options_)} choices")
        # no question id in the metafile: the row's position in the file is stable for a given file
        rid = str(row["index"]).strip() if str(row.get("index") or "").strip() else f"{split}-{row['_index']}"
        answer_text = row.get("Answer") or row.get("Anwser")  # the README spells it both ways
        meta = {"language": "en", "figure_path": row["Figure_path"], "answer_text": answer_text}
        return Sample(id=rid, benchmark=SPEC.name, split=split, question=str(row["Question"]).strip(),
                      images=(to_image_ref(str(row["Figure_path"]).strip(), root),), options=options_, answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE, metadata={k: v for k, v in meta.items() if v})

    samples, errors = collect(with_index(table.rows), convert, options.limit)
    prov = table_provenance(SPEC.name, source, table, split, options)
    return finish(samples, errors, prov)


SPEC = BenchmarkSpec(
    name="pmc-vqa",
    description="PMC-VQA four-option questions; test = test_clean.csv (images from images.zip via --images-dir)",
    load=load,
    splits=tuple(FILES),
    train_split="train",
    source=HUB,
)
