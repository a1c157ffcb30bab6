"""Open images safely, hash them, and encode them for a model.

Images stay references (`ImageRef`) until a request is built; the bytes are read once,
hashed (the hash enters the request key) and, for HTTP backends, encoded once per
(hash, max side) into a data URL that is reused by every request showing that image.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import stat
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

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
    try:
        root, target, inside = _resolve(ref.root, ref.path)
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop (RuntimeError before 3.13)
        raise ImageError(f"Image path {ref.path!r} cannot be resolved ({exc}). Check the dataset's image column.") from None
    if not allow_outside_root and not inside:
        raise ImageError(
            f"Image path {ref.path!r} points outside the dataset root {root.name!r}; refusing to read it. "
            "Move the image under the dataset folder, or pass --allow-outside-root if you trust this file."
        )
    return target


@lru_cache(maxsize=65536)
def _resolve(root: str, path: str) -> tuple[Path, Path, bool]:
    # realpath costs several syscalls, and the containment test pathlib's parsing; a benchmark shows each image
    # many times (a probe run hashes each image once per variant)
    resolved = Path(root).resolve()
    target = (resolved / path).resolve()
    return resolved, target, target.is_relative_to(resolved)


def read_bytes(ref: ImageRef, allow_outside_root: bool = False) -> bytes:
    """The encoded bytes of an image (not decoded); DICOM/NIfTI sources arrive rendered as PNG.
    Every unusable input (missing, empty, a folder, unreadable, bad base64, a network URL) is an ImageError."""
    if (rendered := _medical(ref, allow_outside_root)) is not None:
        return rendered.png
    if ref.data is not None:
        data = ref.data
    elif ref.url is not None:
        data = _url_bytes(ref)
    elif ref.path is None:
        raise ImageError("Image reference has no path, url or data; check the dataset's image column.")
    else:
        path = resolve_path(ref, allow_outside_root)
        size, mtime_ns = _stat(ref, path)
        try:
            data = _read_file(str(path), size, mtime_ns)
        except OSError as exc:
            raise ImageError(f"Image {describe(ref)} cannot be read ({exc.strerror or exc}). Check the file's "
                             "permissions, or replace it.") from None
    if not data:
        raise ImageError(f"Image {describe(ref)} is empty (0 bytes). Re-export or replace the file.")
    return data


def _stat(ref: ImageRef, path: Path) -> tuple[int, int]:
    """(size, mtime_ns) of an image file, with an ImageError naming the image for every way it can be unusable."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(
            f"Image not found: {describe(ref)}. Check the dataset's image column, or pass --images-dir "
            "pointing at the folder that holds the images."
        ) from None
    except (OSError, ValueError) as exc:  # permission, a symlink loop, a name too long, a NUL byte
        raise ImageError(f"Image {describe(ref)!r} cannot be read ({getattr(exc, 'strerror', None) or exc}). "
                         "Check the dataset's image column and the file's permissions.") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"Image {describe(ref)} is a folder, not an image file. Point the image column at a file "
                         "(a DICOM series folder must not be named like a picture, e.g. 'x.png').")
    if st.st_size == 0:
        raise ImageError(f"Image {describe(ref)} is empty (0 bytes). Re-export or replace the file.")
    if st.st_size > MAX_FILE_BYTES:
        raise ImageError(f"Image {describe(ref)} is {st.st_size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB "
                         "limit. Downscale it before evaluation.")
    return st.st_size, st.st_mtime_ns


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

    try:
        return maybe_render(ref, allow_outside_root)
    except ImageError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:  # a file that vanished, a NUL byte, a symlink loop
        raise ImageError(f"Image {describe(ref)} cannot be read ({type(exc).__name__}: {exc}). Check the dataset's "
                         "image column, or replace the file.") from None


_RASTER = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
#: the opt-in flag for images on the network (medprobe.image_fetch downloads them into the run folder)
FETCH_FLAG = "--fetch-images"
#: URL -> why its download failed, noted by medprobe.image_fetch so planning names the reason
_FETCH_FAILED: dict[str, str] = {}


def note_fetch_failure(url: str, why: str | None) -> None:
    """Record why downloading `url` failed (None: it no longer failed); a sample showing it then fails with this."""
    if why is None:
        _FETCH_FAILED.pop(url, None)
    else:
        _FETCH_FAILED[url] = why


def shown_url(url: str) -> str:
    """A URL as messages and reports show it: no user, password, query or fragment (they may hold tokens)."""
    if url.startswith("data:"):
        return f"data: URL ({len(url):,} characters)"
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def describe(ref: ImageRef) -> str:
    """How messages name an image: its name, path or URL (a data: URL by its length, never its content)."""
    if ref.name:
        return ref.name
    if ref.url is not None:
        return shown_url(ref.url)
    return ref.path or "<in-memory image>"


def _url_bytes(ref: ImageRef) -> bytes:
    """The bytes of a data: URL. An http(s) URL is never downloaded here: without --fetch-images it is
    refused, with it medprobe.image_fetch has already replaced it by a cached file, or noted why it could not."""
    url = ref.url or ""
    if url.startswith("data:"):
        return _decode_data_url(ref, url)
    if url.startswith(("http://", "https://")):
        if (why := _FETCH_FAILED.get(url)) is not None:
            raise ImageError(f"Image {shown_url(url)} could not be downloaded ({why}). Check the URL, or download "
                             "the image and point the image column at the local file.")
        raise ImageError(f"Image {shown_url(url)} is on the network, and medprobe downloads images only when asked: "
                         f"pass {FETCH_FLAG} (they are cached in the run folder), or download them and point the "
                         "image column at local files.")
    raise ImageError(f"Unsupported image URL scheme: {url[:40]!r}; use a local path, a data: URL, or http(s) "
                     f"with {FETCH_FLAG}.")


def _decode_data_url(ref: ImageRef, url: str) -> bytes:
    # RFC 2397: data:[<mediatype>][;base64],<data>; without ";base64" the data is percent-encoded
    header, comma, payload = url.partition(",")
    if not comma:
        raise ImageError(f"Image {describe(ref)} has no ',' before its data. Check the image cell: write it as "
                         "data:image/png;base64,<base64 of the file>.")
    if len(payload) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise ImageError(f"Image {describe(ref)} is over the {MAX_FILE_BYTES // 2**20} MB limit. Downscale it.")
    if not header.lower().endswith(";base64"):
        return unquote_to_bytes(payload)
    try:
        # whitespace and percent-escapes are tolerated (line-wrapped or URL-quoted base64); nothing else is
        return base64.b64decode("".join(unquote(payload).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"Image {describe(ref)} holds invalid base64 ({exc}). Re-encode the image file "
                         "(base64 of its bytes), or point the image column at the file.") from None


def sha256(ref: ImageRef, allow_outside_root: bool = False) -> str:
    """Content hash of the image bytes: what enters the request key (for DICOM/NIfTI: of the
    rendered pixels and the rendering settings)."""
    if (rendered := _medical(ref, allow_outside_root)) is not None:
        return rendered.sha256
    if ref.path is not None and ref.data is None and ref.url is None:
        path = resolve_path(ref, allow_outside_root)
        size, mtime_ns = _stat(ref, path)
        try:
            return _hash_file(str(path), size, mtime_ns)
        except OSError as exc:
            raise ImageError(f"Image {describe(ref)} cannot be read ({exc.strerror or exc}). Check the file's "
                             "permissions, or replace it.") from None
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
                f"Image {describe(ref)} is {img.width}x{img.height} pixels, over the {MAX_PIXELS:,} pixel limit "
                "(possible decompression bomb). Downscale it before evaluation."
            )
        img.load()
        # inside the guard: a mode PIL cannot convert (some 16-bit and palette TIFFs) is the file's problem
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own limit, met before ours on some formats
        raise ImageError(f"Image {describe(ref)} is too large to decode ({exc}; possible decompression bomb). "
                         "Downscale it before evaluation.") from None
    except Exception as exc:  # PIL raises many types for corrupt data
        raise ImageError(f"Image {describe(ref)} cannot be decoded ({exc}). Re-export or replace the file.") from exc
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
                f"Image {describe(ref)} is {img.width}x{img.height} pixels, over the {MAX_PIXELS:,} pixel limit "
                "(possible decompression bomb). Downscale it before evaluation."
            )
        img.verify()  # PNG: chunk CRCs; JPEG: nothing, hence the end-of-image check below
        if img.format == "JPEG" and data.rfind(b"\xff\xd9", max(0, len(data) - 4096)) < 0:
            # FF D9 cannot occur inside entropy-coded data (ITU T.81 B.1.1.5), so its absence at the
            # end means the file was cut short
            raise ImageError(f"Image {describe(ref)} is a truncated JPEG (no end-of-image marker). "
                             "Re-export or replace the file.")
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"Image {describe(ref)} cannot be decoded ({exc}). Re-export or replace the file.") from exc
