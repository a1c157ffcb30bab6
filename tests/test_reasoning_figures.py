"""Reasoning figures from records: share with a chain, lengths, share cut off, accuracy by quartile, and the
--max-tokens advice sized from the observed chain lengths."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from medprobe.reasoning_figures import ADVICE_SHARE, compute_reasoning
from medprobe.types import Generation, Record, Sample, Usage

LIMIT = 1024


def _record(i: int, chain_tokens: int | None, right: bool = True, usage: bool = True, limit: int = LIMIT) -> Record:
    sample = Sample(id=f"s{i}", benchmark="b", question="q", answer="yes", answer_type="closed")
    if chain_tokens is None:
        gen = Generation(text="yes" if right else "no", usage=Usage(completion_tokens=1))
    elif chain_tokens >= limit:  # cut inside the chain
        gen = Generation(text="<think>" + "no? " * 20, finish_reason="length",
                         usage=Usage(completion_tokens=limit) if usage else None)  # fmt: skip
    else:
        gen = Generation(text="<think>" + "no? " * 20 + "</think>\n\n" + ("yes" if right else "no"), finish_reason="stop",
                         usage=Usage(completion_tokens=chain_tokens + 2, reasoning_tokens=chain_tokens) if usage else None)
    return Record(sample=sample, generations=(gen,))


def _lognormal(n: int, mu: float, sigma: float, seed: int = 0) -> list[int]:
    return [int(x) for x in np.exp(np.random.default_rng(seed).normal(mu, sigma, n))]


def test_advice_sizes_max_tokens_from_the_chain_lengths():
    mu, sigma = 6.4, 0.6  # median ~600 tokens: about 11% of chains pass 1024
    lengths = _lognormal(400, mu, sigma)
    section = compute_reasoning([_record(i, t, right=t < 700) for i, t in enumerate(lengths)], "strict")
    cut = sum(t >= LIMIT for t in lengths)
    assert (section.n, section.with_chain, section.cut_off, section.unit) == (400, 400, cut, "tokens")
    assert section.share_cut_off == pytest.approx(cut / 400) and section.max_tokens == LIMIT
    true_p99 = math.exp(mu + sigma * NormalDist().inv_cdf(0.99))
    assert 1.0 * true_p99 < section.suggested_max_tokens < 1.1 * 1.25 * true_p99  # the fit, +10%, rounded up to 256
    assert f"Raise --max-tokens to about {section.suggested_max_tokens}" in section.advice
    quartiles = section.by_quartile
    assert [q.n for q in quartiles] == [100] * 4 and quartiles[0].max_length <= quartiles[1].min_length
    assert quartiles[0].accuracy > quartiles[-1].accuracy and quartiles[-1].invalid == cut


def test_no_advice_below_a_few_percent_and_none_without_chains():
    few = [_record(i, 2000 if i < 2 else 300) for i in range(100)]  # 2% cut
    section = compute_reasoning(few, "strict")
    assert section.share_cut_off == 0.02 <= ADVICE_SHARE and section.advice is None and section.suggested_max_tokens is None
    assert compute_reasoning([_record(i, None) for i in range(10)], "strict") is None


def test_without_usage_lengths_are_characters_and_the_advice_says_so():
    section = compute_reasoning([_record(i, 2000 if i < 5 else 300, usage=False) for i in range(20)], "strict")
    assert section.unit == "characters" and section.suggested_max_tokens is None
    assert "raise --max-tokens" in section.advice and "cannot be said" in section.advice


def test_every_chain_cut_suggests_doubling():
    section = compute_reasoning([_record(i, 5000) for i in range(10)], "strict")
    assert section.share_cut_off == 1.0 and section.suggested_max_tokens == 2 * LIMIT
