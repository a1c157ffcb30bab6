"""Probe rows for the terminal and Markdown summaries (report.py calls these)."""

from __future__ import annotations

from collections.abc import Sequence

from medprobe.probes._base import ProbeResult

COLUMNS = ("probe", "metric", "value %", "95% CI", "n", "detail", "preset")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}"


def table_rows(results: Sequence[ProbeResult], all_rows: bool = False) -> list[tuple[str, ...]]:
    """One row per headline figure (plus breakdown rows with all_rows); probes that did not run say why."""
    out = []
    for r in results:
        if not r.ran:
            out.append((r.probe, "did not run", "", "", "", r.note or "", ""))
            continue
        for m in (*r.headline, *(r.rows if all_rows else ())):
            if m.name == "sample_agreement":
                continue  # per-sample rows live in results.json only
            detail = ", ".join(f"{k}={v}" for k, v in m.detail.items())
            out.append((r.probe, m.name, _pct(m.value), f"{_pct(m.ci_low)}-{_pct(m.ci_high)}", str(m.n), detail, m.preset))
    return out


def markdown(results: Sequence[ProbeResult]) -> list[str]:
    if not results:
        return []
    lines = ["", "## probes", "", "Deltas are paired by sample (variant vs its clean parent); intervals are paired "
             "bootstraps over samples. Breakdown rows are in results.json under `probes`.", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|---|---|---:|---|---:|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results, all_rows=True)]
    return lines


def print_table(results: Sequence[ProbeResult], console) -> None:
    if not results:
        return
    from rich.table import Table

    table = Table(title="probes (paired with the clean answers)", title_justify="left")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("value %", "95% CI", "n") else "left")
    for row in table_rows(results):
        table.add_row(*row)
    console.print(table)
