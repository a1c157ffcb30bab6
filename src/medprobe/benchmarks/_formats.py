"""Generic readers that turn benchmark files into raw rows, lazily.

Every reader yields `RawRow`s: the row's data, or the reason it could not be read, plus where it
sits in the file ("questions.jsonl line 12"), so one bad row becomes one message in
`Loaded.errors` and the rest still load. Problems with the whole file raise `LoadError`.
Nothing here imports `datasets` until a Hugging Face source is actually read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medprobe import hub_reach
from medprobe.types import ImageRef

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".dcm", ".nii", ".gz")
#: sidecar files that hold the questions of a flat image folder (metadata.* is the HF ImageFolder convention)
SIDECARS = ("questions.jsonl", "questions.json", "questions.csv", "questions.parquet",
            "metadata.jsonl", "metadata.csv")
CLASS_QUESTION = "Which of the following best describes this image?"


class LoadError(ValueError):
    """A benchmark that cannot be loaded; the message says what to do."""


class RowError(ValueError):
    """One row that cannot become a Sample; recorded in `Loaded.errors`, the rest still load."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row as read from a source: `data`, or `error` saying why it is unusable."""

    where: str
    data: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Table:
    """Rows of one split of a source, plus what identifies that source for provenance."""

    rows: Iterator[RawRow]
    source: str
    sha256: str | None = None
    revision: str | None = None


def with_index(rows: Iterable[RawRow]) -> Iterator[RawRow]:
    """Rows with data["_index"] = position in the source (unreadable rows count), for stable ids."""
    for i, row in enumerate(rows):
        if row.data is not None:
            row.data["_index"] = i
        yield row


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def files_sha256(paths: Iterable[Path]) -> str:
    """One digest for several files: sha256 over 'name:sha256' lines (order-independent)."""
    lines = sorted(f"{p.name}:{file_sha256(p)}" for p in paths)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def read_jsonl(path: str | Path) -> Iterator[RawRow]:
    """One JSON object per line; a bad line (bad JSON, invalid UTF-8, not an object) is one error."""
    path = Path(path)
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            where = f"{path.name} line {n}"
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # UTF-8 BOM written by some editors
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 4]
                yield RawRow(where, error=f"not valid UTF-8 (bytes {bad!r} at column {exc.start + 1}); "
                             "re-save the file as UTF-8")
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawRow(where, error=f"invalid JSON ({exc.msg} at column {exc.colno}); fix or remove the line")
                continue
            if not isinstance(obj, dict):
                yield RawRow(where, error=f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield RawRow(where, obj)


def read_json(path: str | Path) -> Iterator[RawRow]:
    """A JSON list of objects (or an object holding exactly one such list, e.g. {"data": [...]})."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LoadError(f"{path} is not valid UTF-8 (line {line}, byte {exc.start}); re-save it as UTF-8.") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}). "
            "If it holds one object per line, rename it to .jsonl."
        ) from None
    if isinstance(obj, dict):
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise LoadError(f"{path} holds a JSON object; expected a list of rows (or an object with one list).")
        obj = lists[0]
    if not isinstance(obj, list):
        raise LoadError(f"{path} must hold a JSON list of objects, not {type(obj).__name__}.")
    return (
        RawRow(f"{path.name} item {i}", item) if isinstance(item, dict)
        else RawRow(f"{path.name} item {i}", error=f"expected an object, got {type(item).__name__}")
        for i, item in enumerate(obj, start=1)
    )


def read_csv(path: str | Path) -> Iterator[RawRow]:
    """CSV (TSV for .tsv) with a header row; values are strings, '' where empty."""
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    # surrogateescape keeps reading past invalid UTF-8 so only the rows holding it fail
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        for row in reader:
            where = f"{path.name} line {reader.line_num}"
            if None in row:
                extra = len(row[None])  # type: ignore[index]
                yield RawRow(where, error=f"{extra} more field(s) than the header; quote values holding {delimiter!r}")
                continue
            bad = [k for k, v in row.items() if _has_surrogates(k) or _has_surrogates(v)]
            if bad:
                yield RawRow(where, error=f"column {bad[0]!r} is not valid UTF-8; re-save the file as UTF-8")
                continue
            yield RawRow(where, {k: ("" if v is None else v) for k, v in row.items()})


def _has_surrogates(s: str | None) -> bool:
    return s is not None and any("\udc80" <= c <= "\udcff" for c in s)


def read_parquet(path: str | Path, batch_size: int = 256) -> Iterator[RawRow]:
    """Parquet rows, a batch at a time; HF image columns arrive as {"bytes", "path"} dicts."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for non-parquet files
        raise LoadError(f"{path} is not a readable parquet file ({exc}).") from None
    n = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            n += 1
            yield RawRow(f"{path.name} row {n}", row)


READERS = {".jsonl": read_jsonl, ".ndjson": read_jsonl, ".json": read_json, ".csv": read_csv,
           ".tsv": read_csv, ".parquet": read_parquet}


def read_file(path: str | Path) -> Iterator[RawRow]:
    """Pick the reader from the file's extension."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise LoadError(f"Don't know how to read {path.name}: use one of {', '.join(READERS)}.")
    return reader(path)


def read_image_folder(folder: str | Path) -> Iterator[RawRow]:
    """A folder of images: flat with a sidecar questions file, or one subfolder per class.

    Class folders become multiple-choice rows: the options are the sorted class names, the gold
    is the row's class, and the question is `question.txt` in the folder (or CLASS_QUESTION).
    """
    folder = Path(folder)
    sidecar = next((folder / s for s in SIDECARS if (folder / s).is_file()), None)
    if sidecar is not None:
        for row in read_file(sidecar):
            if row.data is not None and "image" not in row.data and "file_name" in row.data:
                row.data["image"] = row.data.pop("file_name")  # HF ImageFolder names the column file_name
            yield row
        return
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise LoadError(
            f"Folder {folder} has no questions file and no class subfolders. Add questions.jsonl "
            "(columns id, image, question, answer) beside the images, or put images in one subfolder per class."
        )
    qfile = folder / "question.txt"
    question = qfile.read_text(encoding="utf-8").strip() if qfile.is_file() else CLASS_QUESTION
    for label in classes:
        for img in sorted((folder / label).iterdir()):
            if img.is_file() and img.name.lower().endswith(IMAGE_SUFFIXES):
                rel = f"{label}/{img.name}"
                yield RawRow(rel, {"id": rel, "image": rel, "question": question, "options": classes,
                                   "answer": label, "answer_type": "multiple_choice"})


def is_saved_dataset(path: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())


def parquet_files(folder: Path, split: str) -> list[Path]:
    """Parquet files of one split in a local copy of a hub repo (data/test-00000-of-00001.parquet, test.parquet)."""
    found = sorted(folder.rglob("*.parquet"))
    return [p for p in found if p.stem == split or p.stem.startswith(f"{split}-") or p.parent.name == split]


def read_hf(source: str, split: str, *, config: str | None = None, data_files: Any = None) -> Table:
    """Rows of one split from a hub id, a local `save_to_disk` folder, or a local parquet copy."""
    path = Path(source).expanduser()
    if is_saved_dataset(path):
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise LoadError(f"{source} has splits {sorted(ds)}, not {split!r}; pass --split with one of them.")
            ds = ds[split]
        return Table(_iter_dataset(ds, f"{path.name}[{split}]"), source, revision=getattr(ds, "_fingerprint", None))
    if path.is_file() and path.suffix == ".parquet":
        return Table(read_parquet(path), source, sha256=file_sha256(path))
    if path.is_dir():
        files = parquet_files(path, split)
        if not files:
            raise LoadError(
                f"{source} is neither a save_to_disk folder nor a parquet copy with files for split {split!r} "
                f"(looked for {split}.parquet or {split}-*.parquet)."
            )
        rows = (row for f in files for row in read_parquet(f))
        return Table(rows, source, sha256=files_sha256(files))
    if path.suffix.lower() in (*READERS, ".arrow") or source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise LoadError(f"No such file or folder: {source}. Check the path given to --data.")
    return _read_hub(source, split, config, data_files)


def _read_hub(source: str, split: str, config: str | None, data_files: Any) -> Table:
    why = hub_reach.unreachable(source)  # an offline machine fails now, not after datasets' retries (~25 s each)
    if why is not None:
        raise LoadError(
            f"Could not load {source!r} (split {split!r}) from the Hugging Face hub: {why}. On an offline machine, "
            f"save it elsewhere with datasets.load_dataset({source!r}).save_to_disk(DIR) (or `medprobe data get "
            "NAME --to DIR`), copy DIR here and pass --data DIR."
        )
    import datasets

    try:
        ds = datasets.load_dataset(source, config, split=split, data_files=data_files)
    except Exception as exc:  # offline, gated, unknown split: all surface as different types
        raise LoadError(
            f"Could not load {source!r} (split {split!r}) from the Hugging Face hub: {exc}. On an offline machine, "
            f"save it elsewhere with datasets.load_dataset({source!r}).save_to_disk(DIR), copy DIR here "
            "and pass --data DIR."
        ) from exc
    # the fingerprint changes with the downloaded files, so it pins what was evaluated
    return Table(_iter_dataset(ds, f"{source}[{split}]"), source, revision=getattr(ds, "_fingerprint", None))


def _iter_dataset(ds: Any, label: str, batch_size: int = 256) -> Iterator[RawRow]:
    # arrow format skips PIL decoding: Image columns stay {"bytes", "path"} with the original bytes
    n = 0
    for table in ds.with_format("arrow").iter(batch_size=batch_size):
        for row in table.to_pylist():
            n += 1
            yield RawRow(f"{label} row {n}", row)


def to_image_ref(value: Any, root: str | Path | None = None) -> ImageRef | None:
    """An ImageRef from bytes, an HF {"bytes","path"} struct, a path or URL string, or a PIL image."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ImageRef(data=bytes(value)) if len(value) else None
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if path is not None and not isinstance(path, str):
            raise RowError(f"image 'path' must be a string, not {type(path).__name__}")
        if data:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                # JSON cannot hold raw bytes: {"bytes": "..."} is text (base64? a path?), and guessing
                # which would evaluate an image nobody checked
                raise RowError(f"image 'bytes' holds {type(data).__name__}, not raw bytes (only parquet and "
                               "Hugging Face datasets carry bytes); in JSON/CSV give the image as a path, or as a "
                               "data:image/png;base64,... URL")
            return ImageRef(data=bytes(data), name=Path(path).name if path else None)
        return to_image_ref(path, root)
    if isinstance(value, str):
        s = value.strip()
        if not s:
            return None
        if s.startswith(("http://", "https://", "data:")):
            return ImageRef(url=s)
        return ImageRef(path=s, root=str(root) if root is not None else None, name=s)
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image (an HF Image column with decode on)
        filename = getattr(value, "filename", "")
        if filename and Path(filename).is_file():
            return ImageRef(path=str(filename), name=Path(filename).name)  # keep the original bytes
        buf = io.BytesIO()
        value.save(buf, format="PNG")  # lossless, so the decoded pixels survive exactly
        return ImageRef(data=buf.getvalue())
    raise RowError(f"unsupported image value of type {type(value).__name__}; give a path, URL or bytes")


def to_image_refs(value: Any, root: str | Path | None = None) -> tuple[ImageRef, ...]:
    """Like `to_image_ref` for one image or a list (a JSON list in a string counts, as CSV cells hold one)."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError(f"image cell {value[:60]!r} looks like a JSON list but is not valid JSON") from None
    items = value if isinstance(value, (list, tuple)) else [value]
    refs = (to_image_ref(v, root) for v in items)
    return tuple(r for r in refs if r is not None)
