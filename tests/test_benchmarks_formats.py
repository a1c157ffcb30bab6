"""Readers in medprobe.benchmarks._formats, on real VQA-RAD rows and images (CC0 1.0, tests/fixtures)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from medprobe.benchmarks._formats import (
    LoadError, file_sha256, read_csv, read_file, read_hf, read_image_folder, read_json, read_jsonl, read_parquet,
    to_image_ref, to_image_refs,
)

FIX = Path(__file__).parent / "fixtures"
IMAGES = sorted((FIX / "vqa_rad" / "images").glob("*.jpg"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def real_rows(n: int = 3) -> list[dict]:
    return json.loads((FIX / "vqa_rad" / "vqa_rad_sample.json").read_text(encoding="utf-8"))[:n]


def test_jsonl_bad_line_is_one_error_and_the_rest_load(tmp_path):
    rows = real_rows(3)
    lines = [json.dumps(rows[0]), "{not json", "", json.dumps(rows[1]), "[1, 2]", json.dumps(rows[2])]
    f = tmp_path / "q.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = list(read_jsonl(f))
    good = [r.data["qid"] for r in out if r.data is not None]
    bad = [(r.where, r.error) for r in out if r.data is None]
    assert good == [rows[0]["qid"], rows[1]["qid"], rows[2]["qid"]]
    assert bad[0][0] == "q.jsonl line 2" and "invalid JSON" in bad[0][1]
    assert bad[1][0] == "q.jsonl line 5" and "expected a JSON object" in bad[1][1]


def test_jsonl_invalid_utf8_names_the_line(tmp_path):
    rows = real_rows(2)
    f = tmp_path / "q.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows[0]).encode() + b'\n{"question": "caf\xe9"}\n'
                  + json.dumps(rows[1]).encode() + b"\n")
    out = list(read_jsonl(f))
    assert [r.data["qid"] for r in out if r.data] == [rows[0]["qid"], rows[1]["qid"]]  # BOM stripped
    (bad,) = [r for r in out if r.error]
    assert bad.where == "q.jsonl line 2" and "not valid UTF-8" in bad.error and "re-save" in bad.error


def test_json_list_and_wrapped_list_and_errors(tmp_path):
    rows = real_rows(2)
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"data": rows + [5]}), encoding="utf-8")
    assert [r.data["qid"] for r in read_json(tmp_path / "a.json")] == [r["qid"] for r in rows]
    b = list(read_json(tmp_path / "b.json"))
    assert b[2].where == "b.json item 3" and "expected an object" in b[2].error
    (tmp_path / "c.json").write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]), encoding="utf-8")
    with pytest.raises(LoadError, match=r"not valid JSON .*line 2.*rename it to \.jsonl"):
        read_json(tmp_path / "c.json")
    (tmp_path / "d.json").write_bytes(b'[{"q": "\xff"}]')
    with pytest.raises(LoadError, match="not valid UTF-8 .*line 1"):
        read_json(tmp_path / "d.json")


def test_csv_rows_extra_fields_and_invalid_utf8(tmp_path):
    f = tmp_path / "q.csv"
    f.write_bytes(b'id,question,answer\n1,"Is this a CT, or MRI?",CT\n2,too,many,fields\n3,caf\xe9?,no\n4,Where?,left\n')
    out = list(read_csv(f))
    assert out[0].data == {"id": "1", "question": "Is this a CT, or MRI?", "answer": "CT"}
    assert out[1].where == "q.csv line 3" and "more field" in out[1].error
    assert out[2].where == "q.csv line 4" and "not valid UTF-8" in out[2].error
    assert out[3].data["answer"] == "left"


def test_parquet_image_structs_and_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = IMAGES[0].read_bytes()
    table = pa.table({
        "image": [{"bytes": raw, "path": IMAGES[0].name}, {"bytes": None, "path": "x.png"}],
        "blob": [raw, raw],
        "question": ["Is it?", "What?"],
    })
    pq.write_table(table, tmp_path / "t.parquet")
    out = [r.data for r in read_parquet(tmp_path / "t.parquet")]
    ref = to_image_ref(out[0]["image"])
    assert ref.data == raw and ref.name == IMAGES[0].name
    assert to_image_ref(out[1]["image"], root=tmp_path) == to_image_ref("x.png", root=tmp_path)
    assert to_image_ref(out[0]["blob"]).data == raw


def test_image_refs_paths_lists_urls_and_pil(tmp_path):
    from PIL import Image

    assert to_image_refs('["a.png", "b/c.jpg"]', root=tmp_path) == (
        to_image_ref("a.png", tmp_path), to_image_ref("b/c.jpg", tmp_path))
    assert to_image_ref("https://example.org/x.png").url == "https://example.org/x.png"
    assert to_image_ref("  ") is None and to_image_refs(None) == ()
    opened = Image.open(IMAGES[0])  # a PIL image backed by a file keeps the original bytes
    assert to_image_ref(opened).path == str(IMAGES[0])
    decoded = Image.open(io.BytesIO(IMAGES[0].read_bytes()))  # no file behind it: encoded losslessly as PNG
    png = to_image_ref(decoded).data
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).size == decoded.size


def test_file_sha256(tmp_path):
    assert file_sha256(IMAGES[0]) == hashlib.sha256(IMAGES[0].read_bytes()).hexdigest()


def test_read_file_picks_reader_by_extension(tmp_path):
    (tmp_path / "q.txt").write_text("x")
    with pytest.raises(LoadError, match="Don't know how to read q.txt"):
        read_file(tmp_path / "q.txt")


def test_image_folder_class_per_subfolder(tmp_path):
    for label, img in zip(["abnormal", "normal"], IMAGES[:2], strict=True):
        (tmp_path / label).mkdir()
        (tmp_path / label / img.name).write_bytes(img.read_bytes())
    (tmp_path / "question.txt").write_text("Is this image normal or abnormal?\n")
    rows = [r.data for r in read_image_folder(tmp_path)]
    assert [r["answer"] for r in rows] == ["abnormal", "normal"]
    assert rows[0]["options"] == ["abnormal", "normal"] and rows[0]["question"] == "Is this image normal or abnormal?"
    assert rows[0]["image"] == f"abnormal/{IMAGES[0].name}"


def test_image_folder_flat_with_sidecar_and_without(tmp_path):
    (tmp_path / IMAGES[0].name).write_bytes(IMAGES[0].read_bytes())
    with pytest.raises(LoadError, match="no questions file"):
        list(read_image_folder(tmp_path))
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": IMAGES[0].name, "question": "q"}) + "\n")
    (row,) = [r.data for r in read_image_folder(tmp_path)]
    assert row["image"] == IMAGES[0].name  # HF ImageFolder's file_name column


def test_read_hf_local_save_to_disk_and_parquet_keep_original_bytes(tmp_path):
    from datasets import Dataset, DatasetDict, Image

    raw = [p.read_bytes() for p in IMAGES[:2]]
    ds = Dataset.from_dict({"image": raw, "question": ["Is it?", "Where?"], "answer": ["yes", "left"]})
    ds = ds.cast_column("image", Image())
    DatasetDict(test=ds).save_to_disk(str(tmp_path / "saved"))
    table = read_hf(str(tmp_path / "saved"), "test")
    rows = [r.data for r in table.rows]
    assert [to_image_ref(r["image"]).data for r in rows] == raw and table.revision
    with pytest.raises(LoadError, match=r"has splits \['test'\], not 'train'"):
        read_hf(str(tmp_path / "saved"), "train")
    (tmp_path / "copy" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "copy" / "data" / "test-00000-of-00001.parquet"))
    table = read_hf(str(tmp_path / "copy"), "test")
    assert [to_image_ref(r.data["image"]).data for r in table.rows] == raw and len(table.sha256) == 64
    with pytest.raises(LoadError, match="split 'train'"):
        read_hf(str(tmp_path / "copy"), "train")


def test_read_hf_hub_id_calls_load_dataset_and_explains_offline_failure(monkeypatch):
    import datasets

    calls = []

    def offline(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr("medprobe.hub_reach.unreachable", lambda *a, **k: None)  # the hub answers
    with pytest.raises(LoadError, match=r"save_to_disk\(DIR\).*--data DIR"):
        read_hf("flaviagiammarino/path-vqa", "test")
    assert calls == [(("flaviagiammarino/path-vqa", None), {"split": "test", "data_files": None})]
    with pytest.raises(LoadError, match="No such file or folder: ./missing.parquet"):
        read_hf("./missing.parquet", "test")


def test_an_unreachable_hub_fails_at_once_without_datasets_retrying(monkeypatch):
    """`medprobe run vqa-rad` on an offline machine: one short TCP probe, then the steps, never
    datasets' connection retries (about 25 s each)."""
    import time

    import datasets

    from medprobe import hub_reach

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub_reach, "_reachable", lambda host, port, timeout: False)
    monkeypatch.setattr(hub_reach, "cached", lambda repo: False)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("datasets tried the hub"))
    start = time.perf_counter()
    with pytest.raises(LoadError, match=r"did not answer within .*save_to_disk\(DIR\).*--data DIR"):
        read_hf("flaviagiammarino/path-vqa", "test")
    assert time.perf_counter() - start < 1
