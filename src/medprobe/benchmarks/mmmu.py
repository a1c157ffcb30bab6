"""MMMU Health & Medicine (Yue et al., CVPR 2024): the five medical subjects of MMMU, multiple choice and open.

The hub dataset `MMMU/MMMU` has one config per subject, stored as `<Subject>/<split>-00000-of-00001.parquet`
with the columns id ("validation_Clinical_Medicine_3"), question, options (a string holding a Python
list, "['a', 'b']"; "[]" for open questions), explanation, image_1 .. image_7 (image structs with the
encoded bytes, null when unused), img_type, answer (a letter, or the text of an open answer),
topic_difficulty, question_type ("multiple-choice" / "open") and subfield. Splits: dev (5 per subject),
validation (30 per subject, the default) and test, whose answers are not released ("?"; the MMMU
team scores test predictions on its EvalAI server), so test loads and runs but no preset scores it.

`<image k>` in the question or an option names image_k. medprobe sends every image before the text,
in the order of the placeholders' first appearance (question, then options; images no placeholder
names follow by number) and keeps the placeholders in the text. The official LLaVA script sends
image_1 alone (`process_single_sample`); VLMEvalKit interleaves images at their placeholders for
models that accept that.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, RowError, Table, is_saved_dataset, read_hf, to_image_ref
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.letters import LETTERS
from medprobe.scoring.mmmu import SUBJECTS, aggregate
from medprobe.types import GOLD_HIDDEN, AnswerType, ImageRef, Sample

HUB = "MMMU/MMMU"
SPLITS = ("validation", "dev", "test")
KINDS = {"multiple-choice": AnswerType.MULTIPLE_CHOICE, "open": AnswerType.OPEN}
PLACEHOLDER = re.compile(r"<image (\d+)>")
MAX_IMAGES = 7
HIDDEN_NOTE = ("MMMU test answers are not released; submit the predictions (`medprobe export RUN`) to the MMMU "
               "evaluation server (EvalAI)")


def subject_of(sample_id: str) -> str:
    """The subject in an MMMU id, as the official main_eval_only.py reads it ("_".join(id.split("_")[1:-1]))."""
    return "_".join(sample_id.split("_")[1:-1])


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, SPLITS, "validation", {"val": "validation"})
    source = options.data or HUB
    tables = _tables(source, split)
    seen: set[str] = set()

    def convert(row: dict[str, Any]) -> Sample | None:
        rid = str(row["id"])
        subject = subject_of(rid)
        if subject not in SUBJECTS:
            return None  # a table holding every MMMU subject: only the medical ones are kept
        seen.add(subject)
        kind = KINDS.get(str(row["question_type"]))
        if kind is None:
            raise RowError(f"question_type {row['question_type']!r} is neither multiple-choice nor open")
        answer = str(row["answer"]).strip()
        hidden = split == "test" or answer == "?"
        texts = _options(row["options"]) if kind is AnswerType.MULTIPLE_CHOICE else ()
        if kind is AnswerType.MULTIPLE_CHOICE and not hidden and answer not in LETTERS[: len(texts)]:
            raise RowError(f"answer {answer!r} is not one of the {len(texts)} option letters")
        question = str(row["question"])
        meta = {"subject": subject, "subfield": row.get("subfield"), "topic_difficulty": row.get("topic_difficulty"),
                "img_type": row.get("img_type"), "language": "en", GOLD_HIDDEN: hidden or None}
        return Sample(id=rid, benchmark=SPEC.name, split=split, question=question,
                      images=_images(row, question, texts), options=texts, answer=answer, answer_type=kind,
                      metadata={k: v for k, v in meta.items() if v not in (None, "")})

    samples, errors = collect(_rows(tables), convert, options.limit)
    filters: dict = {"subjects": ",".join(SUBJECTS), **limit_filter(options)}
    if split == "test":
        filters["gold"] = HIDDEN_NOTE
    if options.limit is None and (missing := [s for s in SUBJECTS if s not in seen]):
        raise LoadError(f"{source} has no {split} rows of {', '.join(missing)}: MMMU Health & Medicine is all five "
                        f"subjects. Download them (e.g. `datasets.load_dataset({HUB!r}, SUBJECT)`) or drop --data.")
    prov = Provenance(benchmark=SPEC.name, source=source, sha256=_combined(t.sha256 for t in tables),
                      revision=_combined(t.revision for t in tables), split=split, filters=filters)
    return finish(samples, errors, prov)


def _tables(source: str, split: str) -> list[Table]:
    """One table per subject (the hub, or a folder mirroring it), or one table holding several subjects."""
    path = Path(source).expanduser()
    if is_saved_dataset(path) or path.suffix == ".parquet":
        return [read_hf(source, split)]
    if path.is_dir():
        missing = [s for s in SUBJECTS if not (path / s).is_dir()]
        if missing:
            raise LoadError(f"{source} has no folder {', '.join(missing)}. Pass a copy of the hub repo {HUB} (one "
                            "folder per subject holding <split>-00000-of-00001.parquet), a save_to_disk folder, "
                            "or nothing to read the hub.")
        return [read_hf(str(path / s), split) for s in SUBJECTS]
    return [read_hf(source, split, config=s) for s in SUBJECTS]


def _rows(tables: list[Table]) -> Iterator[RawRow]:
    for table in tables:
        yield from table.rows


def _combined(parts) -> str | None:
    parts = list(parts)
    if not parts or None in parts:
        return None
    return parts[0] if len(parts) == 1 else hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _options(value: Any) -> tuple[str, ...]:
    # the official construct_prompt eval()s this string; literal_eval reads the same lists without running code
    try:
        parsed = ast.literal_eval(value) if isinstance(value, str) else value
    except (ValueError, SyntaxError):
        raise RowError(f"options {str(value)[:60]!r} is not a Python list literal") from None
    if not isinstance(parsed, (list, tuple)) or not parsed:
        raise RowError(f"options {str(value)[:60]!r} is not a non-empty list")
    if len(parsed) > len(LETTERS):
        raise RowError(f"{len(parsed)} options, more than letters can name")
    return tuple(str(v) for v in parsed)


def _images(row: dict[str, Any], question: str, texts: tuple[str, ...]) -> tuple[ImageRef, ...]:
    """image_k in the order `<image k>` first appears in the question, then the options; unnamed ones after."""
    refs = {k: to_image_ref(row.get(f"image_{k}")) for k in range(1, MAX_IMAGES + 1)}
    order = list(dict.fromkeys(int(k) for text in (question, *texts) for k in PLACEHOLDER.findall(text)))
    if absent := [k for k in order if refs.get(k) is None]:
        raise RowError(f"the text names <image {absent[0]}> but image_{absent[0]} is empty")
    order += [k for k, ref in refs.items() if ref is not None and k not in order]
    return tuple(refs[k] for k in order)  # type: ignore[misc]


SPEC = BenchmarkSpec(
    name="mmmu-med",
    description="MMMU Health & Medicine: 5 subjects, multiple choice and open; validation 150, dev 25, test "
                "(answers not released: not scored)",
    load=load,
    splits=SPLITS,
    default_split="validation",
    default_preset="mmmu",
    prompt="mmmu",
    source=f"{HUB} (5 subject configs)",
    aggregate=aggregate,
)
