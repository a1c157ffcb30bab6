"""Custom benchmarks: a user's JSONL/CSV/parquet/folder given as BENCH, with an optional mapping file.

Rows reuse real VQA-RAD questions and images (CC0 1.0, tests/fixtures/vqa_rad).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medprobe import imaging
from medprobe.benchmarks import LoadError, load
from medprobe.benchmarks._base import LoadOptions
from medprobe.benchmarks.custom import infer_answer_type, infer_prompt_type
from medprobe.types import AnswerType

FIX = Path(__file__).parent / "fixtures"
IMAGES = sorted((FIX / "vqa_rad" / "images").glob("*.jpg"))
CLOSED, OPEN, MC = AnswerType.CLOSED, AnswerType.OPEN, AnswerType.MULTIPLE_CHOICE


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def bench(tmp_path) -> Path:
    """A benchmark folder with the 3 real images under imgs/."""
    (tmp_path / "imgs").mkdir()
    for img in IMAGES:
        shutil.copy(img, tmp_path / "imgs" / img.name)
    return tmp_path


def rows() -> list[dict]:
    a, b, c = (f"imgs/{p.name}" for p in IMAGES)
    return [
        {"id": "q1", "image": a, "question": "Is there a pneumothorax?", "answer": "No", "modality": "X-Ray"},
        {"id": "q2", "image": b, "question": "Is the lesion on the left or right?", "answer": "left", "organ": "HEAD"},
        {"id": "q3", "image": c, "question": "What is shown? Answer yes", "answer": "yes", "language": "en"},
        {"id": "q4", "image": [a, b], "question": "Which imaging plane?", "answer": "Axial",
         "options": ["Axial", "Coronal", "Sagittal"], "tags": ["plane", "mc"]},
        {"id": "q5", "image": c, "question": "Is this an MRI?", "answer": "no", "answer_type": " CLOSED "},
    ]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def test_jsonl_with_relative_images_and_derived_types(bench):
    loaded = load(str(write_jsonl(bench / "my_bench.jsonl", rows())))
    s = {x.id: x for x in loaded.samples}
    assert [x.id for x in loaded.samples] == ["q1", "q2", "q3", "q4", "q5"] and not loaded.errors
    assert (s["q1"].answer_type, s["q1"].prompt_type) == (CLOSED, CLOSED)
    assert (s["q2"].answer_type, s["q2"].prompt_type) == (OPEN, CLOSED)  # gold "left": open for scoring
    assert (s["q3"].answer_type, s["q3"].prompt_type) == (CLOSED, OPEN)  # gold "yes" but a "What" question
    assert (s["q4"].answer_type, s["q4"].prompt_type, s["q4"].answer) == (MC, None, "A")
    assert (s["q5"].answer_type, s["q5"].prompt_type) == (CLOSED, None)  # given: nothing derived
    assert s["q1"].metadata == {"modality": "X-Ray"} and s["q4"].metadata == {"tags": '["plane", "mc"]'}
    assert len(s["q4"].images) == 2 and s["q1"].benchmark == "my_bench" and s["q1"].split == "test"
    for x in loaded.samples:
        assert all(imaging.resolve_path(i).is_file() for i in x.images)
        assert x.images[0].root == str(bench)
    prov = loaded.provenance
    assert prov.benchmark == "my_bench" and prov.rows == 5 and prov.split == "test" and len(prov.sha256) == 64


def test_prompt_type_never_depends_on_the_gold():
    for question in ("Is there a fracture?", "What organ is this?", "Are the kidneys normal?", "Where is the mass?",
                     "肺是健康的吗?", "Doesn't this look enlarged?"):
        assert len({infer_prompt_type(question) for _gold in ("yes", "no", "left", "liver")}) == 1
    assert infer_prompt_type("Is there a fracture?") is CLOSED and infer_prompt_type("Where is it?") is OPEN
    assert infer_prompt_type("图片中包含肝脏吗?") is CLOSED and infer_prompt_type("肝脏在哪个位置?") is OPEN
    assert infer_answer_type(" Yes ") is CLOSED and infer_answer_type("yes, small") is OPEN


def test_csv_with_options_json_string_and_image_list(bench):
    a, b = (f"imgs/{p.name}" for p in IMAGES[:2])
    text = ("id,image,question,answer,answer_type,options,organ\n"
            f'1,{a},Is there free air?,yes,closed,,CHEST\n'
            f'2,"[""{a}"", ""{b}""]",Which modality?,(B),MC,"[""CT"", ""MRI""]",HEAD\n'
            f"3,https://example.org/x.png,Where is the lesion?,left lobe,Open,,\n")
    (bench / "q.csv").write_text(text, encoding="utf-8")
    s = load(str(bench / "q.csv")).samples
    assert [x.answer_type for x in s] == [CLOSED, MC, OPEN] and s[1].options == ("CT", "MRI") and s[1].answer == "B"
    assert len(s[1].images) == 2 and s[2].images[0].url == "https://example.org/x.png"
    assert s[0].metadata == {"organ": "CHEST"} and s[2].metadata == {}  # empty cells are dropped


def test_parquet_with_image_bytes_and_paths(bench):
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = IMAGES[0].read_bytes()
    pq.write_table(pa.table({
        "id": [1, 2], "question": ["Is this a CT?", "What is abnormal?"], "answer": ["yes", "mass"],
        "image": [{"bytes": raw, "path": IMAGES[0].name}, {"bytes": None, "path": f"imgs/{IMAGES[1].name}"}],
    }), bench / "q.parquet")
    s = load(str(bench / "q.parquet")).samples
    assert s[0].id == "1" and s[0].images[0].data == raw
    assert imaging.resolve_path(s[1].images[0]) == (bench / "imgs" / IMAGES[1].name).resolve()


def test_mapping_renames_filters_and_splits_real_vqa_rad_rows(tmp_path):
    mapping = {"name": "my-vqa-rad", "columns": {"id": "qid", "image": "image_name", "organ": "image_organ"},
               "filters": {"image_organ": ["HEAD", "CHEST", "ABD"]},
               "split": {"column": "phrase_type", "default": "test",
                         "values": {"test": ["test_freeform", "test_para"], "train": ["freeform", "para"]}}}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    src = str(FIX / "vqa_rad" / "vqa_rad_sample.json")
    opts = {"mapping": str(tmp_path / "map.json"), "images_dir": str(FIX / "vqa_rad" / "images")}
    test = load(src, LoadOptions(**opts))
    assert len(test.samples) == 17 and {x.split for x in test.samples} == {"test"}
    assert sum(x.answer_type is CLOSED for x in test.samples) == 14 and test.samples[0].benchmark == "my-vqa-rad"
    assert "organ" in test.samples[0].metadata and "image_organ" not in test.samples[0].metadata
    assert test.provenance.filters == {"image_organ": "HEAD,CHEST,ABD"}
    train = {x.id: x for x in load(src, LoadOptions(split="train", **opts)).samples}
    assert len(train) == 23 and train["2156"].answer_type is CLOSED  # "CLOSED " with a trailing space
    head = load(src, LoadOptions(mapping=_write(tmp_path / "m2.json", {**mapping, "filters": {"image_organ": "HEAD"}}),
                                 split="all"))
    assert {x.metadata["organ"] for x in head.samples} == {"HEAD"}


def _write(path: Path, obj: dict) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


def test_yaml_mapping_and_answer_type_values(bench):
    pytest.importorskip("yaml")
    items = [{"question_id": "a", "img": f"imgs/{IMAGES[0].name}", "q": "Is it normal?", "gold": "yes", "kind": "Y/N"},
             {"question_id": "b", "img": f"imgs/{IMAGES[1].name}", "q": "Size?", "gold": "2 cm", "kind": "free"}]
    write_jsonl(bench / "q.jsonl", items)
    (bench / "map.yaml").write_text("columns:\n  id: question_id\n  image: img\n  question: q\n  answer: gold\n"
                                    "  answer_type: kind\nanswer_type_values:\n  y/n: Closed\n  FREE: open\n"
                                    "split: validation\n")
    s = load(str(bench / "q.jsonl"), LoadOptions(mapping=str(bench / "map.yaml"))).samples
    assert [(x.id, x.answer_type, x.split) for x in s] == [("a", CLOSED, "validation"), ("b", OPEN, "validation")]
    with pytest.raises(LoadError, match="holds one split \\('validation'\\)"):
        load(str(bench / "q.jsonl"), LoadOptions(mapping=str(bench / "map.yaml"), split="train"))
    (bench / "evil.yaml").write_text("columns: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(LoadError, match="cannot be parsed"):
        load(str(bench / "q.jsonl"), LoadOptions(mapping=str(bench / "evil.yaml")))


def test_bad_mapping_says_what_to_fix(bench):
    write_jsonl(bench / "q.jsonl", rows())
    for bad, pattern in [({"colums": {"id": "x"}}, r"colums: Extra inputs.*Expected keys: name, columns"),
                         ({"answer_type_values": {"yn": "boolean"}}, r"answer_type_values\.yn"),
                         ({"columns": {"id": 3}}, r"columns\.id: Input should be a valid string")]:
        with pytest.raises(LoadError, match=pattern):
            load(str(bench / "q.jsonl"), LoadOptions(mapping=_write(bench / "m.json", bad)))
    (bench / "m.json").write_text("{columns: }")
    with pytest.raises(LoadError, match="cannot be parsed"):
        load(str(bench / "q.jsonl"), LoadOptions(mapping=str(bench / "m.json")))


def test_bad_rows_become_errors_and_the_rest_load(bench):
    good = [json.dumps(r).encode() for r in rows()]
    bad_mc = json.dumps({**rows()[3], "id": "q6", "answer": "Oblique"}).encode()
    bad_type = json.dumps({**rows()[0], "id": "q7", "answer_type": "yes-no"}).encode()
    (bench / "q.jsonl").write_bytes(b"\n".join([good[0], b'{"id": "x", ', good[1], b'{"id": "caf\xe9"}', good[2],
                                                bad_mc, bad_type, good[3]]) + b"\n")
    loaded = load(str(bench / "q.jsonl"))
    assert [x.id for x in loaded.samples] == ["q1", "q2", "q3", "q4"]
    assert loaded.errors[0].startswith("q.jsonl line 2: invalid JSON")
    assert loaded.errors[1].startswith("q.jsonl line 4: not valid UTF-8")
    assert loaded.errors[2] == "q.jsonl line 6: answer 'Oblique' is neither a letter A-C nor one of the options"
    assert loaded.errors[3].startswith("q.jsonl line 7: unknown answer_type 'yes-no'")
    write_jsonl(bench / "empty_q.jsonl", [{**rows()[0], "question": " "}])
    with pytest.raises(LoadError, match="No usable rows.*empty 'question'"):
        load(str(bench / "empty_q.jsonl"))


def test_duplicate_ids_are_an_error_listing_them(bench):
    items = rows() + [{**rows()[0]}, {**rows()[1]}, {**rows()[1]}]
    with pytest.raises(LoadError, match=r"2 id\(s\) appear more than once: q1, q2\. Ids must be unique"):
        load(str(write_jsonl(bench / "q.jsonl", items)))


def test_missing_column_names_it_and_how_to_map(bench):
    items = [{k if k != "question" else "Question": v for k, v in r.items()} for r in rows()]
    with pytest.raises(LoadError) as exc:
        load(str(write_jsonl(bench / "q.jsonl", items)))
    msg = str(exc.value)
    assert "column 'question' not found" in msg and "Columns found: Question, answer, id, image, modality" in msg
    assert '--mapping FILE.json with {"columns": {"question": "<your column>"}}' in msg


def test_split_column_and_images_dir(bench, tmp_path_factory):
    items = [{**r, "split": "train" if i < 2 else "test"} for i, r in enumerate(rows())]
    write_jsonl(bench / "q.jsonl", items)
    assert len(load(str(bench / "q.jsonl")).samples) == 5  # default: every split
    train = load(str(bench / "q.jsonl"), LoadOptions(split="train"))
    assert [(x.id, x.split) for x in train.samples] == [("q1", "train"), ("q2", "train")]
    write_jsonl(bench / "plain.jsonl", rows())
    with pytest.raises(LoadError, match="no split column"):
        load(str(bench / "plain.jsonl"), LoadOptions(split="train"))
    other = tmp_path_factory.mktemp("elsewhere")
    s = load(str(bench / "plain.jsonl"), LoadOptions(images_dir=str(other))).samples[0]
    assert s.images[0].root == str(other)


def test_class_folder_and_saved_dataset_as_custom(tmp_path):
    for label, img in zip(["abdomen", "chest", "head"], IMAGES, strict=True):
        (tmp_path / "cls" / label).mkdir(parents=True)
        shutil.copy(img, tmp_path / "cls" / label / img.name)
    s = load(str(tmp_path / "cls")).samples
    assert [(x.answer, x.answer_type) for x in s] == [("A", MC), ("B", MC), ("C", MC)]
    assert s[0].options == ("abdomen", "chest", "head") and imaging.resolve_path(s[0].images[0]).is_file()

    from datasets import Dataset, Image

    ds = Dataset.from_list([{"id": f"r{i}", "image": p.read_bytes(), "question": "Is it normal?", "answer": "yes"}
                            for i, p in enumerate(IMAGES)]).cast_column("image", Image())
    ds.save_to_disk(str(tmp_path / "saved"))
    loaded = load(str(tmp_path / "saved"))
    assert [x.images[0].data for x in loaded.samples] == [p.read_bytes() for p in IMAGES]
    assert loaded.provenance.revision and loaded.samples[0].prompt_type is CLOSED


def test_path_and_data_together_is_an_error(bench):
    with pytest.raises(LoadError, match="drop --data"):
        load(str(write_jsonl(bench / "q.jsonl", rows())), LoadOptions(data="other.jsonl"))
