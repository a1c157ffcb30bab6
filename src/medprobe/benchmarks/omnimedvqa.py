"""OmniMedVQA (Hu et al., CVPR 2024): multiple choice (2-4 options) over 12 modalities and 73 source datasets.

The release (OpenGVLab/Multi-Modality-Arena; the hub copy foreverbeliever/OmniMedVQA is one zip),
unzipped as the user downloads it:

    OmniMedVQA/QA_information/Open-access/<dataset>.json        a JSON list of questions per source dataset
    OmniMedVQA/QA_information/Restricted-access/<dataset>.json  questions on images of restricted source datasets
    OmniMedVQA/Images/<dataset>/...                             `image_path`, relative to OmniMedVQA/

An image missing from Images/ (restricted sources are obtained from their owners) is that sample's
`bad_input` error at run time, never a silent skip.

Fields: question_id, dataset, question_type, modality_type, question, gt_answer, image_path, option_A ..
option_D (C and D absent on two- and three-option questions). The gold is the option's text, so the
letter is found by matching it against the options (MedEvalKit `construct_messages`: exact equality).
A gold equal to an option only after normalising case, spaces and a final full stop is matched too and
marked `gold_match: normalised` (the official scripts count such a row wrong whatever the reply); a gold
matching no option, or several, is skipped at load with its reason.
Papers differ on the subset: open-access only (MedEvalKit loads `Open-access/` alone) or every JSON of
both folders, and the same model scores 50% on one and 74% on the other (HealthGPT #33). The choice is
the split here and is recorded in `Provenance.filters["access"]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, RowError, files_sha256, read_json, to_image_ref
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.letters import LETTERS
from medprobe.types import AnswerType, Sample

HUB = "foreverbeliever/OmniMedVQA"
QA = "QA_information"
FOLDERS = {"open-access": ("Open-access",), "restricted-access": ("Restricted-access",),
           "all": ("Open-access", "Restricted-access")}
ALIASES = {"open": "open-access", "restricted": "restricted-access"}
OPTION_KEYS = ("option_A", "option_B", "option_C", "option_D")


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, tuple(FOLDERS), "open-access", ALIASES)
    root = _root(options.data)
    files: list[Path] = []
    for folder in FOLDERS[split]:
        if not (root / QA / folder).is_dir():
            why = (" This copy has no restricted-access questions: load the open-access ones (drop --split) or "
                   "add the restricted-access JSON files there." if folder == "Restricted-access" else "")
            raise LoadError(f"{root / QA / folder} does not exist, so split {split!r} cannot be loaded.{why}")
        found = sorted((root / QA / folder).glob("*.json"))
        if not found:
            raise LoadError(f"{root / QA / folder} holds no .json question files; is the zip fully unpacked?")
        files += found
    # image_path is relative to the dataset root; --images-dir names another folder holding Images/
    images = Path(options.images_dir).expanduser() if options.images_dir else root
    seen: dict[str, str] = {}

    def convert(row: dict[str, Any]) -> Sample:
        texts = _options(row)
        gold, matched = _gold_letter(str(row["gt_answer"]), texts)
        qid = str(row["question_id"])
        if qid in seen:
            raise RowError(f"question_id {qid!r} already used by {seen[qid]}")
        seen[qid] = row["_where"]
        # one file of the release ("Chest CT Scan.json") names the field `modality` on one row
        meta = {"dataset": row.get("dataset"), "modality": row.get("modality_type") or row.get("modality"),
                "question_type": row.get("question_type"), "language": "en",
                "gold_match": None if matched == "exact" else matched}
        return Sample(id=qid, benchmark=SPEC.name, split=row["_access"], question=str(row["question"]).strip(),
                      images=(to_image_ref(str(row["image_path"]), images),), options=texts, answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE, metadata={k: v for k, v in meta.items() if v})

    samples, errors = collect(_rows(files), convert, options.limit)
    filters = {"access": "+".join(f.lower() for f in FOLDERS[split]), "files": len(files), **limit_filter(options)}
    prov = Provenance(benchmark=SPEC.name, source=options.data or HUB, sha256=files_sha256(files), split=split,
                      filters=filters)
    return finish(samples, errors, prov)


def _root(data: str | None) -> Path:
    if not data:
        raise LoadError(f"OmniMedVQA ships as one zip ({HUB}, OmniMedVQA.zip): run `medprobe data get omnimedvqa "
                        "--to data/` (or download and unzip it), then pass --data data/OmniMedVQA.")
    path = Path(data).expanduser()
    if path.name == QA and path.is_dir():
        path = path.parent  # --data pointed at QA_information/: image paths are relative to its parent
    elif path.is_dir() and not (path / QA).is_dir():
        inner = [d for d in path.iterdir() if (d / QA).is_dir()]
        path = inner[0] if len(inner) == 1 else path  # the folder the zip was unpacked into
    if not (path / QA).is_dir():
        raise LoadError(f"{data} has no {QA}/ folder. Pass the unzipped OmniMedVQA folder (the one holding "
                        f"{QA}/ and Images/) as --data.")
    return path


def _rows(files: list[Path]) -> Iterator[RawRow]:
    for path in files:
        for row in read_json(path):
            where = f"{path.parent.name}/{row.where}"  # "Open-access/ACRIMA.json item 3"
            if row.data is not None:
                row.data.update(_access=path.parent.name.lower(), _where=where)
            yield RawRow(where, row.data, row.error)


def _options(row: dict[str, Any]) -> tuple[str, ...]:
    values = [row.get(k) for k in OPTION_KEYS]
    while values and values[-1] is None:
        values.pop()
    if None in values:  # a gap would shift every later letter
        raise RowError(f"{OPTION_KEYS[values.index(None)]} is missing but a later option is present")
    texts = tuple(str(v).strip() for v in values)
    if len(texts) < 2 or "" in texts:
        raise RowError(f"needs at least two non-empty options, has {list(texts)}")
    return texts


def _norm(text: str) -> str:
    # case, spacing and a trailing full stop only: "No, It's normal." vs "No, it's normal"
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip().casefold()


def _gold_letter(gold: str, texts: tuple[str, ...]) -> tuple[str, str]:
    """(letter, how it matched): the option equal to gt_answer, else equal after `_norm`; one, or the row is skipped."""
    for how, key in (("exact", str.strip), ("normalised", _norm)):
        hits = [i for i, t in enumerate(texts) if key(t) == key(gold)]
        if len(hits) == 1:
            return LETTERS[hits[0]], how
        if len(hits) > 1:
            raise RowError(f"gt_answer {gold!r} matches {len(hits)} options ({', '.join(LETTERS[i] for i in hits)})")
    raise RowError(f"gt_answer {gold!r} matches none of the options {list(texts)}")


SPEC = BenchmarkSpec(
    name="omnimedvqa",
    description="OmniMedVQA multiple choice; open-access (default) or all (+ restricted-access); gold letter "
                "found by matching gt_answer to the options",
    load=load,
    splits=tuple(FOLDERS),
    default_split="open-access",
    source=f"{HUB} (OmniMedVQA.zip)",
)
