"""VQA-RAD (Lau et al., 2018): 2,248 radiology QA on 315 images, official JSON or the HF copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import (
    file_sha256, read_hf, read_json, to_image_ref, to_image_refs, with_index,
)
from medprobe.benchmarks.custom import (
    collect, finish, infer_answer_type, infer_prompt_type, parse_answer_type, pick_split, table_provenance,
)
from medprobe.types import Sample

HUB = "flaviagiammarino/vqa-rad"
OFFICIAL_FILES = ("VQA_RAD Dataset Public.json", "vqa_rad_public.json")
# the standard split is defined by phrase_type in the official release (PROTOCOLS.md: 451 test rows)
PHRASES = {"test": ("test_freeform", "test_para"), "train": ("freeform", "para")}


def load(options: LoadOptions) -> Loaded:
    source = options.data or HUB
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".json":
        return load_official(path, options, benchmark=SPEC.name, source=source)
    if path.is_dir() and (found := [path / f for f in OFFICIAL_FILES if (path / f).is_file()]):
        return load_official(found[0], options, benchmark=SPEC.name, source=source)
    return _load_hf(source, options)


def load_official(path: Path, options: LoadOptions, *, benchmark: str, source: str, default_split: str = "test",
                  images_root: Path | None = None) -> Loaded:
    """The official JSON layout; shared with the packaged demo (`demo.py`)."""
    split = pick_split(options.split, ("test", "train", "all"), default_split)
    root = Path(options.images_dir).expanduser() if options.images_dir else images_root or path.parent / "images"
    keep = PHRASES.get(split, PHRASES["test"] + PHRASES["train"])

    def convert(row: dict[str, Any]) -> Sample | None:
        phrase = row["phrase_type"]
        if phrase not in keep:
            return None
        meta = {"organ": row.get("image_organ"), "question_type": row.get("question_type"), "phrase_type": phrase,
                "language": "en", "image_name": row.get("image_name"), "qid_linked_id": row.get("qid_linked_id")}
        if row.get("question_rephrase") not in (None, "NULL"):
            meta["question_rephrase"] = row["question_rephrase"]
        # VQA-RAD does not label modality per question: left out rather than guessed
        return Sample(
            id=str(row["qid"]), benchmark=benchmark, question=str(row["question"]).strip(),
            split="test" if phrase in PHRASES["test"] else "train",
            images=(to_image_ref(str(row["image_name"]), root),), answer=str(row["answer"]).strip(),
            answer_type=parse_answer_type(row["answer_type"]),  # 2 rows say "CLOSED " (trailing space)
            metadata={k: v for k, v in meta.items() if v is not None},
        )

    samples, errors = collect(read_json(path), convert, options.limit)
    filters = {"phrase_type": ",".join(keep)} if split != "all" else {}
    filters |= {"limit": options.limit} if options.limit is not None else {}
    prov = Provenance(benchmark=benchmark, source=source, sha256=file_sha256(path), split=split, filters=filters)
    return finish(samples, errors, prov)


def _load_hf(source: str, options: LoadOptions) -> Loaded:
    # the HF copy: image/question/answer only, splits train/test (no phrase_type to rebuild "all" from)
    split = pick_split(options.split, ("test", "train"), "test")
    table = read_hf(source, split)
    root = Path(options.images_dir).expanduser() if options.images_dir else None

    def convert(row: dict[str, Any]) -> Sample:
        question, answer = str(row["question"]).strip(), str(row["answer"]).strip()
        # no answer_type in this copy: closed = gold yes/no for scoring; the prompt follows the question form
        return Sample(id=f"{split}-{row['_index']}", benchmark=SPEC.name, split=split, question=question,
                      images=to_image_refs(row["image"], root), answer=answer, answer_type=infer_answer_type(answer),
                      prompt_type=infer_prompt_type(question), metadata={"language": "en"})

    samples, errors = collect(with_index(table.rows), convert, options.limit)
    prov = table_provenance(SPEC.name, source, table, split, options)
    return finish(samples, errors, prov)


SPEC = BenchmarkSpec(
    name="vqa-rad",
    description="VQA-RAD radiology VQA; test = phrase_type test_freeform/test_para (451: 272 closed, 179 open)",
    load=load,
    splits=("test", "train", "all"),
    train_split="train",
    source=HUB,
)
