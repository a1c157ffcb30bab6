"""Suites: a paper's table as one job (medprobe.suites, `medprobe suite`).

Runs use a scripted model (it answers "yes") on the packaged VQA-RAD sample and on small copies of real files in the
layouts `medprobe data get` writes under --data-root (SLAKE's test.json, VQA-RAD's public JSON), with
real CC0 VQA-RAD images standing in for SLAKE's (formats only, never benchmark results).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medprobe import suites
from medprobe.cli import app
from medprobe.dataset_facts import FACTS
from medprobe.backends import BackendConfig
from medprobe.metrics import Metric
from medprobe.pipeline import RunSpec
from medprobe.store import read_manifest
from medprobe.suites.runner import EntryResult, SuiteAverage, _result, _suite_dir, average

FIX = Path(__file__).parent / "fixtures"
STAND_IN = FIX / "vqa_rad" / "images" / "synpic30324.jpg"


def _data_root(root: Path) -> Path:
    """SLAKE/ and vqa-rad/ under `root`, as `medprobe data get` and the official releases lay them out."""
    slake = root / "SLAKE"
    slake.mkdir(parents=True)
    shutil.copy(FIX / "slake" / "test.json", slake / "test.json")
    for row in json.loads((slake / "test.json").read_text(encoding="utf-8")):
        image = slake / "imgs" / row["img_name"]
        image.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(STAND_IN, image)
    shutil.copytree(FIX / "vqa_rad" / "images", root / "vqa-rad" / "images")
    shutil.copy(FIX / "vqa_rad" / "vqa_rad_sample.json", root / "vqa-rad" / "vqa_rad_public.json")
    for row in json.loads((root / "vqa-rad" / "vqa_rad_public.json").read_text(encoding="utf-8")):
        image = root / "vqa-rad" / "images" / row["image_name"]
        if not image.exists():  # the excerpt's other rows: a real VQA-RAD image stands in
            shutil.copy(STAND_IN, image)
    return root


def _suite_file(path: Path, body: str) -> Path:
    path.write_text('name = "t"\ntitle = "a test table"\naverage = "mean"\n' + body, encoding="utf-8")
    return path


def _invoke(*args: str):
    return CliRunner().invoke(app, ["suite", *args, "--model", "scripted/constant:yes"])


TABLE = """
[[entry]]
benchmark = "vqa-rad-demo"
split = "test"
label = "demo"

[[entry]]
benchmark = "vqa-rad-demo"
split = "test"
subset = "closed"
label = "demo closed"

[[entry]]
benchmark = "slake-en"
split = "test"
label = "SLAKE"

[[entry]]
benchmark = "vqa-rad"
split = "test"
preset = "medevalkit"
label = "VQA-RAD"

[[entry]]
benchmark = "omnimedvqa"
label = "OmniMedVQA"

[[entry]]
benchmark = "vqa-rad-demo"
split = "test"
subset = "modality=XR"
label = "no such row"
"""


def test_suite_runs_every_entry_into_one_folder_reports_failures_as_statuses_and_resumes(tmp_path):
    root = _data_root(tmp_path / "data")
    out = tmp_path / "suite"
    result = _invoke(str(_suite_file(tmp_path / "t.toml", TABLE)), "--data-root", str(root), "--out", str(out))
    # the missing dataset and the missing row are entry statuses; the suite exits with the worst (2)
    assert result.exit_code == 2, result.output
    assert "OmniMedVQA" in result.output and "SLAKE" in result.output and "average" in result.output
    done = suites.read_result(out)
    by = {e.label: e for e in done.entries}
    assert [e.label for e in done.entries] == ["demo", "demo closed", "SLAKE", "VQA-RAD", "OmniMedVQA", "no such row"]
    assert by["demo"].status == "complete" and by["demo"].headline.n == 15 and by["demo"].headline.subset == "overall"
    assert by["demo closed"].headline.subset == "closed" and by["demo closed"].headline.n == 8
    # entries that name the same run share one run folder: it ran once
    assert by["demo"].run == by["demo closed"].run == by["no such row"].run == "vqa-rad-demo-test"
    assert by["SLAKE"].status == "complete" and by["SLAKE"].headline.n == 15  # the 15 English rows only
    assert by["SLAKE"].data == str(root / "SLAKE")  # --data-root DIR -> DIR/SLAKE
    assert by["VQA-RAD"].headline.preset == "medevalkit" and by["VQA-RAD"].headline.n == 17
    omni = by["OmniMedVQA"]
    assert omni.status == "failed" and omni.exit_code == 2 and omni.headline is None
    assert "medprobe data get omnimedvqa" in omni.reason and "no OmniMedVQA folder under --data-root" in omni.reason
    row = by["no such row"]
    assert row.status == "complete" and row.exit_code == 2 and "no modality=XR/* row" in row.reason
    assert done.exit_code == 2 and done.status == "failed" and done.model == "scripted/constant:yes"
    # no average while an entry lacks a value; the mean of the others is kept apart, labelled
    assert done.average.value is None and set(done.average.missing) == {"OmniMedVQA", "no such row"}
    have = [by[k].headline.value for k in ("demo", "demo closed", "SLAKE", "VQA-RAD")]
    assert done.average.partial_value == pytest.approx(sum(have) / 4)
    # every sub-folder is an ordinary run folder; the failed entry left none
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["slake-en-test", "vqa-rad-demo-test", "vqa-rad-test"]
    assert all(read_manifest(out / r).status == "complete" for r in runs)
    assert (out / "suite.md").read_text(encoding="utf-8").count("| demo") == 2
    assert suites.run_folders([out]) == [out / "vqa-rad-demo-test", out / "slake-en-test", out / "vqa-rad-test"]

    again = _invoke(str(tmp_path / "t.toml"), "--data-root", str(root), "--out", str(out))
    assert again.exit_code == 2, again.output
    assert all(read_manifest(out / r).last_execution.sent == 0 for r in runs)  # resumed: nothing sent again
    assert suites.read_result(out).entries[2].headline == by["SLAKE"].headline


def test_complete_suite_exits_0_with_the_papers_average(tmp_path):
    body = TABLE.split("[[entry]]\nbenchmark = \"slake-en\"")[0]  # the two demo entries
    result = _invoke(str(_suite_file(tmp_path / "t.toml", body)), "--out", str(tmp_path / "s"))
    assert result.exit_code == 0, result.output
    done = suites.read_result(tmp_path / "s")
    values = [e.headline.value for e in done.entries]
    assert done.status == "complete" and done.average.value == pytest.approx(sum(values) / 2)
    assert done.average.ci_low < done.average.value < done.average.ci_high and done.average.n == 2


def test_unknown_benchmark_split_or_preset_is_refused_before_anything_runs(tmp_path):
    body = ('[[entry]]\nbenchmark = "vqa-rad-demo"\n\n[[entry]]\nbenchmark = "mmmu-medical"\n\n'
            '[[entry]]\nbenchmark = "vqa-rad"\nsplit = "validation"\npreset = "probmed"\n')
    out = tmp_path / "never"
    result = _invoke(str(_suite_file(tmp_path / "bad.toml", body)), "--out", str(out))
    assert result.exit_code == 2
    assert "entry 2 (mmmu-medical): unknown benchmark 'mmmu-medical'" in result.output
    assert "mmmu-med" in result.output  # the known names are listed
    assert "vqa-rad has no split 'validation'" in result.output
    assert "preset 'probmed' scores probmed only" in result.output
    assert "Nothing was run" in result.output and not out.exists()


@pytest.mark.parametrize("body, message", [
    ('[[entry]]\nbenchmark = ["vqa-rad"]\n', "must be a string, number or true/false"),
    ('[[entry]]\nbenchmark = "vqa-rad"\n[entry.options]\nx = 1\n', "must be a string, number or true/false"),
    ('[[entry]]\nbenchmark = "vqa-rad"\nprobe = "blind"\n', "Extra inputs are not permitted"),
    ('title = "no entries"\n', "has no entries"),
    ('[[entry]]\nbenchmark = "vqa-rad"\n[[entry]]\nbenchmark = "vqa-rad"\nsplit = "train"\nrun = "vqa-rad"\n',
     "two entries use the folder 'vqa-rad'"),
])  # fmt: skip
def test_a_suite_file_holds_names_and_scalars_only(tmp_path, body, message):
    path = tmp_path / "s.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(suites.SuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        suites.load(str(path))


def test_shipped_suites_name_registered_benchmarks_presets_and_prompts():
    """Fails when a shipped suite names a benchmark, split, preset or prompt medprobe does not have."""
    assert suites.names() == ["lingshu-mm", "medgemma-mm"]
    for name in suites.names():
        suite = suites.load(name)
        suites.validate(suite, _suite_dir(suite))
        assert suite.source and all(e.source and e.differs for e in suite.entries)
        assert all(FACTS[e.benchmark].folder for e in suite.entries)  # --data-root can map every entry
    lingshu = suites.load("lingshu-mm")
    counted = [e.benchmark for e in lingshu.entries if e.in_average]
    # Table 6's seven columns; Avg. = their unweighted mean
    assert counted == ["mmmu-med", "vqa-rad", "slake-en", "pathvqa", "pmc-vqa", "omnimedvqa", "medxpertqa-mm"]
    assert lingshu.average == "mean" and lingshu.average_label == "Avg."
    assert suites.load("medgemma-mm").average == "none"  # the report defines no average


def test_average_is_the_unweighted_mean_of_the_counted_entries():
    def entry(label, value, half, counted=True):
        m = Metric(subset="overall", metric="accuracy", preset="strict", parsers=("x",), value=value,
                   ci_low=value - half, ci_high=value + half, n=100, correct=0, wrong=0, invalid=0)
        return EntryResult(label=label, benchmark="b", split=None, preset="strict", subset="overall",
                           metric="accuracy", run=label, status="complete", exit_code=0, headline=m,
                           in_average=counted)  # fmt: skip

    suite = suites.load("lingshu-mm")
    avg = average(suite, [entry("a", 0.5, 0.1), entry("b", 0.7, 0.1), entry("zh", 0.1, 0.1, counted=False)])
    assert isinstance(avg, SuiteAverage) and avg.value == pytest.approx(0.6) and avg.n == 2
    # independent entries: se = sqrt(se_a^2 + se_b^2) / 2, with se = half-width / 1.96
    assert avg.ci_high - avg.value == pytest.approx(0.1 / 2**0.5, rel=1e-6)
    assert average(suites.load("medgemma-mm"), [entry("a", 0.5, 0.1)]) is None


@pytest.mark.parametrize("codes, worst", [((0, 0), 0), ((0, 3), 3), ((3, 4, 0), 4), ((3, 2, 4), 2), ((2, 6), 6),
                                          ((2, 1), 1), ((1, 130), 130)])  # fmt: skip
def test_the_suite_exits_with_its_worst_entry(codes, worst):
    status = {0: "complete", 1: "failed", 2: "failed", 3: "partial", 4: "stopped", 6: "failed", 130: "interrupted"}
    entries = [EntryResult(label=f"e{i}", benchmark="b", split=None, preset="strict", subset="overall", metric=None,
                           run=f"e{i}", status=status[c], exit_code=c) for i, c in enumerate(codes)]  # fmt: skip
    base = RunSpec(benchmark="vqa-rad-demo", backend=BackendConfig(provider="baseline", model="random"))
    result = _result(suites.load("medgemma-mm"), base, "t0", "t1", None, dict(enumerate(entries)))
    assert result.exit_code == worst
    assert result.status == status[worst]


def test_a_backend_that_fails_preflight_stops_the_later_entries(tmp_path, openai_server):
    openai_server.models = ("another-model",)  # the server does not serve the model asked for
    body = ('[[entry]]\nbenchmark = "vqa-rad-demo"\nsplit = "test"\n\n'
            '[[entry]]\nbenchmark = "vqa-rad-demo"\nsplit = "all"\n')
    out = tmp_path / "s"
    result = CliRunner().invoke(app, ["suite", str(_suite_file(tmp_path / "t.toml", body)), "--model", "openai/tiny",
                                      "--base-url", openai_server.base_url, "--out", str(out)])
    assert result.exit_code == 2, result.output
    first, second = suites.read_result(out).entries
    assert first.status == "failed" and "preflight" in first.reason and "tiny" in first.reason
    assert second.status == "not_run" and second.reason.startswith("not started: the backend failed its preflight")
    assert openai_server.count() == 0  # no chat request was sent


def test_an_entry_file_is_read_inside_the_benchmarks_folder(tmp_path):
    root = _data_root(tmp_path / "data")
    suite = _suite_file(tmp_path / "t.toml", '[[entry]]\nbenchmark = "vqa-rad"\nfile = "vqa_rad_public.json"\n')
    result = _invoke(str(suite), "--data-root", str(root), "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    (entry,) = suites.read_result(tmp_path / "a").entries
    assert entry.data == str(root / "vqa-rad" / "vqa_rad_public.json") and entry.run == "vqa-rad-vqa_rad_public"
    without = _invoke(str(suite), "--out", str(tmp_path / "b"))  # no folder to find the file in
    assert without.exit_code == 2
    assert "pass --data-root" in suites.read_result(tmp_path / "b").entries[0].reason


# ---------------------------------------------------------------- an offline machine fails missing entries at once

OFFLINE_TABLE = """
[[entry]]
benchmark = "medframeqa"
label = "MedFrameQA"

[[entry]]
benchmark = "mmmu-med"
split = "validation"
label = "MMMU"

[[entry]]
benchmark = "vqa-rad-demo"
split = "test"
label = "demo"
"""


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    """Nothing may reach the hub: a call to `datasets.load_dataset` fails the test (the refusal must come
    before it, not after its timeouts); an empty Hugging Face cache; the probe's per-process answer forgotten."""
    import datasets

    from medprobe import hub_reach

    def no_load(*args, **kwargs):
        raise AssertionError(f"datasets.load_dataset{args} was called: the hub was tried")

    monkeypatch.setattr(datasets, "load_dataset", no_load)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    hub_reach._reachable.cache_clear()
    yield hub_reach
    hub_reach._reachable.cache_clear()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: a connection is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("offline", ["declared", "unreachable"])
def test_offline_machine_fails_each_missing_entry_at_once_and_goes_on(tmp_path, monkeypatch, no_hub, offline):
    if offline == "unreachable":  # no HF_*_OFFLINE: the short connect probe finds the hub is not there
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "data"
    root.mkdir()
    out = tmp_path / "runs"
    result = _invoke(str(_suite_file(tmp_path / "t.toml", OFFLINE_TABLE)), "--data-root", str(root), "--out", str(out))
    assert result.exit_code == 2, result.output
    by = {e.label: e for e in suites.read_result(out).entries}
    assert by["demo"].status == "complete"  # the suite went on after the two missing entries
    for label, name, folder in (("MedFrameQA", "medframeqa", "MedFrameQA"), ("MMMU", "mmmu-med", "MMMU")):
        entry = by[label]
        assert entry.status == "failed" and entry.exit_code == 2 and entry.headline is None
        assert f"medprobe data get {name} --to {root}" in entry.reason and "--data-root DIR" in entry.reason
        assert f"no {folder} folder under --data-root" in entry.reason
        assert ("HF_HUB_OFFLINE is set" if offline == "declared" else "did not answer within") in entry.reason
        assert not (out / entry.run).exists()  # refused before a run folder was made


def test_hub_probe_gives_up_on_a_connection_that_hangs(monkeypatch, no_hub):
    """A lookup or handshake that never returns (an offline machine's DNS) is given up on after the
    timeout: the probe returns while the connection attempt is still blocked."""
    import socket
    import threading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    release = threading.Event()
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: release.wait(30) and None)
    try:
        why = no_hub.unreachable("MMMU/MMMU", timeout=0.05)
        assert not release.is_set() and "did not answer within 0.05 s" in why
    finally:
        release.set()


def test_a_cached_dataset_is_left_to_datasets(monkeypatch, no_hub, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE is set" in no_hub.unreachable("MMMU/MMMU")
    (tmp_path / "hf-home" / "hub" / "datasets--MMMU--MMMU").mkdir(parents=True)
    assert no_hub.unreachable("MMMU/MMMU") is None  # datasets reads its cache offline
    assert "HF_HUB_OFFLINE" in no_hub.unreachable("SuhaoYu1020/MedFrameQA")


def test_medgemma_suite_reads_the_reports_tokenized_f1_over_every_question(tmp_path):
    """medgemma-mm's SLAKE and VQA-RAD columns are the report's two numbers: tokenized F1 over every question
    (closed and open together) and closed-subset accuracy, from one run per benchmark (medgemma-vqa)."""
    from medprobe import scoring
    from medprobe.benchmarks import load
    from medprobe.benchmarks._base import LoadOptions

    root = _data_root(tmp_path / "data")
    out = tmp_path / "runs"
    result = _invoke("medgemma-mm", "--data-root", str(root), "--out", str(out))
    assert result.exit_code == 2, result.output  # MedXpertQA has no data here
    by = {e.label: e for e in suites.read_result(out).entries}
    preset = scoring.get("medgemma-vqa")
    for bench, folder, label in (("slake-en", "SLAKE", "SLAKE"), ("vqa-rad", "vqa-rad", "VQA-RAD")):
        samples = load(bench, LoadOptions(data=str(root / folder), split="test")).samples
        f1 = [preset.score(s, "yes").value for s in samples]  # the scripted model answers "yes"
        closed = [preset.score(s, "yes").extra["accuracy"] for s in samples if s.answer_type == "closed"]
        whole, acc = by[f"{label} (tokenized F1)"], by[f"{label} closed (accuracy)"]
        assert whole.run == acc.run  # one run, two rows
        assert whole.headline.metric == "token_f1" and whole.headline.n == len(samples)
        assert whole.headline.value == pytest.approx(sum(f1) / len(f1))
        assert acc.headline.metric == "accuracy" and acc.headline.value == pytest.approx(sum(closed) / len(closed))
        assert 0 < len(closed) < len(samples)  # the F1 row really is over closed and open questions together
    assert by["MedXpertQA MM"].status == "failed" and "medprobe data get medxpertqa-mm" in by["MedXpertQA MM"].reason
