"""How numbers read in every text view (terminal, summary.md, card.md): one place, so they agree."""

from __future__ import annotations


def pct(x: float | None) -> str:
    """A fraction as a percentage with one decimal; 'n/a' for a missing or NaN value."""
    return "n/a" if x is None or x != x else f"{100 * x:.1f}"


def span(low: float | None, high: float | None) -> str:
    """An interval in percent, '-13.8 to 12.3' (never '-13.8-12.3', which reads as a subtraction)."""
    if low is None or high is None or low != low or high != high:
        return "n/a"
    return f"{pct(low)} to {pct(high)}"


#: metrics whose value is a score, not a fraction, so never shown as a percentage: CIDEr-D (pycocoevalcap's
#: scale, x10 of the tf-idf cosine: 0 to 10) and RadCliQ (a regression output; lower is better)
SCORES = frozenset({"cider", "radcliq_v0", "radcliq_v1"})


def label(name: str, metric: str) -> str:
    """A row's metric label, marked when its value is a score rather than a percentage."""
    return f"{name} (score, not %)" if metric in SCORES else name


def value(x: float | None, metric: str) -> str:
    """`pct(x)`, or for a score metric (SCORES) the score with three decimals."""
    if metric not in SCORES:
        return pct(x)
    return "n/a" if x is None or x != x else f"{x:.3f}"


def interval(low: float | None, high: float | None, metric: str) -> str:
    """`span(low, high)` in the unit `value` shows the metric in."""
    if low is None or high is None or low != low or high != high:
        return "n/a"
    return f"{value(low, metric)} to {value(high, metric)}"
