"""The report's plots, drawn with matplotlib (Agg) and written as SVG (for the page and for papers) and PNG.

Every plot draws figures from medprobe.figures, one colour per run, intervals as bars, and says in its
caption which interval it shows. matplotlib is imported only when a plot is drawn (never by
`import medprobe`). Text in the SVGs is drawn as paths: the files need no font and no network.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from medprobe.figures import Paired, RunFigures

WIDTH = 7.0  # inches; a column of a paper is about 3.5, a page about 7
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _figure(**kwargs):
    """A new matplotlib Figure (no pyplot: it costs a second of imports and keeps global state)."""
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams.update({
        "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5, "legend.fontsize": 8,
        "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "medprobe", "svg.fonttype": "path",
        "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.25, "grid.linewidth": 0.6,
    })  # fmt: skip
    return Figure(**kwargs)


def warm_up() -> None:
    """Import matplotlib's figure and both backends now (more than a second of imports), ahead of the first plot."""
    for backend in ("agg", "svg"):
        importlib.import_module(f"matplotlib.backends.backend_{backend}")

    _figure()


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def save(fig, folder: Path, name: str) -> tuple[str, str]:
    """Write NAME.svg and NAME.png under `folder`; returns their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.svg", format="svg", bbox_inches="tight", metadata={"Date": None})
    fig.savefig(folder / f"{name}.png", format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    return f"{name}.svg", f"{name}.png"


def _short(label: str, width: int = 38) -> str:
    """Cut from the middle: model names differ at their ends (…-4b-it, …-7b)."""
    if len(label) <= width:
        return label
    head = (width - 1) // 2
    return label[:head] + "…" + label[len(label) - (width - 1 - head):]


def reliability(figs: Sequence[RunFigures]):
    """Reliability diagram (accuracy per confidence bin against the diagonal) over a confidence histogram,
    one column per run with a calibration figure."""
    runs = [(i, f) for i, f in enumerate(figs) if f.reliability is not None]
    if not runs:
        return None
    cols = len(runs)
    fig = _figure(figsize=(min(WIDTH, 2.3 + 2.3 * cols), 4.2))
    axes = fig.subplots(2, cols, squeeze=False, gridspec_kw={"height_ratios": [3, 1.1]}, sharex=True)
    for col, (i, f) in enumerate(runs):
        r = f.reliability
        assert r is not None
        top, bottom = axes[0][col], axes[1][col]
        centers = [(b.low + b.high) / 2 for b in r.bins]
        width = r.bins[0].high - r.bins[0].low
        acc = [b.accuracy if b.accuracy is not None else 0.0 for b in r.bins]
        top.plot([0, 1], [0, 1], ls="--", color="#888", lw=0.8, label="perfect calibration")
        top.bar(centers, acc, width=width * 0.92, color=color(i), alpha=0.75, label="accuracy in bin")
        conf = [(c, b.confidence) for c, b in zip(centers, r.bins) if b.confidence is not None]
        top.scatter([c for c, _ in conf], [v for _, v in conf], s=10, color="black", zorder=3, label="mean confidence")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        ece = "n/a" if r.ece is None else f"{r.ece:.3f}"
        top.set_title(f"{_short(f.label, 30)}\nECE {ece} · {r.source} · n={r.n}")
        if col == 0:
            top.legend(loc="upper left", frameon=False)
        total = sum(b.n for b in r.bins) or 1
        bottom.bar(centers, [b.n / total for b in r.bins], width=width * 0.92, color=color(i), alpha=0.5)
        bottom.set_xlabel("confidence")
        bottom.set_ylabel("share")
    fig.tight_layout()
    return fig


def risk_coverage(figs: Sequence[RunFigures]):
    runs = [(i, f) for i, f in enumerate(figs) if f.reliability is not None and f.reliability.curve]
    if not runs:
        return None
    fig = _figure(figsize=(WIDTH, 3.6))
    ax = fig.subplots()
    for i, f in runs:
        r = f.reliability
        assert r is not None
        cov, risk = zip(*r.curve)
        aurc = "" if r.aurc is None else f", AURC {r.aurc:.3f}"
        ax.plot([100 * c for c in cov], [100 * x for x in risk], color=color(i), lw=1.6, marker=".", ms=3,
                label=f"{_short(f.label, 30)}{aurc}")  # fmt: skip
    ax.set_xlabel("coverage (% of questions answered, most confident first)")
    ax.set_ylabel("risk (% of kept answers wrong)")
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def corruption(figs: Sequence[RunFigures]):
    """Accuracy against severity, one panel per corruption; severity 0 is the clean accuracy."""
    runs = [(i, f) for i, f in enumerate(figs) if f.corruption is not None]
    if not runs:
        return None
    names = sorted({c.corruption for _, f in runs for c in f.corruption.curves})  # type: ignore[union-attr]
    cols = min(4, len(names))
    rows = (len(names) + cols - 1) // cols
    fig = _figure(figsize=(WIDTH, 2.3 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        for j, (i, f) in enumerate(runs):
            c = f.corruption
            assert c is not None
            curve = next((cv for cv in c.curves if cv.corruption == name), None)
            if curve is None:
                continue
            xs = [0] + [p.severity for p in curve.points]
            ys = [c.clean] + [p.accuracy for p in curve.points]
            lows = [c.clean_low] + [p.ci_low for p in curve.points]
            highs = [c.clean_high] + [p.ci_high for p in curve.points]
            err = [[100 * (y - lo) if lo is not None else 0 for y, lo in zip(ys, lows)],
                   [100 * (hi - y) if hi is not None else 0 for y, hi in zip(ys, highs)]]  # fmt: skip
            shift = (j - (len(runs) - 1) / 2) * 0.12
            ax.errorbar([x + shift for x in xs], [100 * y for y in ys], yerr=err, color=color(i), marker="o", ms=3.5,
                        lw=1.3, capsize=2, label=_short(f.label, 30))  # fmt: skip
        ax.set_title(name.replace("_", " "))
        ax.set_xticks(range(6))
        ax.set_xticklabels(["clean", "1", "2", "3", "4", "5"])
        ax.set_ylim(0, 100)
        if k % cols == 0:
            ax.set_ylabel("accuracy (%)")
        if k // cols == rows - 1:
            ax.set_xlabel("severity")
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    if len(runs) > 1:
        axes[0][0].legend(frameon=False, loc="lower left")
    fig.tight_layout()
    return fig


def _forest(ax, rows: list[str], series: list[tuple[int, str, dict[str, tuple[float, float | None, float | None]]]],
            scale: float = 100.0) -> None:  # fmt: skip
    """Horizontal interval plot: one line per row label, one marker per series (run), offset vertically."""
    ys = {label: len(rows) - 1 - k for k, label in enumerate(rows)}
    for j, (i, name, values) in enumerate(series):
        shift = (j - (len(series) - 1) / 2) * min(0.22, 0.7 / max(1, len(series)))
        xs, y, lo, hi = [], [], [], []
        for label, (v, low, high) in values.items():
            xs.append(scale * v)
            y.append(ys[label] + shift)
            lo.append(scale * (v - low) if low is not None else 0)
            hi.append(scale * (high - v) if high is not None else 0)
        ax.errorbar(xs, y, xerr=[lo, hi], fmt="o", ms=4, color=color(i), capsize=2, lw=1.2, label=_short(name, 30))
    ax.set_yticks(list(ys.values()))
    ax.set_yticklabels([r if "\n" in r else _short(r, 46) for r in ys])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="y", alpha=0)


def gaps(figs: Sequence[RunFigures]):
    rows = list(dict.fromkeys(g.label for f in figs for g in f.gaps))
    if not rows:
        return None
    fig = _figure(figsize=(WIDTH, 0.9 + 0.32 * len(rows) * max(1, min(len(figs), 3)) ** 0.5))
    ax = fig.subplots()
    series = [(i, f.label, {g.label: (g.value, g.ci_low, g.ci_high) for g in f.gaps}) for i, f in enumerate(figs) if f.gaps]
    _forest(ax, rows, series)
    ax.axvline(0, color="#555", lw=0.9)
    ax.set_xlabel("paired difference, percentage points (clean minus probed; ICL rows: with minus without)")
    if len(series) > 1:
        ax.legend(frameon=False, loc="best")
    fig.tight_layout()
    return fig


def subgroups(figs: Sequence[RunFigures]):
    rows = list(dict.fromkeys(f"{s.key.replace('_', ' ')}: {s.group}" for f in figs for s in f.subgroups))
    if not rows:
        return None
    fig = _figure(figsize=(WIDTH, 0.9 + 0.26 * len(rows) * max(1, min(len(figs), 3)) ** 0.5))
    ax = fig.subplots()
    series = [(i, f.label, {f"{s.key.replace('_', ' ')}: {s.group}": (s.value, s.ci_low, s.ci_high) for s in f.subgroups})
              for i, f in enumerate(figs) if f.subgroups]  # fmt: skip
    _forest(ax, rows, series)
    for i, f in enumerate(figs):
        if f.headline is not None and f.subgroups:
            ax.axvline(100 * f.headline.value, color=color(i), lw=0.9, ls="--", alpha=0.7)
    ax.set_xlim(-2, 102)
    ax.set_xlabel("score (%) with 95% interval; dashed: overall")
    if len(series) > 1:
        ax.legend(frameon=False, loc="best")
    fig.tight_layout()
    return fig


def paired(pairs: Sequence[Paired]):
    done = [p for p in pairs if p.result is not None and p.result.n]
    if not done:
        return None
    fig = _figure(figsize=(WIDTH, 1.0 + 0.55 * len(done)))
    ax = fig.subplots()
    rows = [f"{_short(p.run_a, 22)} − {_short(p.run_b, 22)}\nMcNemar p = {p.result.mcnemar_p:.3g}, n = {p.result.n}"  # type: ignore[union-attr]
            for p in done]  # fmt: skip
    values = {row: (p.result.difference, p.result.paired_ci.low, p.result.paired_ci.high)  # type: ignore[union-attr]
              for row, p in zip(rows, done)}  # fmt: skip
    _forest(ax, rows, [(0, "difference", values)])
    ax.axvline(0, color="#555", lw=0.9)
    low = min(min(v[1] if v[1] is not None else v[0] for v in values.values()), 0)
    high = max(max(v[2] if v[2] is not None else v[0] for v in values.values()), 0)
    span = max(high - low, 0.02)
    ax.set_xlim(100 * (low - 0.1 * span), 100 * (high + 0.1 * span))
    ax.set_xlabel("accuracy difference, percentage points (paired 95% interval)")
    fig.tight_layout()
    return fig


#: plots of a section's runs, by name, in page order (`paired` takes the comparisons instead)
PLOTS = {
    "reliability": reliability,
    "risk_coverage": risk_coverage,
    "corruption": corruption,
    "gaps": gaps,
    "subgroups": subgroups,
}
