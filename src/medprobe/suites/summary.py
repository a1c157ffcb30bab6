"""The combined table of a suite: one row per entry (its headline, 95% interval, n, invalid, status),
then the paper's average; in the terminal (rich) and as suite.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medprobe.fmt import pct, span

if TYPE_CHECKING:
    from medprobe.suites.result import EntryResult, SuiteResult

COLUMNS = ("entry", "benchmark", "preset", "row", "value %", "95% CI", "n", "invalid", "status")


def rows(result: SuiteResult) -> list[tuple[str, ...]]:
    """The table's cells, one tuple per entry and one for the average (shared by both views)."""
    out = [_row(e) for e in result.entries]
    avg = result.average
    if avg is not None:
        if avg.value is not None:
            value, ci, note = pct(avg.value), span(avg.ci_low, avg.ci_high), "complete"
        else:
            shown = f"({pct(avg.partial_value)})" if avg.partial_value is not None else "n/a"
            value, ci, note = shown, "n/a", f"missing: {', '.join(avg.missing)}"
        out.append((avg.label, f"{avg.n} entries", "", "unweighted mean", value, ci, "", "", note))
    return out


def _row(e: EntryResult) -> tuple[str, ...]:
    bench = f"{e.benchmark} ({e.split})" if e.split else e.benchmark
    m = e.headline
    row = f"{e.subset}/{e.metric or '-'}"
    if m is None:
        return (e.label, bench, e.preset, row, "n/a", "n/a", "", "", e.status)
    return (e.label, bench, e.preset, row, pct(m.value), span(m.ci_low, m.ci_high), str(m.n), str(m.invalid), e.status)


def notes(result: SuiteResult) -> list[str]:
    """Why an entry has no value or did not complete, one line each."""
    return [f"{e.label}: {e.status}: {e.reason}" for e in result.entries
            if e.reason and (e.status != "complete" or e.headline is None)]


def print_table(result: SuiteResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(markup=False)  # cells are data, never rich markup
    suite = result.suite
    table = Table(title=f"suite {suite.name}: {suite.title or ''} — {result.model}", title_justify="left")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("value %", "95% CI", "n", "invalid") else "left")
    cells = rows(result)
    for i, row in enumerate(cells):
        table.add_row(*row, end_section=result.average is not None and i == len(cells) - 2)
    console.print(table)
    for line in notes(result):
        console.print(line, style="yellow", highlight=False)
    if suite.source:
        console.print(f"source: {suite.source}", highlight=False)
    if result.average is not None:
        console.print(f"{result.average.label}: {result.average.method}; interval: {result.average.interval}",
                      highlight=False)


def markdown(result: SuiteResult) -> str:
    suite = result.suite
    lines = [f"# suite {suite.name}: {suite.title}".rstrip(": "), "", f"model: `{result.model}`; status: "
             f"{result.status} (exit {result.exit_code})", ""]
    if suite.source:
        lines += [f"Source: {suite.source}", ""]
    if suite.protocol:
        lines += [f"Protocol of the paper: {suite.protocol}", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows(result)]
    if result.average is not None:
        lines += ["", f"{result.average.label}: {result.average.method}; interval: {result.average.interval}."]
    if extra := notes(result):
        lines += ["", "## entries without a complete result", "", *(f"- {line}" for line in extra)]
    differs = [(e.label, e.differs) for e in result.entries if e.differs]
    if differs:
        lines += ["", "## where medprobe's protocol differs from the paper's", "",
                  *(f"- **{label}**: {text}" for label, text in dict(differs).items())]
    lines += ["", "Each entry's run folder (sub-folder named in suite.json) holds every preset, subgroup and the "
              "coverage; `medprobe score RUN` re-scores it without the model."]
    return "\n".join(lines) + "\n"
