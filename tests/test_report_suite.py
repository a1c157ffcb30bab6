"""`medprobe report SUITE_FOLDER`: the page opens with the suite's combined table (benchmarks x headline with
intervals, then the paper's average), the same cells suite.json and `medprobe suite` hold, read in headless
Chromium as a reader sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_report_html
from test_report_html import Page, needs_browser
from test_suites import _data_root, _invoke, _suite_file
from typer.testing import CliRunner

from medprobe import suites
from medprobe.cli import app
from medprobe.fmt import pct, span
from medprobe.views import suite_table

TABLE = """
average_label = "Avg."
source = "a test table, Table 1"

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
differs = "a stated difference"

[[entry]]
benchmark = "omnimedvqa"
label = "OmniMedVQA"
in_average = false
"""


browser = test_report_html.browser  # the module's headless Chromium fixture


@pytest.fixture(scope="module")
def suite_report(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("suite-report")
    out = tmp / "suite"
    result = _invoke(str(_suite_file(tmp / "t.toml", TABLE)), "--data-root", str(_data_root(tmp / "data")),
                     "--out", str(out))
    assert result.exit_code == 2, result.output  # OmniMedVQA has no data: an entry status
    report = tmp / "report"
    shown = CliRunner().invoke(app, ["report", str(out), "--out", str(report)])
    assert shown.exit_code == 0, shown.output
    return out, report


def test_the_table_is_built_from_suite_json(suite_report):
    out, _ = suite_report
    (t,) = suite_table.tables([out / "vqa-rad-demo-test"])  # any run of the suite finds its folder
    result = suites.read_result(out)
    assert [r.label for r in t.rows] == [e.label for e in result.entries] + ["Avg."]
    assert t.rows[-1].average and t.rows[-1].value == result.average.value
    assert suite_table.tables([out / "slake-en-test" / "no-such-run"]) == []  # a run outside a suite folder


@needs_browser
def test_report_of_a_suite_folder_shows_the_combined_table(suite_report, browser):
    out, report = suite_report
    result = suites.read_result(out)
    page = Page(browser, report / "index.html")
    try:
        assert page.errors == [] and not [u for u in page.requests if not u.startswith("file://")]
        rows = page.page.eval_on_selector_all(
            "section.suite table.suite-table tbody tr",
            "trs => trs.map(tr => ({label: tr.dataset.label, value: tr.dataset.value ?? null, avg: "
            "tr.classList.contains('suite-average'), cells: Array.from(tr.cells).map(td => td.textContent.trim()), "
            "link: tr.querySelector('a') ? tr.querySelector('a').getAttribute('href') : null}))")
        headers = page.page.eval_on_selector_all("section.suite thead th", "ths => ths.map(t => t.textContent)")
        sections = set(page.page.eval_on_selector_all("section.bench[id^='s']", "els => els.map(e => e.id)"))
    finally:
        page.close()
    col = {name: i for i, name in enumerate(headers)}
    by = {r["label"]: r for r in rows}
    assert [r["label"] for r in rows] == [e.label for e in result.entries] + ["Avg."]
    for e in result.entries:
        row = by[e.label]
        if e.headline is None:  # the entry without data: its status and no number, no link
            assert row["value"] is None and row["cells"][col["status"]] == "failed" and row["link"] is None
            continue
        # the headline numbers are suite.json's, to the last digit, and shown as suite.md shows them
        assert float(row["value"]) == e.headline.value
        assert row["cells"][col["value %"]] == pct(e.headline.value)
        assert row["cells"][col["95% CI"]] == span(e.headline.ci_low, e.headline.ci_high)
        assert row["cells"][col["n"]] == str(e.headline.n)
        assert row["link"] and row["link"].lstrip("#") in sections  # links to the benchmark's section
    avg = by["Avg."]
    assert avg["avg"] and float(avg["value"]) == result.average.value
    assert avg["cells"][col["value %"]] == pct(result.average.value)
    assert avg["cells"][col["95% CI"]] == span(result.average.ci_low, result.average.ci_high)
    assert "4 entries" in avg["cells"][col["benchmark"]]  # OmniMedVQA is shown but not averaged


def test_a_report_of_plain_runs_has_no_suite_table(suite_report, tmp_path):
    """Runs outside a suite folder: no suite section (nothing invented)."""
    out, _ = suite_report
    lone = tmp_path / "lone"
    import shutil

    shutil.copytree(out / "vqa-rad-demo-test", lone)
    report = tmp_path / "r"
    assert CliRunner().invoke(app, ["report", str(lone), "--out", str(report)]).exit_code == 0
    html = (report / "index.html").read_text(encoding="utf-8")
    assert 'class="bench suite"' not in html and "vqa-rad-demo" in html


def test_reading_a_suite_folder_for_a_report_does_not_import_the_run_stack():
    """`medprobe report SUITE_FOLDER` reads suite.json: the views never load the pipeline, backends or runner."""
    import subprocess
    import sys

    code = ("import sys; from medprobe.suites.result import run_folders; import medprobe.views.html; "
            "from medprobe import suites; suites.read_result; "
            "print(sorted(m for m in ('medprobe.pipeline', 'medprobe.runner', 'medprobe.suites.runner', "
            "'medprobe.backends', 'medprobe.sending') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
