"""The bad-input corpus, each case through the real CLI against the loopback server: a clear error
naming the sample (or row, or file) and what to do; the run goes on with the rest and reports the
count; nothing outside the dataset root is read unless --allow-outside-root."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest
from medfiles import NIB_DATA, ct, write_series
from PIL import Image
from typer.testing import CliRunner

from medprobe.cli import app

JPEG = (Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images/synpic21044.jpg").read_bytes()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(JPEG)).save(buf, "PNG")
    return buf.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG of a few hundred bytes that declares width x height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def _inconsistent_nifti(path: Path) -> None:
    raw = bytearray((NIB_DATA / "anatomical.nii").read_bytes())
    dims = struct.unpack_from(">8h", raw, 40)  # this file is big-endian
    struct.pack_into(">8h", raw, 40, dims[0], dims[1] * 4, dims[2] * 4, dims[3], *dims[4:])  # data is 16x smaller
    path.write_bytes(bytes(raw))


def make(kind: str, data: Path, outside: Path) -> str:
    """Write the bad file for `kind` under `data`; returns the image cell of its row."""
    if kind == "jpeg-truncated":
        (data / "t.jpg").write_bytes(JPEG[: len(JPEG) // 2])
        return "t.jpg"
    if kind == "jpeg-corrupt":
        (data / "c.jpg").write_bytes(JPEG[:2] + bytes(300) + JPEG[302:])
        return "c.jpg"
    if kind == "png-truncated":
        png = png_bytes()
        (data / "t.png").write_bytes(png[: len(png) // 2])
        return "t.png"
    if kind == "png-corrupt":
        png = png_bytes()
        (data / "c.png").write_bytes(png[:60] + bytes(100) + png[160:])
        return "c.png"
    if kind == "decompression-bomb":
        (data / "bomb.png").write_bytes(png_bomb())
        return "bomb.png"
    if kind == "dicom-bomb":
        ds = ct()
        ds.Rows = ds.Columns = 65535
        ds.NumberOfFrames = 1000
        ds.save_as(data / "bomb.dcm")
        return "bomb.dcm"
    if kind == "dicom-no-pixels":
        ds = ct()
        del ds.PixelData
        ds.save_as(data / "nopix.dcm")
        return "nopix.dcm"
    if kind == "dicom-truncated":
        ct().save_as(data / "full.dcm")
        raw = (data / "full.dcm").read_bytes()
        (data / "short.dcm").write_bytes(raw[: len(raw) // 2])
        return "short.dcm"
    if kind == "nifti-inconsistent-header":
        _inconsistent_nifti(data / "bad.nii")
        return "bad.nii"
    if kind == "missing-file":
        return "nowhere/missing.png"
    if kind == "escape-relative":
        return "../../etc/passwd"
    if kind == "escape-absolute":
        return str(outside / "secret.png")
    if kind == "symlink-out":
        (data / "link.png").symlink_to(outside / "secret.png")
        return "link.png"
    if kind == "series-symlink-out":
        write_series(data / "series", n=3)
        ct().save_as(outside / "other.dcm")
        (data / "series" / "IM9999").symlink_to(outside / "other.dcm")
        return "series"
    raise AssertionError(kind)


EXPECT = {
    "jpeg-truncated": "truncated JPEG", "jpeg-corrupt": "cannot be decoded", "png-truncated": "cannot be decoded",
    "png-corrupt": "cannot be decoded", "decompression-bomb": "decompression bomb", "dicom-bomb": "decompression bomb",
    "dicom-no-pixels": "no pixel data", "dicom-truncated": "truncated or corrupt",
    "nifti-inconsistent-header": "inconsistent with its header", "missing-file": "Image not found",
    "escape-relative": "outside the dataset root", "escape-absolute": "outside the dataset root",
    "symlink-out": "outside the dataset root", "series-symlink-out": "outside the dataset root",
}  # fmt: skip


def setup(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "good.jpg").write_bytes(JPEG)
    (outside / "secret.png").write_bytes(png_bytes())
    rows = [{"id": "good", "image": "good.jpg"}, {"id": f"bad-{kind}", "image": make(kind, data, outside)}]
    cases = data / "cases.jsonl"
    cases.write_text("".join(json.dumps({**r, "question": f"Is it normal? ({r['id']})", "answer": "yes"}) + "\n"
                             for r in rows))  # fmt: skip
    return cases, tmp_path / "run"


def invoke(cases: Path, out: Path, server, *extra: str):
    return CliRunner().invoke(app, ["run", str(cases), "--model", "openai/tiny", "--base-url", server.base_url,
                                    "--retries", "0", "--out", str(out), *extra])  # fmt: skip


def stored_errors(out: Path) -> dict[str, str | None]:
    db = sqlite3.connect(out / "records.sqlite")
    plan = dict(db.execute("SELECT sample_id, key FROM plan WHERE turn = 0"))
    gens = {k: json.loads(b) for k, b in db.execute("SELECT key, body FROM generations")}
    return {sid: (gens.get(k) or {}).get("error") for sid, k in plan.items()}


@pytest.mark.parametrize("kind", sorted(EXPECT))
def test_bad_image_is_one_clear_sample_error(tmp_path, openai_server, kind):
    cases, out = setup(tmp_path, kind)
    result = invoke(cases, out, openai_server)
    assert result.exit_code == 0, result.output
    errs = stored_errors(out)
    assert errs["good"] is None
    message = errs[f"bad-{kind}"]
    assert message and message.startswith(f"sample bad-{kind}: ") and EXPECT[kind].lower() in message.lower(), message
    assert any(w in message for w in ("Re-export", "replace", "Check", "pass --", "Point", "Split", "Downscale"))
    assert "errors: 1" in result.output and "answered: 1" in result.output
    assert openai_server.count(f"bad-{kind}") == 0  # never sent: nothing outside the root reached the model


def test_allow_outside_root_reads_the_symlinked_file(tmp_path, openai_server):
    cases, out = setup(tmp_path, "symlink-out")
    result = invoke(cases, out, openai_server, "--allow-outside-root")
    assert result.exit_code == 0, result.output
    assert stored_errors(out) == {"good": None, "bad-symlink-out": None}


def test_bad_rows_are_skipped_counted_and_named(tmp_path, openai_server):
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.jpg").write_bytes(JPEG)
    good = json.dumps({"id": "good", "image": "good.jpg", "question": "Is it normal? (good)", "answer": "yes"})
    huge = json.dumps({"id": "huge", "image": "good.jpg", "question": "x" * 2**20, "answer": "yes"})
    cases = data / "cases.jsonl"
    cases.write_bytes(b"\n".join([good.encode(), b'{"id": "bad-utf8", "question": "\xff\xfe"}', b'{"id": "broken",',
                                  huge.encode()]) + b"\n")  # fmt: skip
    result = invoke(cases, tmp_path / "run", openai_server)
    assert result.exit_code == 0, result.output
    assert "rows skipped while loading: 3" in " ".join(result.output.split())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["load_error_count"] == 3
    line2, line3, line4 = manifest["load_errors"]
    assert line2.startswith("cases.jsonl line 2: not valid UTF-8") and "re-save" in line2
    assert line3.startswith("cases.jsonl line 3: invalid JSON")
    assert line4.startswith("cases.jsonl line 4: question is 1,048,576 characters") and "shorten" in line4
    assert openai_server.count() == 1


def test_empty_benchmark_is_refused_clearly(tmp_path, openai_server):
    cases = tmp_path / "empty.jsonl"
    cases.write_text("")
    result = invoke(cases, tmp_path / "run", openai_server)
    assert result.exit_code == 2 and "No usable rows" in result.output


def test_duplicate_ids_are_refused_naming_them(tmp_path, openai_server):
    cases = tmp_path / "dupes.jsonl"
    (tmp_path / "a.jpg").write_bytes(JPEG)
    row = {"image": "a.jpg", "question": "Is it normal?", "answer": "yes"}
    cases.write_text("".join(json.dumps({"id": i, **row}) + "\n" for i in ("x1", "x2", "x1")))
    result = invoke(cases, tmp_path / "run", openai_server)
    assert result.exit_code == 2
    assert "appear more than once: x1" in " ".join(result.output.split()) and openai_server.count() == 0


def test_a_file_outside_root_is_never_opened(tmp_path, openai_server, monkeypatch):
    cases, out = setup(tmp_path, "symlink-out")
    opened = []
    real_open = open

    def spy(file, *args, **kwargs):
        opened.append(os.path.realpath(file) if isinstance(file, (str, os.PathLike)) else file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    assert invoke(cases, out, openai_server).exit_code == 0
    assert str((tmp_path / "outside" / "secret.png").resolve()) not in opened
