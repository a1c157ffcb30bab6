"""Probe bookkeeping that must never make a run look better than it was: internal fields apart from
user metadata (a `parent_id` column), failed variants counted in every figure, unreadable parents
skipped and listed, runs stored before `Sample.variant_of` read back."""

from __future__ import annotations

import json

import pytest
from runfolders import store_as_legacy
from test_probe_basics import IMGS, bench, mc_rows, result, run
from typer.testing import CliRunner

from medprobe import pipeline, probes
from medprobe.backends.scripted import register_function
from medprobe.benchmarks import load
from medprobe.cli import app
from medprobe.probes import ProbeSpec
from medprobe.prompts import PromptTemplate, first_turn
from medprobe.runner import Job, build_request
from medprobe.store import read_records
from medprobe.types import ErrorKind, Generation, Request, Sample


@pytest.fixture(autouse=True)
def strict_only(monkeypatch):
    monkeypatch.setattr(pipeline, "default_presets", lambda: ["strict"])


def test_a_parent_id_column_is_ordinary_metadata(tmp_path):
    rows = [{"id": f"q{i}", "image": f"imgs/{IMGS[i % 3]}", "question": f"Is there a mass? ({i})", "answer": "yes",
             "answer_type": "closed", "parent_id": f"study{i}", "probe": "ct", "variant": "v1"} for i in range(5)]
    path = bench(tmp_path, rows)
    res = run(tmp_path, path, "constant:yes")
    assert res.counts.samples == 5 and res.preset("strict").get().n == 5  # before: samples 0
    probed = run(tmp_path, path, "constant:yes", "blind:none", name="probed")
    assert probed.counts.samples == 5
    gap = next(m for m in result(probed, "blind").headline if m.name == "blind_gap")
    assert gap.n == 5 and gap.failed == 0  # every variant paired with its parent
    _, records = read_records(tmp_path / "probed")
    assert len(records) == 10  # the user's column stays where it was, on parents and variants alike
    assert {r.sample.metadata["parent_id"] for r in records} == {f"study{i}" for i in range(5)}


def test_variant_requests_carry_the_probe_name_and_clean_ones_never_a_users_column():
    clean = Sample(id="x", benchmark="b", question="q", options=("a", "b"), answer="A", answer_type="multiple_choice",
                   metadata={"probe": "user-value"})  # fmt: skip
    (rotated,) = probes.derive([ProbeSpec.parse("permute")], [clean]).samples
    job = Job(samples=[clean, rotated], template=PromptTemplate(name="default"), model="m")
    requests = [build_request(job, s, first_turn(job.template, s), 0, False) for s in (clean, rotated)]
    assert requests[0].probe is None and requests[1].probe == "permute"
    assert requests[0].key != requests[1].key


def test_a_run_stored_before_variant_of_reads_back_with_its_pairs(tmp_path):
    path = bench(tmp_path, mc_rows(4))
    fresh = run(tmp_path, path, "constant:A", "permute", "negate:mc")
    store_as_legacy(tmp_path / "run" / "records.sqlite")
    again = pipeline.score(tmp_path / "run")
    assert again.counts.samples == 4 and again.probes == fresh.probes


def _answers(path: str) -> dict[str, str]:
    """sample id -> gold, for every clean sample and every variant the run will ask."""
    clean = load(path).samples
    variants = probes.derive([ProbeSpec.parse(s) for s in ("permute", "negate:mc", "blind:none")], clean).samples
    return {s.id: s.answer for s in (*clean, *variants)}


FAIL = {"m1~permute:rot2", "m0~negate:mc:B", "m2~blind:none"}


def test_failed_variants_are_counted_and_make_a_set_not_consistent(tmp_path):
    path = bench(tmp_path, mc_rows(4))
    gold = _answers(path)

    def oracle(request: Request) -> str | Generation:
        if request.sample_id in FAIL:
            return Generation(error="HTTP 500 from the server", error_kind=ErrorKind.SERVER)
        return gold[request.sample_id]  # always right

    register_function("oracle-with-failures", oracle)
    out = tmp_path / "cli"
    args = ["run", path, "--model", "scripted/fn:oracle-with-failures", "--probe", "permute", "--probe", "negate:mc",
            "--probe", "blind:none", "--max-errors", "3", "--out", str(out)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    data = {p["probe"]: p for p in json.loads((out / "results.json").read_text())["probes"]}
    head = {(p, m["name"]): m for p, r in data.items() for m in r["headline"]}
    # consistency: the question with a failed rotation is not known to be consistent (before: 4/4)
    consistency = head[("permute", "permutation_consistency")]
    assert (consistency["value"], consistency["n"], consistency["failed"]) == (0.75, 4, 1)
    twins = head[("negate", "negation_twin_accuracy")]
    assert (twins["value"], twins["n"], twins["failed"]) == (0.75, 4, 1)
    # a paired delta leaves the failed pair out of n and says so
    gap = head[("blind", "blind_gap")]
    assert (gap["value"], gap["n"], gap["failed"]) == (0.0, 3, 1)
    assert all(data[p]["failed"] == 1 for p in ("permute", "negate", "blind"))
    summary = (out / "summary.md").read_text()
    assert "| failed |" in summary and "| permutation_consistency | 75.0 |" in summary


def test_a_variant_whose_every_request_failed_is_still_a_row(tmp_path):
    path = bench(tmp_path, mc_rows(2))

    def none_blind(request: Request) -> str | Generation:
        if "~blind:" in request.sample_id:
            return Generation(error="HTTP 500", error_kind=ErrorKind.SERVER)
        return "A"

    register_function("blind-fails", none_blind)
    res = result(run(tmp_path, path, "fn:blind-fails", "blind:none"), "blind")
    assert not res.ran and res.failed == 2 and "2 variant request(s) failed" in res.note


def test_unreadable_parent_is_skipped_and_listed_never_the_end_of_the_run(tmp_path):
    rows = [{"id": f"q{i}", "image": f"imgs/{IMGS[i % 3]}", "question": f"Is there a mass? ({i})", "answer": "yes",
             "answer_type": "closed"} for i in range(3)]
    rows.append({"id": "bad", "image": "imgs/broken.jpg", "question": "Is there a mass?", "answer": "yes",
                 "answer_type": "closed"})  # fmt: skip
    path = bench(tmp_path, rows)
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    out = tmp_path / "cli"
    args = ["run", path, "--model", "scripted/constant:yes", "--probe", "blind", "--probe", "corrupt:jpeg@1",
            "--max-errors", "1", "--out", str(out)]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output  # the bad row is one sample error, tolerated by --max-errors 1
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = manifest["probe_skipped"]
    assert len(skipped) == 2 and all("skipped sample bad" in s and "broken.jpg" in s for s in skipped)
    assert {s.split(":")[0] for s in skipped} == {"blind", "corrupt"}
    data = {p["probe"]: p for p in json.loads((out / "results.json").read_text())["probes"]}
    gaps = [m for m in data["blind"]["headline"] if m["name"] == "blind_gap"]
    assert {m["detail"]["variant"] for m in gaps} == {"none", "blank", "mismatch"}
    assert all(m["n"] == 3 and m["failed"] == 0 for m in gaps)  # no mismatch was given the broken image
    assert next(m for m in data["corrupt"]["headline"] if m["name"] == "flip_rate")["n"] == 3


def test_an_unreadable_image_is_never_lent_to_a_mismatch(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    good = load(bench(tmp_path, mc_rows(1))).samples[0]
    broken = good.images[0].model_copy(update={"path": "broken.png", "name": None})
    bad = good.model_copy(update={"id": "bad", "images": (broken,)})
    derived = probes.derive([ProbeSpec.parse("blind")], [good, bad])
    assert [v.id for v in derived.samples] == ["m0~blind:none", "m0~blind:blank"]  # no other readable image to lend
    (line,) = derived.skipped
    assert line.startswith("blind: skipped sample bad: ") and "broken.png" in line
