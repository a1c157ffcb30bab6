"""ProbMed (Yan et al., 2024; eric-ai-lab/ProbMed): 57,132 yes/no questions on 6,303 images, each
ground-truth question paired with an adversarial twin about a hallucinated attribute (answer "no").

Format (the hub dataset `rippleripple/ProbMed`, `test/test.json` beside its images, and the
`probmed.json` that eval/calculate_score.py reads): a JSON list of rows with `id` (the image),
`image` (path relative to the file), `image_type` ("<modality> - <organ>"), `question`, `answer`
("yes"/"no") and `qa_type`. qa_type names the question type by substring: "modality" and
"body_part" (a gt + adversarial pair each), exactly "abnormality" (one question), "entity" and
"grounding" ("..._gt_<k>" followed by its adversarial twin ending in the same "_<k>"; a lone
"entity_hallu" when the image has no abnormality). Rows of one image are consecutive.

Scoring: presets `probmed` (the official answer quirk) and `probmed-strict`; the image-group
metrics and the count-weighted aggregation come from `medprobe.scoring.probmed.aggregate`.
"""

from __future__ import annotations

from pathlib import Path

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import RowError, Table, file_sha256, read_hf, read_json, to_image_ref, with_index
from medprobe.benchmarks.custom import collect, finish, table_provenance, pick_split
from medprobe.scoring.probmed import aggregate, question_type
from medprobe.types import AnswerType, Sample

HUB = "rippleripple/ProbMed"
FILES = ("test.json", "probmed.json", "test/test.json")


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, ("test",), "test")
    source = options.data or HUB
    path = Path(source).expanduser()
    if path.is_dir():
        path = next((path / f for f in FILES if (path / f).is_file()), path)
    if path.is_file():  # image paths in the file are relative to it
        table = Table(read_json(path), source, sha256=file_sha256(path))
        root = Path(options.images_dir).expanduser() if options.images_dir else path.parent
    else:  # a hub copy carries the images in its rows
        table = read_hf(source, split)
        root = Path(options.images_dir).expanduser() if options.images_dir else None

    def convert(row: dict) -> Sample:
        try:
            image_id, qa_type, answer = str(row["id"]), str(row["qa_type"]), str(row["answer"]).strip().lower()
        except KeyError as exc:
            raise RowError(f"missing field {exc}") from None
        if answer not in ("yes", "no"):
            raise RowError(f"answer {row['answer']!r} is not yes or no")
        kind = question_type(qa_type)
        if kind is None:
            raise RowError(f"qa_type {qa_type!r} names none of modality, body_part, abnormality, entity, grounding")
        image = to_image_ref(row.get("image"), root)
        modality, _, organ = str(row.get("image_type", "")).partition(" - ")
        meta = {"image_id": image_id, "qa_type": qa_type, "question_type": kind, "image_type": row.get("image_type"),
                "modality": modality or None, "organ": organ or None, "row": row["_index"], "language": "en"}
        return Sample(id=f"{image_id}/{row['_index']}", benchmark=SPEC.name, split=split,
                      question=str(row["question"]).strip(), images=(image,) if image else (), answer=answer,
                      answer_type=AnswerType.CLOSED, metadata={k: v for k, v in meta.items() if v is not None})

    samples, errors = collect(with_index(table.rows), convert, options.limit)
    prov = table_provenance(SPEC.name, source, table, split, options)
    return finish(samples, errors, prov)


SPEC = BenchmarkSpec(
    name="probmed",
    description="ProbMed yes/no probing: ground-truth + adversarial pairs per image; count-weighted category scores",
    load=load,
    default_preset="probmed",
    prompt="probmed",
    source=HUB,
    aggregate=aggregate,
)
