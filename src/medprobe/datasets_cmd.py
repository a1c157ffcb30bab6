"""`medprobe data list | get | check`: where a benchmark comes from, fetch its official files from the
hub, and check a local copy against the official release (medprobe.dataset_facts holds the facts).

Downloads go through `huggingface_hub.snapshot_download` with the official repo id and only the
files a run needs (`allow_patterns`); gated sets and sets that are not on a hub get their steps
printed instead. Checks count what a release publishes (file rows, split sizes, images present)
and compare file hashes where a value is known, naming every difference.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from pathlib import Path
from typing import Literal

from medprobe import benchmarks
from medprobe.benchmarks._formats import file_sha256
from medprobe.dataset_facts import FACTS, DatasetFacts, ExpectedFile, facts, within
from medprobe.types import Frozen

MARKERS = ".medprobe"  # folder inside a downloaded dataset: which archives were unpacked


class DataError(ValueError):
    """A download or check that cannot go on; the message says what to do."""


class CheckItem(Frozen):
    what: str
    expected: str
    found: str
    ok: bool | None = None  # None: nothing published to compare with (shown, not judged)


class CheckReport(Frozen):
    benchmark: str
    folder: str
    items: tuple[CheckItem, ...]

    @property
    def differences(self) -> list[CheckItem]:
        return [i for i in self.items if i.ok is False]

    @property
    def ok(self) -> bool:
        return not self.differences


class GetResult(Frozen):
    benchmark: str
    status: Literal["downloaded", "packaged", "manual", "gated"]
    folder: str | None = None
    files: int = 0
    steps: str = ""  # what to do by hand: the whole set (manual, gated) or the part the hub lacks
    check: CheckReport | None = None


def listing() -> list[tuple[str, DatasetFacts | None]]:
    """Every registered benchmark with its facts row (None: the table lacks it, a bug the tests catch)."""
    return [(name, FACTS.get(name)) for name in benchmarks.names()]


def source_of(row: DatasetFacts) -> str:
    if not row.folder:
        return "packaged with medprobe"
    return f"hf:{row.hub.repo_id}" if row.hub else row.homepage


# ---------------------------------------------------------------- get


def get(name: str, to: Path, *, images: bool = True, accept_terms: bool = False,
        revision: str | None = None) -> GetResult:  # fmt: skip
    """Download `name` into `to/<folder>` (`dataset_facts.DatasetFacts.folder`), unpack its image
    archives, and check the result. Gated sets need `accept_terms` (the user accepted the hub's
    conditions and logged in); sets that are not on a hub return the steps instead."""
    row = facts(name)
    if not row.folder:
        return GetResult(benchmark=name, status="packaged", steps=row.manual)
    if row.hub is None:
        return GetResult(benchmark=name, status="manual", steps=row.manual)
    if row.gated and not accept_terms:
        return GetResult(benchmark=name, status="gated", steps=row.manual)
    dest = to / row.folder
    hub = row.hub
    allow = [*hub.allow_patterns, *hub.image_patterns] if hub.allow_patterns else None
    ignore = list(hub.image_patterns) if not images and hub.image_patterns else None
    gated = _download(hub.repo_id, hub.repo_type, dest, allow, ignore, revision)
    if gated:
        return GetResult(benchmark=name, status="gated", steps=f"The hub refused the download ({gated}).\n{row.manual}")
    if images:
        for archive in hub.archives:
            if (dest / archive).is_file():
                _unpack(dest / archive, dest)
    files = sum(1 for p in dest.rglob("*") if p.is_file() and MARKERS not in p.parts)
    if files == 0:
        raise DataError(f"Nothing of {hub.repo_id} matched {allow or 'the repo'}: its layout may have changed. "
                        f"Download it by hand into {dest} (see {row.homepage}) and run `medprobe data check {name}`.")
    return GetResult(benchmark=name, status="downloaded", folder=str(dest), files=files,
                     steps=row.manual, check=check(name, dest))  # fmt: skip


def _download(repo_id: str, repo_type: str, dest: Path, allow, ignore, revision) -> str | None:
    """snapshot_download into `dest`; returns the refusal message of a gated repo, else None."""
    import huggingface_hub  # lazy: the hub client is only needed to download
    from huggingface_hub.utils import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    fresh = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        huggingface_hub.snapshot_download(repo_id, repo_type=repo_type, local_dir=str(dest), allow_patterns=allow,
                                          ignore_patterns=ignore, revision=revision)  # fmt: skip
    except GatedRepoError as exc:  # before RepositoryNotFoundError, its parent class
        _drop_if_empty(dest, fresh)
        return str(exc).splitlines()[0]
    except RepositoryNotFoundError:
        _drop_if_empty(dest, fresh)
        raise DataError(f"{repo_id} was not found on the Hugging Face hub (renamed, removed or private). "
                        "Check the dataset's homepage (`medprobe data list`).") from None
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        _drop_if_empty(dest, fresh)
        raise DataError(f"Could not download {repo_id}: {str(exc).strip().rstrip('.')}. Check the network (or "
                        "HF_ENDPOINT for a mirror); re-running the same command resumes.") from None
    return None


def _drop_if_empty(dest: Path, fresh: bool) -> None:
    """A failed first download leaves no empty folder behind (it would look like a dataset to --data-root)."""
    if fresh and dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()


def _unpack(archive: Path, dest: Path) -> None:
    """Unzip `archive` into `dest` once (a marker records it). A single top folder named like the
    dataset folder (OmniMedVQA.zip holds OmniMedVQA/...) is dropped, so the layout starts at `dest`."""
    stat = archive.stat()
    marker = dest / MARKERS / f"unpacked-{archive.name}"
    stamp = f"{stat.st_size} {int(stat.st_mtime)}"
    if marker.is_file() and marker.read_text(encoding="utf-8") == stamp:
        return
    root = dest.resolve()
    with zipfile.ZipFile(archive) as z:
        members = [m for m in z.infolist() if not m.filename.startswith("__MACOSX/")]
        tops = {m.filename.split("/", 1)[0] for m in members}
        strip = len(tops) == 1 and tops.pop().lower() == dest.name.lower()
        for m in members:
            name = m.filename.split("/", 1)[1] if strip and "/" in m.filename else m.filename
            if not name or (strip and "/" not in m.filename):
                continue
            target = (root / name).resolve()
            if not target.is_relative_to(root):  # a "../" or absolute member must not write outside
                raise DataError(f"{archive} holds an unsafe path ({m.filename!r}); nothing outside {dest} was written.")
            m.filename = name
            z.extract(m, root)
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(stamp, encoding="utf-8")


# ---------------------------------------------------------------- check


def check(name: str, data: Path | None = None) -> CheckReport:
    """Compare a local copy of `name` with the official release: files present, their rows, known
    hashes, and the samples (and images) the loader finds per split."""
    row = facts(name)
    folder = _folder(row, data)
    items = [item for expected in row.files for item in _check_file(folder, expected)]
    if name in benchmarks.names():
        items += [item for split in row.splits for item in _check_split(name, row, folder, split.split, split.samples)]
    return CheckReport(benchmark=name, folder=str(folder), items=tuple(items))


def _folder(row: DatasetFacts, data: Path | None) -> Path:
    if not row.folder:
        from medprobe.benchmarks.demo import data_dir

        return data_dir()
    if data is None:
        raise DataError(f"Pass --data with the folder holding {row.benchmark} (e.g. data/{row.folder}).")
    if (data / row.folder).is_dir() and data.name != row.folder:  # a data root holding the folder
        data = data / row.folder
    if not data.exists():
        raise DataError(f"No such folder: {data}. Download it with `medprobe data get {row.benchmark} --to DIR`.")
    return data


def _matches(folder: Path, pattern: str) -> tuple[str, list[Path]]:
    for alt in pattern.split("|"):
        found = sorted(p for p in folder.glob(alt) if p.is_file())
        if found:
            return alt, found
    return pattern.split("|")[0], []


def _check_file(folder: Path, expected: ExpectedFile) -> list[CheckItem]:
    name, found = _matches(folder, expected.path)
    if not found:
        ok = False if expected.required else None
        why = "missing" if expected.required else "absent (another layout of the release may be in use)"
        return [CheckItem(what=expected.path.replace("|", " or "), expected="present", found=why, ok=ok)]
    items = []
    if expected.rows is not None or len(found) > 1 or _rows_kind(found[0]) == "rows":
        count = sum(count_rows(p) for p in found)
        unit = "rows" if _rows_kind(found[0]) == "rows" else "files"
        want = f"{expected.rows:,} {unit}" if expected.rows is not None else "no published count"
        ok = None if expected.rows is None else count == expected.rows
        items.append(CheckItem(what=name, expected=want, found=f"{count:,} {unit}", ok=ok))
    if expected.sha256 and len(found) == 1:
        digest = file_sha256(found[0])
        items.append(CheckItem(what=f"{found[0].name} sha256", found=digest[:12] + "…", ok=digest == expected.sha256,
                               expected=f"{expected.sha256[:12]}… ({expected.sha256_source})"))  # fmt: skip
    return items


def _rows_kind(path: Path) -> str:
    return "rows" if path.suffix.lower() in (".json", ".jsonl", ".csv", ".tsv", ".parquet") else "files"


def count_rows(path: Path) -> int:
    """Rows of a table file (JSON list items or object entries, JSONL lines, CSV/TSV rows without the
    header, parquet rows); 1 for any other file (an image)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if suffix == ".json":
        value = json.loads(path.read_text(encoding="utf-8"))
        return len(value) if isinstance(value, (list, dict)) else 1
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    if suffix in (".csv", ".tsv"):
        csv.field_size_limit(2**31 - 1)  # TSV rows hold base64 images (GMAI-MMBench)
        with open(path, encoding="utf-8", newline="") as f:
            return max(sum(1 for _ in csv.reader(f, delimiter="\t" if suffix == ".tsv" else ",")) - 1, 0)
    return 1


def _check_split(name: str, row: DatasetFacts, folder: Path, split: str, samples: int) -> list[CheckItem]:
    located = within(row, folder) if row.folder else None  # the packaged demo takes no --data
    options = benchmarks.LoadOptions(split=split, data=located.data if located else None,
                                     images_dir=located.images_dir if located else None)  # fmt: skip
    what = f"split {split}"
    try:
        loaded = benchmarks.load(name, options)
    except (ValueError, OSError) as exc:
        return [CheckItem(what=what, expected=f"{samples:,} samples", found=f"does not load: {exc}", ok=False)]
    items = [CheckItem(what=what, expected=f"{samples:,} samples", found=f"{len(loaded.samples):,} samples",
                       ok=len(loaded.samples) == samples)]  # fmt: skip
    refs = [img for s in loaded.samples for img in s.images if img.path and not img.data and not img.url]
    missing = [img for img in refs if not Path(img.root or "", img.path).is_file()]
    if refs:
        example = f" (e.g. {os.path.join(missing[0].root or '', missing[0].path)})" if missing else ""
        items.append(CheckItem(what=f"images of split {split}", expected=f"all {len(refs):,} present",
                               found=f"{len(refs) - len(missing):,} present, {len(missing):,} missing{example}",
                               ok=not missing))  # fmt: skip
    return items
