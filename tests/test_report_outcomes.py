"""The report reads what scoring wrote: outcomes.json (each record's outcome, kept beside results.json),
the probe variants as light rows (medprobe.variant_rows) and the probe image store's previews, and the
page it writes is byte for byte the one it writes by scoring and reading everything itself."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest
from reportruns import make_runs
from runfolders import store_as_legacy

from medprobe import __version__, outcomes, scoring
from medprobe.runs import load as load_run
from medprobe.scoring._base import Preset
from medprobe.store import RECORDS, RunStore
from medprobe.types import Generation, Record, Sample
from medprobe.variant_rows import VariantRow
from medprobe.views import thumbs as thumbs_module
from medprobe.views.html import write_report


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    return make_runs(tmp_path_factory.mktemp("outcome-runs"), models=2)


def _copy(runs: list[Path], folder: Path) -> list[Path]:
    out = []
    for r in runs:
        shutil.copytree(r, folder / r.name)
        out.append(folder / r.name)
    return out


def _data(report: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((report / "data").iterdir())}


def test_a_run_keeps_every_outcome_beside_its_results(runs):
    run = load_run(runs[0], scored=True)
    store = RunStore(runs[0] / RECORDS, read_only=True)
    try:
        found = outcomes.read(runs[0], store.fingerprint())
        records = list(store.records())
    finally:
        store.close()
    assert found is not None, "pipeline.run wrote no outcomes.json that stands for its records"
    presets = [p.preset for p in run.scored().presets]
    assert found.presets == tuple(presets) and found.probe_preset == run.manifest.default_preset
    again = outcomes.table(records, presets, run.manifest.default_preset)
    assert found.by_id == again.by_id  # what is stored is what scoring the records gives
    variants = [r for r in records if r.sample.is_variant]
    assert variants and all(list(found.by_id[r.sample.id]) == [found.probe_preset] for r in variants)
    codes = {e[0] for r in records for e in found.by_id[r.sample.id].values()}
    assert {"c", "w", "e"} <= codes  # right, wrong and a failed request are all there


def test_the_report_scores_no_variant_when_outcomes_are_stored(runs, tmp_path, monkeypatch):
    scored: list[Sample] = []
    original = Preset.score_generation

    def counting(self, sample, generation):
        scored.append(sample)
        return original(self, sample, generation)

    monkeypatch.setattr(Preset, "score_generation", counting)
    write_report(runs, tmp_path / "stored", workers=1)
    assert scored and not any(s.is_variant for s in scored)  # clean samples only: the calibration figure
    scored.clear()
    copies = _copy(runs, tmp_path / "runs")
    for r in copies:
        (r / outcomes.FILE).unlink()
    write_report(copies, tmp_path / "scored", workers=1)
    assert any(s.is_variant for s in scored)


def test_the_page_is_the_same_with_or_without_stored_outcomes(runs, tmp_path):
    copies = _copy(runs, tmp_path / "runs")
    write_report(copies, tmp_path / "stored", workers=1)
    for r in copies:
        (r / outcomes.FILE).unlink()
    write_report(copies, tmp_path / "scored", workers=1)
    stored, scored = _data(tmp_path / "stored"), _data(tmp_path / "scored")
    assert stored.keys() == scored.keys() and len(stored) >= 2
    assert stored == scored


def test_outcomes_that_no_longer_stand_for_the_records_are_not_read(runs, tmp_path, monkeypatch):
    (run_dir,) = _copy(runs[:1], tmp_path)
    store = RunStore(run_dir / RECORDS)
    try:
        before = store.fingerprint()
        assert outcomes.read(run_dir, before) is not None
        monkeypatch.setattr(outcomes, "__version__", "0.0.0-other")
        assert outcomes.read(run_dir, before) is None  # scored by another medprobe version
        monkeypatch.undo()
        store.put_generation("a-new-key", Generation(text="Yes"))  # an answer stored since (a resumed run)
        after = store.fingerprint()
    finally:
        store.close()
    assert after != before and outcomes.read(run_dir, after) is None
    assert load_run(run_dir).outcomes(["strict"]).by_id  # the run scores its records itself instead
    for damaged in (b"not JSON", b"[1, 2]", orjson.dumps({"version": __version__, "fingerprint": after})):
        (run_dir / outcomes.FILE).write_bytes(damaged)
        assert outcomes.read(run_dir, after) is None


def test_a_preset_the_stored_outcomes_lack_is_scored_on_the_clean_samples(runs):
    run = load_run(runs[0], scored=True)
    stored = [p.preset for p in run.scored().presets]
    extra = next(p for p in ("lmms-eval", "medevalkit", "vlmevalkit-mcq") if p not in stored)
    found = run.outcomes([*stored, extra])
    clean = run.clean_records
    assert all(extra in found.by_id[r.sample.id] for r in clean)
    assert found.by_id[clean[0].sample.id][extra] == outcomes.entry(scoring.get(extra), clean[0])


def test_split_records_are_the_records_parted(runs):
    store = RunStore(runs[0] / RECORDS, read_only=True)
    try:
        records = list(store.records())
        clean, variants = store.split_records()
    finally:
        store.close()
    assert clean == [r for r in records if not r.sample.is_variant]
    assert variants == [VariantRow.of(r) for r in records if r.sample.is_variant]
    row = next(v for v in variants if v.sample.variant_of.probe == "negate")
    assert row.sample.question != next(r.sample.question for r in clean if r.sample.id == row.sample.variant_of.parent_id)


def test_a_store_written_before_variant_of_splits_the_same(runs, tmp_path):
    (run_dir,) = _copy(runs[:1], tmp_path)
    store = RunStore(run_dir / RECORDS, read_only=True)
    try:
        expected = store.split_records()
    finally:
        store.close()
    store_as_legacy(run_dir / RECORDS)
    store = RunStore(run_dir / RECORDS, read_only=True)
    try:
        assert store.split_records() == expected
    finally:
        store.close()


def test_multi_turn_records_split_with_every_turn(tmp_path):
    store = RunStore(tmp_path / RECORDS)
    parent = Sample(id="q1", benchmark="b", question="Is it?", answer="yes", answer_type="closed")
    variant = Sample(id="q1~blind:none", benchmark="b", question="Is it?", answer="yes", answer_type="closed",
                     variant_of={"parent_id": "q1", "probe": "blind", "variant": "none"})  # fmt: skip
    store.put_samples([parent, variant])
    store.put_plan([("q1", 0, "k1"), ("q1", 1, "k2"), ("q1~blind:none", 0, "v1"), ("q1~blind:none", 1, "v2")])
    for key, text in (("k1", "First"), ("k2", "Yes"), ("v1", "First"), ("v2", "No")):
        store.put_generation(key, Generation(text=text))
    try:
        clean, variants = store.split_records(turns=2)
        records = list(store.records(turns=2))
    finally:
        store.close()
    assert clean == [records[0]] and clean[0].keys == ("k1", "k2") and clean[0].answered
    assert variants == [VariantRow.of(records[1])] and [g.text for g in variants[0].replies] == ["First", "No"]


def test_thumbnails_of_stored_previews_are_links_and_copies_where_links_fail(runs, tmp_path, monkeypatch):
    previews = {p.name.split("-")[0]: p for p in (runs[0] / "probe_images" / "previews").iterdir()}
    assert previews
    write_report(runs[:1], tmp_path / "linked", workers=1)
    linked = {p.name.split("-")[0]: p for p in (tmp_path / "linked" / "thumbs").iterdir()}
    shared = [d for d in linked if any(k.startswith(d) for k in previews)]
    assert shared, "no thumbnail came from the probe image store's previews"
    for d in shared:
        source = next(p for k, p in previews.items() if k.startswith(d))
        assert os.path.samefile(linked[d], source)

    def refuse(*_args):
        raise PermissionError("links not allowed here")

    monkeypatch.setattr(thumbs_module.os, "link", refuse)
    write_report(runs[:1], tmp_path / "copied", workers=1)
    for d in shared:
        copy = next((tmp_path / "copied" / "thumbs").glob(f"{d}-*.jpg"))
        source = next(p for k, p in previews.items() if k.startswith(d))
        assert not os.path.samefile(copy, source) and copy.read_bytes() == source.read_bytes()
    assert not list((tmp_path / "copied" / "thumbs").glob("*.tmp"))


def test_a_variant_view_reads_the_fields_of_the_full_types():
    sample = Sample(id="q1~blind:none", benchmark="b", question="Is it?", answer="yes", answer_type="closed",
                    variant_of={"parent_id": "q1", "probe": "blind", "variant": "none"})  # fmt: skip
    record = Record(sample=sample, keys=("k",), generations=(Generation(text="<think>hm</think>No", error=None),))
    row = VariantRow.of(record)
    assert (row.sample.id, row.sample.question, row.final.text, row.error) == (sample.id, "Is it?", "<think>hm</think>No", None)


def test_a_score_whose_outcomes_cannot_be_written_still_writes_its_results(runs, tmp_path, monkeypatch):
    from medprobe import pipeline
    from medprobe.store import RESULTS, StorageError, StorageKind

    (run_dir,) = _copy(runs[:1], tmp_path)
    (run_dir / RESULTS).unlink()

    def full(*_args):
        raise StorageError("no space left", StorageKind.FULL, run_dir / outcomes.FILE)

    monkeypatch.setattr(outcomes, "write", full)
    pipeline.score(run_dir)
    assert (run_dir / RESULTS).is_file() and not (run_dir / outcomes.FILE).exists()  # no stale cache left behind
    monkeypatch.undo()
    write_report([run_dir], tmp_path / "report", workers=1)  # the report scores the records itself
    assert (tmp_path / "report" / "data" / "s0-index.js").is_file()
