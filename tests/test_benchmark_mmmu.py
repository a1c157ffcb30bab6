"""MMMU Health & Medicine on hand-made rows in the hub layout (MMMU/MMMU: <Subject>/<split>-00000-of-00001.parquet,
`options` a string holding a Python list, image_1..image_7 image structs), with images generated here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import PIL.Image
import pytest

from medprobe import scoring
from medprobe.benchmarks import LoadError, get, load
from medprobe.benchmarks._base import LoadOptions
from medprobe.prompts import first_turn, load_template
from medprobe.types import GOLD_HIDDEN, AnswerType, Outcome

ROWS = Path(__file__).parent / "fixtures" / "mmmu" / "rows.json"
SUBJECTS = ["Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
            "Public_Health"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def png(name: str) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (16, 12), (len(name) * 7 % 256, sum(map(ord, name)) % 256, 40)).save(buf, format="PNG")
    return buf.getvalue()


def subject(row_id: str) -> str:
    return "_".join(row_id.split("_")[1:-1])


def datasets_by_config() -> dict[tuple[str, str], object]:
    """(subject, split) -> a `datasets.Dataset` with the hub's features (Image columns hold PNG bytes)."""
    from datasets import Dataset, Features, Image, Value

    features = Features({"id": Value("string"), "question": Value("string"), "options": Value("string"),
                         "explanation": Value("string"),
                         **{f"image_{k}": Image() for k in range(1, 8)},
                         "img_type": Value("string"), "answer": Value("string"), "topic_difficulty": Value("string"),
                         "question_type": Value("string"), "subfield": Value("string")})
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in json.loads(ROWS.read_text(encoding="utf-8")):
        row = {k: ({"bytes": png(v), "path": v} if k.startswith("image_") and v else v) for k, v in row.items()}
        groups.setdefault((subject(row["id"]), row["id"].split("_")[0]), []).append(row)
    return {key: Dataset.from_list(rows, features=features) for key, rows in groups.items()}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A local copy of the hub repo: one folder per subject (Art too), one parquet file per split."""
    root = tmp_path_factory.mktemp("mmmu") / "MMMU"
    for (subj, split), ds in datasets_by_config().items():
        (root / subj).mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(root / subj / f"{split}-00000-of-00001.parquet"))
    return root


def test_validation_is_the_default_with_the_five_subjects(mirror):
    loaded = load("mmmu-med", LoadOptions(data=str(mirror)))
    assert len(loaded.samples) == 10 and not loaded.errors
    assert [s.metadata["subject"] for s in loaded.samples] == [s for s in SUBJECTS for _ in range(2)]
    assert {s.split for s in loaded.samples} == {"validation"}
    by_id = {s.id: s for s in loaded.samples}
    mc = by_id["validation_Basic_Medical_Science_1"]
    assert mc.options == ("Hematoxylin and eosin", "Silver stain", "Trichrome", "PAS") and mc.answer == "A"
    assert mc.answer_type is AnswerType.MULTIPLE_CHOICE and mc.question.startswith("<image 1> The section")
    assert mc.metadata == {"subject": "Basic_Medical_Science", "subfield": "Histology", "topic_difficulty": "Medium",
                           "img_type": "['Microscopic Images']", "language": "en"}
    five = by_id["validation_Clinical_Medicine_2"]
    assert len(five.options) == 5 and five.answer == "E"
    op = by_id["validation_Pharmacy_1"]
    assert op.answer_type is AnswerType.OPEN and op.options == () and op.answer == "2"
    prov = loaded.provenance
    assert prov.split == "validation" and prov.rows == 10 and prov.sha256
    assert prov.filters == {"subjects": ",".join(SUBJECTS)}


def test_images_in_placeholder_order_with_bytes(mirror):
    by_id = {s.id: s for s in load("mmmu-med", LoadOptions(data=str(mirror))).samples}
    # "Compare <image 2> with <image 1>": image_2 first
    assert [i.name for i in by_id["validation_Clinical_Medicine_1"].images] == [
        "validation_Clinical_Medicine_1_2.png", "validation_Clinical_Medicine_1_1.png"]
    # images named only in the options, in option order
    assert [i.name for i in by_id["validation_Diagnostics_and_Laboratory_Medicine_1"].images] == [
        f"validation_Diagnostics_and_Laboratory_Medicine_1_{k}.png" for k in (1, 2, 3, 4)]
    # an image no placeholder names (validation_Clinical_Medicine_2 has none in its text) is still sent
    (img,) = by_id["validation_Clinical_Medicine_2"].images
    assert img.data == png("validation_Clinical_Medicine_2_1.png") and img.path is None


def test_dev_and_test_splits(mirror):
    dev = load("mmmu-med", LoadOptions(data=str(mirror), split="dev"))
    assert [s.answer for s in dev.samples] == ["A", "B", "C", "D", "A"] and not dev.errors
    test = load("mmmu-med", LoadOptions(data=str(mirror), split="test"))
    assert len(test.samples) == 6 and {s.answer for s in test.samples} == {"?"}
    assert all(s.metadata[GOLD_HIDDEN] is True for s in test.samples)
    assert "EvalAI" in test.provenance.filters["gold"]
    assert GOLD_HIDDEN not in dev.samples[0].metadata
    # loading test works; scoring refuses: no preset has a rule for a hidden gold
    s = test.samples[0]
    for name in ("strict", "mmmu"):
        preset = scoring.get(name)
        assert not preset.applies(s)
        score = preset.score(s, "A")
        assert score.outcome is Outcome.INVALID and score.answer.reason == "no_gold"


def test_hub_save_to_disk_and_combined_tables(mirror, tmp_path, monkeypatch):
    import datasets

    configs = datasets_by_config()
    calls = []

    def from_hub(path, name=None, split=None, data_files=None):  # the hub, served from the local mirror
        calls.append((path, name, split))
        return configs[(name, split)]

    monkeypatch.setattr(datasets, "load_dataset", from_hub)
    monkeypatch.setattr("medprobe.hub_reach.unreachable", lambda *a, **k: None)  # the hub answers
    hub = load("mmmu-med")
    assert [c[1] for c in calls] == SUBJECTS and {c[0] for c in calls} == {"MMMU/MMMU"}
    assert hub.provenance.source == "MMMU/MMMU" and hub.provenance.revision
    local = load("mmmu-med", LoadOptions(data=str(mirror)))
    assert [s.model_dump() for s in hub.samples] == [s.model_dump() for s in local.samples]
    # save_to_disk, one DatasetDict per subject folder
    for subj in SUBJECTS:
        datasets.DatasetDict({sp: ds for (su, sp), ds in configs.items() if su == subj}).save_to_disk(
            str(tmp_path / "saved" / subj))
    saved = load("mmmu-med", LoadOptions(data=str(tmp_path / "saved")))
    assert [s.model_dump() for s in saved.samples] == [s.model_dump() for s in local.samples]
    # one table holding every subject (Art too): only the medical rows are kept
    every = datasets.concatenate_datasets([ds for (su, sp), ds in configs.items() if sp == "validation"])
    datasets.DatasetDict(validation=every).save_to_disk(str(tmp_path / "all"))
    combined = load("mmmu-med", LoadOptions(data=str(tmp_path / "all")))
    assert sorted(s.id for s in combined.samples) == sorted(s.id for s in local.samples)
    pharmacy_only = datasets.DatasetDict(validation=configs[("Pharmacy", "validation")])
    pharmacy_only.save_to_disk(str(tmp_path / "pharmacy"))
    with pytest.raises(LoadError, match="no validation rows of Basic_Medical_Science, Clinical_Medicine"):
        load("mmmu-med", LoadOptions(data=str(tmp_path / "pharmacy")))
    assert len(load("mmmu-med", LoadOptions(data=str(tmp_path / "pharmacy"), limit=1)).samples) == 1


def test_bad_rows_and_folders(mirror, tmp_path):
    import datasets

    configs = datasets_by_config()
    ds = configs[("Public_Health", "validation")]
    rows = ds.to_list()
    rows[0]["question"] += " See also <image 3>."  # names an image the row does not have
    rows[1]["answer"] = "F"
    broken = datasets.Dataset.from_list(rows, features=ds.features)
    for subj in SUBJECTS:
        (tmp_path / "m" / subj).mkdir(parents=True)
        (broken if subj == "Public_Health" else configs[(subj, "validation")]).to_parquet(
            str(tmp_path / "m" / subj / "validation-00000-of-00001.parquet"))
    loaded = load("mmmu-med", LoadOptions(data=str(tmp_path / "m")))
    assert len(loaded.samples) == 8 and [e.split(": ", 1)[1] for e in loaded.errors] == [
        "the text names <image 3> but image_3 is empty", "answer 'F' is not one of the 4 option letters"]
    (tmp_path / "partial" / "Pharmacy").mkdir(parents=True)
    with pytest.raises(LoadError, match="has no folder Basic_Medical_Science, Clinical_Medicine"):
        load("mmmu-med", LoadOptions(data=str(tmp_path / "partial")))


def test_official_prompt(mirror):
    spec = get("mmmu-med")
    assert (spec.default_split, spec.default_preset, spec.prompt) == ("validation", "mmmu", "mmmu")
    by_id = {s.id: s for s in load("mmmu-med", LoadOptions(data=str(mirror))).samples}
    template = load_template(spec.prompt)
    (user,) = first_turn(template, by_id["validation_Clinical_Medicine_1"])
    assert [p.type for p in user.content] == ["image", "image", "text"]
    assert user.content[-1].text == (
        "Compare <image 2> with <image 1>. Which finding is new in the second study?\n\n(A) Pleural effusion\n"
        "(B) Pneumothorax\n(C) Cardiomegaly\n(D) No change\n\nAnswer with the option's letter from the given "
        "choices directly.")
    (user,) = first_turn(template, by_id["validation_Pharmacy_1"])
    assert user.content[-1].text == ("<image 1> How many chiral centres does this molecule have?\n\n"
                                     "Answer the question using a single word or phrase.")


def test_run_scores_validation_and_refuses_test(mirror, tmp_path):
    from typer.testing import CliRunner

    from medprobe.cli import app

    def run(split: str, reply: str):
        out = tmp_path / split
        result = CliRunner().invoke(app, ["run", "mmmu-med", "--data", str(mirror), "--split", split, "--model",
                                          f"scripted/constant:{reply}", "--out", str(out)])
        assert result.exit_code == 0, result.output
        return out, json.loads((out / "results.json").read_text(encoding="utf-8"))

    out, results = run("validation", "(B)")
    mmmu = next(p for p in results["presets"] if p["preset"] == "mmmu")
    rows = {(m["subset"], m["metric"]): m for m in mmmu["metrics"]}
    assert rows[("overall", "accuracy")]["correct"] == 3  # three validation golds are B
    assert rows[("overall", "official_accuracy")]["n"] == 10 and ("subject=Pharmacy", "accuracy") in rows
    out, results = run("test", "(A)")
    assert all(not p["metrics"] for p in results["presets"])  # nothing scored, under any preset
    assert "not scored: MMMU test answers are not released" in (out / "summary.md").read_text(encoding="utf-8")


def test_subject_is_a_subgroup_row(mirror):
    """MMMU reports accuracy per subject: one subgroup row per Health & Medicine subject."""
    from medprobe.metrics import subsets
    from medprobe.types import Record

    rows = dict(subsets([Record(sample=s) for s in load("mmmu-med", LoadOptions(data=str(mirror))).samples]))
    assert {f"subject={s}" for s in SUBJECTS} <= set(rows) and all(len(rows[f"subject={s}"]) == 2 for s in SUBJECTS)
