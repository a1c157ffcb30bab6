"""How fast requests go out: an adaptive concurrency controller and --rpm / --tpm token buckets.

`AdaptiveConcurrency` is pure (no clock of its own, no asyncio), so its rules are tested on synthetic
sequences; `Gate` puts it and the buckets in front of every attempt `runner.call_with_retries` makes.

The controller is AIMD with a memory of where the server pushed back, after what lmms-eval
(`adaptive_concurrency`: windowed decisions, grow while latency holds, shrink on rate limits) and
inspect_ai (`--adaptive-connections`: start at 20, grow while the provider keeps up, back off on
rate-limit retries) ship, with the signals taken from error kinds rather than message text:

- a *window* is `level` successful attempts. A clean window whose median latency is within
  `tolerance` x the lowest window median seen grows the level: doubling until the first push-back
  (TCP slow start), then straight back to the largest level that ran clean, then halfway to the level
  last pushed back, then one step past it every `probe_wait` windows (doubled by each failed step);
- a 429, a timeout or a 5xx on any attempt halves the level (`CONGESTION`), once per overload: an
  attempt that started before the last cut is not counted again (TCP cuts once per round trip);
- `pinned` (`--concurrency N`) fixes the level; otherwise it stays within [minimum, maximum].
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medprobe.budget import Estimator
from medprobe.types import ErrorKind, Generation, Request

#: attempt failures that mean "too much load": the server says so (429), cannot keep up (5xx), or never answers
CONGESTION = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.SERVER})
#: a failed probe past the push-back level doubles the windows waited before the next one, up to this
MAX_PROBE_WAIT = 32
#: seconds of traffic a full --rpm / --tpm bucket holds: steady pacing, no minute-sized burst
BURST_S = 1.0
#: level changes kept for the manifest (Execution.concurrency_changes)
TRACE_MAX = 200


class AdaptiveConcurrency:
    """The number of attempts allowed in flight (`level`), moved by attempt outcomes."""

    def __init__(self, start: int = 16, maximum: int = 256, minimum: int = 1, pinned: int | None = None,
                 tolerance: float = 2.0):  # fmt: skip
        self.pinned = pinned
        self.maximum = pinned or max(1, maximum)
        self.minimum = min(max(1, minimum), self.maximum)
        self.level = pinned or max(self.minimum, min(start, self.maximum))
        self.tolerance = tolerance
        self.epoch = 0  # bumped on every change of level; an attempt remembers the epoch it started in
        self.peak = self.level
        self.good = 0  # the largest level that ran a clean window (since a push-back below it)
        self.bad: int | None = None  # the level last pushed back (None: none yet, or it later ran clean)
        self.probe_wait = 1
        self.baseline = float("inf")  # lowest window median latency: the no-queue latency
        self._cut = 0  # epoch of the last cut: congestion from attempts started before it is already answered
        self._window: list[float] = []
        self._waited = 0

    @property
    def adaptive(self) -> bool:
        return self.pinned is None

    def success(self, latency_s: float, epoch: int) -> None:
        """An attempt that started in `epoch` answered after `latency_s` seconds."""
        if self.pinned or epoch < self._cut:
            return
        self._window.append(latency_s)
        if len(self._window) < self.level:
            return
        median, self._window = statistics.median(self._window), []
        self.baseline = min(self.baseline, median)
        if self.bad is not None and self.level >= self.bad:  # clean where it was pushed back: capacity grew
            self.bad, self.probe_wait = None, 1
        self.good = max(self.good, self.level)
        if median > self.tolerance * self.baseline:
            return  # latency grows with load (the server queues): more in flight would not go faster
        self._set(self._grown())

    def congestion(self, kind: ErrorKind, epoch: int) -> None:
        """An attempt that started in `epoch` failed with `kind`; only CONGESTION kinds move the level."""
        if self.pinned or kind not in CONGESTION or epoch < self._cut:
            return
        if self.bad is not None and self.level <= self.bad:  # pushed back again where it was before
            self.probe_wait = min(2 * self.probe_wait, MAX_PROBE_WAIT)
        self.bad = self.level
        self.good = min(self.good, self.level - 1)
        self._set(max(self.minimum, self.level // 2))
        self._cut = self.epoch

    def _grown(self) -> int:
        level = self.level
        if self.bad is None:
            return 2 * level  # slow start
        if level < self.good:
            return self.good  # back to where it ran clean
        if level + 1 < self.bad:
            return (level + self.bad) // 2  # halfway to where it was pushed back
        self._waited += 1  # at the edge: probe one step past it, rarely
        if self._waited < self.probe_wait:
            return level
        self._waited = 0
        return level + 1

    def _set(self, level: int) -> None:
        level = max(self.minimum, min(level, self.maximum))
        if level == self.level:
            return
        self.level = level
        self.peak = max(self.peak, level)
        self.epoch += 1
        self._window = []


class TokenBucket:
    """A limit per minute (--rpm, --tpm), refilled continuously. A cost larger than the bucket (one big
    request under a small --tpm) is let through when the bucket is full and leaves it in debt, so every
    request goes eventually and the average stays at the limit."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * BURST_S)
        self.tokens = self.capacity
        self.clock = clock
        self._stamp = clock()

    def delay(self, cost: float) -> float:
        """Seconds until `cost` may be taken (0: now)."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        need = min(cost, self.capacity) - self.tokens
        return 0.0 if need <= 0 else need / self.rate

    def take(self, cost: float) -> None:
        self.tokens -= cost

    def give_back(self, amount: float) -> None:
        """Correct an estimate: a positive amount returns tokens, a negative one takes more."""
        self.tokens = min(self.capacity, self.tokens + amount)


@dataclass
class Ticket:
    epoch: int
    tokens: int  # what the --tpm bucket was charged before sending
    started: float = 0.0


class Gate:
    """Before each attempt: a slot under the controller's level, then --rpm and --tpm. After it: the
    outcome moves the level, and the reply's usage corrects the --tpm estimate."""

    def __init__(self, controller: AdaptiveConcurrency, rpm: float | None = None, tpm: float | None = None,
                 estimator: Estimator | None = None):  # fmt: skip
        self.controller = controller
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None
        self.estimator = estimator or Estimator()
        self.in_flight = 0
        self.trace: list[tuple[float, int]] = []  # (seconds since the gate opened, new level)
        self._opened = time.perf_counter()
        self._waiters: deque[asyncio.Future] = deque()
        self._paced = asyncio.Lock() if (rpm or tpm) else None

    @property
    def level(self) -> int:
        return self.controller.level

    async def enter(self, requests: Sequence[Request]) -> Ticket:
        await self._slot()
        try:
            tokens = self.estimator.tokens(requests) if self.tpm else 0
            if self._paced is not None:
                async with self._paced:  # one waiter at a time: first come, first sent
                    await self._pace(self.rpm, len(requests))
                    await self._pace(self.tpm, tokens)
        except BaseException:
            self._release()
            self._wake()
            raise
        return Ticket(self.controller.epoch, tokens, time.perf_counter())

    def leave(self, ticket: Ticket, generations: Sequence[Generation] | None, kind: ErrorKind | None = None) -> None:
        """`generations` on success; else the failure's `kind` (a 429, a timeout, ...)."""
        self._release()
        before = self.controller.level
        if generations is None:
            self.controller.congestion(kind or ErrorKind.BACKEND, ticket.epoch)
        else:
            self.controller.success(time.perf_counter() - ticket.started, ticket.epoch)
            if self.tpm is not None:
                used = sum((g.usage.prompt_tokens or 0) + (g.usage.completion_tokens or 0) for g in generations
                           if g.usage and g.usage.prompt_tokens is not None)  # fmt: skip
                if used:
                    self.tpm.give_back(ticket.tokens - used)
        if self.controller.level != before and len(self.trace) < TRACE_MAX:
            self.trace.append((round(time.perf_counter() - self._opened, 3), self.controller.level))
        self._wake()

    async def _pace(self, bucket: TokenBucket | None, cost: float) -> None:
        if bucket is None or cost <= 0:
            return
        while (wait := bucket.delay(cost)) > 0:
            await asyncio.sleep(wait)
        bucket.take(cost)

    async def _slot(self) -> None:
        if self.in_flight < self.controller.level and not self._waiters:
            self.in_flight += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # granted, then cancelled before it could be used
                self._wake()
            raise

    def _release(self) -> None:
        self.in_flight -= 1

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.controller.level:
            future = self._waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)
