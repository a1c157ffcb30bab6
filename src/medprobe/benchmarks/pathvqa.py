"""PathVQA (He et al., 2020): pathology VQA from the HF copy `flaviagiammarino/path-vqa`.

PROTOCOLS.md: 6,719 test questions; closed = gold in {yes, no}. That rule reads the gold, so it
decides `answer_type` (scoring) only; `prompt_type` comes from the question's form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import read_hf, to_image_refs, with_index
from medprobe.benchmarks.custom import collect, finish, table_provenance, infer_answer_type, infer_prompt_type, pick_split
from medprobe.types import Sample

HUB = "flaviagiammarino/path-vqa"
SPLITS = ("test", "validation", "train")


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, SPLITS, "test", aliases={"val": "validation"})
    source = options.data or HUB
    table = read_hf(source, split)
    root = Path(options.images_dir).expanduser() if options.images_dir else None

    def convert(row: dict[str, Any]) -> Sample:
        # the HF copy has no question id: the row's position in its split is stable for a given revision
        question, answer = str(row["question"]).strip(), str(row["answer"]).strip()
        return Sample(id=f"{split}-{row['_index']}", benchmark=SPEC.name, split=split, question=question,
                      images=to_image_refs(row["image"], root), answer=answer,
                      answer_type=infer_answer_type(answer), prompt_type=infer_prompt_type(question),
                      metadata={"modality": "pathology", "language": "en"})

    samples, errors = collect(with_index(table.rows), convert, options.limit)
    prov = table_provenance(SPEC.name, source, table, split, options)
    return finish(samples, errors, prov)


SPEC = BenchmarkSpec(
    name="pathvqa",
    description="PathVQA pathology VQA (test 6,719); closed = gold yes/no for scoring, prompt from question form",
    load=load,
    splits=SPLITS,
    train_split="train",
    source=HUB,
)
