"""The value of one text metric on a corpus, or why it could not be computed here."""

from __future__ import annotations

from pydantic import Field

from medprobe.types import Frozen


class TextMetric(Frozen):
    """One corpus metric: a value with per-study values, or `unavailable` (never a silent 0)."""

    name: str = Field(description="the metric key: bleu4, rougeL, cider, meteor, radgraph_f1, green, ...")
    value: float | None = Field(None, description="the corpus value; None when unavailable")
    per_study: tuple[float, ...] = Field((), description="one value per study, in the order given")
    unavailable: str | None = Field(None, description="'not available: <why, what to install>'; None = computed")
    source: str = Field("", description="the implementation that produced it (library, model, version)")
    lower_is_better: bool = Field(False, description="True for RadCliQ (an error estimate)")

    @property
    def ok(self) -> bool:
        return self.unavailable is None and self.value is not None
