"""Report probes end to end: a scripted model on the IU-Xray fixture (R2Gen layout, frontal then lateral) run
with --probe laterality, blind and corrupt; the requests carry the mirrored images in order, byte for byte,
and results.json holds the report figures."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image
from reportdata import iu_xray_r2gen

from medprobe import imaging, pipeline
from medprobe.backends import BackendConfig
from medprobe.backends.scripted import register_function
from medprobe.benchmarks import LoadOptions
from medprobe.pipeline import RunSpec
from medprobe.types import Request

SEEN: list[Request] = []


def reader(request: Request) -> str:
    """A model that reads its side from the image: left for the clean film, right for the mirrored one."""
    SEEN.append(request)
    if request.probe == "laterality":
        return "Small right pleural effusion. Left lower lobe opacity."
    if request.probe == "blind":
        return "No acute cardiopulmonary process."
    return "Small left pleural effusion. Right lower lobe opacity."


def test_report_probes_through_the_pipeline(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "default_presets", lambda: ["strict"])  # keep this run fast
    register_function("report-reader", reader)
    SEEN.clear()
    data = iu_xray_r2gen(tmp_path)
    for png in (tmp_path / "iu_download").rglob("*.png"):  # left differs from right, so a mirror shows
        with Image.open(png) as img:
            size = img.size
        Image.fromarray(np.tile(np.linspace(0, 255, size[0]).astype(np.uint8), (size[1], 1)), "L").save(png)
    spec = RunSpec(benchmark="iu-xray", load=LoadOptions(data=str(data)),
                   backend=BackendConfig(provider="scripted", model="fn:report-reader"),
                   probes=("laterality", "blind:none", "corrupt:jpeg@5"))  # fmt: skip
    results = pipeline.run(spec, tmp_path / "run")
    probes = {p.probe: p for p in results.probes}
    follow = next(m for m in probes["laterality"].headline if m.name == "follow_rate")
    assert follow.value == 1.0 and follow.n == 2 * follow.detail["studies"] > 0
    blind = {m.name: m for m in probes["blind"].headline}
    assert set(blind) == {"rouge_l_to_seeing", "bleu4_to_seeing", "rouge_l_drop"} and blind["rouge_l_drop"].value > 0
    assert any(m.name == "worst_rouge_l_drop" for m in probes["corrupt"].headline)
    # the mirrored request: every view of the study mirrored, in the study's order, exactly as stored
    clean = {r.sample_id: r for r in SEEN if r.probe is None}
    for r in (r for r in SEEN if r.probe == "laterality"):
        parent = clean[r.sample_id.split("~")[0]]
        assert len(r.image_hashes) == len(parent.image_hashes)
        for mirrored_hash, parent_hash in zip(r.image_hashes, parent.image_hashes):
            path = tmp_path / "run" / "probe_images" / f"{mirrored_hash}.png"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == mirrored_hash
            original = next(p for p in (tmp_path / "iu_download").rglob("*.png")
                            if hashlib.sha256(p.read_bytes()).hexdigest() == parent_hash)  # fmt: skip
            want = np.asarray(imaging.open_image(imaging.ImageRef(path=str(original))))[:, ::-1]
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(path.read_bytes()))), want)
