"""Readable summaries of Results: a rich table for the terminal and Markdown for the run folder.
Every row names its preset, metric and parser; invalid answers and errors are shown apart."""

from __future__ import annotations

from medprobe.results import Metric, PresetResult, Results


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f}"  # NaN-safe


def _rows(preset: PresetResult, subgroups: bool) -> list[Metric]:
    return [m for m in preset.metrics if subgroups or "=" not in m.subset]


def _header(results: Results, manifest: dict) -> list[str]:
    c = results.counts
    bench = manifest.get("benchmark", {})
    backend = manifest.get("backend", {})
    lines = [
        f"model: {backend.get('provider')}/{backend.get('model')}   benchmark: {bench.get('benchmark')} "
        f"(split {bench.get('split')}, {bench.get('rows')} rows, source {bench.get('source')})",
        f"prompt: {manifest.get('prompt', {}).get('name')} ({manifest.get('prompt', {}).get('hash')})   "
        f"samples: {c.samples}   answered: {c.answered}   errors: {c.errors}",
    ]
    if c.errors:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(c.error_reasons.items(), key=lambda kv: -kv[1]))
        lines.append(f"errors are not scored ({reasons}); re-run the same command to retry them.")
    if skipped := manifest.get("load_error_count", len(manifest.get("load_errors", []))):
        first = (manifest.get("load_errors") or ["?"])[0]
        lines.append(f"rows skipped while loading: {skipped} (first: {first[:200]}); all are listed under "
                     "load_errors in manifest.json.")
    return lines


def markdown(results: Results, manifest: dict, subgroups: bool = True) -> str:
    out = ["# medprobe results", "", *(f"- {line}" for line in _header(results, manifest)), ""]
    out.append(f"Intervals: 95% percentile bootstrap, {results.n_resamples} resamples, seed {results.seed}. "
               "Values in %. *invalid* = answers no rule of the preset could read (counted as not correct).")  # fmt: skip
    for preset in results.presets:
        out += ["", f"## preset `{preset.preset}`", "", f"{preset.description.rstrip('.')}. Reproduces: {preset.reproduces}.", ""]
        out.append("| subset | metric | value | 95% CI | n | correct | wrong | invalid | parser |")
        out.append("|---|---|---:|---|---:|---:|---:|---:|---|")
        for m in _rows(preset, subgroups):
            out.append(
                f"| {m.subset} | {m.metric} | {_pct(m.value)} | {_pct(m.ci_low)}-{_pct(m.ci_high)} | {m.n} | "
                f"{m.correct} | {m.wrong} | {m.invalid} | {', '.join(m.parsers)} |"
            )
    from medprobe.probes._report import markdown as probe_markdown

    out += probe_markdown(results.probes)
    from medprobe.judge_report import markdown as judge_markdown

    out += judge_markdown(results.judge)
    return "\n".join(out) + "\n"


def print_table(results: Results, manifest: dict, preset: str | None = None, subgroups: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for line in _header(results, manifest):
        console.print(line, highlight=False)
    shown = [results.preset(preset)] if preset else list(results.presets)
    for p in shown:
        table = Table(title=f"preset {p.preset} — {p.reproduces}", title_justify="left")
        for col, justify in [("subset", "left"), ("metric", "left"), ("value %", "right"), ("95% CI", "right"),
                             ("n", "right"), ("invalid", "right"), ("parser", "left")]:  # fmt: skip
            table.add_column(col, justify=justify)
        for m in _rows(p, subgroups):
            table.add_row(m.subset, m.metric, _pct(m.value), f"{_pct(m.ci_low)}-{_pct(m.ci_high)}", str(m.n),
                          str(m.invalid), ", ".join(m.parsers))  # fmt: skip
        console.print(table)
    from medprobe.probes._report import print_table as print_probes

    print_probes(results.probes, console)
