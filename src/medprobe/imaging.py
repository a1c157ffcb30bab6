"""Open images safely, hash them, and encode them for a model.

Images stay references (`ImageRef`) until a request is built; the bytes are read once,
hashed (the hash enters the request key) and, for HTTP backends, encoded once per
(hash, max side) into a data URL that is reused by every request showing that image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from functools import lru_cache
from pathlib import Path

from medprobe.types import ImageRef

#: refuse files larger than this before reading them (a benchmark image is rarely over a few MB)
MAX_FILE_BYTES = 64 * 1024 * 1024
#: refuse decoded images with more pixels than this (decompression bombs)
MAX_PIXELS = 80_000_000

_MIME = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp"}


class ImageError(Exception):
    """An image that cannot be used; the message names the image and what to do."""


def resolve_path(ref: ImageRef, allow_outside_root: bool = False) -> Path:
    """The file behind `ref`, refusing paths that escape the dataset root (../, absolute, symlinks)."""
    assert ref.path is not None
    if ref.root is None:
        return Path(ref.path)
    root, target = _resolve(ref.root, ref.path)
    if not allow_outside_root and not target.is_relative_to(root):
        raise ImageError(
            f"Image path {ref.path!r} points outside the dataset root {root.name!r}; refusing to read it. "
            "Move the image under the dataset folder, or pass --allow-outside-root if you trust this file."
        )
    return target


@lru_cache(maxsize=65536)
def _resolve(root: str, path: str) -> tuple[Path, Path]:
    # realpath costs several syscalls; a benchmark shows each image many times
    resolved = Path(root).resolve()
    return resolved, (resolved / path).resolve()


def read_bytes(ref: ImageRef, allow_outside_root: bool = False) -> bytes:
    """The encoded bytes of an image (not decoded); DICOM/NIfTI sources arrive rendered as PNG."""
    if (rendered := _medical(ref, allow_outside_root)) is not None:
        return rendered.png
    if ref.data is not None:
        return ref.data
    if ref.url is not None:
        if ref.url.startswith("data:"):
            _, _, payload = ref.url.partition(",")
            return base64.b64decode(payload)
        return _fetch_url(ref.url)
    if ref.path is None:
        raise ImageError("Image reference has no path, url or data; check the dataset's image column.")
    path = resolve_path(ref, allow_outside_root)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(
            f"Image not found: {ref.path}. Check the dataset's image column, or pass --images-dir "
            "pointing at the folder that holds the images."
        ) from None
    if size > MAX_FILE_BYTES:
        raise ImageError(f"Image {ref.path} is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit.")
    return _read_file(str(path), size, path.stat().st_mtime_ns)


@lru_cache(maxsize=256)
def _read_file(path: str, size: int, mtime_ns: int) -> bytes:
    # keyed by size and mtime so an edited file is read again
    with open(path, "rb") as f:
        return f.read()


def _medical(ref: ImageRef, allow_outside_root: bool):
    """The rendered DICOM file/series or NIfTI volume behind `ref`, or None for a plain image."""
    if ref.url is not None or (ref.view is None and ref.path is not None and ref.path.lower().endswith(_RASTER)):
        return None  # the common case decides here, without importing medprobe.medimage
    from medprobe.medimage.render import maybe_render

    return maybe_render(ref, allow_outside_root)


_RASTER = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")


def _fetch_url(url: str) -> bytes:
    """Download an image URL (used for datasets that reference images on the web)."""
    import urllib.request

    if not url.startswith(("http://", "https://")):
        raise ImageError(f"Unsupported image URL scheme: {url[:40]!r}; use http(s), data: or a local path.")
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 (scheme checked above)
            data = resp.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImageError(f"Could not download image {url}: {exc}. Download the images and point at local files.") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"Image at {url} is over the {MAX_FILE_BYTES // 2**20} MB limit.")
    return data


def sha256(ref: ImageRef, allow_outside_root: bool = False) -> str:
    """Content hash of the image bytes: what enters the request key (for DICOM/NIfTI: of the
    rendered pixels and the rendering settings)."""
    if (rendered := _medical(ref, allow_outside_root)) is not None:
        return rendered.sha256
    if ref.path is not None and ref.data is None and ref.url is None:
        path = resolve_path(ref, allow_outside_root)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageError(
                f"Image not found: {ref.path}. Check the dataset's image column, or pass --images-dir."
            ) from None
        return _hash_file(str(path), st.st_size, st.st_mtime_ns)
    return hashlib.sha256(read_bytes(ref, allow_outside_root)).hexdigest()


@lru_cache(maxsize=65536)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sniff_mime(data: bytes) -> str | None:
    return next((mime for magic, mime in _MIME.items() if data.startswith(magic)), None)


def open_image(ref: ImageRef, max_side: int | None = None, allow_outside_root: bool = False):
    """Decode to an RGB PIL image, refusing decompression bombs and truncated files."""
    from PIL import Image

    data = read_bytes(ref, allow_outside_root)
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise ImageError(
                f"Image {ref.describe()} is {img.width}x{img.height} pixels, over the {MAX_PIXELS:,} pixel limit "
                "(possible decompression bomb). Downscale it before evaluation."
            )
        img.load()
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt data
        raise ImageError(f"Image {ref.describe()} cannot be decoded ({exc}). Re-export or replace the file.") from exc
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if max_side and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return img


def to_data_url(
    ref: ImageRef, max_side: int | None = None, allow_outside_root: bool = False, digest: str | None = None
) -> str:
    """A base64 data URL for chat APIs; JPEG/PNG bytes pass through untouched unless resized.
    `digest` is the image's sha256 when the caller already has it (the request carries it)."""
    digest = digest or sha256(ref, allow_outside_root)
    return _data_url(digest, ref, max_side, allow_outside_root)


_URL_CACHE: dict[tuple[str, int | None], str] = {}
_URL_CACHE_MAX_BYTES = int(os.environ.get("MEDPROBE_IMAGE_CACHE_MB", "512")) * 2**20
_url_cache_bytes = 0


def _data_url(digest: str, ref: ImageRef, max_side: int | None, allow_outside_root: bool) -> str:
    global _url_cache_bytes
    key = (digest, max_side)
    if (hit := _URL_CACHE.get(key)) is not None:
        return hit
    data = read_bytes(ref, allow_outside_root)
    mime = sniff_mime(data)
    if max_side is not None or mime not in ("image/jpeg", "image/png"):
        img = open_image(ref, max_side, allow_outside_root)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        data, mime = buf.getvalue(), "image/png"
    else:
        _check_decodes(ref, data)
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    if _url_cache_bytes + len(url) > _URL_CACHE_MAX_BYTES:
        _URL_CACHE.clear()
        _url_cache_bytes = 0
    _URL_CACHE[key] = url
    _url_cache_bytes += len(url)
    return url


def _check_decodes(ref: ImageRef, data: bytes) -> None:
    """Cheap validity check (header + size) so a truncated file fails here, not at the server."""
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise ImageError(
                f"Image {ref.describe()} is {img.width}x{img.height} pixels, over the {MAX_PIXELS:,} pixel limit "
                "(possible decompression bomb). Downscale it before evaluation."
            )
        img.verify()  # PNG: chunk CRCs; JPEG: nothing, hence the end-of-image check below
        if img.format == "JPEG" and data.rfind(b"\xff\xd9", max(0, len(data) - 4096)) < 0:
            # FF D9 cannot occur inside entropy-coded data (ITU T.81 B.1.1.5), so its absence at the
            # end means the file was cut short
            raise ImageError(f"Image {ref.describe()} is a truncated JPEG (no end-of-image marker). "
                             "Re-export or replace the file.")
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"Image {ref.describe()} cannot be decoded ({exc}). Re-export or replace the file.") from exc
