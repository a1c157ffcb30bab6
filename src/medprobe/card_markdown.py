"""Markdown rendering of a TrustCard: one column per model; every cell names its protocol and n."""

from __future__ import annotations

from medprobe.card import Figure, TrustCard
from medprobe.compare import markdown as compare_markdown


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}"


def cell(f: Figure) -> str:
    """'72.1 (65.0-79.0) · n=100 · preset strict (accuracy)', or the reason a figure is missing."""
    if f.status != "ok":
        return f.note or f.status.replace("_", " ")
    ci = f" ({_pct(f.ci_low)}-{_pct(f.ci_high)})" if f.ci_low is not None and f.ci_high is not None else " (no interval)"
    return f"{_pct(f.value)}{ci} · n={f.n} · {f.protocol}"


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _column_names(card: TrustCard) -> list[str]:
    names = [m.model for m in card.models]
    if len(set(names)) < len(names):  # the same model twice (e.g. two prompts): name the run folder too
        names = [f"{m.model} ({m.run_dir})" for m in card.models]
    return names


def render(card: TrustCard) -> str:
    names = _column_names(card)
    out = ["# medprobe trust card", ""]
    for name, m in zip(names, card.models):
        out.append(f"- **{name}**: {m.benchmark} (split {m.split}), prompt {m.prompt}, headline preset "
                   f"`{m.headline_preset}`, run folder `{m.run_dir}`")  # fmt: skip
    out += ["", "Values in % (gaps, drops and gains in percentage points); 95% seeded bootstrap intervals in "
            "parentheses; each cell names the protocol (scoring preset, probe or calibration method) and n. "
            "Invalid answers count as not correct.", ""]  # fmt: skip
    out.append("| figure | " + " | ".join(_esc(n) for n in names) + " |")
    out.append("|---|" + "---|" * len(names))
    for i, first in enumerate(card.models[0].figures):
        row = [_esc(cell(m.figures[i])) for m in card.models]
        out.append(f"| {first.label} | " + " | ".join(row) + " |")
    for name, m in zip(names, card.models):
        if m.other_probe_figures:
            out += ["", f"## other probe figures: {name}", "", "| figure | value |", "|---|---|"]
            out += [f"| {f.label} | {_esc(cell(f))} |" for f in m.other_probe_figures]
    for name, m in zip(names, card.models):
        out += ["", f"## subgroups: {name} (preset `{m.headline_preset}`)", ""]
        if not m.subgroups:
            out.append("No subgroup rows (the samples carry no answer-type or metadata groups).")
            continue
        out += ["| subgroup | value | 95% CI | n |", "|---|---:|---|---:|"]
        out += [f"| {_esc(f.label)} | {_pct(f.value)} | {_pct(f.ci_low)}-{_pct(f.ci_high)} | {f.n} |" for f in m.subgroups]
    if card.comparisons:
        out += ["", "## pairwise comparisons", ""]
        for c in card.comparisons:
            out += [compare_markdown(c.result) if c.result else f"**{c.run_a}** vs **{c.run_b}**: {c.note}", ""]
    return "\n".join(out).rstrip() + "\n"
