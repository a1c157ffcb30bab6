"""A benchmark from the user's own file, plus the row-to-Sample rules every loader shares.

A custom file has columns `id`, `image`, `question`, `answer`, optional `answer_type` (closed, open,
multiple_choice, or report: the answer is then a reference report, the question its clinical context) and
`options`; every other column becomes metadata. A mapping file (JSON, or YAML when PyYAML is
installed) renames columns, maps answer-type values, filters rows and names splits:

    {"columns": {"id": "question_id", "image": "img_path", "organ": "location"},
     "answer_type_values": {"yes/no": "closed"}, "filters": {"q_lang": "en"},
     "split": {"column": "phrase_type", "values": {"test": ["test_freeform", "test_para"]}}}
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from medprobe.benchmarks._base import LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import (
    LoadError, RawRow, RowError, Table, file_sha256, is_saved_dataset, read_file, read_hf, read_image_folder, to_image_refs,
)
from medprobe.letters import LETTERS, MAX_OPTIONS
from medprobe.medimage.view import COLUMNS as VIEW_COLUMNS, with_row_view
from medprobe.types import AnswerType, ImageView, Sample, Scalar

REQUIRED = ("id", "image", "question", "answer")
MAX_QUESTION_CHARS = 100_000
STANDARD = (*REQUIRED, "answer_type", "options")
ANSWER_TYPES = {"closed": AnswerType.CLOSED, "open": AnswerType.OPEN, "multiple_choice": AnswerType.MULTIPLE_CHOICE,
                "multiple-choice": AnswerType.MULTIPLE_CHOICE, "multiple choice": AnswerType.MULTIPLE_CHOICE,
                "mc": AnswerType.MULTIPLE_CHOICE,
                # the gold is a reference report (or section): scored by the report presets' text metrics
                "report": AnswerType.REPORT, "report_generation": AnswerType.REPORT}
# English questions opening with an auxiliary verb expect yes/no (or a choice between named items)
_AUX = ("is are am was were do does did can could has have had will would should shall may might must").split()
_CLOSED_STARTS = frozenset(_AUX + [w + "n't" for w in _AUX] + ["can't", "won't", "shan't"])


def infer_prompt_type(question: str) -> AnswerType:
    """Closed or open from the question's form alone, so the prompt never peeks at the gold."""
    words = re.findall(r"[a-z']+", question.lower())
    if words and words[0] in _CLOSED_STARTS:
        return AnswerType.CLOSED
    if question.strip().rstrip("?？ ").endswith("吗"):  # Chinese yes/no questions end in 吗 (SLAKE-zh)
        return AnswerType.CLOSED
    return AnswerType.OPEN


def infer_answer_type(gold: str) -> AnswerType:
    """Closed iff the gold is yes/no: the PathVQA rule, also used for copies without answer_type."""
    return AnswerType.CLOSED if gold.strip().lower() in ("yes", "no") else AnswerType.OPEN


def parse_answer_type(value: Any, aliases: dict[str, AnswerType] | None = None) -> AnswerType | None:
    """A dataset's answer-type value ("CLOSED ", "Open", "mc") as an AnswerType; None when empty."""
    text = "" if value is None else str(value).strip().lower()
    if not text:
        return None
    found = (aliases or {}).get(text) or ANSWER_TYPES.get(text)
    if found is None:
        raise RowError(f"unknown answer_type {value!r}; use closed/open/multiple_choice/report or map it with "
                       '"answer_type_values" in a --mapping file')
    return found


def parse_options(value: Any) -> tuple[str, ...]:
    """Option texts from a list, a {letter: text} dict, or a JSON string of either."""
    if isinstance(value, str):
        if not value.strip():
            return ()
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError(f"options {value[:60]!r} is not a JSON list; write it like [\"CT\", \"MRI\"]") from None
    if isinstance(value, dict):
        value = [value[k] for k in sorted(value)]
    if not isinstance(value, (list, tuple)):
        raise RowError(f"options must be a list, not {type(value).__name__}")
    if len(value) > MAX_OPTIONS:  # labels stop at ZZ (medprobe.letters)
        raise RowError(f"{len(value)} options, over the {MAX_OPTIONS} that option letters A-ZZ can name; "
                       "shorten the list")
    return tuple(str(v).strip() for v in value)


def gold_letter(answer: str, options: tuple[str, ...]) -> str:
    """The gold as an option letter: given as a letter ("B", "(B)", "b.", "AA" past Z) or as one option's text."""
    letters = LETTERS[: len(options)]
    m = re.fullmatch(r"\(?([A-Za-z]{1,2})[).:]?", answer.strip())
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    hits = [letters[i] for i, o in enumerate(options) if o.strip().lower() == answer.strip().lower()]
    if len(hits) == 1:
        return hits[0]
    raise RowError(f"answer {answer!r} is neither a letter {letters[0]}-{letters[-1]} nor one of the options")


def pick_split(requested: str | None, splits: tuple[str, ...], default: str,
               aliases: dict[str, str] | None = None) -> str:
    """The split to load, validated against the benchmark's splits."""
    split = (aliases or {}).get(requested or default, requested or default)
    if split not in splits:
        raise LoadError(f"Unknown split {requested!r}; this benchmark has {', '.join(splits)}.")
    return split


def collect(rows: Iterable[RawRow], convert: Callable[[dict[str, Any]], Sample | None],
            limit: int | None = None) -> tuple[list[Sample], list[str]]:
    """Convert rows to samples (None = filtered out), keeping one message per unusable row."""
    samples: list[Sample] = []
    errors: list[str] = []
    for row in rows:
        if limit is not None and len(samples) >= limit:
            break
        if row.data is None:
            errors.append(f"{row.where}: {row.error}")
            continue
        try:
            sample = convert(row.data)
        except RowError as exc:
            errors.append(f"{row.where}: {exc}")
            continue
        except ValidationError as exc:
            why = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            errors.append(f"{row.where}: {why}")
            continue
        except KeyError as exc:  # a built-in layout's field is absent from this row
            errors.append(f"{row.where}: missing field {exc.args[0]!r}; is this the benchmark's official layout?")
            continue
        except LoadError:
            raise
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            # a value of a shape no rule expected (a number where a list goes, ...): this row's problem only
            errors.append(f"{row.where}: unusable value ({type(exc).__name__}: {exc}); check the row's columns")
            continue
        if sample is not None and (bad := unencodable(row.data)) is not None:
            errors.append(f"{row.where}: {bad}")
            continue
        if sample is not None:
            samples.append(sample)
    # a message may quote the bad text itself; the manifest must still be writable
    return samples, [e.encode("utf-8", "backslashreplace").decode("utf-8") for e in errors]


_SURROGATE = re.compile("[\ud800-\udfff]")


def unencodable(value: Any, where: str = "") -> str | None:
    """Why `value` (a row, walked through dicts and lists) holds text no UTF-8 encoder accepts, or None.

    A lone surrogate ("\\ud800" in a JSON file: half of a UTF-16 pair, e.g. an emoji cut in two) is not a
    character. Python reads it, but it cannot be written to records.sqlite, a request key or a request
    body, so the row is skipped here with its reason rather than evaluated with altered text (replacing it
    with U+FFFD would change the question behind the user's back).
    """
    if isinstance(value, str):
        if value.isascii() or (m := _SURROGATE.search(value)) is None:
            return None
        return (f"{where or 'a value'} holds a lone surrogate {m.group()!r} at character {m.start() + 1}, which "
                "is not valid Unicode (an escape cut in half?); fix the text in the file")
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is str and key.isascii() and (type(item) is not str or item.isascii()) and not isinstance(
                    item, (dict, list, tuple)):
                continue  # the common cell, plain text or a number: nothing to report (fast path; load of 100k rows)
            name = str(key).encode("utf-8", "backslashreplace").decode()
            if (bad := unencodable(key, "a column name") or unencodable(item, where or f"column {name!r}")) is not None:
                return bad
    elif isinstance(value, (list, tuple)):
        return next((bad for item in value if (bad := unencodable(item, where)) is not None), None)
    return None


def limit_filter(options: LoadOptions) -> dict:
    return {"limit": options.limit} if options.limit is not None else {}


def table_provenance(benchmark: str, source: str, table: Table, split: str, options: LoadOptions) -> Provenance:
    """Provenance of rows read from `table`: the source as given, its sha256 or hub revision, split, limit."""
    return Provenance(benchmark=benchmark, source=source, sha256=table.sha256, revision=table.revision, split=split,
                      filters=limit_filter(options))


def finish(samples: list[Sample], errors: list[str], provenance: Provenance) -> Loaded:
    """Check the samples (some, unique ids) and bundle them with their provenance."""
    if not samples:
        why = f" First problems: {'; '.join(errors[:3])}" if errors else ""
        raise LoadError(f"No usable rows in {provenance.source} for split {provenance.split!r}"
                        f"{' with filters ' + str(provenance.filters) if provenance.filters else ''}.{why}")
    dupes = [k for k, n in Counter(s.id for s in samples).items() if n > 1]
    if dupes:
        raise LoadError(f"{provenance.source}: {len(dupes)} id(s) appear more than once: {', '.join(dupes[:10])}"
                        f"{' ...' if len(dupes) > 10 else ''}. Ids must be unique: fix the file, or map "
                        'another column with --mapping {"columns": {"id": "<unique column>"}}.')
    return Loaded(samples, provenance.model_copy(update={"rows": len(samples)}), errors)


class SplitRule(BaseModel):
    """Which column names each row's split, and which of its values make up each split."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    column: str
    values: dict[str, list[str]] = {}  # split name -> column values; empty: the value is the split name
    default: str = "all"


class Mapping(BaseModel):
    """A custom benchmark's mapping file: medprobe name -> the file's column name, and row rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    columns: dict[str, str] = {}
    answer_type_values: dict[str, AnswerType] = {}
    filters: dict[str, Scalar | list[Scalar]] = {}
    split: str | SplitRule | None = None

    @field_validator("answer_type_values", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        return {str(k).strip().lower(): ANSWER_TYPES.get(str(t).strip().lower(), t) for k, t in v.items()}


def read_mapping(path: str | Path) -> Mapping:
    """Parse and validate a mapping file, with errors that say what to change."""
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"Mapping file not found: {path}.")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise LoadError(f"{path} is YAML but PyYAML is not installed: pip install pyyaml, "
                            "or write the mapping as JSON.") from None
        parse, errors = yaml.safe_load, (yaml.YAMLError,)  # safe_load: plain names and scalars, never code
    else:
        parse, errors = json.loads, (json.JSONDecodeError,)
    try:
        raw = parse(text)
    except errors as exc:
        raise LoadError(f"Mapping file {path} cannot be parsed: {exc}.") from None
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors())
        raise LoadError(f"Mapping file {path} is invalid ({problems}). Expected keys: name, columns "
                        '({"id": "<your column>", ...}), answer_type_values, filters, split.') from None


def load_custom(path: str, options: LoadOptions) -> Loaded:
    """Load a user's file or folder as a benchmark."""
    p = Path(path).expanduser()
    mapping = read_mapping(options.mapping) if options.mapping else Mapping()
    fixed_split = mapping.split if isinstance(mapping.split, str) else "test"
    sha256 = revision = None
    if p.is_file():
        rows, root, sha256 = read_file(p), p.parent, file_sha256(p)
    elif is_saved_dataset(p) or (p.is_dir() and any(p.rglob("*.parquet"))):
        fixed_split = options.split if options.split not in (None, "all") else fixed_split
        table = read_hf(str(p), fixed_split)  # the split picks the HF split / parquet files
        rows, root, sha256, revision = table.rows, p, table.sha256, table.revision
    elif p.is_dir():
        rows, root = read_image_folder(p), p
    else:
        raise LoadError(f"No such file or folder: {path}.")
    root = Path(options.images_dir).expanduser() if options.images_dir else root
    first, rows = _peek(rows)
    rule = mapping.split if isinstance(mapping.split, SplitRule) else None
    if rule is None and mapping.split is None and first is not None and "split" in first:
        rule = SplitRule(column="split")  # a "split" column splits the file without a mapping
    wanted = options.split or (rule.default if rule else fixed_split)
    if rule is None and wanted not in (fixed_split, "all"):
        raise LoadError(f"{path} holds one split ({fixed_split!r}) and no split column; drop --split, or add a "
                        'column "split" (or a --mapping "split" rule) to choose rows.')
    col = {f: mapping.columns.get(f, f) for f in STANDARD}
    filters = {mapping.columns.get(k, k): v for k, v in mapping.filters.items()}
    if first is not None:
        _check_columns(path, first, col, filters, rule)
    name = mapping.name or p.stem
    rename = {src: dst for dst, src in mapping.columns.items() if dst not in STANDARD}

    def convert(row: dict[str, Any]) -> Sample | None:
        for key, want in filters.items():
            allowed = want if isinstance(want, list) else [want]
            if str(row.get(key, "")).strip() not in {str(a) for a in allowed}:
                return None
        split = fixed_split
        if rule is not None:
            value = str(row.get(rule.column, "")).strip()
            split = next((s for s, vals in rule.values.items() if value in vals), value) or "unknown"
            if wanted != "all" and split != wanted:
                return None
        return _sample(row, col, rename, mapping, name=name, split=split, root=root, view=options.view,
                       dicom_tags=options.dicom_tags, allow_outside_root=options.allow_outside_root)

    samples, errors = collect(rows, convert, options.limit)
    flat = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in mapping.filters.items()}
    if options.limit is not None:
        flat["limit"] = options.limit
    if options.view is not None:  # a new window is a different run, not a resume of this one
        flat.update({f"view.{k}": v for k, v in options.view.model_dump(exclude_none=True).items()})
    prov = Provenance(benchmark=name, source=path, sha256=sha256, revision=revision, split=wanted, filters=flat)
    return finish(samples, errors, prov)


def _peek(rows: Iterator[RawRow]) -> tuple[dict[str, Any] | None, Iterator[RawRow]]:
    """The first readable row's data, and the rows again with nothing consumed."""
    seen: list[RawRow] = []
    for row in rows:
        seen.append(row)
        if row.data is not None:
            return row.data, chain(seen, rows)
    return None, iter(seen)


def _check_columns(path: str, row: dict[str, Any], col: dict[str, str], filters: dict,
                   rule: SplitRule | None) -> None:
    # checked on the first row only: later rows missing a value become per-row errors
    for field in REQUIRED:
        if col[field] not in row:
            raise LoadError(
                f"{path}: column {col[field]!r} not found (medprobe needs {field!r}). Columns found: "
                f"{', '.join(sorted(row))}. Rename the column in the file, or pass --mapping FILE.json with "
                f'{{"columns": {{"{field}": "<your column>"}}}}.'
            )
    for key in [*filters, *([rule.column] if rule else [])]:
        if key not in row:
            raise LoadError(f"{path}: filter/split column {key!r} not found. "
                            f"Columns found: {', '.join(sorted(row))}.")


def _sample(row: dict[str, Any], col: dict[str, str], rename: dict[str, str], mapping: Mapping, *,
            name: str, split: str, root: Path, view: ImageView | None = None, dicom_tags: tuple[str, ...] = (),
            allow_outside_root: bool = False) -> Sample:
    values = {f: row.get(col[f]) for f in STANDARD}
    for field in REQUIRED:
        if values[field] is None or isinstance(values[field], str) and not values[field].strip():
            raise RowError(f"empty {col[field]!r}")
    images = to_image_refs(values["image"], root)
    try:  # DICOM/NIfTI rendering: the row's window/slice/montage/plane columns over the CLI defaults
        images = with_row_view(images, row, view)
    except ValueError as exc:
        raise RowError(f"{exc}; fix the cell (or the --window/--slice/--montage/--plane flag)") from None
    if not images:
        raise RowError(f"no image in {col['image']!r}")
    question, answer = str(values["question"]).strip(), str(values["answer"]).strip()
    if len(question) > MAX_QUESTION_CHARS:  # an untrusted file must not make every request huge and costly
        raise RowError(f"question is {len(question):,} characters, over the {MAX_QUESTION_CHARS:,} limit; "
                       "shorten it or check the question column")
    options = parse_options(values["options"]) if values["options"] is not None else ()
    answer_type = parse_answer_type(values["answer_type"], mapping.answer_type_values)
    prompt_type = None
    if answer_type is None and options:
        answer_type = AnswerType.MULTIPLE_CHOICE
    elif answer_type is None:
        # derived from the gold for scoring only; the prompt follows the question's form
        answer_type, prompt_type = infer_answer_type(answer), infer_prompt_type(question)
    if answer_type is AnswerType.MULTIPLE_CHOICE:
        if not options:
            raise RowError("answer_type is multiple_choice but the row has no options")
        answer = gold_letter(answer, options)
    used = {col[f] for f in STANDARD} | set(VIEW_COLUMNS)
    metadata = {rename.get(k, k): _scalar(v) for k, v in row.items() if k not in used and _keep(v)}
    if dicom_tags:  # only fields the user allowed, from a closed list of non-identifying ones; the row wins
        from medprobe.medimage import tags

        metadata = {**tags.read(images[0], dicom_tags, allow_outside_root), **metadata}
    return Sample(id=str(values["id"]).strip(), benchmark=name, split=split, question=question, images=images,
                  options=options, answer=answer, answer_type=answer_type, prompt_type=prompt_type, metadata=metadata)


def _keep(value: Any) -> bool:
    # empty cells (CSV cannot tell empty from missing) and image-like values stay out of metadata
    if value is None or value == "" or isinstance(value, (bytes, bytearray)):
        return False
    return not (isinstance(value, dict) and "bytes" in value)


def _scalar(value: Any) -> Scalar:
    if isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
