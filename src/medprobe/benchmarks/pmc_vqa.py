"""PMC-VQA (Zhang et al., 2023): four-option questions on PubMed Central figures; accuracy.

The hub repo `xmcmic/PMC-VQA` holds, per version, CSV metafiles and an image archive:

* version 1: train.csv, test.csv, test_clean.csv and images.zip (unpacks to images/). Its README
  documents test_clean.csv as the cleaned test set, which is the default here ("test"); pass
  `--data test.csv` for the uncleaned one. Columns Figure_path, Question, Answer (the option text),
  Choice A..D ("A:text"), Answer_label (the letter).
* version 2: train_2.csv, test_2.csv and images_2.zip (unpacks to figures/). Split "test_2" reads
  test_2.csv, the set Lingshu's PMC-VQA column is scored on (MedEvalKit utils/PMC_VQA/PMC_VQA.py reads
  test_2.csv with images from figures/). Columns index, Figure_path, Caption, Question, Choice A..D
  (" A: text "), Answer (the letter), split. The caption is left out of the sample: neither the
  authors nor MedEvalKit show it to the model.
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
FILES = {"test": "test_clean.csv", "test_2": "test_2.csv", "train": "train.csv"}
#: where each version's image archive unpacks beside its CSV (first found wins): images.zip -> images/,
#: images_2.zip -> figures/ (what MedEvalKit and the hub's own examples read)
IMAGE_FOLDERS = {1: ("images",), 2: ("figures", "images_2", "images")}
LETTERS = "ABCD"


def load(options: LoadOptions) -> Loaded:
    source = options.data or HUB
    path = Path(source).expanduser()
    # `--data .../test_2.csv` without --split is the version 2 test set, not test_clean.csv's split
    split = pick_split(options.split, tuple(FILES), "test_2" if path.name == FILES["test_2"] else "test")
    if path.is_dir() and (path / FILES[split]).is_file():
        path = path / FILES[split]
    local = path.is_file() and path.suffix == ".csv"
    if options.images_dir:
        root = Path(options.images_dir).expanduser()
    elif local:  # where the version's image archive unpacks beside the CSV
        folders = [path.parent / name for name in IMAGE_FOLDERS[2 if path.stem.endswith("_2") else 1]]
        root = next((f for f in folders if f.is_dir()), folders[0])
    else:
        archive, folder = ("images_2.zip", "figures") if split == "test_2" else ("images.zip", "images")
        raise LoadError(f"PMC-VQA images are not in the CSV: download {archive} from {HUB}, unzip it and pass "
                        f"--images-dir <folder>/{folder}.")
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
        # version 1: the letter is Answer_label (Answer holds the text); version 2: Answer is the letter
        label = "Answer_label" if "Answer_label" in row else "Answer"
        gold = str(row.get(label) or "").strip().upper()
        if len(gold) != 1 or gold not in LETTERS[: len(options_)]:
            raise RowError(f"{label} {row.get(label)!r} is not one of the {len(options_)} choices")
        # no question id in the version 1 metafile: the row's position in the file is stable for a given file
        rid = str(row["index"]).strip() if str(row.get("index") or "").strip() else f"{split}-{row['_index']}"
        answer_text = options_[LETTERS.index(gold)] if label == "Answer" else row.get("Answer") or row.get("Anwser")
        meta = {"language": "en", "figure_path": row["Figure_path"], "answer_text": answer_text}
        return Sample(id=rid, benchmark=SPEC.name, split=split, question=str(row["Question"]).strip(),
                      images=(to_image_ref(str(row["Figure_path"]).strip(), root),), options=options_, answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE, metadata={k: v for k, v in meta.items() if v})

    samples, errors = collect(with_index(table.rows), convert, options.limit)
    prov = table_provenance(SPEC.name, source, table, split, options)
    return finish(samples, errors, prov)


SPEC = BenchmarkSpec(
    name="pmc-vqa",
    description="PMC-VQA four-option questions; test = test_clean.csv (images.zip), test_2 = version 2's "
                "test_2.csv (images_2.zip: figures/), the set Lingshu reports",
    load=load,
    splits=tuple(FILES),
    train_split="train",
    source=HUB,
)
