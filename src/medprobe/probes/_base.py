"""Shared result types of reliability probes: what `results.json` and the trust card read.

A probe derives variants of samples (seeded by (seed, sample id, probe name), each carrying its
parent's id), they are run like any sample, and the probe's analysis compares each variant's
score with its parent's, pair by pair, with a seeded bootstrap interval on every delta.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from medprobe.types import Frozen, Scalar


#: `ProbeMetric.detail` keys that count what one run had (studies with a lateral finding, pairs left out),
#: not part of which figure it is: views that line runs up figure by figure leave them out of the key
COUNT_DETAILS = frozenset({"studies", "invalid_pairs"})


class ProbeMetric(Frozen):
    """One number a probe reports, with its protocol (preset) and interval."""

    probe: str
    name: str = Field(description="e.g. blind_gap, unchanged_rate, worst_accuracy, flip_rate, consistency")
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(description="pairs / items the number is computed on")
    failed: int = Field(0, description="variants whose request failed: left out of n for paired and accuracy figures; "
                        "for consistency figures their sets are in n, counted not consistent")
    preset: str = Field(description="scoring preset of the underlying correct/wrong decisions")
    detail: dict[str, Scalar] = Field(default_factory=dict, description="e.g. {'corruption': 'gaussian_noise', 'severity': 3}")

    @field_validator("value", mode="before")
    @classmethod
    def _nan_from_json(cls, v: float | None) -> float:
        # JSON writes NaN (a rate with nothing to count: no lateral finding in any report) as null
        return float("nan") if v is None else v


class ProbeResult(Frozen):
    probe: str
    ran: bool = True
    note: str | None = Field(None, description="why a probe did not run or what limits its figures")
    failed: int = Field(0, description="variants whose request failed (with an answered parent)")
    unpaired: int = Field(0, description="variants left out because their clean parent has no answer (an error)")
    headline: tuple[ProbeMetric, ...] = Field((), description="figures for the trust card")
    rows: tuple[ProbeMetric, ...] = Field((), description="breakdown rows (per corruption and severity, per template, ...)")
