"""Spreading requests over several replicas of one model with no load balancer in front.

Least outstanding requests: each call goes to the live replica with the fewest requests in flight
(ties rotate), which tracks slow and fast replicas better than round robin. A replica that refuses
connections, or answers 5xx `fail_threshold` times in a row, is taken out for `cooldown_s`, then
tried again with a single request (a half-open circuit breaker). The runner's retry of the failed
request lands on another replica.
"""

from __future__ import annotations

import itertools
import time


class ReplicaPool:
    def __init__(self, n: int, fail_threshold: int = 3, cooldown_s: float = 10.0):
        self.n = n
        self.fail_threshold = max(1, fail_threshold)
        self.cooldown_s = cooldown_s
        self.outstanding = [0] * n
        self.sent = [0] * n
        self._streak = [0] * n
        self._down_until = [0.0] * n
        self._turn = itertools.count()

    def live(self, now: float | None = None) -> list[int]:
        now = time.monotonic() if now is None else now
        return [i for i in range(self.n) if self._down_until[i] <= now]

    def acquire(self) -> int:
        """The replica for the next request (counted as outstanding until `release`)."""
        if self.n == 1:
            index = 0
        else:
            live = self.live() or [min(range(self.n), key=self._down_until.__getitem__)]  # all down: earliest back
            start = next(self._turn)
            order = [live[(start + k) % len(live)] for k in range(len(live))]
            index = min(order, key=self.outstanding.__getitem__)
        self.outstanding[index] += 1
        self.sent[index] += 1
        return index

    def take_out(self, index: int) -> None:
        """Out of rotation for `cooldown_s` with no request in flight (a preflight found it unreachable)."""
        self._down_until[index] = time.monotonic() + self.cooldown_s
        self._streak[index] = self.fail_threshold - 1

    def release(self, index: int, ok: bool, dead: bool = False) -> None:
        """`ok`: the replica answered (any non-5xx reply). `dead`: it refused the connection."""
        self.outstanding[index] -= 1
        if ok:
            self._streak[index] = 0
            return
        self._streak[index] += 1
        if dead or self._streak[index] >= self.fail_threshold:
            self._down_until[index] = time.monotonic() + self.cooldown_s
            self._streak[index] = self.fail_threshold - 1  # back up: one more failure takes it out again
