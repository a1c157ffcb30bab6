"""The laterality probe: mirrored images stored byte-exact by content hash, the lateral-finding rule on
hand-written reports, and the share of findings that follow the mirror, paired study by study."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medprobe import imaging, probes
from medprobe.probes import Group, ProbeContext, ProbeSpec, laterality
from medprobe.probes.laterality import follows, lateral_findings
from medprobe.types import AnswerType, Generation, ImageRef, Record, Sample

FIX = Path(__file__).parent / "fixtures" / "vqa_rad" / "images"
IMGS = sorted(p.name for p in FIX.glob("*.jpg"))


def study(sid: str, images=(), answer: str = "No acute findings.", kind: AnswerType = AnswerType.REPORT) -> Sample:
    return Sample(id=sid, benchmark="iu-xray", question="Write the findings section.", images=tuple(images),
                  answer=answer, answer_type=kind)  # fmt: skip


def record(sample: Sample, text: str | None, error: str | None = None) -> Record:
    gen = Generation(text=text) if error is None else Generation(error=error)
    return Record(sample=sample, keys=("k",), generations=(gen,))


# (report, its lateral findings): the rule of medprobe.probes.laterality, one case per clause of its doc
GOLDEN = [
    ("Small left pleural effusion. Right lower lobe opacity.", {("left", "effusion"), ("right", "opacity")}),
    ("Opacity in the right lower lobe, no left pneumothorax.", {("right", "opacity")}),  # before the side; negated
    ("Bilateral pleural effusions.", set()),
    ("Left and right pleural effusions.", set()),  # read as bilateral
    ("Left effusion. Right effusion.", set()),  # both sides in one report: no side
    ("The right hilum is normal. No left pneumothorax.", set()),  # normal / negated clauses
    ("Right-sided PICC line terminates in the SVC. Elevated left hemidiaphragm.",
     {("right", "catheter"), ("left", "elevation")}),
    ("The heart is enlarged. The right heart border is indistinct.", set()),  # a side with no finding word near
    ("Left basilar atelectasis and small right effusions.", {("left", "atelectasis"), ("right", "effusion")}),
    ("No acute cardiopulmonary process.", set()),
]


@pytest.mark.parametrize("text,expected", GOLDEN)
def test_lateral_findings_golden(text, expected):
    assert lateral_findings(text) == expected


def test_follows_classifies_each_seeing_finding():
    seeing = lateral_findings("Small left pleural effusion. Right lower lobe opacity. Left rib fracture.")
    mirrored = lateral_findings("Small right pleural effusion. Right lower lobe opacity. No fracture.")
    assert follows(seeing, mirrored) == ["followed", "lost", "stayed"]  # sorted: effusion, fracture, opacity


def test_mirror_is_byte_exact_and_stored_by_hash(tmp_path):
    refs = [ImageRef(path=name, root=str(FIX)) for name in IMGS[:2]]  # frontal then lateral
    samples = [study("s1", refs), study("q1", refs[:1], answer="yes", kind=AnswerType.CLOSED)]
    store = tmp_path / "probe_images"
    ctx = ProbeContext(seed=0, spec=ProbeSpec(name="laterality"), image_dir=str(store))
    made = laterality.derive(samples, ctx)
    assert [s.id for s in made] == ["s1~laterality:mirror"]
    assert made[0].variant_of.parent_id == "s1" and len(made[0].images) == 2
    for src, out in zip(refs, made[0].images):
        data = (Path(out.root) / out.path).read_bytes()
        assert out.path == hashlib.sha256(data).hexdigest() + ".png"  # content-addressed, like corrupt's images
        want = np.asarray(imaging.open_image(src))[:, ::-1]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), want)
    # the question is not mirrored, and the run says why in one line
    assert len(ctx.skipped) == 1 and "questions, not reports" in ctx.skipped[0]
    ctx.images.save()
    # a re-run reads the files back by recipe: same refs, nothing rebuilt
    again = probes.derive([ProbeSpec(name="laterality")], samples, image_dir=str(store))
    assert again.samples[0].images == made[0].images


def test_analyze_share_that_follows_the_mirror():
    # three studies: one follows (2 findings), one keeps its side (1), one has no lateral finding; an invalid
    # mirrored report is left out and counted
    cases = {
        "a": ("Left pleural effusion. Right upper lobe nodule.", "Right pleural effusion. Left upper lobe nodule."),
        "b": ("Right lower lobe consolidation.", "Right lower lobe consolidation."),
        "c": ("No acute findings.", "No acute findings."),
        "d": ("Left pneumothorax.", "   "),
    }
    groups = {}
    for sid, (seeing, mirrored) in cases.items():
        parent = study(sid, [ImageRef(path=IMGS[0], root=str(FIX))])
        child = probes._kit.variant(parent, "laterality", "mirror")
        groups[sid] = Group(record(parent, seeing), (record(child, mirrored),))
    res = laterality.analyze(groups, "strict", seed=0)
    m = {x.name: x for x in res.headline}
    assert m["follow_rate"].value == pytest.approx(2 / 3) and m["follow_rate"].n == 3
    assert m["stay_rate"].value == pytest.approx(1 / 3) and m["lost_rate"].value == 0
    assert m["follow_rate"].detail["invalid_pairs"] == 1 and m["follow_rate"].detail["studies"] == 2
    low, high = m["follow_rate"].ci_low, m["follow_rate"].ci_high
    # study-level bootstrap: study a's two findings move together, so the interval spans 0 to 1
    assert low == 0.0 and high == 1.0


def test_on_questions_the_probe_says_it_does_not_apply(tmp_path):
    q = study("q1", [ImageRef(path=IMGS[0], root=str(FIX))], answer="yes", kind=AnswerType.CLOSED)
    derived = probes.derive([ProbeSpec(name="laterality")], [q])
    assert derived.samples == () and "reports only" in derived.skipped[0]
    res = probes.analyze([ProbeSpec(name="laterality")], [record(q, "yes")], "strict")
    assert not res[0].ran
