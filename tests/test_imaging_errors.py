"""Every unusable image reaches the runner as `imaging.ImageError` (a bad_input sample error), never as a PIL,
binascii, OS or ValueError exception that would stop the run; the message names the image and what to do."""

from __future__ import annotations

import base64
import io
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image

from medprobe import imaging
from medprobe.types import ImageRef


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def bad_ref(kind: str, root: Path) -> ImageRef:
    def at(path: str) -> ImageRef:
        return ImageRef(path=path, root=str(root), name=path)

    if kind == "folder-named-png":
        (root / "folder.png").mkdir()
        return at("folder.png")
    if kind == "folder-not-dicom":
        (root / "series").mkdir()
        (root / "series" / "notes.txt").write_text("no images here")
        return at("series")
    if kind == "zero-byte":
        (root / "empty.png").write_bytes(b"")
        return at("empty.png")
    if kind == "zero-byte-no-suffix":
        (root / "empty").write_bytes(b"")
        return at("empty")
    if kind == "nul-in-path":
        return at("a\x00b.png")
    if kind == "symlink-loop":
        (root / "loop.png").symlink_to(root / "loop.png")
        return at("loop.png")
    if kind == "through-a-file":
        (root / "f.png").write_bytes(png())
        return at("f.png/inner.png")
    if kind == "not-an-image":
        (root / "text.png").write_text("hello")
        return at("text.png")
    if kind == "data-bad-base64":
        return ImageRef(url="data:image/png;base64,@@@!!")
    if kind == "data-bad-padding":
        return ImageRef(url="data:image/png;base64,abcde")
    if kind == "data-no-comma":
        return ImageRef(url="data:image/png;base64")
    if kind == "data-empty":
        return ImageRef(url="data:image/png;base64,")
    if kind == "data-not-an-image":
        return ImageRef(url="data:image/png;base64," + base64.b64encode(b"plain text").decode())
    if kind == "bytes-empty":
        return ImageRef(data=b"")
    if kind == "bytes-garbage":
        return ImageRef(data=b"\x89PNG garbage")
    if kind == "http-no-opt-in":
        return ImageRef(url="https://user:secret@images.example.invalid/x.png?token=abc")
    if kind == "other-scheme":
        return ImageRef(url="ftp://images.example.invalid/x.png")
    if kind == "pil-bomb":  # over PIL's own limit (2 x MAX_IMAGE_PIXELS): DecompressionBombError at open
        buf = io.BytesIO()
        Image.new("1", (20_000, 20_000)).save(buf, "PNG")
        return ImageRef(data=buf.getvalue(), name="bomb.png")
    raise AssertionError(kind)


# kind -> (what the message says, whether hashing alone already refuses it: planning fails for every backend)
EXPECT = {
    "folder-named-png": ("is a folder", True), "folder-not-dicom": ("DICOM", True),
    "zero-byte": ("empty (0 bytes)", True), "zero-byte-no-suffix": ("", True),
    "nul-in-path": ("cannot be resolved", True), "symlink-loop": ("cannot be resolved", True),
    "through-a-file": ("Image not found", True), "not-an-image": ("cannot be decoded", False),
    "data-bad-base64": ("invalid base64", True), "data-bad-padding": ("invalid base64", True),
    "data-no-comma": ("no ','", True), "data-empty": ("empty (0 bytes)", True),
    "data-not-an-image": ("cannot be decoded", False), "bytes-empty": ("empty (0 bytes)", True),
    "bytes-garbage": ("cannot be decoded", False), "http-no-opt-in": ("pass --fetch-images", True),
    "other-scheme": ("Unsupported image URL scheme", True), "pil-bomb": ("decompression bomb", False),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(EXPECT))
def test_every_bad_image_is_an_image_error(tmp_path, kind):
    ref = bad_ref(kind, tmp_path)
    words, at_hash = EXPECT[kind]
    calls = [lambda: imaging.sha256(ref), lambda: imaging.open_image(ref), lambda: imaging.to_data_url(ref),
             lambda: imaging.to_data_url(ref, max_side=4)]  # fmt: skip
    for i, call in enumerate(calls):
        if i == 0 and not at_hash:
            call()  # the bytes hash fine; decoding is what fails
            continue
        with pytest.raises(imaging.ImageError) as exc:
            call()
        assert words in str(exc.value), str(exc.value)
        assert "secret" not in str(exc.value) and "token" not in str(exc.value)  # a URL's credentials stay out


def test_data_urls_decode_wrapped_and_percent_encoded_payloads(tmp_path):
    data = png()
    b64 = base64.b64encode(data).decode()
    wrapped = "\n".join(b64[i : i + 20] for i in range(0, len(b64), 20))
    for url in (f"data:image/png;base64,{b64}", f"data:image/png;base64,{wrapped}",
                f"data:image/png;base64,{urllib.parse.quote(b64)}", f"data:image/png,{urllib.parse.quote(data)}"):
        assert imaging.read_bytes(ImageRef(url=url)) == data  # fmt: skip
        assert imaging.open_image(ImageRef(url=url)).size == (8, 8)
