"""MedXpertQA multimodal (Zuo et al., 2025): five-option expert questions, zero-shot chain of thought.

The official evaluation asks for reasoning, then a second turn "Therefore, among A through E, the
answer is" and takes the first letter A-E after it (PROTOCOLS.md); the runner implements that
under the prompt set "medxpertqa-cot". The question text already lists "Answer Choices: (A) ...",
so samples carry `options_in_question: True` and prompts must not list the options again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import LoadError, RowError, Table, file_sha256, read_file, read_hf, to_image_ref
from medprobe.benchmarks.custom import collect, finish, table_provenance, pick_split
from medprobe.types import AnswerType, Sample

HUB, CONFIG = "TsinghuaC3I/MedXpertQA", "MM"
FILE = "medxpertqa_mm_input.jsonl"  # the official repo's test questions (2,000)


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, ("test", "dev"), "test")
    source = options.data or HUB
    path = Path(source).expanduser()
    if path.is_dir() and (path / FILE).is_file():
        path = path / FILE
    local = path.is_file() and path.suffix in (".jsonl", ".json")
    if options.images_dir:
        root = Path(options.images_dir).expanduser()
    elif local:
        root = path.parent / "images"
    else:  # the hub rows name their images; the pixels ship separately in images.zip
        raise LoadError(f"MedXpertQA images are not in the question rows: download images.zip from {HUB}, unzip "
                        "it and pass --images-dir <folder>/images.")
    if local and split != "test":
        raise LoadError(f"{path.name} holds the test questions; drop --split or point --data at the {split} file.")
    if local:
        table = Table(read_file(path), source, sha256=file_sha256(path))
    else:
        table = read_hf(source, split, config=CONFIG)

    def convert(row: dict[str, Any]) -> Sample:
        options_ = _options(row["options"])
        label = row["label"][0] if isinstance(row["label"], list) and row["label"] else row["label"]
        gold = str(label).strip().upper()
        if len(gold) != 1 or not "A" <= gold < chr(65 + len(options_)):
            raise RowError(f"label {row['label']!r} is not one of the {len(options_)} option letters")
        images = tuple(to_image_ref(_image_value(v), root) for v in row.get("images") or ())
        meta = {"medical_task": row.get("medical_task"), "body_system": row.get("body_system"),
                "question_type": row.get("question_type"), "language": "en", "options_in_question": True}
        return Sample(id=str(row["id"]), benchmark=SPEC.name, split=split, question=str(row["question"]).strip(),
                      images=tuple(i for i in images if i is not None), options=options_, answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE,
                      metadata={k: v for k, v in meta.items() if v is not None})

    samples, errors = collect(table.rows, convert, options.limit)
    prov = table_provenance(SPEC.name, source, table, split, options)
    return finish(samples, errors, prov)


def _options(value: Any) -> tuple[str, ...]:
    # the repo's JSONL has [{"letter": "A", "content": ...}]; the hub copy has {"A": ..., "B": ...}
    if isinstance(value, dict):
        pairs = sorted((str(k), str(v)) for k, v in value.items() if v is not None)
    else:
        pairs = sorted((str(o["letter"]), str(o["content"])) for o in value)
    if [k for k, _ in pairs] != [chr(65 + i) for i in range(len(pairs))]:
        raise RowError(f"option letters {[k for k, _ in pairs]} are not A, B, C, ... in order")
    return tuple(text.strip() for _, text in pairs)


def _image_value(value: Any) -> Any:
    return value["image_path"] if isinstance(value, dict) and "image_path" in value else value


SPEC = BenchmarkSpec(
    name="medxpertqa-mm",
    description="MedXpertQA multimodal, 2,000 five-option questions; two-turn zero-shot CoT, split by question_type",
    load=load,
    splits=("test", "dev"),
    prompt="medxpertqa-cot",
    source=f"{HUB} ({CONFIG})",
)
