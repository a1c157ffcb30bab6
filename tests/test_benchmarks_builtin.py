"""Built-in benchmarks on real question files.

Full-file counts use shared/data beside the repo (skipped when absent); the rest use the excerpts
in tests/fixtures. Where a benchmark's images are not available, the real CC0 VQA-RAD images stand
in: those tests check formats only, never benchmark results.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import PIL.Image
import pytest

from medprobe import imaging
from medprobe.benchmarks import LoadError, describe, get, load, names, spec_for
from medprobe.benchmarks._base import LoadOptions
from medprobe.types import AnswerType

FIX = Path(__file__).parent / "fixtures"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # CI: ../shared/data from the repo root
IMAGES = sorted((FIX / "vqa_rad" / "images").glob("*.jpg"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared/data (real benchmark files) not beside the repo")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def kinds(loaded) -> Counter:
    return Counter(s.answer_type.value for s in loaded.samples)


# ------------------------------------------------------------------ VQA-RAD


@needs_data
def test_vqa_rad_full_official_splits():
    test = load("vqa-rad", LoadOptions(data=str(DATA / "vqa_rad" / "vqa_rad_public.json")))
    assert len(test.samples) == 451 and kinds(test) == {"closed": 272, "open": 179}
    assert len({s.images[0].path for s in test.samples}) == 203  # PROTOCOLS.md: 203 test images
    assert Counter(s.metadata["phrase_type"] for s in test.samples) == {"test_freeform": 308, "test_para": 143}
    train = load("vqa-rad", LoadOptions(data=str(DATA / "vqa_rad"), split="train"))
    every = load("vqa-rad", LoadOptions(data=str(DATA / "vqa_rad"), split="all"))
    assert len(train.samples) == 1797 and len(every.samples) == 2248 and not every.errors
    assert test.provenance.rows == 451 and test.provenance.filters == {"phrase_type": "test_freeform,test_para"}


@needs_data
def test_vqa_rad_full_closed_with_trailing_space():
    every = load("vqa-rad", LoadOptions(data=str(DATA / "vqa_rad"), split="all"))
    by_id = {s.id: s for s in every.samples}
    assert by_id["2156"].answer_type is AnswerType.CLOSED and by_id["2157"].answer_type is AnswerType.CLOSED


def test_vqa_rad_fixture_rows():
    src = FIX / "vqa_rad" / "vqa_rad_sample.json"
    test = load("vqa-rad", LoadOptions(data=str(src)))
    assert len(test.samples) == 17 and kinds(test) == {"closed": 14, "open": 3}
    assert {s.split for s in test.samples} == {"test"}
    every = load("vqa-rad", LoadOptions(data=str(src), split="all"))
    by_id = {s.id: s for s in every.samples}
    assert len(by_id) == 40 and Counter(s.split for s in every.samples) == {"test": 17, "train": 23}
    assert by_id["2156"].answer_type is AnswerType.CLOSED and by_id["2157"].answer_type is AnswerType.CLOSED
    assert by_id["2156"].prompt_type is None  # answer_type came from the dataset, not the gold
    assert by_id["1511"].answer == "4" and "0" in by_id
    s = by_id["2156"]
    assert s.metadata == {"organ": "HEAD", "question_type": "OTHER", "phrase_type": "freeform", "language": "en",
                          "image_name": "synpic35191.jpg", "qid_linked_id": "e66cf1ca-779c-45d5-a825-f834e14abb4b",
                          "question_rephrase": "Does this represent infectious process?"}
    assert "modality" not in s.metadata  # not labelled in VQA-RAD: never guessed
    assert s.images[0].root == str(FIX / "vqa_rad" / "images")
    prov = test.provenance
    assert prov.benchmark == "vqa-rad" and prov.source == str(src) and prov.split == "test" and prov.rows == 17
    assert prov.sha256 == __import__("hashlib").sha256(src.read_bytes()).hexdigest()
    limited = load("vqa-rad", LoadOptions(data=str(src), limit=5))
    assert len(limited.samples) == 5 and limited.provenance.filters["limit"] == 5


def test_vqa_rad_images_dir_and_unknown_split(tmp_path):
    src = FIX / "vqa_rad" / "vqa_rad_sample.json"
    loaded = load("vqa-rad", LoadOptions(data=str(src), images_dir=str(tmp_path)))
    assert {s.images[0].root for s in loaded.samples} == {str(tmp_path)}
    with pytest.raises(LoadError, match="Unknown split 'validation'; this benchmark has test, train, all"):
        load("vqa-rad", LoadOptions(data=str(src), split="validation"))


def _hf_vqa_rad_rows() -> dict[str, list]:
    # real VQA-RAD questions of the fixture images, in the HF copy's layout (image, question, answer)
    rows = json.loads((FIX / "vqa_rad" / "vqa_rad_sample.json").read_text(encoding="utf-8"))
    rows = [r for r in rows if (FIX / "vqa_rad" / "images" / r["image_name"]).is_file()]
    pick = {"test": [r for r in rows if r["phrase_type"].startswith("test")],
            "train": [r for r in rows if not r["phrase_type"].startswith("test")][:6]}
    out = {split: [{"image": (FIX / "vqa_rad" / "images" / r["image_name"]).read_bytes(),
                    "question": r["question"], "answer": str(r["answer"]).lower()} for r in rs]
           for split, rs in pick.items()}
    png = io.BytesIO()  # one real image re-encoded as PNG, so both encodings pass through
    PIL.Image.open(io.BytesIO(out["test"][0]["image"])).save(png, format="PNG")
    out["test"][0]["image"] = png.getvalue()
    return out


def test_vqa_rad_hf_layout_from_save_to_disk_and_parquet(tmp_path):
    from datasets import Dataset, DatasetDict, Image

    rows = _hf_vqa_rad_rows()
    dd = DatasetDict({k: Dataset.from_list(v).cast_column("image", Image()) for k, v in rows.items()})
    dd.save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "copy" / "data").mkdir(parents=True)
    for split, ds in dd.items():
        ds.to_parquet(str(tmp_path / "copy" / "data" / f"{split}-00000-of-00001.parquet"))
    for source in ("saved", "copy"):
        test = load("vqa-rad", LoadOptions(data=str(tmp_path / source)))
        assert [s.id for s in test.samples] == [f"test-{i}" for i in range(len(rows["test"]))]
        assert [s.images[0].data for s in test.samples] == [r["image"] for r in rows["test"]]
        assert imaging.sniff_mime(test.samples[0].images[0].data) == "image/png"
        assert imaging.sniff_mime(test.samples[1].images[0].data) == "image/jpeg"
        for s in test.samples:  # closed from the gold for scoring; the prompt from the question only
            assert s.answer_type is (AnswerType.CLOSED if s.answer in ("yes", "no") else AnswerType.OPEN)
            assert s.prompt_type is not None
        train = load("vqa-rad", LoadOptions(data=str(tmp_path / source), split="train"))
        assert [s.id for s in train.samples] == [f"train-{i}" for i in range(6)] and train.samples[0].split == "train"
        assert test.provenance.revision or test.provenance.sha256
        with pytest.raises(LoadError, match="this benchmark has test, train"):
            load("vqa-rad", LoadOptions(data=str(tmp_path / source), split="all"))


def test_vqa_rad_default_source_is_the_hub(monkeypatch):
    import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or (_ for _ in ()).throw(
        ConnectionError("offline")))
    monkeypatch.setattr("medprobe.hub_reach.unreachable", lambda *a, **k: None)  # the hub answers
    with pytest.raises(LoadError, match="flaviagiammarino/vqa-rad"):
        load("vqa-rad")
    assert calls[0][0][0] == "flaviagiammarino/vqa-rad" and calls[0][1]["split"] == "test"


# ------------------------------------------------------------------ demo


def test_demo_loads_65_rows_with_9_resolvable_images():
    demo = load("vqa-rad-demo")
    assert len(demo.samples) == 65 and kinds(demo) == {"closed": 38, "open": 27}
    assert Counter(s.split for s in demo.samples) == {"train": 50, "test": 15}
    paths = {imaging.resolve_path(s.images[0]) for s in demo.samples}
    assert len(paths) == 9 and all(p.is_file() for p in paths)
    assert imaging.sha256(demo.samples[0].images[0])
    prov = demo.provenance
    assert prov.source == "medprobe:demo" and prov.split == "all" and len(prov.sha256) == 64 and prov.rows == 65
    assert len(load("vqa-rad-demo", LoadOptions(split="test")).samples) == 15
    assert len(load("vqa-rad-demo", LoadOptions(split="train")).samples) == 50
    assert "CC0 1.0" in (paths.pop().parent.parent / "LICENSE.txt").read_text()


# ------------------------------------------------------------------ SLAKE


@needs_data
def test_slake_full_english_test_split():
    en = load("slake-en", LoadOptions(data=str(DATA / "slake")))
    assert len(en.samples) == 1061 and kinds(en) == {"closed": 416, "open": 645}
    assert {s.metadata["language"] for s in en.samples} == {"en"} and en.provenance.filters == {"q_lang": "en"}
    zh = load("slake-zh", LoadOptions(data=str(DATA / "slake" / "test.json")))
    assert len(zh.samples) == 1033 and {s.metadata["language"] for s in zh.samples} == {"zh"}
    val = load("slake-en", LoadOptions(data=str(DATA / "slake"), split="validate"))
    assert len(val.samples) == 1053 and val.provenance.split == "validation"


def test_slake_fixture_never_mixes_languages():
    en = load("slake-en", LoadOptions(data=str(FIX / "slake")))
    zh = load("slake-zh", LoadOptions(data=str(FIX / "slake")))
    assert len(en.samples) == 15 and kinds(en) == {"open": 8, "closed": 7}
    assert len(zh.samples) == 15 and kinds(zh) == {"open": 8, "closed": 7}
    assert not {s.id for s in en.samples} & {s.id for s in zh.samples}
    s = en.samples[0]
    assert set(s.metadata) >= {"modality", "organ", "content_type", "language", "question_type"}
    assert s.images[0].root == str(FIX / "slake" / "imgs") and s.images[0].path.endswith("/source.jpg")
    assert s.benchmark == "slake-en" and s.prompt_type is None
    with pytest.raises(LoadError, match="no train.json"):
        load("slake-en", LoadOptions(data=str(FIX / "slake"), split="train"))


def test_slake_hub_copy_needs_images_dir():
    with pytest.raises(LoadError, match="--images-dir"):
        load("slake-en")


# ------------------------------------------------------------------ PathVQA


def test_pathvqa_from_save_to_disk(tmp_path):
    from datasets import Dataset, DatasetDict, Image

    # layout of flaviagiammarino/path-vqa; VQA-RAD images stand in for the pathology slides
    rows = [{"image": IMAGES[0].read_bytes(), "question": "Is there fibrosis?", "answer": "yes"},
            {"image": IMAGES[1].read_bytes(), "question": "What is present?", "answer": "no"},
            {"image": IMAGES[2].read_bytes(), "question": "Does this show necrosis?", "answer": "necrosis"}]
    ds = Dataset.from_list(rows).cast_column("image", Image())
    DatasetDict(test=ds, validation=ds, train=ds).save_to_disk(str(tmp_path / "pv"))
    loaded = load("pathvqa", LoadOptions(data=str(tmp_path / "pv")))
    got = [(s.id, s.answer_type, s.prompt_type) for s in loaded.samples]
    # "What is present?" -> "no" is closed for scoring (gold yes/no) but its prompt stays open
    assert got == [("test-0", AnswerType.CLOSED, AnswerType.CLOSED), ("test-1", AnswerType.CLOSED, AnswerType.OPEN),
                   ("test-2", AnswerType.OPEN, AnswerType.CLOSED)]
    assert loaded.samples[0].images[0].data == IMAGES[0].read_bytes()
    assert len(load("pathvqa", LoadOptions(data=str(tmp_path / "pv"), split="val")).samples) == 3


# ------------------------------------------------------------------ PMC-VQA


def test_pmc_vqa_csv(tmp_path):
    # the example row documented in the xmcmic/PMC-VQA README, plus a malformed label
    header = "Figure_path,Question,Answer,Choice A,Choice B,Choice C,Choice D,Answer_label\n"
    row = ("PMC1064097_F1.jpg,What is the uptake pattern in the breast?,Focal uptake pattern,A:Diffuse uptake pattern,"
           "B:Focal uptake pattern, C:No uptake pattern,D:Cannot determine from the information given,B\n")
    (tmp_path / "test_clean.csv").write_text(header + row + row.replace(",B\n", ",Z\n"), encoding="utf-8")
    loaded = load("pmc-vqa", LoadOptions(data=str(tmp_path)))
    (s,) = loaded.samples
    assert s.options == ("Diffuse uptake pattern", "Focal uptake pattern", "No uptake pattern",
                         "Cannot determine from the information given")
    assert s.answer == "B" and s.answer_type is AnswerType.MULTIPLE_CHOICE and s.id == "test-0"
    assert s.images[0].root == str(tmp_path / "images")
    assert loaded.errors == ["test_clean.csv line 3: Answer_label 'Z' is not one of the 4 choices"]


# ------------------------------------------------------------------ MedXpertQA


@needs_data
def test_medxpertqa_full_file():
    loaded = load("medxpertqa-mm", LoadOptions(data=str(DATA / "medxpertqa")))
    assert len(loaded.samples) == 2000 and kinds(loaded) == {"multiple_choice": 2000}
    assert Counter(s.metadata["question_type"] for s in loaded.samples) == {"Reasoning": 1446, "Understanding": 554}


def test_medxpertqa_fixture(tmp_path):
    src = FIX / "medxpertqa" / "medxpertqa_mm_sample.jsonl"
    loaded = load("medxpertqa-mm", LoadOptions(data=str(src)))
    s = loaded.samples[0]
    assert len(loaded.samples) == 10 and s.id == "MM-0" and s.answer == "A" and len(s.options) == 5
    assert s.options[0] == "Lateral collateral ligament complex repair or reconstruction"
    assert s.metadata["options_in_question"] is True and "Answer Choices: (A)" in s.question
    assert [i.path for i in s.images] == ["MM-0-a.jpeg", "MM-0-b.jpeg"]
    assert [x.answer for x in loaded.samples] == ["A", "D", "E", "C", "E", "E", "D", "A", "A", "C"]
    spec = get("medxpertqa-mm")
    assert spec.prompt == "medxpertqa-cot" and spec.default_preset == "strict"
    # the hub copy's layout: options as a dict, label as a string, images as file names
    row = json.loads(src.read_text(encoding="utf-8").splitlines()[1])
    row |= {"options": {o["letter"]: o["content"] for o in row["options"]}, "label": row["label"][0],
            "images": [i["image_path"] for i in row["images"]]}
    (tmp_path / "hub.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    (h,) = load("medxpertqa-mm", LoadOptions(data=str(tmp_path / "hub.jsonl"))).samples
    assert h.model_dump(exclude={"images"}) == loaded.samples[1].model_dump(exclude={"images"})
    assert [i.path for i in h.images] == [i.path for i in loaded.samples[1].images]


# ------------------------------------------------------------------ registry


def test_registry():
    reliability = {"mediconfusion": "mediconfusion", "probmed": "probmed", "smmile": "smmile-em",
                   "smmile-plus": "smmile-em", "mmmu-med": "mmmu",  # benchmarks with their own official preset
                   "iu-xray": "report", "mimic-cxr": "report", "chexpert-plus": "report"}  # report generation
    assert names() == sorted(["medxpertqa-mm", "pathvqa", "pmc-vqa", "slake-en", "slake-zh", "vqa-rad", "vqa-rad-demo",
                              "omnimedvqa", "gmai-mmbench", "medframeqa", *reliability])
    for name in names():
        spec = get(name)
        assert spec.name == name and spec.default_preset == reliability.get(name, "strict")
        assert spec.default_split in spec.splits
        assert spec.train_split is None or spec.train_split in spec.splits
    assert "Splits: all, test, train" in describe()["vqa-rad-demo"]
    assert spec_for("slake-en").name == "slake-en" and spec_for("./q.jsonl") is None
    with pytest.raises(LoadError, match="Unknown benchmark 'vqa-rd'.*vqa-rad.*no file or folder exists"):
        load("vqa-rd")



def test_bare_registered_name_beats_a_same_named_folder(tmp_path, monkeypatch):
    (tmp_path / "vqa-rad-demo").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load("vqa-rad-demo").provenance.source == "medprobe:demo"
    with pytest.raises(LoadError, match="no questions file"):
        load("./vqa-rad-demo")  # written as a path: the folder, as a custom benchmark


def test_slake_hub_copy_with_validation_json_loads(tmp_path):
    # the hub copy renamed the release's validate.json to validation.json
    (tmp_path / "imgs").mkdir()
    (tmp_path / "validation.json").write_bytes((DATA / "slake" / "validate.json").read_bytes())
    val = load("slake-en", LoadOptions(data=str(tmp_path), split="validation"))
    assert len(val.samples) == 1053
