"""PMC-VQA version 2 (`test_2.csv`, the set Lingshu reports) in the hub's layout: xmcmic/PMC-VQA holds
test_2.csv beside images_2.zip, which unpacks to figures/. The rows are the two the hub's own Phi-4
fine-tuning example prints (columns index, Figure_path, Caption, Question, Choice A..D, Answer, split);
the images are synthetic."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import PIL.Image
import pytest
from typer.testing import CliRunner

from medprobe import suites
from medprobe.benchmarks import LoadError, load
from medprobe.benchmarks._base import LoadOptions
from medprobe.cli import app

HEADER = ["index", "Figure_path", "Caption", "Question", "Choice A", "Choice B", "Choice C", "Choice D", "Answer",
          "split"]
ROWS = [
    [62, "PMC8253867_Fig2_41.jpg", ("CT pulmonary angiogram reveals encasement and displacement of the left anterior "
                                     "descending coronary artery ( blue arrows )."),
     " What is the name of the artery encased and displaced in the image? ", " A: Right Coronary Artery ", " B: Left Anterior Descending Coronary Artery ",
     " C: Circumflex Coronary Artery ", " D: Superior Mesenteric Artery ", "B", "test"],
    [35, "PMC8253797_Fig4_11.jpg", "A slightly altered cell .",
     " What color is used to label the Golgi complexes in the image?", " A: Green ", " B: Red ", " C: Light blue ", " D: Yellow", "B", "test"],
    [77, "PMC0000000_Fig1_1.jpg", "bad row", " Which?", " A: x ", " B: y ", " C: z ", " D: w ", "E", "test"],
]


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), (seed * 40 % 256, 90, 160)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def folder(tmp_path) -> Path:
    """DIR/PMC-VQA as `medprobe data get pmc-vqa` lays it out: test_2.csv, figures/ (from images_2.zip), and
    version 1's test_clean.csv beside them."""
    root = tmp_path / "data" / "PMC-VQA"
    (root / "figures").mkdir(parents=True)
    with (root / "test_2.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([HEADER, *ROWS])
    for i, row in enumerate(ROWS):
        (root / "figures" / row[1]).write_bytes(jpeg(i))
    (root / "test_clean.csv").write_text(
        "Figure_path,Question,Answer,Choice A,Choice B,Choice C,Choice D,Answer_label\n"
        "PMC1064097_F1.jpg,What is the uptake pattern?,Focal uptake pattern,A:Diffuse,B:Focal,C:None,D:Unknown,B\n",
        encoding="utf-8")
    return root


def test_version_2_test_split_reads_test_2_csv_and_figures(folder):
    loaded = load("pmc-vqa", LoadOptions(data=str(folder), split="test_2"))
    by_id = {s.id: s for s in loaded.samples}
    assert list(by_id) == ["62", "35"] and loaded.provenance.split == "test_2"
    s = by_id["62"]
    assert s.options == ("Right Coronary Artery", "Left Anterior Descending Coronary Artery",
                         "Circumflex Coronary Artery", "Superior Mesenteric Artery")
    assert s.answer == "B" and s.question == "What is the name of the artery encased and displaced in the image?"
    assert s.metadata["answer_text"] == "Left Anterior Descending Coronary Artery"
    assert "caption" not in {k.lower() for k in s.metadata}  # the caption often states the answer
    assert s.images[0].root == str(folder / "figures") and s.images[0].path == "PMC8253867_Fig2_41.jpg"
    assert loaded.errors == ["test_2.csv line 4: Answer 'E' is not one of the 4 choices"]
    assert loaded.provenance.sha256  # the file evaluated is pinned


def test_the_default_split_is_still_test_clean_and_a_test_2_file_reads_as_test_2(folder):
    clean = load("pmc-vqa", LoadOptions(data=str(folder)))
    assert [s.id for s in clean.samples] == ["test-0"] and clean.samples[0].images[0].root == str(folder / "images")
    direct = load("pmc-vqa", LoadOptions(data=str(folder / "test_2.csv")))
    assert direct.provenance.split == "test_2" and [s.id for s in direct.samples] == ["62", "35"]
    with pytest.raises(LoadError, match="images_2.zip .* --images-dir <folder>/figures"):
        load("pmc-vqa", LoadOptions(split="test_2"))  # the hub CSV alone has no images


def test_lingshu_suite_reads_test_2(folder, tmp_path):
    """lingshu-mm's PMC-VQA column is test_2.csv (MedEvalKit's file): --data-root DIR -> DIR/PMC-VQA/test_2.csv."""
    entry = next(e for e in suites.load("lingshu-mm").entries if e.benchmark == "pmc-vqa")
    assert entry.split == "test_2"
    suite = tmp_path / "pmc.toml"
    suite.write_text('name = "pmc"\n\n[[entry]]\nbenchmark = "pmc-vqa"\nsplit = "test_2"\npreset = "medevalkit"\n',
                     encoding="utf-8")
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["suite", str(suite), "--model", "scripted/constant:B", "--data-root",
                                      str(folder.parent), "--out", str(out)])
    assert result.exit_code == 0, result.output
    (e,) = suites.read_result(out).entries
    assert e.status == "complete" and e.headline.n == 2 and e.headline.value == 1.0  # both golds are B
    assert e.data == str(folder)
