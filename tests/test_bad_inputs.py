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
    if kind == "data-bad-base64":
        return "data:image/png;base64,@@@not base64!!"
    if kind == "data-no-comma":
        return "data:image/png;base64"
    if kind == "zero-byte":
        (data / "empty.png").write_bytes(b"")
        return "empty.png"
    if kind == "folder-as-image":
        (data / "folder.png").mkdir()
        return "folder.png"
    if kind == "file-as-folder":
        return "good.jpg/inner.png"
    if kind == "nul-in-path":
        return "bad\x00name.png"
    if kind == "symlink-loop":
        (data / "loop.png").symlink_to(data / "loop.png")
        return "loop.png"
    if kind == "http-no-opt-in":
        return "http://images.example.invalid/x.png"  # must never be resolved or fetched (network guard)
    raise AssertionError(kind)


EXPECT = {
    "jpeg-truncated": "truncated JPEG", "jpeg-corrupt": "cannot be decoded", "png-truncated": "cannot be decoded",
    "png-corrupt": "cannot be decoded", "decompression-bomb": "decompression bomb", "dicom-bomb": "decompression bomb",
    "dicom-no-pixels": "no pixel data", "dicom-truncated": "truncated or corrupt",
    "nifti-inconsistent-header": "inconsistent with its header", "missing-file": "Image not found",
    "escape-relative": "outside the dataset root", "escape-absolute": "outside the dataset root",
    "symlink-out": "outside the dataset root", "series-symlink-out": "outside the dataset root",
    "data-bad-base64": "invalid base64", "data-no-comma": "no ','", "zero-byte": "empty (0 bytes)",
    "folder-as-image": "is a folder", "file-as-folder": "Image not found", "nul-in-path": "cannot be resolved",
    "symlink-loop": "cannot be resolved", "http-no-opt-in": "--fetch-images",
}  # fmt: skip
#: words of an error that says what to do
ACTIONS = ("Re-export", "Re-encode", "replace", "Check", "pass --", "Point", "Split", "Downscale")


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


def stored(out: Path, field: str) -> dict[str, str | None]:
    """sample id -> that field of its first turn's stored generation."""
    db = sqlite3.connect(out / "records.sqlite")
    plan = dict(db.execute("SELECT sample_id, key FROM plan WHERE turn = 0"))
    gens = {k: json.loads(b) for k, b in db.execute("SELECT key, body FROM generations")}
    db.close()
    return {sid: (gens.get(k) or {}).get(field) for sid, k in plan.items()}


def stored_errors(out: Path) -> dict[str, str | None]:
    return stored(out, "error")


def stored_kinds(out: Path) -> dict[str, str | None]:
    return stored(out, "error_kind")


@pytest.mark.parametrize("kind", sorted(EXPECT))
def test_bad_image_is_one_clear_sample_error(tmp_path, openai_server, kind):
    cases, out = setup(tmp_path, kind)
    result = invoke(cases, out, openai_server)
    assert result.exit_code == 3, result.output  # finished, with a sample error (partial)
    errs = stored_errors(out)
    assert errs["good"] is None
    message = errs[f"bad-{kind}"]
    assert message and message.startswith(f"sample bad-{kind}: ") and EXPECT[kind].lower() in message.lower(), message
    assert any(w in message for w in ACTIONS), message
    assert stored_kinds(out)[f"bad-{kind}"] == "bad_input"
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
    assert invoke(cases, out, openai_server).exit_code == 3  # the refused image is a sample error
    assert str((tmp_path / "outside" / "secret.png").resolve()) not in opened


# ---------------------------------------------------------------- rows that cannot become samples


def row(kind: str) -> dict:
    """The bad row for `kind`: skipped at load, with the reason in LOAD_EXPECT."""
    base = {"id": f"bad-{kind}", "image": "good.jpg", "question": "Is it normal?", "answer": "yes"}
    return {**base, **{
        "image-bytes-text": {"image": {"bytes": "abcd"}},
        "image-bytes-number": {"image": {"bytes": 5}},
        "image-path-number": {"image": {"path": 7}},
        "image-number": {"image": 42},
        "image-nested-list": {"image": [["good.jpg"]]},
        "surrogate-question": {"question": "Is it \ud800 normal?"},
        "surrogate-answer": {"answer": "ye\udfffs"},
        "surrogate-option": {"options": ["CT", "M\udc00RI"], "answer": "CT"},
        "surrogate-column-name": {"org\ud83dan": "lung"},
        "too-many-options": {"options": [f"o{i}" for i in range(703)], "answer": "A"},
        "options-not-a-list": {"options": 5, "answer": "A"},
        "gold-not-an-option": {"options": ["CT", "MRI"], "answer": "PET"},
        "unknown-answer-type": {"answer_type": "essay"},
        "empty-question": {"question": "  "},
    }[kind]}  # fmt: skip


LOAD_EXPECT = {
    "image-bytes-text": "image 'bytes' holds str, not raw bytes", "image-bytes-number": "image 'bytes' holds int",
    "image-path-number": "image 'path' must be a string", "image-number": "unsupported image value of type int",
    "image-nested-list": "unsupported image value of type list",
    "surrogate-question": "column 'question' holds a lone surrogate '\\ud800' at character 7",
    "surrogate-answer": "column 'answer' holds a lone surrogate", "surrogate-option": "column 'options' holds a lone",
    "surrogate-column-name": "a column name holds a lone surrogate", "too-many-options": "703 options, over the 702",
    "options-not-a-list": "options must be a list", "gold-not-an-option": "neither a letter A-B nor one of the options",
    "unknown-answer-type": "unknown answer_type 'essay'", "empty-question": "empty 'question'",
}  # fmt: skip


def write_rows(path: Path, rows: list[dict]) -> Path:
    # json.dumps escapes a lone surrogate as \ud800, exactly as a broken exporter writes it
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("kind", sorted(LOAD_EXPECT))
def test_bad_row_is_skipped_at_load_with_its_reason(tmp_path, openai_server, kind):
    (tmp_path / "good.jpg").write_bytes(JPEG)
    good = {"id": "good", "image": "good.jpg", "question": "Is it normal? (good)", "answer": "yes"}
    cases = write_rows(tmp_path / "cases.jsonl", [good, row(kind)])
    result = invoke(cases, tmp_path / "run", openai_server)
    assert result.exit_code == 0, result.output  # every planned request was answered
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["load_error_count"] == 1
    (reason,) = manifest["load_errors"]
    assert reason.startswith("cases.jsonl line 2: ") and LOAD_EXPECT[kind] in reason, reason
    assert stored_errors(tmp_path / "run") == {"good": None}
    assert openai_server.count() == 1


def test_mixed_file_answers_good_rows_and_reports_each_bad_one(tmp_path, openai_server):
    """One file holding every kind of trouble at once: the good rows are answered, each bad row is reported
    with its reason (skipped at load, or a sample error of kind bad_input), and nothing is a traceback."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "good.jpg").write_bytes(JPEG)
    at_load = ["image-bytes-text", "surrogate-question", "too-many-options", "gold-not-an-option"]
    at_planning = ["data-bad-base64", "http-no-opt-in", "zero-byte", "missing-file", "png-truncated"]
    good = [{"id": f"good-{i}", "image": "good.jpg", "question": f"Is it normal? (good-{i})", "answer": "yes"}
            for i in range(3)]  # fmt: skip
    planned = [{"id": f"bad-{k}", "image": make(k, data, outside), "question": f"Is it normal? (bad-{k})",
                "answer": "yes"} for k in at_planning]  # fmt: skip
    rows = [good[0], *(row(k) for k in at_load[:2]), good[1], *planned, *(row(k) for k in at_load[2:]), good[2]]
    cases = write_rows(data / "cases.jsonl", rows)
    result = CliRunner().invoke(app, ["run", str(cases), "--model", "openai/tiny", "--base-url", openai_server.base_url,
                                      "--retries", "0", "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 3, result.output  # finished; some samples ended in errors
    assert "rows skipped while loading: 4" in " ".join(result.output.split())
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    lines = {r["id"]: n for n, r in enumerate(rows, start=1)}
    assert len(manifest["load_errors"]) == 4
    for kind, reason in zip(at_load, sorted(manifest["load_errors"], key=lambda e: int(e.split()[2].rstrip(":")))):
        assert reason.startswith(f"cases.jsonl line {lines[f'bad-{kind}']}: ") and LOAD_EXPECT[kind] in reason
    errors, kinds, texts = stored_errors(tmp_path / "run"), stored_kinds(tmp_path / "run"), stored(tmp_path / "run", "text")
    assert set(errors) == {r["id"] for r in good} | {f"bad-{k}" for k in at_planning}
    for r in good:
        assert errors[r["id"]] is None and texts[r["id"]], r["id"]
    for kind in at_planning:
        message = errors[f"bad-{kind}"]
        assert message and EXPECT[kind].lower() in message.lower() and kinds[f"bad-{kind}"] == "bad_input", message
    assert openai_server.count() == 3 and openai_server.count("bad-") == 0


# ---------------------------------------------------------------- more than 26 options


def test_27_and_30_options_are_lettered_past_z_and_parsed_back(tmp_path, openai_server):
    """Labels go on past Z as AA, AB, ... (medprobe.letters): the prompt shows them, the gold may be
    given as the letter or the option's text, and the strict parser reads "AA" / "Answer: AD" back."""
    from medprobe import scoring
    from medprobe.store import read_records

    (tmp_path / "good.jpg").write_bytes(JPEG)
    rows = [
        {"id": "q27", "image": "good.jpg", "question": "Which one? (q27)", "options": [f"o{i}" for i in range(27)],
         "answer": "AA"},
        {"id": "q30", "image": "good.jpg", "question": "Which one? (q30)", "options": [f"o{i}" for i in range(30)],
         "answer": "o29"},
    ]  # fmt: skip
    openai_server.set_script({"(q27)": "AA", "(q30)": "Answer: AD"})
    cases = write_rows(tmp_path / "cases.jsonl", rows)
    result = invoke(cases, tmp_path / "run", openai_server)
    assert result.exit_code == 0, result.output
    asked = {r.question.split("\n")[0]: r.question for r in openai_server.requests}
    assert "\nZ. o25\nAA. o26\n" in asked["Which one? (q27)"]
    assert "\nAC. o28\nAD. o29\n" in asked["Which one? (q30)"]
    _, records = read_records(tmp_path / "run")
    by_id = {r.sample.id: r for r in records}
    assert by_id["q30"].sample.answer == "AD"
    for rec in by_id.values():
        strict = scoring.get("strict").score(rec.sample, rec.final.text)
        assert strict.outcome == "correct", (rec.sample.id, strict)
        assert scoring.get("multimedeval").score(rec.sample, rec.final.text).outcome == "correct"
        # MedEvalKit letters options chr(ord('a') + i): past z it has no label, so the row is invalid, with why
        medevalkit = scoring.get("medevalkit").score(rec.sample, rec.final.text)
        assert medevalkit.outcome == "invalid" and medevalkit.answer.reason == "over_26_options"


@pytest.mark.parametrize("model", ["baseline/random", "scripted/constant:AB"])
def test_30_options_run_with_baselines_and_scripted_answers(tmp_path, model):
    (tmp_path / "good.jpg").write_bytes(JPEG)
    rows = [{"id": f"q{i}", "image": "good.jpg", "question": f"Which one? {i}", "options": [f"o{j}" for j in range(30)],
             "answer": "AB"} for i in range(5)]  # fmt: skip
    cases = write_rows(tmp_path / "cases.jsonl", rows)
    result = CliRunner().invoke(app, ["run", str(cases), "--model", model, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "answered: 5" in result.output
