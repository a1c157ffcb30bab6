"""`medprobe report`: the HTML trust report, tested as a reader uses it, in headless Chromium (playwright with
Debian's chromium; .ci/run installs it), plus the verdict rules and the files it writes.

In the browser: no console error, no request that leaves the disk, every image loads, the headline numbers are
results.json's, the filters change the rows shown, probe variants sit beside their parent, model text is text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reportruns import ERROR_ID, HTML_REPLY, demo_images, make_runs, run_pipeline
from typer.testing import CliRunner

from medprobe import scoring, verdicts
from medprobe.backends import BackendConfig
from medprobe.cli import app
from medprobe.compare import CompareResult, Interval
from medprobe.figures import (
    Corruption,
    CorruptionCurve,
    Gap,
    Paired,
    Reliability,
    ReliabilityBin,
    RunFigures,
    SeverityPoint,
    run_figures,
    variant_tag,
)
from medprobe.manifest import Coverage
from medprobe.pipeline import RunSpec
from medprobe.runs import load as load_run
from medprobe.store import RESULTS
from medprobe.types import Outcome
from medprobe.views.html import short_names, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="headless Chromium tests need `chromium` on PATH (apt-get install chromium) and playwright "
           "(pip install -e '.[test]'); .ci/run installs both",
)  # fmt: skip
#: no GPU, no sandbox (containers), and none of Chromium's own background traffic
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    return make_runs(tmp_path_factory.mktemp("report-runs"), models=2)


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "two-models"
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:  # type: ignore[misc]
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Page:
    """A report page opened from disk, recording console errors and every request it makes."""

    def __init__(self, browser, index: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.route("**/*", self._route)
        self.page.goto(index.as_uri())
        self.page.wait_for_selector("article.sample")

    def _route(self, route) -> None:
        # anything but a file of the report folder fails the test (and never reaches the network)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    def ids(self) -> list[str]:
        return self.page.eval_on_selector_all("article.sample", "els => els.map(e => e.dataset.id)")

    def select(self, name: str, value: str) -> None:
        self.page.select_option(f'.browser select[name="{name}"]', value)
        self.page.wait_for_timeout(50)

    def search(self, text: str) -> None:
        self.page.fill('.browser input[name="q"]', text)
        self.page.wait_for_timeout(50)

    def wait_until(self, script: str, timeout: float = 10.0) -> None:
        """Poll `script` (a JS function) until it returns true: wait_for_function would need eval, which the
        report's Content-Security-Policy forbids."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(script):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {script}")
            self.page.wait_for_timeout(50)

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def page(report, browser):
    p = Page(browser, report / "index.html")
    yield p
    p.close()


def _outcomes(run: Path, preset: str) -> dict[str, str]:
    """sample id -> outcome code of the clean samples, computed here from the records."""
    data = load_run(run)
    out = {}
    for r in data.all_records:
        if variant_tag(r.sample) is None and scoring.get(preset).applies(r.sample):
            out[r.sample.id] = "e" if not r.answered else {Outcome.CORRECT: "c", Outcome.WRONG: "w", Outcome.INVALID: "i"}[
                scoring.get(preset).score_generation(r.sample, r.final).outcome]
    return out


# ---------------------------------------------------------------- in the browser


@needs_browser
def test_page_opens_from_disk_without_errors_or_network(page):
    assert page.errors == []
    left = [u for u in page.requests if not u.startswith("file://")]
    assert left == [], f"requests that leave the disk: {left}"
    assert any(u.endswith("/assets/report.js") for u in page.requests)
    assert any("/data/s0-" in u for u in page.requests)  # the sample data came as local scripts


@needs_browser
def test_every_image_loads(page):
    # thumbnails are lazy: make every one load, then check each decoded
    page.page.eval_on_selector_all("img", "els => els.forEach(e => { e.loading = 'eager'; })")
    page.wait_until("() => Array.from(document.images).every(i => i.complete)")
    images = page.page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
    assert len(images) > 20
    broken = [src for src, width in images if width == 0]
    assert broken == []
    srcs = {src for src, _ in images}
    assert any(s.startswith("plots/") and s.endswith(".svg") for s in srcs) and any(s.startswith("thumbs/") for s in srcs)


@needs_browser
def test_headline_numbers_are_results_json(page, runs):
    rows = page.page.eval_on_selector_all(
        "tr.headline-row", "rows => rows.map(r => [r.querySelector('td.big').dataset.value, r.querySelector('td.big .value')"
        ".textContent, r.querySelector('td.ci').dataset.low, r.querySelector('td.ci').dataset.high, "
        "r.querySelector('td.n').textContent])")  # fmt: skip
    assert len(rows) == 2
    for run, (value, text, low, high, n) in zip(runs, rows):
        results = json.loads((run / RESULTS).read_text())
        strict = next(p for p in results["presets"] if p["preset"] == "strict")
        overall = next(m for m in strict["metrics"] if m["subset"] == "overall")
        assert (float(value), float(low), float(high), int(n)) == (overall["value"], overall["ci_low"], overall["ci_high"],
                                                                   overall["n"])  # fmt: skip
        assert text.strip() == f"{100 * overall['value']:.1f}"


@needs_browser
def test_filters_and_search_change_the_rows(page, runs):
    everything = page.ids()
    assert len(everything) == len(_outcomes(runs[0], "strict"))
    page.select("run", "0")
    page.select("outcome", "w")
    wrong = {i for i, c in _outcomes(runs[0], "strict").items() if c == "w"}
    assert set(page.ids()) == wrong and 0 < len(wrong) < len(everything)
    page.select("outcome", "e")
    assert page.ids() == [ERROR_ID]
    page.select("outcome", "")
    page.select("run", "-1")
    page.search("zone 3?")
    assert page.ids() == ["c3"]
    page.search("")
    groups = page.page.eval_on_selector_all('select[name="group"] option', "os => os.map(o => [o.value, o.textContent])")
    mri = next(v for v, label in groups if label == "modality: MRI")
    page.select("group", mri)
    shown = page.ids()
    meta = {r.sample.id: r.sample.metadata.get("modality") for r in load_run(runs[0]).all_records}
    assert shown and {meta[i] for i in shown} == {"MRI"}
    page.select("group", "-1")
    probes = page.page.eval_on_selector_all('select[name="probe"] option', "os => os.map(o => [o.value, o.textContent])")
    blind = next(v for v, label in probes if label == "blind")
    page.select("probe", blind)
    changed = page.ids()
    assert 0 < len(changed) < len(everything)
    # every sample shown has a blind variant whose outcome differs from its parent's
    marked = page.page.eval_on_selector_all("article.sample", "els => els.map(e => "
                                            "e.querySelectorAll('.variant.is-changed[data-probe=\"blind\"]').length)")
    assert all(marked)


@needs_browser
def test_preset_choice_changes_the_outcome_shown(page, runs):
    strict, llava = _outcomes(runs[0], "strict"), _outcomes(runs[0], "llava-med")
    sid = next(i for i in strict if i in llava and strict[i] != llava[i] and "e" not in (strict[i], llava[i]))
    names = {"c": "correct", "w": "wrong", "i": "invalid"}
    page.search(sid)
    badge = f'article.sample[data-id="{sid}"] .answer .verdict-line .badge'
    assert page.page.locator(badge).first.inner_text() == names[strict[sid]]
    presets = page.page.eval_on_selector_all('select[name="preset"] option', "os => os.map(o => [o.value, o.textContent])")
    page.select("preset", next(v for v, label in presets if label == "llava-med"))
    assert page.page.locator(badge).first.inner_text() == names[llava[sid]]
    assert "preset llava-med" in page.page.locator(f'article.sample[data-id="{sid}"] .answer').first.inner_text()


@needs_browser
def test_probe_variants_sit_beside_their_parent(page):
    page.search("c1")
    card = page.page.locator('article.sample[data-id="c1"]')
    assert card.count() == 1
    variants = card.locator(".variant")
    names = variants.locator(".vname").all_inner_texts()
    assert {"none", "blank", "gaussian_blur@5", "jpeg@1"} <= set(names)
    blur = card.locator('.variant[data-probe="corrupt"]').filter(has_text="gaussian_blur@5")
    assert blur.locator("img.thumb").count() == 1  # the corrupted image, as the model saw it
    assert blur.locator(".vrun").count() == 2  # both models' answers to it
    assert card.locator(".media img.thumb").first.get_attribute("src") != blur.locator("img.thumb").get_attribute("src")
    assert card.locator('.variant[data-probe="blind"]').filter(has_text="none").locator(".noimg").count() == 1
    twins = card.locator('.variant[data-probe="negate"] .vq').all_inner_texts()
    assert twins and all(t.endswith("?") for t in twins)  # negation twins show their own question
    assert card.locator(".answer").count() == 2  # the same sample across models, side by side


@needs_browser
def test_model_text_is_shown_as_text(page):
    page.search("c4")
    raw = page.page.locator('article.sample[data-id="c4"] pre.raw').first.inner_text()
    assert raw == HTML_REPLY
    assert page.page.evaluate("window.__injected === undefined")
    assert page.errors == []


@needs_browser
def test_reasoning_chain_is_folded(page):
    chains = page.page.locator("details.chain")
    assert chains.count() > 0
    first = chains.first
    assert first.get_attribute("open") is None and "reasoning chain" in first.locator("summary").inner_text()


@needs_browser
def test_paging_of_a_long_run(browser, tmp_path):
    from medprobe.backends.scripted import register_function

    shutil.copy(demo_images()[0], tmp_path / "x.jpg")
    rows = [{"id": f"q{i:03d}", "image": "x.jpg", "question": f"Is finding {i} present?",
             "answer": "yes" if i % 2 else "no", "answer_type": "closed"} for i in range(130)]  # fmt: skip
    (tmp_path / "long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    register_function("report-long", lambda request: "yes")
    run_pipeline(RunSpec(benchmark=str(tmp_path / "long.jsonl"),
                         backend=BackendConfig(provider="scripted", model="fn:report-long")), tmp_path / "run")
    write_report([tmp_path / "run"], tmp_path / "report")
    p = Page(browser, tmp_path / "report" / "index.html")
    try:
        first = p.ids()
        assert len(first) == 50 and first[0] == "q000"
        p.page.click(".browser .next")
        p.wait_until("() => document.querySelector('article.sample').dataset.id === 'q050'")
        assert p.page.inner_text(".browser .page") == "page 2 of 3"
        assert "51–100 of 130" in p.page.inner_text(".browser .count")
        p.select("outcome", "w")  # the model always says yes: the 65 'no' questions are wrong
        assert "of 65 samples" in p.page.inner_text(".browser .count") and len(p.ids()) == 50
        assert p.errors == [] and all(u.startswith("file://") for u in p.requests)
    finally:
        p.close()


# ---------------------------------------------------------------- files and structure


def test_report_writes_plots_thumbnails_and_data(report, runs):
    for name in ("reliability", "risk_coverage", "corruption", "gaps", "subgroups", "paired"):
        for ext in ("svg", "png"):
            path = report / "plots" / f"s0-{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    external = re.compile(r"""(?:href|src)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?:https?:)?//""", re.IGNORECASE)
    for path in [report / "index.html", *(report / "plots").glob("*.svg"), *(report / "assets").iterdir()]:
        assert not external.search(path.read_text()), path  # nothing that a browser would fetch
    # one thumbnail per distinct image: 4 JPEGs + the DICOM, their corruptions, the blank images
    thumbs = sorted((report / "thumbs").glob("*.jpg"))
    records = [r for run in runs for r in load_run(run).all_records]
    distinct = {(str(ref.path), ref.view) for r in records for ref in r.sample.images}
    assert 0 < len(thumbs) <= len(distinct)
    assert len({t.name.split("-")[0] for t in thumbs}) == len(thumbs)


def test_rewriting_reuses_thumbnails_and_a_moved_run_still_shows_its_images(runs, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(runs[0], moved, ignore=shutil.ignore_patterns("probe_images"))
    (runs[0] / "probe_images").rename(moved / "probe_images")  # the absolute root the records name is gone
    try:
        first = write_report([moved], tmp_path / "r")
        data = (tmp_path / "r" / "data" / "s0-0000.js").read_text()
        assert first.thumbnails_made == first.thumbnails > 0
        assert "not found" not in data.lower() and "cannot be shown" not in data
        again = write_report([moved], tmp_path / "r")
        assert again.thumbnails_made == 0 and again.thumbnails_reused == first.thumbnails
    finally:
        (moved / "probe_images").rename(runs[0] / "probe_images")


def test_writing_again_over_unchanged_runs_reuses_the_last_write_and_any_change_redoes_it(runs, tmp_path):
    out = tmp_path / "r"
    first = write_report([runs[0]], out)
    data = {p.name: p.read_bytes() for p in (out / "data").iterdir()}
    again = write_report([runs[0]], out)
    assert "inputs unchanged: last write reused" in again.timings and "sample browser" not in again.timings
    assert again.model_dump(exclude={"seconds", "timings", "thumbnails_made", "thumbnails_reused"}) == first.model_dump(
        exclude={"seconds", "timings", "thumbnails_made", "thumbnails_reused"})  # fmt: skip
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir()} == data
    page = (out / "index.html").read_text()
    assert "s0-reliability" in page and "s0-index.js" in page  # rendered again from the saved state, whole
    # a re-score (results.json rewritten), another preset, or a file of the last write gone: a full write
    (runs[0] / RESULTS).touch()
    assert "sample browser" in write_report([runs[0]], out).timings
    assert "sample browser" in write_report([runs[0]], out, preset="llava-med").timings
    next((out / "thumbs").iterdir()).unlink()
    redone = write_report([runs[0]], out, preset="llava-med")
    assert "sample browser" in redone.timings and redone.thumbnails_made == 1
    assert "inputs unchanged: last write reused" in write_report([runs[0]], out, preset="llava-med").timings


def test_runs_of_two_benchmarks_get_two_sections(runs, tmp_path):
    other = tmp_path / "demo"
    run_pipeline(RunSpec(benchmark="vqa-rad-demo", backend=BackendConfig(provider="scripted", model="constant:yes")), other)
    summary = write_report([runs[0], other], tmp_path / "r")
    assert summary.sections == 2
    html = (tmp_path / "r" / "index.html").read_text()
    assert 'id="s0"' in html and 'id="s1"' in html and "vqa-rad-demo" in html
    assert (tmp_path / "r" / "data" / "s1-index.js").is_file()
    assert not (tmp_path / "r" / "plots" / "s0-paired.svg").exists()  # one run per benchmark: nothing to pair


def test_report_refuses_a_run_folder_or_a_folder_of_other_files_as_out(runs, tmp_path):
    result = CliRunner().invoke(app, ["report", str(runs[0]), "--out", str(runs[1])])
    assert result.exit_code == 2 and "is a run folder" in result.output
    (tmp_path / "project" / "data").mkdir(parents=True)
    (tmp_path / "project" / "data" / "cases.csv").write_text("id\n")
    result = CliRunner().invoke(app, ["report", str(runs[0]), "--out", str(tmp_path / "project")])
    assert result.exit_code == 2 and "not empty" in result.output
    assert (tmp_path / "project" / "data" / "cases.csv").is_file()  # nothing of theirs was removed


def test_import_medprobe_stays_light():
    code = "import sys, medprobe, medprobe.views.html; print(sorted(m for m in ('matplotlib', 'jinja2', 'playwright') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_reliability_bins_add_up_to_the_ece_of_results_json(runs):
    run = load_run(runs[0])
    r = run_figures(run).reliability
    assert r is not None and r.n == sum(b.n for b in r.bins)
    ece = sum(b.n / r.n * abs(b.accuracy - b.confidence) for b in r.bins if b.n)
    assert ece == pytest.approx(r.ece, abs=1e-12)


# ---------------------------------------------------------------- verdict rules


def _figures(**update) -> RunFigures:
    base = {"label": "openai/m", "run_dir": "runs/m", "benchmark": "vqa-rad", "split": "test", "status": "complete",
            "preset": "strict", "coverage": Coverage(samples=100, answered=100), "headline": None, "reliability": None,
            "corruption": None, "gaps": (), "subgroups": ()}
    return RunFigures(**{**base, **update})


def _gap(value, low, high, label="blind gap: no image", probe="blind", name="blind_gap") -> Gap:
    return Gap(probe=probe, name=name, label=label, value=value, ci_low=low, ci_high=high, n=451, preset="strict")


def test_blind_gap_indistinguishable_from_zero_says_the_image_is_ignored():
    [v] = verdicts.blind(_figures(gaps=(_gap(-0.015, -0.138, 0.123),)))
    assert v.key == "blind.ignores_image" and v.level == "bad" and v.figure == "gaps"
    assert v.text == ("Answers barely depend on the image: blind gap (no image) -1.5 pp (95% CI -13.8 to 12.3, n=451) "
                      "is indistinguishable from 0.")  # fmt: skip
    [v] = verdicts.blind(_figures(gaps=(_gap(0.25, 0.18, 0.32),)))
    assert v.key == "blind.uses_image" and v.level == "good" and "falls 25.0 pp" in v.text
    [v] = verdicts.blind(_figures(gaps=(_gap(0.30, -0.02, 0.55),)))
    assert v.key == "blind.inconclusive"  # a large gap whose interval reaches 0: too few samples, not "ignores"
    [v] = verdicts.blind(_figures(gaps=(_gap(-0.12, -0.2, -0.05),)))
    assert v.key == "blind.better_blind"


def test_overconfidence_verdict_reads_the_share_of_confident_errors():
    bins = tuple(ReliabilityBin(low=b / 10, high=(b + 1) / 10, n=0) for b in range(10))
    r = Reliability(source="logprob", rule="", preset="strict", n=200, accuracy=0.7, mean_confidence=0.91, ece=0.21,
                    ece_low=0.17, ece_high=0.25, bins=bins, errors=60, confident_errors=25)  # fmt: skip
    [v] = verdicts.calibration(_figures(reliability=r))
    assert v.key == "calibration.overconfident" and v.figure == "reliability"
    assert v.text.startswith("Overconfident: ECE 0.21 (95% CI 0.17 to 0.25); 42% of errors are made at confidence > 0.9.")
    good = r.model_copy(update={"ece": 0.03, "ece_low": 0.02, "ece_high": 0.05, "mean_confidence": 0.71})
    assert verdicts.calibration(_figures(reliability=good))[0].key == "calibration.good"


def test_fragile_and_robust_corruption_verdicts():
    def curve(name, drop, low, high):
        return CorruptionCurve(corruption=name, points=(
            SeverityPoint(severity=1, accuracy=0.8, ci_low=0.7, ci_high=0.9, n=100, drop=0.0, drop_low=-0.02, drop_high=0.02),
            SeverityPoint(severity=5, accuracy=0.8 - drop, ci_low=0.5, ci_high=0.7, n=100, drop=drop, drop_low=low,
                          drop_high=high)))  # fmt: skip

    fragile = Corruption(clean=0.8, clean_low=0.72, clean_high=0.88, curves=(curve("gaussian_blur", 0.18, 0.1, 0.26),
                                                                            curve("jpeg", 0.01, -0.03, 0.05)))  # fmt: skip
    [v] = verdicts.corruption(_figures(corruption=fragile))
    assert v.key == "corruption.fragile" and v.text.startswith("Fragile to gaussian blur: accuracy falls 18.0 pp at severity 5")
    robust = Corruption(clean=0.8, clean_low=0.72, clean_high=0.88, curves=(curve("jpeg", 0.01, -0.03, 0.05),))
    [v] = verdicts.corruption(_figures(corruption=robust))
    assert v.key == "corruption.robust" and v.level == "good"


def _pair(diff: float, low: float | None, high: float | None, p: float, n: int = 200) -> Paired:
    result = CompareResult(run_a="openai/a", run_b="openai/b", dir_a="runs/a", dir_b="runs/b", benchmark="vqa-rad",
                           split="test", preset="strict", n=n, only_a=0, only_b=0, errors_left_out=0, mismatched=0,
                           accuracy_a=0.7 + diff, accuracy_b=0.7, difference=diff, paired_ci=Interval(low=low, high=high),
                           unpaired_ci=Interval(low=low, high=high), both_correct=100, both_wrong=40, b=35, c=25,
                           mcnemar_p=p, seed=0, n_resamples=1000)  # fmt: skip
    return Paired(run_a="openai/a", run_b="openai/b", result=result)


def test_paired_verdict_never_says_no_difference_beside_an_interval_that_excludes_zero():
    # the case a reader found: McNemar does not reject, the paired bootstrap interval excludes 0
    [v] = verdicts.for_pairs([_pair(0.05, 0.004, 0.096, p=0.07)])
    assert v.key == "paired.borderline" and "No detectable" not in v.text and "indistinguishable" not in v.text
    assert "paired 95% CI 0.4 to 9.6" in v.text and "interval excludes 0" in v.text and "McNemar p = 0.07 >= 0.05" in v.text
    assert _pair(0.05, 0.004, 0.096, p=0.07).result.verdict.startswith("borderline: the paired interval excludes 0")
    # the other way round: the test rejects, the interval (resampling images) reaches 0
    [v] = verdicts.for_pairs([_pair(0.05, -0.003, 0.1, p=0.01)])
    assert v.key == "paired.borderline" and "more accurate" not in v.text and "McNemar test rejects" in v.text
    # agreement either way: the claim, and which tests back it
    [v] = verdicts.for_pairs([_pair(-0.08, -0.13, -0.03, p=0.002)])
    assert v.key == "paired.difference" and v.text.startswith("openai/b is more accurate than openai/a")
    assert "both the McNemar test (exact McNemar p = 0.002) and the paired interval" in v.text
    [v] = verdicts.for_pairs([_pair(0.01, -0.04, 0.06, p=0.6)])
    assert v.key == "paired.none" and "interval contains 0" in v.text
    assert verdicts.for_pairs([_pair(0.0, None, None, p=1.0, n=0)]) == []


def test_no_verdict_calls_a_figure_zero_when_its_interval_excludes_zero():
    """Every combination of point value, interval and p: whatever a verdict calls indistinguishable from 0 (or
    no difference) cites an interval that contains 0."""
    cited = re.compile(r"95% CI (-?[0-9.]+) to (-?[0-9.]+)")
    found = []
    for value in (-0.2, -0.05, 0.0, 0.03, 0.15):
        for low, high in ((value - 0.1, value + 0.1), (value - 0.01, value + 0.004), (value + 0.001, value + 0.2),
                          (value - 0.2, value - 0.001), (None, None)):  # fmt: skip
            for p in (0.001, 0.049, 0.05, 0.3):
                found += verdicts.for_pairs([_pair(value, low, high, p)])
            found += verdicts.blind(_figures(gaps=(_gap(value, low, high),)))
    says_zero = [v for v in found if re.search(r"indistinguishable|No detectable", v.text)]
    assert len(says_zero) > 10
    for v in says_zero:
        (low, high), = cited.findall(v.text)
        assert float(low) <= 0 <= float(high), v.text
    assert {v.key for v in found} >= {"paired.none", "paired.difference", "paired.borderline", "blind.ignores_image",
                                      "blind.inconclusive", "blind.uses_image", "blind.better_blind"}  # fmt: skip
    no_interval = verdicts.blind(_figures(gaps=(_gap(0.01, None, None),)))
    assert [v.key for v in no_interval] == ["blind.inconclusive"] and "has no interval" in no_interval[0].text


def test_partial_run_verdict_names_the_coverage():
    c = Coverage(samples=100, answered=90, errors=10, errors_by_kind=())
    [v] = verdicts.health(_figures(coverage=c))
    assert v.key == "health.partial" and v.text.startswith("Headline on 90 of 100 samples: 10 have no answer")
    # one denominator with the headline's note: rows skipped at load count in both
    skipped = Coverage(rows=4, skipped=1, samples=3, answered=2, errors=1, errors_by_kind=())
    verdict = next(v for v in verdicts.health(_figures(coverage=skipped)) if v.key == "health.partial")
    assert skipped.partial_note() == "on 2 of 4 samples"
    assert verdict.text.startswith("Headline on 2 of 4 samples: 1 has no answer and 1 was skipped at load")


def test_every_verdict_rule_is_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "verdicts.md").read_text()
    source = Path(verdicts.__file__).read_text()

    keys = set(re.findall(r'"((?:health|headline|blind|calibration|corruption|negate|permute|subgroups|paired)\.[a-z_]+)"',
                          source))  # fmt: skip
    assert len(keys) >= 15
    missing = [k for k in keys if f"`{k}`" not in docs]
    assert missing == []
    for name in ("LARGE_GAP", "FRAGILE_DROP", "MISCALIBRATED_ECE", "WELL_CALIBRATED_ECE", "HIGH_INVALID", "ALPHA"):
        assert name in docs, name


def test_column_names_drop_what_every_model_label_shares():
    figs = [_figures(label="openai/google/medgemma-4b-it"), _figures(label="openai/lingshu/Lingshu-7B")]
    assert short_names(figs) == ["google/medgemma-4b-it", "lingshu/Lingshu-7B"]
    twice = [_figures(label="openai/m", run_dir="runs/prompt-a"), _figures(label="openai/m", run_dir="runs/prompt-b")]
    assert short_names(twice) == ["m (prompt-a)", "m (prompt-b)"]
    assert short_names([_figures(label="openai/m")]) == ["openai/m"]
