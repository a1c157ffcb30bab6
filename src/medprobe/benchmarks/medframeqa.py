"""MedFrameQA (Yu et al., 2025): 2,851 multiple-choice questions, each over 2-5 frames of a medical video.

The hub dataset SuhaoYu1020/MedFrameQA (parquet, one `test` split) holds per row `question_id`,
`question`, `options` (a list of option texts), `correct_answer` (the letter), the frames in
`image_1` .. `image_5` (Image columns, null past the row's last frame) and the taxonomy the paper
reports accuracy by: `system` (body system), `organ`, `keyword`, `modality`, with `video_id`
(layout as read by MedEvalKit `utils/MedFrameQA/MedFrameQA.py`). Every frame is sent, in column
order; metadata `frame_count` gives the paper's accuracy-by-frame-count rows. `reasoning_chain` (the
gold rationale) is left out of the sample so no view or probe can leak it.

The prompt set "medframeqa" is the authors' (haojinw0027/MedFrameQA `config/prompt.yaml`
eval_system_prompt / eval_prompt_template, "Answer: $LETTER" on the last line) plus one sentence
saying the images are the video's frames in order. The authors' script writes the options as a
Python list (`['A. ...', 'B. ...']`); medprobe lists one per line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import RowError, read_hf, to_image_ref, with_index
from medprobe.benchmarks.custom import collect, finish, pick_split, table_provenance
from medprobe.letters import LETTERS
from medprobe.types import AnswerType, Sample

HUB = "SuhaoYu1020/MedFrameQA"
_FRAME = re.compile(r"image_(\d+)")
_META = ("system", "organ", "keyword", "modality", "video_id")


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, ("test",), "test")
    source = options.data or HUB
    table = read_hf(source, split)
    root = Path(options.images_dir).expanduser() if options.images_dir else None

    def convert(row: dict[str, Any]) -> Sample:
        texts = row["options"]
        if not isinstance(texts, (list, tuple)) or not texts:
            raise RowError(f"'options' must be a non-empty list of option texts, not {texts!r}")
        gold = str(row["correct_answer"] or "").strip().upper()
        if gold not in LETTERS[: len(texts)]:
            raise RowError(f"correct_answer {row['correct_answer']!r} is not one of the {len(texts)} option letters")
        slots = sorted((int(m.group(1)), k) for k in row if (m := _FRAME.fullmatch(k)))
        rid = str(row.get("question_id") or "").strip() or f"{split}-{row['_index']}"
        frames = tuple(ref if ref.name else ref.model_copy(update={"name": f"{rid} {k}"})
                       for _, k in slots if (ref := to_image_ref(row[k], root)) is not None)
        if not frames:
            raise RowError(f"no frame in {', '.join(k for _, k in slots) or 'image_1 .. image_5'}")
        meta = {k: str(row[k]) for k in _META if row.get(k) not in (None, "")}
        meta |= {"frame_count": len(frames), "language": "en"}
        return Sample(id=rid, benchmark=SPEC.name, split=split, question=str(row["question"]).strip(), images=frames,
                      options=tuple(str(t).strip() for t in texts), answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE, metadata=meta)

    samples, errors = collect(with_index(table.rows), convert, options.limit)
    return finish(samples, errors, table_provenance(SPEC.name, source, table, split, options))


SPEC = BenchmarkSpec(
    name="medframeqa",
    description="MedFrameQA multi-image multiple choice, 2-5 video frames per question sent in order; "
                "by body system, organ, modality and frame count",
    load=load,
    prompt="medframeqa",
    source=HUB,
)
