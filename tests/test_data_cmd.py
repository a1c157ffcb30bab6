"""`medprobe data list | get | check` (medprobe.datasets_cmd, facts in medprobe.dataset_facts).

Downloads never touch the network: `huggingface_hub.snapshot_download` is replaced by a copy from a
local mirror laid out like the hub repo, filtered by the same allow/ignore patterns
(huggingface_hub.utils.filter_repo_objects, which snapshot_download itself uses).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub.utils import GatedRepoError, filter_repo_objects
from typer.testing import CliRunner

from medprobe import benchmarks, datasets_cmd
from medprobe.cli import app
from medprobe.dataset_facts import FACTS, locate

FIX = Path(__file__).parent / "fixtures"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # the real files, beside the repo
STAND_IN = FIX / "vqa_rad" / "images" / "synpic30324.jpg"


class FakeHub:
    """snapshot_download over `mirror/<repo_id>/...`; records every call."""

    def __init__(self, mirror: Path, refuse: Exception | None = None):
        self.mirror, self.refuse, self.calls = mirror, refuse, []

    def __call__(self, repo_id, *, repo_type=None, local_dir=None, allow_patterns=None, ignore_patterns=None,
                 revision=None, **_):  # fmt: skip
        self.calls.append(dict(repo_id=repo_id, repo_type=repo_type, allow_patterns=allow_patterns,
                               ignore_patterns=ignore_patterns, revision=revision))  # fmt: skip
        if self.refuse is not None:
            raise self.refuse
        src = self.mirror / repo_id
        files = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
        for rel in filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns):
            (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src / rel, Path(local_dir) / rel)
        return str(local_dir)


def _slake_mirror(mirror: Path) -> Path:
    """BoKelvin/SLAKE as the hub holds it: JSON files, imgs.zip, KG.zip, mask.txt, README.md."""
    repo = mirror / "BoKelvin" / "SLAKE"
    repo.mkdir(parents=True)
    shutil.copy(FIX / "slake" / "test.json", repo / "test.json")
    rows = json.loads((repo / "test.json").read_text(encoding="utf-8"))
    with zipfile.ZipFile(repo / "imgs.zip", "w") as z:
        for name in {r["img_name"] for r in rows}:
            z.write(STAND_IN, f"imgs/{name}")
    with zipfile.ZipFile(repo / "KG.zip", "w") as z:
        z.writestr("KG/en_kg.txt", "not needed by a run")
    for name in ("mask.txt", "README.md"):
        (repo / name).write_text("x", encoding="utf-8")
    return mirror


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = FakeHub(_slake_mirror(tmp_path / "mirror"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    return fake


def test_every_registered_benchmark_has_its_data_facts():
    assert sorted(FACTS) == benchmarks.names()  # a new benchmark needs its row in dataset_facts
    for name, row in FACTS.items():
        assert row.licence and row.homepage.startswith("https://")
        assert row.hub or row.manual, f"{name}: neither a hub repo nor the steps to get it"
        assert not row.gated or "accept" in row.manual  # gated sets print how to get access
    folders = [r.folder for r in FACTS.values() if r.folder and not r.benchmark.startswith("slake")]
    assert len(folders) == len(set(folders))  # one folder per dataset under --data-root


def test_data_list_shows_source_licence_and_gated():
    result = CliRunner().invoke(app, ["data", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert set(rows) == set(benchmarks.names())
    assert rows["smmile"]["gated"] is True and rows["smmile"]["licence"] == "CC BY-NC-SA 4.0"
    assert rows["pathvqa"]["hub"]["repo_id"] == "flaviagiammarino/path-vqa" and rows["pathvqa"]["gated"] is False
    assert rows["mediconfusion"]["hub"] is None and "git clone" in rows["mediconfusion"]["manual"]
    table = CliRunner().invoke(app, ["data", "list"])
    assert table.exit_code == 0 and "smmile" in table.output and "yes" in table.output


def test_data_get_fetches_only_what_a_run_needs_unpacks_images_and_checks_the_copy(tmp_path, hub):
    result = CliRunner().invoke(app, ["data", "get", "slake-en", "--to", str(tmp_path / "data")])
    (call,) = hub.calls
    assert call["repo_id"] == "BoKelvin/SLAKE" and call["repo_type"] == "dataset"
    assert "imgs.zip" in call["allow_patterns"] and call["ignore_patterns"] is None
    folder = tmp_path / "data" / "SLAKE"
    assert (folder / "test.json").is_file() and not (folder / "KG.zip").exists()  # KG.zip is not needed
    assert (folder / "imgs" / "xmlab102" / "source.jpg").is_file() or any((folder / "imgs").rglob("source.jpg"))
    # the check then names what differs from the release: this mirror holds 30 of test.json's 2,094 rows
    assert result.exit_code == 2, result.output
    assert "test.json: 30 rows (release: 2,094 rows)" in " ".join(result.output.split())
    # the folder is where --data-root looks for it, and the loader reads it with its images
    located = locate("slake-en", tmp_path / "data")
    loaded = benchmarks.load("slake-en", benchmarks.LoadOptions(data=located.data))
    assert len(loaded.samples) == 15 and all(Path(s.images[0].root, s.images[0].path).is_file() for s in loaded.samples)


def test_data_get_without_images_skips_the_archives(tmp_path, hub):
    got = datasets_cmd.get("slake-en", tmp_path, images=False)
    assert hub.calls[0]["ignore_patterns"] == ["imgs.zip"]
    assert got.status == "downloaded" and not (tmp_path / "SLAKE" / "imgs").exists()
    assert any("images of split test" in i.what and not i.ok for i in got.check.items)  # and the check says so


def test_an_archive_wrapping_the_dataset_folder_unpacks_into_it(tmp_path, monkeypatch):
    """OmniMedVQA.zip holds OmniMedVQA/QA_information/...: the result is DIR/OmniMedVQA/QA_information."""
    repo = tmp_path / "mirror" / "foreverbeliever" / "OmniMedVQA"
    repo.mkdir(parents=True)
    with zipfile.ZipFile(repo / "OmniMedVQA.zip", "w") as z:
        for path in sorted((FIX / "omnimedvqa").rglob("*.json")):
            rel = path.relative_to(FIX / "omnimedvqa").as_posix()
            z.write(path, f"OmniMedVQA/{rel}")
            for row in json.loads(path.read_text(encoding="utf-8")):
                z.write(STAND_IN, f"OmniMedVQA/{row['image_path']}")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", FakeHub(tmp_path / "mirror"))
    got = datasets_cmd.get("omnimedvqa", tmp_path / "data")
    assert (tmp_path / "data" / "OmniMedVQA" / "QA_information" / "Open-access").is_dir()
    loaded = benchmarks.load("omnimedvqa", benchmarks.LoadOptions(data=got.folder))
    assert loaded.samples and all(Path(s.images[0].root, s.images[0].path).is_file() for s in loaded.samples)
    datasets_cmd.get("omnimedvqa", tmp_path / "data")  # again: the archive is not unpacked twice
    assert (tmp_path / "data" / "OmniMedVQA" / ".medprobe" / "unpacked-OmniMedVQA.zip").is_file()


def test_an_archive_member_outside_the_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../escaped.txt", "x")
    (tmp_path / "ds").mkdir()
    with pytest.raises(datasets_cmd.DataError, match="unsafe path"):
        datasets_cmd._unpack(archive, tmp_path / "ds")
    assert not (tmp_path / "escaped.txt").exists()


def test_a_gated_set_prints_the_steps_and_downloads_nothing(tmp_path, hub):
    result = CliRunner().invoke(app, ["data", "get", "smmile", "--to", str(tmp_path)])
    assert result.exit_code == 2 and not hub.calls
    text = " ".join(result.output.split())
    assert "gated" in text and "hf auth login" in text and "--accept-terms" in text
    assert "huggingface.co/datasets/smmile/SMMILE" in text


def test_a_gated_set_the_hub_refuses_prints_the_steps(tmp_path, monkeypatch):
    refusal = GatedRepoError.__new__(GatedRepoError)  # built without an HTTP response, as the hub would raise it
    Exception.__init__(refusal, "Access to dataset smmile/SMMILE is restricted. You must be authenticated.")
    fake = FakeHub(tmp_path, refuse=refusal)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    got = datasets_cmd.get("smmile", tmp_path, accept_terms=True)
    assert fake.calls[0]["repo_id"] == "smmile/SMMILE"
    assert got.status == "gated" and "is restricted" in got.steps and "hf auth login" in got.steps


def test_sets_not_on_a_hub_say_where_to_get_them(tmp_path, hub):
    result = CliRunner().invoke(app, ["data", "get", "mediconfusion", "--to", str(tmp_path)])
    assert result.exit_code == 2 and not hub.calls
    assert "git clone https://github.com/AIF4S/MediConfusion" in result.output
    assert "scripts/download.py" in result.output
    assert "osf.io/89kps" in FACTS["vqa-rad"].manual  # VQA-RAD's official JSON is not on a hub either
    packaged = CliRunner().invoke(app, ["data", "get", "vqa-rad-demo", "--to", str(tmp_path)])
    assert packaged.exit_code == 0 and "nothing to download" in packaged.output


def test_data_check_names_what_differs(tmp_path):
    folder = tmp_path / "SLAKE"
    folder.mkdir()
    shutil.copy(FIX / "slake" / "test.json", folder / "test.json")
    report = datasets_cmd.check("slake-en", tmp_path)  # a data root holding SLAKE/ works too
    assert report.folder == str(folder) and not report.ok
    diffs = {i.what: i for i in report.differences}
    assert diffs["test.json"].found == "30 rows" and diffs["test.json"].expected == "2,094 rows"
    assert diffs["test.json sha256"].ok is False
    assert "validate.json or validation.json" in diffs and diffs["validate.json or validation.json"].found == "missing"
    assert diffs["split test"].found == "15 samples" and diffs["split test"].expected == "1,061 samples"
    assert diffs["images of split test"].found.startswith("0 present, 15 missing (e.g. ")
    result = CliRunner().invoke(app, ["data", "check", "slake-en", "--data", str(folder)])
    assert result.exit_code == 2 and "difference(s)" in result.output


def test_data_check_of_the_packaged_sample_matches():
    result = CliRunner().invoke(app, ["data", "check", "vqa-rad-demo"])
    assert result.exit_code == 0, result.output
    assert "matches every count and hash" in result.output
    with pytest.raises(datasets_cmd.DataError, match="Pass --data"):
        datasets_cmd.check("slake-en")


@pytest.mark.skipif(not DATA.is_dir(), reason="shared/data (real benchmark files) not beside the repo")
@pytest.mark.parametrize("name, folder", [("vqa-rad", "vqa_rad"), ("slake-en", "slake"),
                                          ("medxpertqa-mm", "medxpertqa"), ("mediconfusion", "mediconfusion")])
def test_the_real_release_files_match_their_counts_and_hashes(name, folder):
    report = datasets_cmd.check(name, DATA / folder)
    # the question files are complete; only their images are not in shared/data
    assert all(i.ok is not False for i in report.items if not i.what.startswith(("images", "imgs"))), report.items
    assert any(i.what.endswith("sha256") and i.ok for i in report.items)


def test_rows_are_counted_per_format(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([1, 2, 3]), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"p1": {}, "p2": {}}), encoding="utf-8")  # MediConfusion: pairs
    (tmp_path / "c.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    (tmp_path / "d.csv").write_text('x,y\n1,"two\nlines"\n3,4\n', encoding="utf-8")
    (tmp_path / "e.tsv").write_text("x\ty\n1\t" + "A" * 200_000 + "\n", encoding="utf-8")  # a base64 image cell
    pq.write_table(pa.table({"x": [1, 2, 3, 4]}), tmp_path / "f.parquet")
    names = ("a.json", "b.json", "c.jsonl", "d.csv", "e.tsv", "f.parquet")
    counts = [datasets_cmd.count_rows(tmp_path / n) for n in names]
    assert counts == [3, 2, 2, 2, 1, 4]


def test_a_failed_download_says_what_to_do_and_leaves_no_empty_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "snapshot_download", FakeHub(tmp_path, refuse=OSError("no route to host")))
    result = CliRunner().invoke(app, ["data", "get", "pathvqa", "--to", str(tmp_path / "data")])
    assert result.exit_code == 2
    assert "Could not download flaviagiammarino/path-vqa: no route to host" in result.output
    assert "re-running the same command resumes" in " ".join(result.output.split())
    assert not (tmp_path / "data" / "path-vqa").exists()  # --data-root would take it for a copy
