"""The probe image store: images probes generate (corruptions, blank images) kept once each under the
run folder's `probe_images/`, named by their sha256, plus an index from each image's recipe (what
made it: probe, parameters, seed, the source image's sha256) to its file. A re-run reads the index
instead of rebuilding every image (a corruption of a 1-megapixel image costs ~0.1 s to build and
encode; a look-up costs a dictionary access), and a resumed run keeps showing the very bytes its
stored requests hashed, even if numpy or scipy changed in between.

The index is a cache: a missing or unreadable index only costs the rebuild. It also records the
folder's image format: folders written before the index (format 1) stored every corruption as a PNG,
so they keep doing so and their request keys, hence their stored answers, still match.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import orjson

from medprobe import imaging, previews
from medprobe.types import ImageRef

INDEX = "index.json"
#: 2: the jpeg corruption is stored as the JPEG file it made (its artefacts are exactly what a JPEG
#: decoder shows); 1 (folders without an index): every image a PNG, the JPEG decoded by Pillow
FORMAT = 2
LEGACY_FORMAT = 1

_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg"}


class ImageStore:
    """Generated images of one run folder (`folder`), or held in memory when `folder` is None."""

    def __init__(self, folder: str | None = None) -> None:
        self.folder = folder
        self._files: dict[str, str] = {}  # recipe -> file name under folder
        self._sizes: dict[str, list] = {}  # source image sha256 -> [width, height, mode] once it decoded
        self._memory: dict[str, bytes] = {}  # recipe -> bytes, when there is no folder
        self._dirty = False
        self._indexed = False  # an index file is on disk (it names the folder's format)
        self.format = FORMAT
        if folder is not None:
            self._load(Path(folder))

    def _load(self, folder: Path) -> None:
        try:
            index = orjson.loads((folder / INDEX).read_bytes())
            self._indexed = True
            self.format = int(index["format"])
            self._files, self._sizes = dict(index["files"]), dict(index["sizes"])
        except FileNotFoundError:
            # images but no index: a folder from before the index, whose stored requests hashed PNGs
            if folder.is_dir() and any(folder.glob("*.png")):
                self.format, self._dirty = LEGACY_FORMAT, True
        except (OSError, ValueError, KeyError, TypeError):
            self._files, self._sizes = {}, {}  # a damaged index is only a cache: rebuild what is asked for

    def get(self, recipe: str, name: str) -> ImageRef | None:
        """The image `recipe` made before, if its file is still there."""
        if self.folder is None:
            data = self._memory.get(recipe)
            return None if data is None else ImageRef(data=data, name=name)
        file = self._files.get(recipe)
        if file is None or not os.path.isfile(os.path.join(self.folder, file)):
            return None
        return ImageRef(path=file, root=self.folder, name=name)

    def put(self, recipe: str, data: bytes, name: str, pixels=None) -> ImageRef:
        """Keep `data` (PNG or JPEG bytes, sent to the model exactly as stored) as what `recipe` makes, with
        the report's preview of it (`pixels`: the PIL image `data` losslessly encodes, if the caller has it)."""
        if self.folder is None:
            self._memory[recipe] = data
            return ImageRef(data=data, name=name)
        file = hashlib.sha256(data).hexdigest() + _SUFFIX.get(imaging.sniff_mime(data) or "", ".png")
        path = Path(self.folder) / file
        if not self._indexed:  # the format first: a run killed before its index is saved is still read right
            self._dirty = True
            self.save()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: a killed run never leaves a half-written image
            _preview(path, data, pixels)
        if self._files.get(recipe) != file:
            self._files[recipe], self._dirty = file, True
        return ImageRef(path=file, root=self.folder, name=name)

    def size(self, digest: str) -> tuple[int, int, str] | None:
        """(width, height, mode) of a source image seen decoding before, by its sha256."""
        known = self._sizes.get(digest)
        return None if known is None else (int(known[0]), int(known[1]), str(known[2]))

    def note_size(self, digest: str, size: tuple[int, int, str]) -> None:
        if self._sizes.get(digest) != list(size):
            self._sizes[digest], self._dirty = list(size), True

    def save(self) -> None:
        """Write the index (atomically) when something new was made; nothing in memory mode."""
        if self.folder is None or not self._dirty:
            return
        folder = Path(self.folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (INDEX + ".tmp")
        tmp.write_bytes(orjson.dumps({"format": self.format, "files": self._files, "sizes": self._sizes},
                                     option=orjson.OPT_SORT_KEYS))  # fmt: skip
        os.replace(tmp, folder / INDEX)
        self._dirty, self._indexed = False, True


def _preview(path: Path, data: bytes, pixels) -> None:
    """The report's thumbnail of a stored image (medprobe.previews), drawn now from the pixels at hand so
    the report need not decode the image again. Only a cache: any failure leaves the report to draw it."""
    try:
        if pixels is None:
            from PIL import Image

            pixels = Image.open(io.BytesIO(data))
        out = previews.path(path.parent, path.stem, previews.SMALL)
        out.parent.mkdir(exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(previews.jpeg(pixels, previews.SMALL))
        os.replace(tmp, out)
    except Exception:  # noqa: BLE001 - a preview never fails a run
        return
