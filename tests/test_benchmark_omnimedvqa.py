"""OmniMedVQA on hand-made question files in the release layout (QA_information/<access>/<dataset>.json,
Images/...), with the release's field names and types; the images are generated here."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import PIL.Image
import pytest

from medprobe import imaging, scoring
from medprobe.benchmarks import LoadError, get, load
from medprobe.benchmarks._base import LoadOptions
from medprobe.metrics import subsets
from medprobe.prompts import first_turn, load_template
from medprobe.types import AnswerType, Outcome, Record

FIX = Path(__file__).parent / "fixtures" / "omnimedvqa"


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (12, 10), (seed * 40 % 256, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def root(tmp_path) -> Path:
    """The fixture tree copied, with a PNG at every image_path the questions name."""
    root = tmp_path / "OmniMedVQA"
    shutil.copytree(FIX, root)
    for i, qa in enumerate(sorted((root / "QA_information").rglob("*.json"))):
        for j, row in enumerate(json.loads(qa.read_text(encoding="utf-8"))):
            (root / row["image_path"]).parent.mkdir(parents=True, exist_ok=True)
            (root / row["image_path"]).write_bytes(png(10 * i + j))
    return root


def test_open_access_is_the_default_and_gold_letters_come_from_matching(root):
    loaded = load("omnimedvqa", LoadOptions(data=str(root)))
    by_id = {s.id: s for s in loaded.samples}
    assert list(by_id) == ["ACRIMA_0000", "ACRIMA_0001", "ACRIMA_0002", "Chest CT Scan_0000", "Chest CT Scan_0001"]
    assert [s.answer for s in loaded.samples] == ["B", "C", "B", "D", "B"]
    assert by_id["ACRIMA_0000"].options == ("Yes, glaucoma is present.", "No, It's normal.")  # two options
    assert len(by_id["ACRIMA_0001"].options) == 3
    assert all(s.answer_type is AnswerType.MULTIPLE_CHOICE and s.split == "open-access" for s in loaded.samples)
    # "no, it's normal" equals option B only after normalising case and the final full stop: marked
    assert by_id["ACRIMA_0002"].metadata["gold_match"] == "normalised"
    assert "gold_match" not in by_id["ACRIMA_0000"].metadata
    assert loaded.errors == [
        "Open-access/ACRIMA.json item 4: gt_answer 'Macular hole' matches none of the options "
        "['Glaucoma', \"No, It's normal.\", 'Cataract']",
        "Open-access/ACRIMA.json item 5: option_C is missing but a later option is present",
    ]
    prov = loaded.provenance
    assert prov.split == "open-access" and prov.filters == {"access": "open-access", "files": 2} and prov.rows == 5
    assert prov.sha256 and prov.source == str(root)


def test_subgroups_modality_and_question_type(root):
    by_id = {s.id: s for s in load("omnimedvqa", LoadOptions(data=str(root))).samples}
    assert by_id["ACRIMA_0001"].metadata == {"dataset": "ACRIMA", "modality": "Fundus Photography",
                                             "question_type": "Modality Recognition", "language": "en"}
    # one row of the release's "Chest CT Scan.json" names the field `modality`, not `modality_type`
    assert by_id["Chest CT Scan_0001"].metadata["modality"] == "CT(Computed Tomography)"
    # the paper reports accuracy by modality and by question type: both are subgroup rows
    rows = {k for k, _ in subsets([Record(sample=s) for s in by_id.values()])}
    assert {"modality=Fundus Photography", "modality=CT(Computed Tomography)",
            "question_type=Modality Recognition"} <= rows


def test_all_adds_restricted_access_and_says_so(root):
    every = load("omnimedvqa", LoadOptions(data=str(root), split="all"))
    assert len(every.samples) == 6 and every.samples[-1].split == "restricted-access"
    assert every.provenance.filters["access"] == "open-access+restricted-access"
    assert every.provenance.sha256 != load("omnimedvqa", LoadOptions(data=str(root))).provenance.sha256
    (only,) = load("omnimedvqa", LoadOptions(data=str(root), split="restricted")).samples
    assert only.answer == "B" and only.metadata["modality"] == "X-Ray"
    shutil.rmtree(root / "QA_information" / "Restricted-access")
    with pytest.raises(LoadError, match="Restricted-access does not exist.*no restricted-access questions"):
        load("omnimedvqa", LoadOptions(data=str(root), split="all"))


def test_images_resolve_under_the_dataset_root(root):
    loaded = load("omnimedvqa", LoadOptions(data=str(root / "QA_information")))  # the QA folder works too
    assert loaded.samples == load("omnimedvqa", LoadOptions(data=str(root.parent))).samples  # and the one above
    s = next(s for s in loaded.samples if s.id == "Chest CT Scan_0001")
    assert s.images[0].path == "Images/Chest CT Scan/test/normal/6 - Copy (2).png"
    assert s.images[0].root == str(root)
    assert imaging.read_bytes(s.images[0]) == (root / s.images[0].path).read_bytes()
    elsewhere = load("omnimedvqa", LoadOptions(data=str(root), images_dir="/mnt/omni")).samples[0]
    assert elsewhere.images[0].root == "/mnt/omni"


def test_rows_skipped_with_reasons(root):
    qa = root / "QA_information" / "Open-access" / "ACRIMA.json"
    rows = json.loads(qa.read_text(encoding="utf-8"))
    rows[1]["option_A"] = rows[1]["option_C"]  # the gold text now names two options
    rows.append(dict(rows[0]))  # a question_id used twice
    qa.write_text(json.dumps(rows), encoding="utf-8")
    errors = load("omnimedvqa", LoadOptions(data=str(root))).errors
    assert "Open-access/ACRIMA.json item 2: gt_answer 'Fundus photography' matches 2 options (A, C)" in errors
    assert "Open-access/ACRIMA.json item 6: question_id 'ACRIMA_0000' already used by Open-access/ACRIMA.json item 1" \
        in errors


def test_needs_the_unzipped_folder(tmp_path):
    with pytest.raises(LoadError, match="one zip.*medprobe data get omnimedvqa.*--data"):
        load("omnimedvqa")
    with pytest.raises(LoadError, match="has no QA_information/ folder"):
        load("omnimedvqa", LoadOptions(data=str(tmp_path)))
    with pytest.raises(LoadError, match="Unknown split 'train'"):
        load("omnimedvqa", LoadOptions(data=str(tmp_path), split="train"))


def test_default_protocol_prompt_and_strict_letter(root):
    spec = get("omnimedvqa")
    assert spec.default_split == "open-access" and spec.default_preset == "strict" and spec.prompt == "default"
    s = load("omnimedvqa", LoadOptions(data=str(root))).samples[1]
    (user,) = first_turn(load_template(spec.prompt), s)
    assert user.content[0].type == "image" and user.content[1].text == (
        "What imaging modality was used to capture this image?\nA. Dermoscopy\nB. CT\nC. Fundus photography\n"
        "Answer with the option's letter from the given choices directly.")
    strict = scoring.get("strict")
    assert strict.score(s, "C").outcome is Outcome.CORRECT
    assert strict.score(s, "Fundus photography").outcome is Outcome.INVALID  # strict reads letters only
