"""Probe rows for the terminal and Markdown summaries (medprobe.summary calls these)."""

from __future__ import annotations

from collections.abc import Sequence

from medprobe.fmt import span
from medprobe.probes._base import ProbeResult

COLUMNS = ("probe", "metric", "value %", "95% CI", "n", "failed", "detail", "preset")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}"


def table_rows(results: Sequence[ProbeResult], all_rows: bool = False) -> list[tuple[str, ...]]:
    """One row per headline figure (plus breakdown rows with all_rows); probes that did not run say why."""
    out = []
    for r in results:
        if not r.ran:
            out.append((r.probe, "did not run", "", "", "", str(r.failed) if r.failed else "", r.note or "", ""))
            continue
        for m in (*r.headline, *(r.rows if all_rows else ())):
            if m.name == "sample_agreement":
                continue  # per-sample rows live in results.json only
            detail = ", ".join(f"{k}={v}" for k, v in m.detail.items())
            out.append((r.probe, m.name, _pct(m.value), span(m.ci_low, m.ci_high), str(m.n), str(m.failed),
                        detail, m.preset))  # fmt: skip
    return out


def markdown(results: Sequence[ProbeResult]) -> list[str]:
    if not results:
        return []
    lines = ["", "## probes", "", "Deltas are paired by sample (variant vs its clean parent); intervals are paired "
             "bootstraps over samples. Breakdown rows are in results.json under `probes`. *failed* = variants "
             "whose request failed: left out of n for deltas and accuracies; a consistency figure counts their "
             "set as not consistent.", ""]  # fmt: skip
    lines += ["| " + " | ".join(COLUMNS) + " |", "|---|---|---:|---|---:|---:|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results, all_rows=True)]
    lines += [f"- {line}" for line in lost_lines(results)]
    return lines


def lost_lines(results: Sequence[ProbeResult]) -> list[str]:
    """One line per probe that lost variants to failed requests or to parents without an answer."""
    return [f"{r.probe}: {r.failed} variant request(s) failed, {r.unpaired} variant(s) left out because their "
            "clean sample has no answer" for r in results if r.failed or r.unpaired]  # fmt: skip


def print_table(results: Sequence[ProbeResult], console) -> None:
    if not results:
        return
    from rich.table import Table

    table = Table(title="probes (paired with the clean answers)", title_justify="left")
    rows = table_rows(results)
    # the terminal is narrow: the failed column only when a variant failed (the Markdown always has it)
    keep = [i for i, col in enumerate(COLUMNS) if col != "failed" or any(row[i] not in ("", "0") for row in rows)]
    widest = max((len(row[1]) for row in rows), default=0)
    for i in keep:
        # the metric's name is what a row is about: never cut (narrow terminals shrink the other columns)
        table.add_column(COLUMNS[i], justify="right" if COLUMNS[i] in ("value %", "95% CI", "n", "failed") else "left",
                         min_width=min(widest, 26) if COLUMNS[i] == "metric" else None)  # fmt: skip
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    console.print(table)
    for line in lost_lines(results):
        console.print(line, highlight=False)
