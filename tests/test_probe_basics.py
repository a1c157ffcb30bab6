"""Probes on the shipped VQA-RAD demo and on custom JSONL with scripted backends of known behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medprobe import imaging, pipeline, probes
from medprobe.backends import BackendConfig
from medprobe.backends.scripted import register_function
from medprobe.benchmarks import load
from medprobe.pipeline import RunSpec
from medprobe.probes import ProbeSpec, corrupt
from medprobe.types import Request

FIX = Path(__file__).parent / "fixtures" / "vqa_rad" / "images"


@pytest.fixture(autouse=True)
def strict_only(monkeypatch):
    monkeypatch.setattr(pipeline, "default_presets", lambda: ["strict"])  # keep these runs fast


def run(tmp_path: Path, bench: str, model: str, *specs: str, name: str = "run"):
    spec = RunSpec(benchmark=bench, backend=BackendConfig(provider="scripted", model=model), probes=specs)
    return pipeline.run(spec, tmp_path / name)


def result(results, probe: str):
    return next(p for p in results.probes if p.probe == probe)


def head(res, name: str, **detail):
    return next(m for m in res.headline if m.name == name and all(m.detail.get(k) == v for k, v in detail.items()))


def bench(tmp_path: Path, rows: list[dict]) -> str:
    (tmp_path / "imgs").mkdir(exist_ok=True)
    for img in FIX.glob("*.jpg"):
        shutil.copy(img, tmp_path / "imgs" / img.name)
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


IMGS = sorted(p.name for p in FIX.glob("*.jpg"))


def test_spec_syntax():
    s = ProbeSpec.parse("corrupt:gaussian_noise,jpeg@3,5")
    assert (s.name, s.words, s.levels) == ("corrupt", ("gaussian_noise", "jpeg"), (3, 5))
    assert str(s) == "corrupt:gaussian_noise,jpeg@3,5"
    r = ProbeSpec.parse("repeat:k=5,t=0.7")
    assert r.params == {"k": "5", "t": "0.7"} and r.param("k", 2) == 5
    with pytest.raises(ValueError, match="unknown option"):
        probes.parse(["corrupt:nonsense"])
    with pytest.raises(ValueError, match="Unknown probe"):
        probes.parse(["nope"])
    with pytest.raises(ValueError, match="severities are 1-5"):
        probes.parse(["corrupt:jpeg@9"])


def test_blind_on_demo_image_blind_backend_has_zero_gap(tmp_path):
    res = run(tmp_path, "vqa-rad-demo", "constant:yes", "blind")
    blind = result(res, "blind")
    for kind in ("none", "blank", "mismatch"):
        assert head(blind, "blind_gap", variant=kind).value == 0.0
        assert head(blind, "unchanged_rate", variant=kind).value == 1.0
        assert head(blind, "blind_gap", variant=kind).n == 65
    # the headline rows stay on the 65 clean samples
    assert res.counts.samples == 65 and res.preset("strict").get().n == 65
    # re-scoring from the folder recomputes the same probe results
    assert pipeline.score(tmp_path / "run").probes == res.probes


def test_blind_gap_positive_for_a_backend_reading_the_image(tmp_path):
    rows = [{"id": f"q{i}", "image": f"imgs/{IMGS[i % 3]}", "question": f"Is there a mass? ({i})",
             "answer": "yes" if i % 3 == 0 else "no", "answer_type": "closed"} for i in range(6)]
    path = bench(tmp_path, rows)
    table = {imaging.sha256(imaging.ImageRef(path=f"imgs/{IMGS[k]}", root=str(tmp_path))): ("yes" if k == 0 else "no")
             for k in range(3)}

    def reader(request: Request) -> str:
        return table.get(request.image_hashes[0], "unsure") if request.image_hashes else "unsure"

    register_function("image-reader", reader)
    blind = result(run(tmp_path, path, "fn:image-reader", "blind"), "blind")
    assert head(blind, "blind_gap", variant="none").value == 1.0  # right with the image, invalid without
    assert head(blind, "blind_gap", variant="blank").value == 1.0
    assert head(blind, "unchanged_rate", variant="none").value == 0.0
    mismatch = head(blind, "blind_gap", variant="mismatch")
    assert 0 < mismatch.value <= 1 and mismatch.ci_low is not None


def test_corruptions_are_seeded_and_grow_with_severity():
    ref = load("vqa-rad-demo").samples[0].images[0]
    base = np.asarray(imaging.open_image(ref).convert("L"), dtype=float)
    for name in corrupt.CORRUPTIONS:
        a = corrupt.corrupt_ref(ref, name, 3, seed=1)
        corrupt._corrupted.cache_clear()
        assert corrupt.corrupt_ref(ref, name, 3, seed=1).data == a.data  # deterministic under a seed
        diffs = [np.abs(np.asarray(imaging.open_image(corrupt.corrupt_ref(ref, name, s, 1)).convert("L"), float)
                        - base).mean() for s in (1, 3, 5)]  # fmt: skip
        assert 0 < diffs[0] < diffs[2], (name, diffs)
    assert corrupt.corrupt_ref(ref, "gaussian_noise", 3, 1).data != corrupt.corrupt_ref(ref, "gaussian_noise", 3, 2).data


def test_corrupt_probe_on_demo(tmp_path):
    res = result(run(tmp_path, "vqa-rad-demo", "constant:no", "corrupt:jpeg,pixelate@1,5"), "corrupt")
    cells = {(m.detail["corruption"], m.detail["severity"]) for m in res.rows if m.name == "drop"}
    assert cells == {("jpeg", 1), ("jpeg", 5), ("pixelate", 1), ("pixelate", 5)}
    assert head(res, "worst_corruption_drop").value == 0.0 and head(res, "flip_rate").value == 0.0


def mc_rows(n: int = 4) -> list[dict]:
    return [{"id": f"m{i}", "image": f"imgs/{IMGS[i % 3]}", "question": f"Which plane? ({i})",
             "options": ["Axial", "Coronal", "Sagittal"], "answer": "ABC"[i % 3]} for i in range(n)]


def test_permute_always_a_fails_and_shows_position_bias(tmp_path):
    path = bench(tmp_path, mc_rows(6))
    res = result(run(tmp_path, path, "constant:A", "permute"), "permute")
    assert head(res, "permutation_consistency").value == 0.0
    bias = head(res, "position_bias")
    assert bias.value == pytest.approx(2 / 3) and bias.detail["top_letter"] == "A" and bias.detail["top_share"] == 1.0
    shares = {m.detail["letter"]: (m.value, m.detail["gold_share"]) for m in res.rows if m.name == "letter_share"}
    assert shares["A"] == (1.0, pytest.approx(1 / 3))


def test_permute_variants_move_the_gold():
    from medprobe.types import AnswerType, Sample

    sample = Sample(id="x", benchmark="b", question="q", options=("a", "b", "c", "d"), answer="B",
                    answer_type=AnswerType.MULTIPLE_CHOICE)
    out = probes.derive([ProbeSpec.parse("permute")], [sample]).samples
    assert [(v.options, v.answer) for v in out] == [
        (("b", "c", "d", "a"), "A"), (("c", "d", "a", "b"), "D"), (("d", "a", "b", "c"), "C")]
    assert {v.variant_of.parent_id for v in out} == {"x"} and out[0].id == "x~permute:rot1"
    assert out[0].variant_of.detail == {"rotation": 1} and out[0].metadata == {}
