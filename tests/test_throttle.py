"""The adaptive concurrency controller on synthetic latency / 429 sequences, the --rpm/--tpm token bucket on
a fake clock, and the gate that holds attempts under the level."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from medprobe.throttle import CONGESTION, AdaptiveConcurrency, Gate, TokenBucket
from medprobe.types import ErrorKind, Generation, Usage


def clean_window(ctl: AdaptiveConcurrency, latency: float = 0.2) -> None:
    """One window: `level` successes of attempts started at the current level."""
    epoch = ctl.epoch
    for _ in range(ctl.level):
        ctl.success(latency, epoch)


def test_grows_while_latency_holds():
    ctl = AdaptiveConcurrency(start=16, maximum=256)
    levels = []
    for _ in range(5):
        clean_window(ctl)
        levels.append(ctl.level)
    assert levels == [32, 64, 128, 256, 256]  # slow start doubles each clean window, then the cap holds it


def test_holds_when_latency_rises_with_load():
    ctl = AdaptiveConcurrency(start=16, maximum=256)
    clean_window(ctl, 0.2)
    assert ctl.level == 32
    for _ in range(3):
        clean_window(ctl, 0.9)  # the server queues: 4.5x the no-load latency
    assert ctl.level == 32
    clean_window(ctl, 0.25)  # latency back near the baseline: growth resumes
    assert ctl.level == 64


@pytest.mark.parametrize("kind", sorted(CONGESTION))
def test_halves_on_429s_timeouts_and_5xx(kind):
    ctl = AdaptiveConcurrency(start=64, maximum=256)
    epoch = ctl.epoch
    ctl.congestion(kind, epoch)
    assert ctl.level == 32
    # the other attempts that were in flight under the old level report the same overload: one cut only
    for _ in range(40):
        ctl.congestion(kind, epoch)
    assert ctl.level == 32
    ctl.congestion(kind, ctl.epoch)  # an attempt sent after the cut is pushed back too: cut again
    assert ctl.level == 16


@pytest.mark.parametrize("kind", [ErrorKind.BAD_REQUEST, ErrorKind.AUTH, ErrorKind.CONNECTION, ErrorKind.BAD_INPUT])
def test_failures_that_are_not_load_leave_the_level(kind):
    ctl = AdaptiveConcurrency(start=64)
    ctl.congestion(kind, ctl.epoch)
    assert ctl.level == 64


def test_never_exceeds_the_maximum_nor_goes_below_one():
    ctl = AdaptiveConcurrency(start=16, maximum=40)
    for _ in range(6):
        clean_window(ctl)
    assert ctl.level == ctl.peak == 40
    for _ in range(20):
        ctl.congestion(ErrorKind.RATE_LIMITED, ctl.epoch)
    assert ctl.level == 1
    assert AdaptiveConcurrency(start=500, maximum=40).level == 40


def test_pinned_never_moves():
    ctl = AdaptiveConcurrency(pinned=8, maximum=256)
    assert ctl.maximum == 8 and not ctl.adaptive
    for _ in range(5):
        clean_window(ctl)
        ctl.congestion(ErrorKind.RATE_LIMITED, ctl.epoch)
    assert ctl.level == 8


def test_settles_just_under_a_server_that_429s_past_its_capacity():
    """A synthetic server that serves 16 in flight and pushes back the rest of every round trip."""
    ctl, capacity, levels = AdaptiveConcurrency(start=16, maximum=256), 16, []
    for _ in range(300):
        level, epoch = ctl.level, ctl.epoch
        for _ in range(max(0, level - capacity)):  # a 429 comes back at once, before the answers
            ctl.congestion(ErrorKind.RATE_LIMITED, epoch)
        for _ in range(min(level, capacity)):
            ctl.success(0.2, epoch)
        levels.append(level)
    late = levels[100:]
    assert max(late) <= capacity + 1  # it probes one past the edge, never more
    assert statistics.mean(late) >= 0.9 * capacity  # and spends nearly all its time at the edge
    assert sum(1 for v in late if v > capacity) <= 10  # probes get rarer after each failed one


def test_finds_capacity_again_after_it_grows():
    ctl = AdaptiveConcurrency(start=16, maximum=256)
    capacity = 16
    for step in range(400):
        if step == 100:
            capacity = 64  # another user leaves the shared server
        level, epoch = ctl.level, ctl.epoch
        for _ in range(max(0, level - capacity)):
            ctl.congestion(ErrorKind.RATE_LIMITED, epoch)
        for _ in range(min(level, capacity)):
            ctl.success(0.2, epoch)
    assert 48 <= ctl.level <= 65


def test_token_bucket_paces_to_the_limit_and_allows_one_oversized_request():
    now = [0.0]
    bucket = TokenBucket(60, clock=lambda: now[0])  # 60 per minute: one a second, no burst
    assert bucket.delay(1) == 0
    bucket.take(1)
    assert bucket.delay(1) == pytest.approx(1.0)
    now[0] = 1.0
    assert bucket.delay(1) == 0
    tpm = TokenBucket(600, clock=lambda: now[0])  # 10 tokens a second, a bucket of 10
    assert tpm.delay(500) == 0  # larger than the bucket: sent when the bucket is full...
    tpm.take(500)
    assert tpm.delay(500) == pytest.approx(50.0)  # ...and the debt is paid before the next
    tpm.give_back(400)  # the reply's usage said it used 100, not 500
    assert tpm.delay(500) == pytest.approx(10.0)


def test_gate_keeps_attempts_under_the_level_and_reports_outcomes():
    async def main() -> tuple[int, int]:
        gate = Gate(AdaptiveConcurrency(pinned=5))
        in_flight = peak = 0

        async def attempt() -> None:
            nonlocal in_flight, peak
            ticket = await gate.enter([])
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1
            gate.leave(ticket, [Generation(text="x", usage=Usage(prompt_tokens=3, completion_tokens=1))])

        await asyncio.gather(*(attempt() for _ in range(60)))
        return peak, gate.in_flight

    peak, left = asyncio.run(main())
    assert peak == 5 and left == 0


def test_gate_lets_more_in_as_the_level_grows():
    async def main() -> list[int]:
        gate = Gate(AdaptiveConcurrency(start=2, maximum=8))
        seen: list[int] = []

        async def attempt() -> None:
            ticket = await gate.enter([])
            seen.append(gate.in_flight)
            await asyncio.sleep(0.001)
            gate.leave(ticket, [Generation(text="x")])

        await asyncio.gather(*(attempt() for _ in range(80)))
        return seen

    seen = asyncio.run(main())
    assert max(seen[:2]) <= 2 and max(seen) == 8
