"""The probe image store (RUN/probe_images/): a finished probe run re-run rebuilds no image and sends
nothing; the jpeg corruption is kept as the JPEG it made; folders from before the index keep their
PNGs (and so their stored answers); the derivation reports progress."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medprobe import imaging, pipeline
from medprobe.backends import BackendConfig
from medprobe.pipeline import RunSpec
from medprobe.probes import _store, blind, corrupt
from medprobe.store import RECORDS, RunStore, read_manifest
from medprobe.types import ImageRef

FIX = Path(__file__).parent / "fixtures" / "vqa_rad" / "images"
PROBES = ("blind:none,blank", "corrupt:jpeg,gaussian_noise@1,5")


@pytest.fixture(autouse=True)
def strict_only(monkeypatch):
    monkeypatch.setattr(pipeline, "default_presets", lambda: ["strict"])  # keep these runs fast


@pytest.fixture
def bench(tmp_path) -> str:
    shutil.copytree(FIX, tmp_path / "imgs")
    rows = [{"id": f"q{i}", "image": f"imgs/{name}", "question": f"Is this normal? ({i})", "answer": "yes",
             "answer_type": "closed"} for i, name in enumerate(sorted(p.name for p in FIX.glob("*.jpg")) * 2)]  # fmt: skip
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def run(bench: str, out: Path, progress=None):
    spec = RunSpec(benchmark=bench, backend=BackendConfig(provider="scripted", model="constant:yes"), probes=PROBES)
    return pipeline.run(spec, out, derive_progress=progress)


def keys(out: Path) -> set[str]:
    return {k for r in RunStore(out / RECORDS).records() for k in r.keys}


def sent(out: Path) -> int:
    execution = read_manifest(out).last_execution
    assert execution is not None
    return execution.sent


def forbid_building(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("an image was decoded or rebuilt on a re-run")

    corrupt._corrupted.cache_clear()
    blind.blank_png.cache_clear()
    monkeypatch.setattr(corrupt, "apply", fail)
    monkeypatch.setattr(imaging, "open_image", fail)
    monkeypatch.setattr(blind, "blank_png", fail)


def test_a_finished_probe_run_rebuilds_no_image_and_sends_nothing(bench, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run(bench, out)
    first, stored = keys(out), sorted(p.name for p in (out / "probe_images").iterdir())
    assert sent(out) == len(first) > 0
    forbid_building(monkeypatch)
    run(bench, out)
    assert sent(out) == 0 and keys(out) == first
    assert sorted(p.name for p in (out / "probe_images").iterdir()) == stored


def test_a_deleted_image_or_a_damaged_index_is_rebuilt_to_the_same_bytes(bench, tmp_path):
    out = tmp_path / "run"
    run(bench, out)
    first = keys(out)
    images = out / "probe_images"
    victim = next(images.glob("*.png"))
    victim.unlink()
    (images / _store.INDEX).write_text("{not json")
    corrupt._corrupted.cache_clear()
    run(bench, out)
    assert victim.is_file() and sent(out) == 0 and keys(out) == first


def test_the_jpeg_corruption_is_stored_as_the_jpeg_it_made(bench, tmp_path):
    out = tmp_path / "run"
    run(bench, out)
    index = json.loads((out / "probe_images" / _store.INDEX).read_text())
    assert index["format"] == _store.FORMAT
    jpegs = {r: f for r, f in index["files"].items() if "/jpeg@" in r}
    assert len(jpegs) == 2 * 3  # severities 1 and 5 of the three images
    assert all(f.endswith(".png") for r, f in index["files"].items() if r not in jpegs)
    sources = {imaging.sha256(ref): ref for ref in (ImageRef(path=str(p)) for p in FIX.glob("*.jpg"))}
    for recipe, file in jpegs.items():
        data = (out / "probe_images" / file).read_bytes()
        severity, digest = int(recipe.split("@")[1].split("/")[0]), recipe.rsplit("/", 1)[1]
        legacy = corrupt._corrupted(digest, sources[digest], "jpeg", severity, 0, False, _store.LEGACY_FORMAT)[0]
        assert (imaging.sniff_mime(data), imaging.sniff_mime(legacy)) == ("image/jpeg", "image/png")
        assert len(data) < len(legacy) / 2
        # the same pixels the older PNG held (it was this JPEG, decoded)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(Image.open(io.BytesIO(legacy))))


def test_a_folder_from_before_the_index_keeps_its_pngs_and_its_answers(bench, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as m:  # what medprobe wrote before the index: every image a PNG, no index file
        m.setattr(_store, "FORMAT", _store.LEGACY_FORMAT)
        run(bench, out)
    (out / "probe_images" / _store.INDEX).unlink()
    first = keys(out)
    assert not list((out / "probe_images").glob("*.jpg"))
    corrupt._corrupted.cache_clear()
    run(bench, out)
    assert sent(out) == 0 and keys(out) == first  # same bytes, same request keys: resumed, nothing re-sent
    assert json.loads((out / "probe_images" / _store.INDEX).read_text())["format"] == _store.LEGACY_FORMAT
    assert not list((out / "probe_images").glob("*.jpg"))


def test_derivation_reports_progress_per_sample(bench, tmp_path):
    calls: list[tuple[str, int, int]] = []
    run(bench, tmp_path / "run", progress=lambda probe, done, total: calls.append((probe, done, total)))
    assert {total for _, _, total in calls} == {2 * 6}  # two probes over six samples
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and done[-1] == 12
    assert [p for p, d, _ in calls if d == 6][-1] == "blind" and calls[-1][0] == "corrupt"
    assert len({d for p, d, _ in calls if p == "corrupt"}) >= 6  # corrupt ticks sample by sample


def test_stored_probe_images_come_with_the_reports_preview_and_the_report_copies_it(tmp_path, monkeypatch):
    """The store draws each probe image's thumbnail when it stores it (from the pixels it has); the report
    copies that file instead of decoding the image again (bench/report.py: most of a first write)."""
    from typer.testing import CliRunner

    from medprobe import previews
    from medprobe.cli import app
    from medprobe.runs import load
    from medprobe.views import thumbs as thumbs_mod

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "vqa-rad-demo", "--split", "test", "--limit", "3", "--model",
                                      "baseline/random", "--probe", "corrupt:gaussian_noise,jpeg@2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    store = out / "probe_images"
    stored = sorted(p for p in store.iterdir() if p.suffix in (".png", ".jpg"))
    assert stored and all(previews.path(store, p.stem, previews.SMALL).is_file() for p in stored)
    # the preview is what the report would draw from the stored file
    png = next(p for p in stored if p.suffix == ".png")
    from PIL import Image

    drawn = Image.open(io.BytesIO(previews.jpeg(Image.open(png), previews.SMALL)))
    copied = Image.open(previews.path(store, png.stem, previews.SMALL))
    assert drawn.size == copied.size and np.array_equal(np.asarray(drawn), np.asarray(copied))
    # the report: no decoding of any probe image
    monkeypatch.setattr(previews, "jpeg", lambda *a: pytest.fail("the report decoded a probe image it had a preview of"))
    run = load(out)
    thumbs = thumbs_mod.Thumbnails(tmp_path / "rep")
    variants = [ref for r in run.all_records if r.sample.variant_of for ref in r.sample.images]
    digests = {thumbs.add(ref, run.dir, previews.SMALL)[0] for ref in variants}
    thumbs.write(pool=None)
    assert thumbs.made == len(digests) > 0 and not thumbs.failed
