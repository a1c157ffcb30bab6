"""The trust report's study view of report runs, in headless Chromium (as tests/test_report_html.py): each
study's images, the reference, every model's report with its word differences from the reference marked, and
the per-study metrics; sorting by a metric reorders the studies, a metric filter keeps the studies in range."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from runfolders import make_run
from test_report_html import CHROMIUM_ARGS, needs_browser
from test_report_html import Page as BrowserPage
from typer.testing import CliRunner

from medprobe import scoring, textmetrics
from medprobe.cli import app
from medprobe.runs import load as load_run
from medprobe.types import AnswerType, ImageRef, Sample
from medprobe.views import studies
from medprobe.views.studies import word_diff
from medprobe.views.thumbs import Thumbnails

FIX = Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images"

# study -> (reference, model A's report, model B's report)
STUDIES = {
    "st0": ("Small left pleural effusion. Heart size is normal.", "Small left pleural effusion. Heart size is normal.",
            "No acute cardiopulmonary process."),
    "st1": ("Right lower lobe pneumonia.", "Right lower lobe consolidation, likely pneumonia.", "Clear lungs."),
    "st2": ("Cardiomegaly without pulmonary edema.", "The heart is enlarged. No pulmonary edema.", "<b>Cardiomegaly</b>."),
    "st3": ("No acute cardiopulmonary process.", "Mild cardiomegaly.", "  "),  # B's blank report is invalid
}


def test_word_diff_marks_missed_and_added_words():
    ops = word_diff("Small left pleural effusion.", "Small right pleural effusion, new.")
    assert ops == [["=", "Small"], ["-", "left"], ["+", "right"], ["=", "pleural effusion,"], ["+", "new."]]
    assert word_diff("No acute process.", "no acute process") == [["=", "no acute process"]]  # case, punctuation


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("studies")
    bench = tmp / "bench"
    (bench / "images").mkdir(parents=True)
    names = sorted(p.name for p in FIX.glob("*.jpg"))[:4]
    for name in names:
        shutil.copy(FIX / name, bench / "images" / name)
    samples = [Sample(id=sid, benchmark="iu-xray", question="", answer=ref, answer_type=AnswerType.REPORT,
                      images=(ImageRef(path=f"images/{names[i]}", root=str(bench)),
                              ImageRef(path=f"images/{names[(i + 1) % 4]}", root=str(bench))),
                      metadata={"views": "frontal,lateral"})
               for i, (sid, (ref, _, _)) in enumerate(STUDIES.items())]  # fmt: skip
    return [make_run(tmp / f"run-{m}", samples, [v[k] for v in STUDIES.values()], model=m)
            for k, m in ((1, "model-a"), (2, "model-b"))]  # fmt: skip


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("studies-report") / "out"
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_study_data_file(report):
    text = (report / "data" / "s0-studies.js").read_text()
    data = json.loads(text[text.index("(", text.index("push")) + 1: text.rindex(")")])
    assert [s["id"] for s in data["studies"]] == list(STUDIES) and data["runs"] == ["model-a", "model-b"]
    # the runs' preset (strict) has no rule for reports: the values are those of medprobe's report preset
    assert data["metrics"] == ["rougeL", "bleu1", "bleu2", "bleu3", "bleu4"]
    assert data["sources"][0] == "preset report (the run's preset strict has no rule for reports)"
    st3 = data["studies"][3]
    assert st3["runs"][1]["invalid"] is True and st3["runs"][1]["m"] == {}  # an invalid report: no metrics, not 0
    rouge = [textmetrics.rouge_l(a, ref) for ref, a, _ in STUDIES.values()]
    assert [s["runs"][0]["m"]["rougeL"] for s in data["studies"]] == pytest.approx(rouge)
    assert all(len(s["img"]) == 2 and s["img"][0][0].startswith("thumbs/") for s in data["studies"])


def test_per_study_metrics_are_the_presets_own(runs, tmp_path):
    # under a report preset the view shows its Score.extra values (under strict, textmetrics' own: above)
    run = load_run(runs[0])
    view = studies.build("s0", [run], ["report"], Thumbnails(tmp_path), ["a"])
    assert view.sources == ["preset report"]
    rule = scoring.get("report")
    for entry, rec in zip(view.studies, run.all_records):
        want = rule.score_generation(rec.sample, rec.final)
        assert entry["runs"][0]["m"] == {"rougeL": want.value, **want.extra}
    # model B's blank report is invalid under the preset: no metric at all, never a 0
    view_b = studies.build("s0", [load_run(runs[1])], ["report"], Thumbnails(tmp_path), ["b"])
    assert view_b.studies[3]["runs"][0]["m"] == {} and view_b.studies[3]["runs"][0]["invalid"] is True


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                              args=CHROMIUM_ARGS, headless=True)  # fmt: skip
        yield b
        b.close()


class Page(BrowserPage):
    def ids(self) -> list[str]:
        return self.page.eval_on_selector_all("article.study", "els => els.map(e => e.dataset.id)")

    def choose(self, name: str, value: str) -> None:
        self.page.select_option(f'.studies select[name="{name}"]', value)
        self.page.wait_for_timeout(50)


@pytest.fixture
def page(report, browser):
    p = Page(browser, report / "index.html")
    p.page.wait_for_selector("article.study")
    yield p
    p.close()


@needs_browser
def test_study_view_opens_from_disk_with_images(page):
    assert page.errors == []
    assert [u for u in page.requests if not u.startswith("file://")] == []
    assert any(u.endswith("/data/s0-studies.js") for u in page.requests)
    assert page.ids() == list(STUDIES)
    page.page.eval_on_selector_all(".studies img", "els => els.forEach(e => { e.loading = 'eager'; })")
    page.wait_until("() => Array.from(document.querySelectorAll('.studies img')).every(i => i.complete)")
    widths = page.page.eval_on_selector_all(".studies img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == 8 and all(w > 0 for w in widths)


@needs_browser
def test_diff_marks_and_model_text_is_text(page):
    st1 = page.page.locator('article.study[data-id="st1"] .study-report[data-run="0"]')
    assert st1.locator("ins.add").all_text_contents() == ["consolidation, likely"]
    st0 = page.page.locator('article.study[data-id="st0"] .study-report[data-run="1"]')
    assert "Small left pleural effusion." in " ".join(st0.locator("del.miss").all_text_contents())
    # a reply holding HTML is shown as its characters, never as markup
    st2 = page.page.locator('article.study[data-id="st2"] .study-report[data-run="1"]')
    assert "<b>Cardiomegaly</b>." in st2.locator(".report-text").inner_text()
    assert page.page.locator(".studies b").count() == 0
    assert "invalid report" in page.page.locator('article.study[data-id="st3"] .study-report[data-run="1"]').inner_text()


@needs_browser
def test_sorting_and_filtering_by_a_metric(page):
    def shown(run: int) -> list[float]:
        return page.page.eval_on_selector_all(
            f'.study-report[data-run="{run}"] td[data-metric="rougeL"]', "els => els.map(e => +e.dataset.value)")

    page.choose("sort", "0:rougeL")
    page.choose("order", "desc")
    values = shown(0)
    assert values == sorted(values, reverse=True) and len(set(values)) == 4
    page.choose("order", "asc")
    assert shown(0) == sorted(values) and page.ids() == ["st3", "st2", "st1", "st0"]  # not the study order
    # model B's st3 has no metric (invalid report): last whichever the order
    page.choose("sort", "1:rougeL")
    assert page.ids()[-1] == "st3"
    page.choose("order", "desc")
    assert page.ids()[-1] == "st3"
    # keep only the studies where model A's ROUGE-L is at least 0.99 (st0: A's report is the reference)
    page.choose("metric", "0:rougeL")
    page.page.fill('.studies input[name="min"]', "0.99")
    page.page.wait_for_timeout(50)
    assert page.ids() == ["st0"]
    assert "1 of 4 studies" in page.page.locator(".studies .count").inner_text()
