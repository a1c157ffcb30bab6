"""Thumbnails for the report's sample browser: the image as the model saw it, about 256 px, one file per
image content hash (a benchmark asks many questions about one image; probe variants share images).

DICOM and NIfTI sources are shown after windowing, exactly as sent (medprobe.imaging renders them). An
image behind an http(s) URL is never fetched: the report makes no network request, so it says so
instead. Files are named by content hash and side, so writing a report again into the same folder
reuses the thumbnails already there; missing ones are made in worker processes when there are many.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from medprobe import imaging, previews
from medprobe.previews import SIDE, SMALL
from medprobe.types import ImageRef

FOLDER = "thumbs"
_CONTENT_ADDRESSED = re.compile(r"^[0-9a-f]{64}$")
_JPEG = (".jpg", ".jpeg")
#: below this many new thumbnails, one process is faster than starting a pool
PARALLEL_FROM = 48


class Thumbnails:
    """Collects the images a report shows (`add`), then writes each distinct one once (`write`)."""

    def __init__(self, out: Path, allow_outside_root: bool = False):
        self.out = out
        self.allow = allow_outside_root
        self._wanted: dict[str, tuple[ImageRef, int]] = {}  # digest -> (ref, side)
        self._digests: dict[tuple, tuple[str | None, str | None, ImageRef]] = {}
        self.failed: dict[str, str] = {}
        self.made = 0
        self.reused = 0
        self._handled: dict[str, int] = {}  # digest -> the side made or reused
        self._pending: list = []  # results (or iterators of them) of jobs started

    def add(self, ref: ImageRef, run_dir: Path, side: int = SIDE) -> tuple[str | None, str | None]:
        """(the thumbnail's digest, None) or (None, why it cannot be shown). Call `name(digest)` after `write`."""
        if ref.data is None and ref.url is None and ref.view is None:
            key: tuple = (ref.path, ref.root, run_dir)  # most images: a file (hashing the rest costs ~150,000 times)
        else:
            key = (ref.path, ref.root, ref.url, None if ref.data is None else hash(ref.data), ref.view, run_dir)
        found = self._digests.get(key)
        if found is None:  # each image is located and hashed once, however many samples show it
            located = _located(ref, run_dir)
            found = self._digests[key] = (*self._digest(located), located)
        digest, why, located = found
        if digest is not None:
            known = self._wanted.get(digest)
            if known is None or known[1] < side:
                self._wanted[digest] = (located, side)
        return digest, why

    def _digest(self, ref: ImageRef) -> tuple[str | None, str | None]:
        if ref.url is not None and not ref.url.startswith("data:"):
            return None, "image at a URL, not fetched: the report makes no network request"
        if ref.path is not None and ref.view is None and _CONTENT_ADDRESSED.match(Path(ref.path).stem):
            return Path(ref.path).stem, None  # probe images are named by their sha256 already
        try:
            return imaging.sha256(ref, self.allow), None
        except imaging.ImageError as exc:
            return None, str(exc)

    def name(self, digest: str) -> str | None:
        """The thumbnail's path relative to the report folder (None when it could not be made)."""
        if digest in self.failed or digest not in self._wanted:
            return None
        return f"{FOLDER}/{digest[:24]}-{self._wanted[digest][1]}.jpg"

    def reason(self, digest: str) -> str | None:
        return self.failed.get(digest)

    def start(self, pool=None) -> None:
        """Begin making the thumbnails wanted so far in `pool` (a process pool), while the caller goes on
        registering others (the report draws the clean images while it reads the probe variants)."""
        todo = self._todo()
        if pool is not None and len(todo) >= PARALLEL_FROM:
            self._pending.append(pool.map(_make, todo, chunksize=max(1, len(todo) // 64)))
        else:
            self._pending.append([_make(job) for job in todo])

    def write(self, pool=None) -> None:
        """Make every thumbnail not already in the folder or started, in `pool` when there are many, and
        wait for those started."""
        self.start(pool)
        for results in self._pending:
            for digest, error in results:
                if error is None:
                    self.made += 1
                else:
                    self.failed[digest] = error
        self._pending = []

    def _todo(self) -> list[tuple[str, str, str, int, bool]]:
        """Jobs for the wanted thumbnails not handled yet (a file already in the folder is reused)."""
        folder = self.out / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        todo = []
        for digest, (ref, side) in self._wanted.items():
            if self._handled.get(digest) == side:
                continue
            self._handled[digest] = side
            dest = self.out / str(self.name(digest))
            if dest.is_file():
                self.reused += 1
            else:
                todo.append((digest, ref.model_dump_json(), str(dest), side, self.allow))
        return todo


def _located(ref: ImageRef, run_dir: Path) -> ImageRef:
    """Probe images live in the run folder's probe_images/, referenced by an absolute root: when the run
    folder was moved or copied since, look for them where they are now."""
    if ref.path is None or ref.root is None or (Path(ref.root) / ref.path).exists():
        return ref
    moved = run_dir / "probe_images"
    if (moved / ref.path).is_file():
        return ref.model_copy(update={"root": str(moved.resolve())})
    return ref


def _make(job: tuple[str, str, str, int, bool]) -> tuple[str, str | None]:
    """(digest, error or None): decode, downscale, grey when grey, JPEG; the file appears atomically."""
    digest, ref_json, dest, side, allow = job
    from PIL import Image

    ref = ImageRef.model_validate_json(ref_json)
    made = _stored_preview(ref, digest, side)
    if made is not None:  # the probe image store drew it when it stored the image: no decoding
        try:
            _link_or_copy(made, dest)
            return digest, None
        except OSError:
            pass  # fall back to drawing it here
    try:
        if ref.view is None and ref.data is None and ref.url is None and str(ref.path).lower().endswith(_JPEG):
            # JPEG: decode at a reduced scale directly (several times faster than decoding every pixel)
            img = Image.open(imaging.resolve_path(ref, allow))
            img.draft("RGB", (2 * side, 2 * side))
            img = img.convert("RGB") if img.mode not in ("RGB", "L") else img
        else:
            img = imaging.open_image(ref, allow_outside_root=allow)
        data = previews.jpeg(img, side)
    except (imaging.ImageError, OSError, ValueError) as exc:
        return digest, f"image cannot be shown: {exc}"
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)
    return digest, None


def _link_or_copy(source: Path, dest: str) -> None:
    """A hard link where the report shares the run's file system (the link appears whole, at once: no
    temporary file, whose rename makes ext4 write the data out first, ~0.5 ms per thumbnail), else a copy."""
    try:
        os.link(source, dest)
        return
    except FileExistsError:
        os.unlink(dest)
        os.link(source, dest)
        return
    except OSError:
        pass  # another file system, or links not allowed: a copy, renamed into place
    shutil.copyfile(source, dest + ".tmp")
    os.replace(dest + ".tmp", dest)


def _stored_preview(ref: ImageRef, digest: str, side: int) -> Path | None:
    """The preview a probe image store wrote beside the image (probe_images/previews/), if it is there."""
    if ref.root is None or ref.path is None or ref.view is not None or Path(ref.path).stem != digest:
        return None
    found = previews.path(ref.root, digest, side)
    return found if found.is_file() else None
