"""`medprobe export RUN --format jsonl|csv|parquet`: one row per sample and probe variant, to read in a
spreadsheet, pandas or DuckDB (VLMEvalKit's per-sample sheets and lmms-eval's `--log_samples` are the
peers).

Every format has the same flat columns, in this order:

- `id`, `parent_id`, `probe`, `variant` (empty for a clean sample), `trial`, `benchmark`, `split`,
  `answer_type`, `question`, `options`, `gold`, `images`;
- `meta.<column>`: the sample's metadata (modality, organ, ...); `variant.<key>`: the probe's own
  detail of a variant (corruption, severity, ...);
- `status` (answered, error, not_sent), `output` (the stored reply of the last turn), `reasoning` (its
  chain, from the server's field or the reply itself), `finish_reason`, `error`, `error_kind`;
- per preset P: `P.outcome` (correct, wrong, invalid; empty when the request failed or P has no
  rule for the sample), `P.score`, `P.answer` (the parsed answer), `P.parser`, `P.method` (the rule
  of the parser that found it), `P.reason` (why an answer is invalid).

Lists (options, images) are lists in JSONL and parquet, JSON text in CSV.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from medprobe import scoring
from medprobe.reasoning import split_generation
from medprobe.runs import Run
from medprobe.types import Record, Sample, VariantTag

FORMATS = ("jsonl", "csv", "parquet")
_PRESET_COLUMNS = ("outcome", "score", "answer", "parser", "method", "reason")
_SAMPLE_COLUMNS = ("id", "parent_id", "probe", "variant", "trial", "benchmark", "split", "answer_type", "question",
                   "options", "gold", "images")  # fmt: skip


def variant_of(sample: Sample) -> VariantTag | None:
    """Which probe made this sample from which parent (None for a clean sample)."""
    return sample.variant_of


def presets_of(run: Run) -> list[str]:
    """The presets the run was scored under (results.json), else every preset with a rule for its benchmark."""
    if run.results is not None:
        return [p.preset for p in run.results.presets if not p.preset.startswith("judge:")]
    return [p for p in scoring.names() if not scoring.get(p).benchmarks or run.benchmark in scoring.get(p).benchmarks]


def row(record: Record, presets: Sequence[str]) -> dict[str, Any]:
    """The export row of one record (see the module docstring for the columns)."""
    s = record.sample
    tag = variant_of(s)
    final = record.final
    status = "answered" if record.answered else "error" if record.generations else "not_sent"
    out: dict[str, Any] = {
        "id": s.id, "parent_id": tag.parent_id if tag else None, "probe": tag.probe if tag else None,
        "variant": tag.variant if tag else None, "trial": s.trial, "benchmark": s.benchmark, "split": s.split,
        "answer_type": str(s.answer_type), "question": s.question, "options": list(s.options), "gold": s.answer,
        "images": [image.describe() for image in s.images],
    }  # fmt: skip
    out.update({f"meta.{k}": v for k, v in s.metadata.items()})
    out.update({f"variant.{k}": v for k, v in (tag.detail if tag else {}).items()})
    out.update(status=status, output=final.text if final else None,
               reasoning=split_generation(final).reasoning if final and final.ok else None,
               finish_reason=final.finish_reason if final else None, error=record.error,
               error_kind=str(record.error_kind) if record.error_kind else None)  # fmt: skip
    for name in presets:
        preset = scoring.get(name)
        score = preset.score_generation(s, final) if record.answered and preset.applies(s) else None
        cells = (str(score.outcome), score.value, score.answer.value, score.parser, score.answer.method,
                 score.answer.reason) if score else (None,) * 6  # fmt: skip
        out.update({f"{name}.{column}": cell for column, cell in zip(_PRESET_COLUMNS, cells)})
    return out


def rows(run: Run, presets: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the run as an export row, streamed."""
    names = list(presets) if presets else presets_of(run)
    unknown = [p for p in names if p not in scoring.names()]
    if unknown:
        raise ValueError(f"unknown preset(s) {', '.join(unknown)}; `medprobe list` shows them.")
    for record in run.records():
        yield row(record, names)


def write(run: Run, fmt: str, out: Path | None = None, presets: Sequence[str] | None = None,
          stream: IO[str] | None = None) -> int:  # fmt: skip
    """Write the export to `out` (or to `stream`, default stdout, for jsonl and csv); returns the row count."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    if fmt == "parquet" and out is None:
        raise ValueError("parquet is a binary format: pass --out FILE.parquet (jsonl and csv can go to stdout).")
    data = rows(run, presets)
    if fmt == "parquet":
        return _parquet(list(data), out)  # type: ignore[arg-type]
    if out is None:
        return (_jsonl if fmt == "jsonl" else _csv)(data, stream or sys.stdout)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as f:
        return (_jsonl if fmt == "jsonl" else _csv)(data, f)


def _jsonl(data: Iterable[dict[str, Any]], f: IO[str]) -> int:
    n = 0
    for n, r in enumerate(data, 1):
        f.write(orjson.dumps(r).decode() + "\n")
    return n


def _columns(table: list[dict[str, Any]]) -> list[str]:
    """Every column (metadata and variant columns differ between rows): the sample's, then `meta.*`, then
    `variant.*`, then the rest, each in first-seen order."""
    seen: dict[str, None] = {}
    for r in table:
        seen.update(dict.fromkeys(r))
    def group(k: str) -> int:
        return 0 if k in _SAMPLE_COLUMNS else 1 if k.startswith("meta.") else 2 if k.startswith("variant.") else 3

    return sorted(seen, key=group)


def _csv(data: Iterable[dict[str, Any]], f: IO[str]) -> int:
    table = list(data)  # the header needs every row's columns
    writer = csv.DictWriter(f, fieldnames=_columns(table), extrasaction="raise")
    writer.writeheader()
    for r in table:
        writer.writerow({k: orjson.dumps(v).decode() if isinstance(v, list) else v for k, v in r.items()})
    return len(table)


def _parquet(table: list[dict[str, Any]], out: Path) -> int:
    import pyarrow as pa  # a dependency, but only the parquet export needs it loaded
    import pyarrow.parquet as pq

    columns = _columns(table)
    arrays = {}
    for name in columns:
        values = [r.get(name) for r in table]
        kinds = {type(v) for v in values if v is not None}
        if len(kinds) > 1 and kinds != {int, float}:
            values = [None if v is None else str(v) for v in values]  # a metadata column mixing types: text
        array = pa.array(values)
        if pa.types.is_null(array.type):  # no value in any row: still a text column
            array = array.cast(pa.string())
        elif pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type):
            array = array.cast(pa.list_(pa.string()))
        arrays[name] = array
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(arrays) if arrays else pa.table({}), out)
    return len(table)


def to_text(run: Run, fmt: str, presets: Sequence[str] | None = None) -> str:
    """The jsonl or csv export as a string (for tests and notebooks)."""
    buf = io.StringIO()
    write(run, fmt, None, presets, buf)
    return buf.getvalue()
