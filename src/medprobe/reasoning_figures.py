"""Figures on reasoning chains, from stored records: who reasons, how long, how often the chain is cut,
and whether longer chains answer better.

* share with a chain: answered replies holding a non-empty chain (inline or in the server's reasoning field);
* chain length: in tokens where the server reports them (`usage.reasoning_tokens`); else the reply's
  completion tokens apportioned by characters between chain and answer (`estimated`: True); else characters;
* share cut off: replies scored `unfinished_reasoning` (the chain never closed, or closed with the reply cut);
* accuracy by chain-length quartile: the chains sorted by length and cut into four near-equal groups,
  scored under the headline preset (invalid counts as not correct), with a seeded bootstrap interval.

When more than `ADVICE_SHARE` of the answers are cut off, `advice` says how far to raise --max-tokens: a
log-normal fit of the chain lengths censored at the limit (the finished chains' median sits at the
(1 - p) / 2 quantile, the limit at 1 - p, p the share cut), read at its 99th percentile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

import numpy as np
from pydantic import Field

from medprobe import scoring
from medprobe.fmt import span
from medprobe.reasoning import NO_ANSWER, UNFINISHED, split_generation
from medprobe.stats import bootstrap_ci
from medprobe.types import Frozen, Outcome, Record

#: "more than a few percent" of a run cut off inside its chains triggers the --max-tokens advice
ADVICE_SHARE = 0.03
#: the advice sizes --max-tokens so this share of chains would finish
TARGET_FINISHED = 0.99
_MIN_FINISHED = 5  # fewer finished chains than this: too few to fit, the advice says "at least double"


class LengthStats(Frozen):
    mean: float
    p25: float
    median: float
    p75: float
    p90: float
    max: float


class QuartileRow(Frozen):
    quartile: int = Field(description="1 = the shortest quarter of chains")
    min_length: float
    max_length: float
    n: int
    correct: int
    invalid: int
    accuracy: float = Field(description="a fraction in [0, 1]; invalid answers count as not correct")
    ci_low: float
    ci_high: float


class ReasoningSection(Frozen):
    """Reasoning figures of a run's clean, answered records."""

    preset: str = Field(description="preset deciding correct vs wrong in the quartile rows")
    n: int = Field(description="answered records")
    with_chain: int = Field(description="replies with a non-empty chain")
    share_with_chain: float
    cut_off: int = Field(description="records scored unfinished_reasoning")
    share_cut_off: float = Field(description="cut_off / n")
    no_answer: int = Field(0, description="records scored no_answer_after_reasoning")
    unit: Literal["tokens", "characters"]
    estimated: bool = Field(False, description="some token counts apportioned from completion tokens by characters")
    length: LengthStats | None = Field(None, description="chain lengths of the replies with a chain")
    by_quartile: tuple[QuartileRow, ...] = ()
    max_tokens: int | None = Field(None, description="the generation limit the cut replies hit")
    suggested_max_tokens: int | None = None
    advice: str | None = Field(None, description="what to change when many chains are cut off")


def _tokens(record: Record, chain: str, answer: str, cut: bool) -> tuple[float | None, bool]:
    """(chain length in tokens or None, estimated?)."""
    usage = record.final.usage if record.final else None
    if usage is None:
        return None, False
    if usage.reasoning_tokens is not None:
        return float(usage.reasoning_tokens), False
    if usage.completion_tokens is None:
        return None, False
    if cut or not answer:
        return float(usage.completion_tokens), False  # the whole reply is chain
    return usage.completion_tokens * len(chain) / max(1, len(chain) + len(answer)), True


def compute_reasoning(records: Sequence[Record], preset: str, seed: int = 0,
                      max_tokens: int | None = None) -> ReasoningSection | None:
    """The section for answered records (clean ones: the caller leaves probe variants out); None when no
    reply holds a chain. `max_tokens`: the run's limit; by default the longest reply that was cut."""
    rule = scoring.get(preset)
    rows = [r for r in records if r.answered and r.final is not None]
    splits = [split_generation(r.final) for r in rows]  # type: ignore[arg-type]
    chained = [i for i, s in enumerate(splits) if s.reasoning is not None]  # an empty chain too: it can be cut
    if not any(splits[i].reasoning for i in chained):
        return None
    cut = [splits[i].invalid_reason == UNFINISHED for i in chained]  # the same split every preset scores
    counted = [_tokens(rows[i], splits[i].reasoning or "", splits[i].answer, c) for i, c in zip(chained, cut)]
    in_tokens = all(t is not None for t, _ in counted)
    lengths = np.array([t if in_tokens else len(splits[i].reasoning or "") for (t, _), i in zip(counted, chained)], float)
    n, k, n_cut = len(rows), len(chained), sum(cut)
    with_chain = sum(bool(splits[i].reasoning) for i in chained)
    no_answer = sum(splits[i].invalid_reason == NO_ANSWER for i in chained)
    limit = max_tokens
    if limit is None and in_tokens:
        cut_lengths = [rows[i].final.usage.completion_tokens for i, c in zip(chained, cut)  # type: ignore[union-attr]
                       if c and rows[i].final.usage and rows[i].final.usage.completion_tokens]  # type: ignore[union-attr]
        limit = max(cut_lengths) if cut_lengths else None
    suggested = _suggest(lengths[~np.array(cut)], n_cut / k, limit) if in_tokens and n_cut / n > ADVICE_SHARE else None
    # accuracy by quartile: the chains of samples the preset has a rule for
    scored = [(length, rule.score_generation(rows[i].sample, rows[i].final))
              for length, i in zip(lengths, chained) if rule.applies(rows[i].sample)]  # fmt: skip
    section = ReasoningSection(
        preset=rule.name, n=n, with_chain=with_chain, share_with_chain=with_chain / n, cut_off=n_cut,
        share_cut_off=n_cut / n, no_answer=no_answer, unit="tokens" if in_tokens else "characters",
        estimated=in_tokens and any(e for _, e in counted), length=_stats(lengths),
        by_quartile=_quartiles(np.array([x for x, _ in scored], float), [sc for _, sc in scored], seed, rule.name),
        max_tokens=limit, suggested_max_tokens=suggested,
    )  # fmt: skip
    return section.model_copy(update={"advice": advice(section)})


def _stats(lengths: np.ndarray) -> LengthStats:
    p25, p50, p75, p90 = np.quantile(lengths, [0.25, 0.5, 0.75, 0.9])
    return LengthStats(mean=float(lengths.mean()), p25=float(p25), median=float(p50), p75=float(p75), p90=float(p90),
                       max=float(lengths.max()))  # fmt: skip


def _quartiles(lengths: np.ndarray, scores: list, seed: int, preset: str) -> tuple[QuartileRow, ...]:
    if len(lengths) < 4:
        return ()
    order = np.argsort(lengths, kind="stable")
    rows = []
    for q, idx in enumerate(np.array_split(order, 4), start=1):
        right = np.array([scores[i].outcome is Outcome.CORRECT for i in idx], float)
        low, high = bootstrap_ci(right, seed, f"reasoning/{preset}/quartile{q}")
        rows.append(QuartileRow(quartile=q, min_length=float(lengths[idx].min()), max_length=float(lengths[idx].max()),
                                n=len(idx), correct=int(right.sum()),
                                invalid=sum(scores[i].outcome is Outcome.INVALID for i in idx),
                                accuracy=float(right.mean()), ci_low=low, ci_high=high))  # fmt: skip
    return tuple(rows)


def _suggest(finished: np.ndarray, p_cut: float, limit: int | None) -> int | None:
    """A --max-tokens under which about TARGET_FINISHED of the chains would finish (rounded up to 256)."""
    if limit is None:
        return None
    finished = finished[finished > 0]
    median = float(np.median(finished)) if len(finished) >= _MIN_FINISHED else None
    if median is None or p_cut >= 1 or median >= limit:
        return _round_up(2 * limit)  # nothing to fit: the chain lengths past the limit are unknown
    z = NormalDist().inv_cdf
    sigma = (math.log(limit) - math.log(median)) / (z(1 - p_cut) - z((1 - p_cut) / 2))
    mu = math.log(limit) - sigma * z(1 - p_cut)
    target = math.exp(mu + sigma * z(TARGET_FINISHED)) * 1.1  # 10% more for the answer after the chain
    return max(_round_up(target), _round_up(limit + 1))


def _round_up(x: float, step: int = 256) -> int:
    return int(math.ceil(x / step) * step)


def advice(section: ReasoningSection) -> str | None:
    """One summary line when more than ADVICE_SHARE of the answers were cut inside their chain, else None."""
    if section.share_cut_off <= ADVICE_SHARE:
        return None
    head = (f"{section.cut_off} of {section.n} answers ({100 * section.share_cut_off:.1f}%) are unfinished_reasoning "
            "(scored invalid): the reasoning chain was cut")  # fmt: skip
    if section.suggested_max_tokens is None:
        return head + "; raise --max-tokens (the chain lengths in tokens are not known, so by how much cannot be said)."
    at = f" at --max-tokens {section.max_tokens}" if section.max_tokens else ""
    return (f"{head}{at}. Raise --max-tokens to about {section.suggested_max_tokens}, so that about "
            f"{100 * TARGET_FINISHED:.0f}% of the chains finish (log-normal fit of the observed chain lengths, "
            f"median {section.length.median:.0f} tokens); a new --max-tokens is a new run: pass another --out.")  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- views
def _length(x: float, unit: str) -> str:
    return f"{x:,.0f} {unit}"


def summary_lines(section: ReasoningSection | None) -> list[str]:
    """Lines for the summary header (terminal and summary.md): the figures in one line, then the advice."""
    if section is None:
        return []
    s = section
    some = ", some estimated" if s.estimated else ""
    line = (f"reasoning: {100 * s.share_with_chain:.1f}% of {s.n} answers with a chain (median "
            f"{_length(s.length.median, s.unit)}, p90 {_length(s.length.p90, s.unit)}{some}); "  # type: ignore[union-attr]
            f"cut off (unfinished_reasoning): {100 * s.share_cut_off:.1f}%")  # fmt: skip
    if s.no_answer:
        line += f"; no answer after the chain: {s.no_answer}"
    if s.by_quartile:
        line += (f"; {s.preset} accuracy by chain-length quartile (short to long): "
                 + " / ".join(f"{100 * q.accuracy:.1f}" for q in s.by_quartile))
    return [line] + ([s.advice] if s.advice else [])


def markdown(section: ReasoningSection | None) -> list[str]:
    """The summary.md section: length distribution and the quartile table."""
    if section is None:
        return []
    s = section
    unit = s.unit + (", some estimated from completion tokens" if s.estimated else "")
    out = ["", "## reasoning", "",
           f"{s.with_chain} of {s.n} answers hold a reasoning chain ({100 * s.share_with_chain:.1f}%); "
           f"{s.cut_off} were cut off inside it ({100 * s.share_cut_off:.1f}%, scored invalid: unfinished_reasoning)"
           + (f", {s.no_answer} gave no answer after it" if s.no_answer else "") + ".", ""]  # fmt: skip
    if s.length is not None:
        L = s.length
        out += [f"Chain length ({unit}): mean {L.mean:,.0f}, p25 {L.p25:,.0f}, median {L.median:,.0f}, "
                f"p75 {L.p75:,.0f}, p90 {L.p90:,.0f}, max {L.max:,.0f}.", ""]  # fmt: skip
    if s.by_quartile:
        out += [f"Accuracy by chain-length quartile, preset `{s.preset}` (invalid counts as not correct; 95% "
                "bootstrap intervals):", "", "| quartile | length | accuracy % | 95% CI | n | invalid |",
                "|---:|---|---:|---|---:|---:|"]  # fmt: skip
        out += [f"| {q.quartile} | {q.min_length:,.0f} to {q.max_length:,.0f} | {100 * q.accuracy:.1f} | "
                f"{span(q.ci_low, q.ci_high)} | {q.n} | {q.invalid} |" for q in s.by_quartile]
    if s.advice:
        out += ["", s.advice]
    return out
