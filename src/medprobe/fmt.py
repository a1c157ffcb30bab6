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
