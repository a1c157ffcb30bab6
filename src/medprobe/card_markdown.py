"""card.md: a TrustCard in Markdown, one column per model; every cell names its protocol and n, and a
footnote mark names its interval method. Also writes card.json beside it (`write_card`).

The flow is one way: medprobe.card builds the figures, this module only reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medprobe import figures, runs, verdicts
from medprobe.card import Figure, ModelCard, TrustCard
from medprobe.compare import markdown as compare_markdown
from medprobe.fmt import pct, span
from medprobe.store import write_json, write_text
from medprobe.verdicts import Verdict

_MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


class _Intervals:
    """Footnote marks for interval methods, numbered in order of first use."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def mark(self, f: Figure) -> str:
        if not f.interval:
            return ""
        if f.interval not in self.methods:
            self.methods.append(f.interval)
        i = self.methods.index(f.interval)
        return _MARKS[i] if i < len(_MARKS) else f"[{i + 1}]"

    def legend(self) -> list[str]:
        if not self.methods:
            return []
        marks = [_MARKS[i] if i < len(_MARKS) else f"[{i + 1}]" for i in range(len(self.methods))]
        return ["", "Intervals: " + "; ".join(f"{m} {method}" for m, method in zip(marks, self.methods)) + "."]


def cell(f: Figure, intervals: _Intervals | None = None) -> str:
    """'72.1 (65.0 to 79.0)¹ · n=100 · preset strict (accuracy)', or the reason a figure is missing."""
    if f.status != "ok":
        return f.note or f.status.replace("_", " ")
    has_ci = f.ci_low is not None and f.ci_high is not None
    ci = f" ({span(f.ci_low, f.ci_high)}){intervals.mark(f) if intervals else ''}" if has_ci else " (no interval)"
    return f"{pct(f.value)}{ci} · n={f.n} · {f.protocol}"


def bullets(found: Sequence[Verdict]) -> list[str]:
    """Verdicts as Markdown bullets: '- **bad:** Yes/no questions at chance level: ...'."""
    return [f"- **{v.level}:** {v.text}" for v in found]


def verdict_lines(model: ModelCard) -> list[str]:
    """The model's plain-word verdicts (medprobe.verdicts: each read from one figure by a rule written
    in docs/verdicts.md), one bullet each; none when the run folder cannot be read back."""
    try:
        run = runs.load(Path(model.run_dir), scored=True)
        run.all_records  # noqa: B018 (read here, so an unreadable folder gives no verdicts rather than an error)
    except (FileNotFoundError, ValueError):
        return []
    return bullets(verdicts.for_run(figures.run_figures(run, model.headline_preset)))


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _column_names(card: TrustCard) -> list[str]:
    names = [m.model for m in card.models]
    if len(set(names)) < len(names):  # the same model twice (e.g. two prompts): name the run folder too
        names = [f"{m.model} ({m.run_dir})" for m in card.models]
    return names


def render(card: TrustCard) -> str:
    names = _column_names(card)
    intervals = _Intervals()
    out = ["# medprobe trust card", ""]
    for name, m in zip(names, card.models):
        out.append(f"- **{name}**: {m.benchmark} (split {m.split}), prompt {m.prompt}, headline preset "
                   f"`{m.headline_preset}`, run folder `{m.run_dir}`")  # fmt: skip
        health = [f"status: {m.status}"] if m.status else []
        health += [m.coverage] if m.coverage else []
        if health:
            out.append(f"  - {'; '.join(health)}")
    found = [(name, verdict_lines(m)) for name, m in zip(names, card.models)]
    pairs = bullets(verdicts.for_pairs([figures.Paired(run_a=c.run_a, run_b=c.run_b, result=c.result, note=c.note)
                                        for c in card.comparisons]))  # fmt: skip
    if pairs or any(lines for _, lines in found):
        out += ["", "## verdicts", ""]
        for name, lines in found:
            out += ([f"**{name}**", ""] if len(names) > 1 else []) + lines + ([""] if len(names) > 1 else [])
        out += pairs
    out += ["", "Values in % (gaps, drops and gains in percentage points), 95% intervals in parentheses; each cell "
            "names the protocol (scoring preset, probe or calibration method) and n. Invalid answers count as not "
            "correct.", ""]  # fmt: skip
    out.append("| figure | " + " | ".join(_esc(n) for n in names) + " |")
    out.append("|---|" + "---|" * len(names))
    for i, first in enumerate(card.models[0].figures):
        row = [_esc(cell(m.figures[i], intervals)) for m in card.models]
        out.append(f"| {first.label} | " + " | ".join(row) + " |")
    for name, m in zip(names, card.models):
        if m.other_probe_figures:
            out += ["", f"## other probe figures: {name}", "", "| figure | value |", "|---|---|"]
            out += [f"| {f.label} | {_esc(cell(f, intervals))} |" for f in m.other_probe_figures]
    for name, m in zip(names, card.models):
        out += ["", f"## subgroups: {name} (preset `{m.headline_preset}`)", ""]
        if not m.subgroups:
            out.append("No subgroup rows (no answer-type or metadata group other than all samples).")
            continue
        out += ["| subgroup | value | 95% CI | n |", "|---|---:|---|---:|"]
        out += [f"| {_esc(f.label)} | {pct(f.value)} | {span(f.ci_low, f.ci_high)}{intervals.mark(f)} | {f.n} |"
                for f in m.subgroups]  # fmt: skip
    out += intervals.legend()
    if card.comparisons:
        out += ["", "## pairwise comparisons", ""]
        for c in card.comparisons:
            out += [compare_markdown(c.result) if c.result else f"**{c.run_a}** vs **{c.run_b}**: {c.note}", ""]
    return "\n".join(out).rstrip() + "\n"


def write_card(card: TrustCard, out: Path) -> tuple[Path, Path]:
    """Write card.json and card.md into `out`; returns their paths. A folder that cannot be written
    (read-only run folder, full disk) raises StorageError naming --out."""
    json_path, md_path = out / "card.json", out / "card.md"
    write_json(json_path, card.model_dump(mode="json"))
    write_text(md_path, render(card))
    return json_path, md_path
