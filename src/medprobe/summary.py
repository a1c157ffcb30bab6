"""Readable summaries of Results: a rich table for the terminal and summary.md for the run folder.
Every row names its preset, metric and parser; invalid answers and errors are shown apart.

(Named summary, not report: `medprobe.report` is the public function that writes the HTML report,
and a submodule of that name would replace it on the package once imported.)"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medprobe import figures, fmt, verdicts
from medprobe.card_markdown import bullets
from medprobe.judge_report import markdown as judge_markdown
from medprobe.manifest import ADVICE, Manifest
from medprobe.metrics import distinct_rows
from medprobe.probes._report import markdown as probe_markdown
from medprobe.probes._report import print_table as print_probes
from medprobe.reasoning_figures import markdown as reasoning_markdown
from medprobe.reasoning_figures import summary_lines as reasoning_lines
from medprobe.results import Metric, PresetResult, Results
from medprobe.runs import Run
from medprobe.types import Record


def _rows(preset: PresetResult, subgroups: bool) -> list[tuple[str, Metric]]:
    """(metric label, row) without rows that repeat another (medprobe.metrics.distinct_rows)."""
    return distinct_rows(preset.metrics, subgroups)


def _header(results: Results, manifest: Manifest) -> list[str]:
    c = results.counts
    bench = manifest.benchmark
    lines = [
        f"model: {manifest.model_name}   benchmark: {bench.get('benchmark')} "
        f"(split {bench.get('split')}, {bench.get('rows')} rows, source {bench.get('source')})",
        f"prompt: {manifest.prompt.name} ({manifest.prompt.hash})   "
        f"samples: {c.samples}   answered: {c.answered}   errors: {c.errors}",
    ]
    lines += health_lines(results, manifest)
    lines += reasoning_lines(results.reasoning)
    return lines


def health_lines(results: Results, manifest: Manifest) -> list[str]:
    """Status, coverage, and one line per error kind saying whether a re-run fixes it or what to change."""
    status = f"status: {manifest.status}"
    if manifest.stop_reason:
        status += f" ({manifest.stop_reason})"
    lines = [status]
    if gold := (manifest.benchmark.get("filters") or {}).get("gold"):  # a split without answers (MMMU test)
        lines.append(f"not scored: {gold}")
    cov = results.coverage
    if cov is None:
        return lines
    lines.append(cov.line())
    for tally in cov.errors_by_kind:
        advice = ADVICE.get(tally.kind, "see the example and fix the cause")
        what = "transient: re-run the same command to retry" if tally.transient else f"permanent: {advice}"
        lines.append(f"errors {tally.kind}: {tally.count} ({what}); e.g. {tally.example[:200]}")
    if any(t.transient for t in cov.errors_by_kind) and not all(t.transient for t in cov.errors_by_kind):
        lines.append("a re-run retries only the transient errors; fix the causes of the permanent ones first.")
    lines += _sending_lines(manifest)
    if manifest.load_error_count:
        first = (manifest.load_errors or ("?",))[0]
        lines.append(f"rows skipped while loading: {manifest.load_error_count} (first: {first[:200]}); all are listed "
                     "under load_errors in manifest.json.")  # fmt: skip
    if manifest.images_not_fetched:
        lines.append(f"images not downloaded: {max(manifest.images_not_fetched_count, len(manifest.images_not_fetched))} (first: "
                     f"{manifest.images_not_fetched[0][:200]}); those samples are bad_input errors.")
    if manifest.probe_skipped:
        lines.append(f"probe variants not derived for {max(manifest.probe_skipped_count, len(manifest.probe_skipped))} samples "
                     f"(first: {manifest.probe_skipped[0][:200]}); listed under probe_skipped in manifest.json.")
    return lines


def _sending_lines(manifest: Manifest) -> list[str]:
    """Tokens and cost (manifest.usage), and the concurrency the last execution ran at."""
    lines, usage, run = [], manifest.usage, manifest.last_execution
    # a backend that reports no usage at all (baselines, scripted, local) gets no line of zeros
    if usage is not None and (usage.stored.with_usage or usage.execution.with_usage):
        cap = f" (--max-cost ${usage.max_cost_usd:.4f})" if usage.max_cost_usd is not None else ""
        lines.append(f"usage this execution: {usage.execution.line()}{cap}; stored in the run folder: "
                     f"{usage.stored.line()}")  # fmt: skip
    if run is not None and run.concurrency in ("adaptive", "pinned") and run.sent:
        peak = f" (peak {run.concurrency_peak})" if run.concurrency == "adaptive" else ""
        lines.append(f"concurrency: {run.concurrency}, {run.concurrency_final} in flight at the end{peak}")
    return lines


def markdown(results: Results, manifest: Manifest, subgroups: bool = True, records: Sequence[Record] = ()) -> str:
    """summary.md: run health, one headline row per preset, the verdicts, then the details (answer
    types and the benchmark's own rows per preset; subgroups of the default preset), probes, judge.
    `records` (the run's, optional) let the verdicts read per-answer figures such as calibration bins."""
    bench = manifest.benchmark
    out = [f"# medprobe results: {manifest.model_name} on {bench.get('benchmark')} (split {bench.get('split')})", "",
           *(f"- {line}" for line in _header(results, manifest)), "",
           f"Values in %; 95% intervals: {results.interval}, seed {results.seed}. *invalid* = answers no rule of the "
           "preset could read (counted as not correct)."]  # fmt: skip
    out += ["", "## headline", "", "| preset | metric | value | 95% CI | n | invalid | reproduces |",
            "|---|---|---:|---|---:|---:|---|"]  # fmt: skip
    part = results.coverage.partial_note() if results.coverage else ""
    for p in results.presets:
        label, m = _headline_row(p)
        shown = fmt.value(m.value, m.metric) if m else "n/a"
        value = f"{shown} ({part})" if m and part else shown
        cells = [value, fmt.interval(m.ci_low, m.ci_high, m.metric), str(m.n), str(m.invalid)] if m else ["n/a", "", "0", ""]
        label = fmt.label(label, m.metric) if m else label
        out.append(f"| `{p.preset}` | {label} | " + " | ".join(cells) + f" | {p.reproduces} |")
    out += _verdicts(results, manifest, records)
    rows = [(p.preset, label, m) for p in results.presets for label, m in _rows(p, False)]
    default = next((p for p in results.presets if p.preset == manifest.default_preset), None)
    groups = [(None, label, m) for label, m in _rows(default, True) if "=" in m.subset] if default and subgroups else []
    fb = any(m.fallback for _, _, m in rows + groups)  # the column only where an official nearest-option rule picked
    out += ["", "## details", "", "Rows with the same value, interval and counts are merged (`accuracy = f1`); a row "
            "over every sample (`language=en` in a one-language benchmark) is left out: it repeats *overall*."]  # fmt: skip
    if fb:
        out.append("*fallback* = answers the preset's official rule picked as the option nearest to the reply (the "
                   "reply named none); they count as correct or wrong, as in the official script.")  # fmt: skip
    out += ["", "| preset | subset | metric | value | 95% CI | n | correct | wrong | invalid | " + "fallback | " * fb
            + "parser |", "|---|---|---|---:|---|---:|---:|---:|---:|" + "---:|" * fb + "---|"]  # fmt: skip
    out += [_detail_row(*row, fb, results.interval) for row in rows]
    if groups:
        out += ["", f"## subgroups (preset `{default.preset}`)", ""]  # type: ignore[union-attr]
        if len(results.presets) > 1:
            out += ["Subgroup rows of the other presets: results.json, or `medprobe score RUN --subgroups`.", ""]
        out += ["| subgroup | metric | value | 95% CI | n | correct | wrong | invalid |" + " fallback |" * fb,
                "|---|---|---:|---|---:|---:|---:|---:|" + "---:|" * fb]  # fmt: skip
        out += [_detail_row(*row, fb, results.interval) for row in groups]
    other = sorted({m.interval for _, _, m in rows + groups if m.interval != results.interval})
    if other:
        out += ["", "† another interval method: " + "; ".join(other) + "."]
    missing = _unavailable([m for _, _, m in rows])
    out += ["", "Metrics without a value (n/a):", "", *(f"- {line}" for line in missing)] if missing else []
    out += probe_markdown(results.probes)
    out += judge_markdown(results.judge)
    out += reasoning_markdown(results.reasoning)
    return "\n".join(out) + "\n"


def _headline_row(p: PresetResult) -> tuple[str, Metric | None]:
    """The preset's headline row (`PresetResult.get`) with its merged label ("bleu3 = bleu4")."""
    try:
        head = p.get("overall")
    except KeyError:
        return "-", None
    return next(((label, m) for label, m in _rows(p, False) if m.subset == "overall" and m.metric == head.metric),
                (head.metric, head))


def _detail_row(preset: str | None, label: str, m: Metric, fallback: bool, interval: str) -> str:
    cells = [f"`{preset}`"] if preset else []
    ci = fmt.interval(m.ci_low, m.ci_high, m.metric) + ("†" if m.interval != interval else "")
    cells += [m.subset, fmt.label(label, m.metric), fmt.value(m.value, m.metric), ci, str(m.n), str(m.correct), str(m.wrong),
              str(m.invalid)] + [str(m.fallback)] * fallback  # fmt: skip
    if preset:
        cells.append(", ".join(m.parsers))
    return "| " + " | ".join(cells) + " |"


def _unavailable(rows: Sequence[Metric]) -> list[str]:
    """Why each n/a metric has no value ('not available: ...', what to install), once per metric."""
    reasons = {m.metric: m.unavailable for m in rows if m.unavailable}
    return [f"{metric}: {why}" for metric, why in reasons.items()]


def _verdicts(results: Results, manifest: Manifest, records: Sequence[Record]) -> list[str]:
    """The plain-word verdicts (medprobe.verdicts) of the default preset's figures."""
    if not results.presets:
        return []
    run = Run.held(Path("."), manifest, results, records)
    lines = bullets(verdicts.for_run(figures.run_figures(run)))
    return ["", "## verdicts", "", *lines] if lines else []


def print_table(results: Results, manifest: Manifest, preset: str | None = None, subgroups: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(markup=False)  # data ("pip install 'medprobe[report]'", "test[2]") is never rich markup
    for line in _header(results, manifest):
        console.print(line, highlight=False)
    shown = [results.preset(preset)] if preset else list(results.presets)
    every: list[Metric] = []  # the rows shown, for the interval line
    for p in shown:
        rows = _rows(p, subgroups)
        every += [m for _, m in rows]
        if not rows:  # nothing answered: no empty table
            console.print(f"preset {p.preset}: nothing scored ({results.counts.answered} of "
                          f"{results.counts.samples} samples answered; the errors above say why)", highlight=False)
            continue
        table = Table(title=f"preset {p.preset} — {p.reproduces}", title_justify="left")
        fb = any(m.fallback for _, m in rows)  # nearest-option picks, shown only where there are some
        for col, justify in [("subset", "left"), ("metric", "left"), ("value %", "right"), ("95% CI", "right"),
                             ("n", "right"), ("invalid", "right"), *[("fallback", "right")] * fb, ("parser", "left")]:  # fmt: skip
            table.add_column(col, justify=justify)
        part = results.coverage.partial_note() if results.coverage else ""
        for label, m in rows:
            subset = f"{m.subset} ({part})" if part and m.subset == "overall" else m.subset
            table.add_row(subset, fmt.label(label, m.metric), fmt.value(m.value, m.metric),
                          fmt.interval(m.ci_low, m.ci_high, m.metric), str(m.n), str(m.invalid),
                          *[str(m.fallback)] * fb, ", ".join(m.parsers))  # fmt: skip
        console.print(table)
        for line in _unavailable([m for _, m in rows]):
            console.print(line, highlight=False)
    # one line per method; the metric's implementation, in parentheses, is in the preset's title already
    methods = sorted({m.interval.split(" (")[0] for m in every if not m.unavailable and m.value == m.value})
    if methods:
        console.print(f"95% intervals: {'; '.join(methods)}", highlight=False)
    print_probes(results.probes, console)
