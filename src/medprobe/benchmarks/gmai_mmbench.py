"""GMAI-MMBench (Chen et al., NeurIPS 2024 D&B): medical multiple choice over 38 modalities, in VLMEvalKit's TSV.

The release is VLMEvalKit's TSV layout (uni-medical/GMAI-MMBench README; VLMEvalKit
`vlmeval/dataset/image_mcq.py` GMAIMMBenchDataset): `index`, `question`, options in columns `A`-`E`
(blank where a question has fewer), `answer` (VAL only), `image` (base64; a cell of at most 64
characters is the `index` of the row holding the image, VLMEvalKit's `ImageBaseDataset`), and the
lexical-tree columns `category`, `clinical VQA task`, `department`, `perceptual granularity`,
`modality`. VLMEvalKit reports accuracy per category, clinical VQA task, department and perceptual
granularity; here they are metadata `category`, `clinical_task`, `department`, `granularity`.

* val (default): `GMAI-MMBench_VAL.tsv` (hub VLMEval/GMAI-MMBench, what VLMEvalKit downloads) or
  `GMAI_mm_bench_VAL.tsv` (OpenGVLab/GMAI-MMBench, gated).
* test: `GMAI_mm_bench_TEST_part_1.tsv` .. `_part_11.tsv` (OpenGVLab/GMAI-MMBench, gated). No answers:
  it loads and runs, no preset scores it (`types.GOLD_HIDDEN`); NO_GOLD, recorded in the provenance,
  says how the authors score it.

Cells VLMEvalKit's pandas reading takes for missing ("", "NA", "N/A", "None", "null", ...) are missing
here too, so an option spelled "None" is not offered, as in VLMEvalKit. Rows without an image are
skipped with their reason (VLMEvalKit drops them silently). GMAI-MMBench has no `hint` column; a TSV
with one keeps it as metadata, where VLMEvalKit's prompt would open with "Hint: ...".
"""

from __future__ import annotations

import base64
import binascii
import csv
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, RowError, files_sha256, read_csv
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.types import GOLD_HIDDEN, AnswerType, ImageRef, Sample

HUB_VAL, HUB_TEST = "VLMEval/GMAI-MMBench", "OpenGVLab/GMAI-MMBench"
VAL_FILES = ("GMAI-MMBench_VAL.tsv", "GMAI_mm_bench_VAL.tsv")
TEST_PARTS = tuple(f"GMAI_mm_bench_TEST_part_{i}.tsv" for i in range(1, 12))
SPLITS = ("val", "test")
NO_GOLD = ("GMAI-MMBench TEST has no answers: the authors keep them. Run it, export the replies "
           "(`medprobe export RUN --format csv`: columns id = VLMEvalKit's index, output = its prediction) and "
           "send them to the authors as the 'TEST data evaluation' section of github.com/uni-medical/GMAI-MMBench "
           "says (with model name, team name and paper link); they score it and update the leaderboard.")
# pandas.read_csv's default missing-value strings (VLMEvalKit reads every TSV with pd.read_csv)
PANDAS_NA = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
_RENAME = {"clinical VQA task": "clinical_task", "perceptual granularity": "granularity"}
_STANDARD = frozenset({"index", "question", "answer", "image", "image_path"})
_LETTER_COLUMN = re.compile(r"[A-Z]")


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, SPLITS, "val", aliases={"VAL": "val", "validation": "val", "TEST": "test"})
    files, source = _files(options.data, split)
    parts = [p.stem.rsplit("_", 1)[-1] for p in files]  # which of the 11 TEST parts were read

    def convert(row: dict[str, Any]) -> Sample:
        letters = sorted(k for k in row if _LETTER_COLUMN.fullmatch(k))
        texts = [_cell(row[c]) for c in letters]
        while texts and texts[-1] is None:
            texts.pop()
        if not texts:
            raise RowError("no options in columns A-E")
        if None in texts:  # a gap would shift every later letter
            raise RowError(f"option {letters[texts.index(None)]} is blank but a later one is not")
        gold = ""  # TEST: withheld; GOLD_HIDDEN keeps every preset from scoring it
        if split == "val":
            if "answer" not in row:
                raise RowError("no 'answer' column: is this a TEST part? Pass --split test")
            gold = (_cell(row.get("answer")) or "").strip().upper()
            if gold not in letters[: len(texts)]:
                raise RowError(f"answer {row.get('answer')!r} is not one of the option letters "
                               f"{', '.join(letters[: len(texts)])}")
        meta = {_RENAME.get(k, re.sub(r"\W+", "_", k.strip().lower())): _cell(v) for k, v in row.items()
                if k not in _STANDARD and k not in letters and not k.startswith("_")}
        meta = {k: v for k, v in meta.items() if v is not None} | {"language": "en"}
        if split == "test":
            meta[GOLD_HIDDEN] = True
        return Sample(id=row["_id"], benchmark=SPEC.name, split=split, question=str(row["question"]).strip(),
                      images=(row["image"],), options=tuple(t.strip() for t in texts), answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE, metadata=meta)

    samples, errors = collect(_with_images(_read(files)), convert, options.limit)
    filters = limit_filter(options)
    if split == "test":
        filters |= {"parts": f"{','.join(parts)} of {len(TEST_PARTS)}", "gold": NO_GOLD}
    prov = Provenance(benchmark=SPEC.name, source=source, sha256=files_sha256(files), split=split, filters=filters)
    return finish(samples, errors, prov)


def _files(data: str | None, split: str) -> tuple[list[Path], str]:
    """The TSV file(s) of `split`: from --data (a file or the folder holding them), else the hub."""
    if data is None:
        return _from_hub(split), HUB_VAL if split == "val" else HUB_TEST
    path = Path(data).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".tsv":
            raise LoadError(f"{data} is not a GMAI-MMBench TSV; pass the VLMEvalKit TSV file or its folder.")
        return [path], data
    if not path.is_dir():
        raise LoadError(f"No such file or folder: {data}. Check the path given to --data.")
    if split == "val":
        found = [path / f for f in VAL_FILES if (path / f).is_file()][:1]
    else:
        found = [path / f for f in TEST_PARTS if (path / f).is_file()]
    if not found:
        names = " or ".join(VAL_FILES) if split == "val" else "GMAI_mm_bench_TEST_part_1.tsv .. _part_11.tsv"
        raise LoadError(f"{data} holds no {names}. Download them from the hub (VAL: {HUB_VAL}; TEST: {HUB_TEST}, "
                        "gated) and pass the folder with --data.")
    return found, data


def _from_hub(split: str) -> list[Path]:
    from huggingface_hub import hf_hub_download

    repo, names = (HUB_VAL, VAL_FILES[:1]) if split == "val" else (HUB_TEST, TEST_PARTS)
    try:
        return [Path(hf_hub_download(repo, name, repo_type="dataset")) for name in names]
    except Exception as exc:  # offline, gated (TEST: accept the conditions on the dataset page), missing file
        gated = "Accept the dataset's conditions on its hub page and log in (hf auth login), or " * (split == "test")
        raise LoadError(
            f"Could not download GMAI-MMBench {split} from {repo} ({type(exc).__name__}: {exc}). {gated}download "
            f"{names[0]}{' .. ' + names[-1] if len(names) > 1 else ''} yourself and pass the folder with --data."
        ) from exc


def _read(files: list[Path]) -> Iterator[RawRow]:
    # one base64 image is one cell, far past the csv module's default 128 KiB field limit
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    for path in files:
        yield from read_csv(path)


def _cell(value: Any) -> str | None:
    """A TSV cell as VLMEvalKit's pandas sees it: None where pandas reads NaN."""
    return None if value is None or str(value) in PANDAS_NA else str(value)


def _with_images(rows: Iterable[RawRow]) -> Iterator[RawRow]:
    """Rows with `_id` and `image` as an ImageRef; a short image cell names the row holding the image.

    A row pointing at a later row waits until that row is read, so it comes after it."""
    seen: dict[str, ImageRef] = {}
    waiting: list[tuple[RawRow, str]] = []
    for row in rows:
        if row.data is None:
            yield row
            continue
        rid = _index(row.data.get("index"))
        if rid is None:
            yield RawRow(row.where, error="empty 'index'")
            continue
        row.data["_id"] = rid
        cell = _cell(row.data.get("image"))
        if cell is None:
            yield RawRow(row.where, error="no image (VLMEvalKit skips rows whose image is empty)")
        elif len(cell) <= 64:
            target = _index(cell) or cell
            if target in seen:
                row.data["image"] = seen[target]
                yield row
            else:
                waiting.append((row, target))
        else:
            try:
                data = base64.b64decode(cell)
            except (binascii.Error, ValueError) as exc:
                yield RawRow(row.where, error=f"image is not base64 ({exc})")
                continue
            row.data["image"] = seen[rid] = ImageRef(data=data, name=f"{SPEC.name} index {rid}")
            yield row
    for row, target in waiting:
        if target in seen:
            row.data["image"] = seen[target]
            yield row
        else:
            yield RawRow(row.where, error=f"image cell {target!r} names no row holding an image")


def _index(value: Any) -> str | None:
    # VLMEvalKit reads `index` as an integer column and keys predictions by str(index): "0012" is "12"
    text = str(value if value is not None else "").strip()
    if not text:
        return None
    return str(int(text)) if text.isdigit() else text


SPEC = BenchmarkSpec(
    name="gmai-mmbench",
    description="GMAI-MMBench VAL (answers) and TEST (no answers) in VLMEvalKit's TSV; per clinical task, "
                "department, perceptual granularity, category",
    load=load,
    # clinical_task, department, granularity and modality are medprobe.metrics.SUBGROUP_KEYS already;
    # VLMEvalKit's GMAIMMBenchDataset.evaluate adds them per 'clinical vqa task', 'department', 'perceptual
    # granularity' (report_acc_by_groups), and its report_acc (utils/multiple_choice.py) per 'category'
    subgroups=("category",),
    splits=SPLITS,
    default_split="val",
    prompt="vlmevalkit-mcq",
    source=f"{HUB_VAL} (val), {HUB_TEST} (test, gated)",
)
