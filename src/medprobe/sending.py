"""How one execution sends its requests: transport settings, the counts every result goes to, and the
sender that puts each batch through the --max-cost guard, then through `call_with_retries`, whose every
attempt waits at the gate (medprobe.throttle: the concurrency level, --rpm, --tpm).

Transport settings shape how requests are sent, never what is asked: none of them is in a request key.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from medprobe.backends import Backend, PermanentError, TransientError
from medprobe.budget import Estimator, Price, Spend, Tally, usage_report
from medprobe.manifest import Execution, UsageReport
from medprobe.store import RunStore
from medprobe.throttle import TRACE_MAX, AdaptiveConcurrency, Gate
from medprobe.types import ErrorKind, Frozen, Generation, Request


class RunSettings(Frozen):
    """Transport settings: they shape how requests are sent, never what is asked (not in the key)."""

    concurrency: int | None = Field(None, ge=1, description="pin the requests in flight at N; None: adaptive "
                                    "(medprobe.throttle), from start_concurrency up to max_concurrency")
    max_concurrency: int = Field(256, ge=1, description="the most requests the adaptive level lets in flight")
    start_concurrency: int = Field(16, ge=1, description="where the adaptive level starts")
    timeout_s: float = Field(120.0, gt=0, description="per-request limit, enforced around each backend call")
    max_retries: int = Field(4, ge=0, description="retries after the first attempt, for transient failures")
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = Field(300.0, description="cap on a server's Retry-After, so one reply cannot stall a run for hours")
    allow_outside_root: bool = False
    fetch_images: bool = Field(False, description="download http(s) images into the run folder before planning "
                               "(medprobe.image_fetch); off: such images are sample errors naming --fetch-images")
    breaker: int = Field(10, ge=0, description="stop after this many consecutive connection/auth/not-found failures "
                         "(0 = never)")
    max_text_chars: int = Field(200_000, ge=1, description="stored reply text (and reasoning) is cut at this length; "
                                "the record keeps the original length")
    rpm: float | None = Field(None, gt=0, description="--rpm: requests (attempts) per minute, at most")
    tpm: float | None = Field(None, gt=0, description="--tpm: tokens per minute, estimated before sending and "
                              "corrected from each reply's usage")
    max_cost_usd: float | None = Field(None, ge=0, description="--max-cost: stop before this execution spends more")
    price: Price | None = Field(None, description="the model's price from --prices (USD per million tokens)")

    @model_validator(mode="after")
    def _priced(self) -> RunSettings:
        if self.max_cost_usd is not None and self.price is None:
            raise ValueError("--max-cost needs the model's price: pass --prices FILE (medprobe.budget has the format)")
        return self

    @property
    def initial_concurrency(self) -> int:
        """The pinned level, or where the adaptive one starts (for work outside the runner: image fetches)."""
        return self.concurrency or min(self.start_concurrency, self.max_concurrency)


#: failures that mean no request can succeed (the server is gone, the key or model is wrong): a run of them
#: trips the circuit breaker, and one on the gate request stops the run before the fan-out
FATAL_KINDS = frozenset({ErrorKind.CONNECTION, ErrorKind.AUTH, ErrorKind.NOT_FOUND})


@dataclass
class Counts:
    total: int = 0  # requests in this execution (all turns), known so far
    cached: int = 0
    sent: int = 0
    errors: int = 0
    done: int = 0
    not_sent: int = 0  # planned but never attempted: the run was stopped
    started: float = field(default_factory=time.monotonic)
    consecutive_fatal: int = 0
    stopped: str | None = None  # why the run stopped early (circuit breaker, failed gate request)
    stopped_by: str | None = None  # "breaker" or "budget"
    gate_failed: bool = False  # the first request failed fatally: nothing else was sent
    concurrency: int = 0  # requests allowed in flight now (the adaptive level, or the fixed number)
    usage: Tally = field(default_factory=Tally)  # tokens of the replies this execution received
    price: Price | None = None
    max_cost_usd: float | None = None
    gate: Gate | None = None
    mode: str | None = None  # adaptive, pinned or backend

    def execution(self) -> Execution:
        """The manifest's last_execution."""
        ctl = self.gate.controller if self.gate else None
        return Execution(requests=self.total, cached=self.cached, sent=self.sent, errors=self.errors,
                         not_sent=self.not_sent, concurrency=self.mode, concurrency_final=ctl.level if ctl else None,
                         concurrency_peak=ctl.peak if ctl else None,
                         concurrency_changes=tuple(self.gate.trace[:TRACE_MAX]) if self.gate else ())  # fmt: skip

    def usage_report(self, records: Sequence) -> UsageReport:
        """The manifest's usage: the run folder's stored generations and this execution's replies."""
        return usage_report(records, self.usage, self.price, self.max_cost_usd)


Progress = Callable[[Counts], None]


#: in flight at once for a local backend (batch_size > 1 or its own max_concurrency) when --concurrency is not given
BACKEND_CONCURRENCY = 8


@dataclass
class Sender:
    """How this execution sends: the backend behind a gate (a concurrency level, --rpm, --tpm) that
    lasts across turns, the --max-cost guard, and the counts and store every result goes to."""

    backend: Backend
    store: RunStore
    settings: RunSettings
    counts: Counts
    progress: Progress | None
    gate: Gate
    spend: Spend | None
    batch_size: int
    rng: random.Random = field(default_factory=random.Random)  # jitter only; never affects what is asked

    @classmethod
    def for_run(cls, backend: Backend, store: RunStore, settings: RunSettings, counts: Counts,
                progress: Progress | None) -> Sender:  # fmt: skip
        batch_size = max(1, getattr(backend, "batch_size", 1))
        own = getattr(backend, "max_concurrency", None)
        if batch_size > 1 or own is not None:
            # local backends (hf, vllm, ray, baseline, scripted): their batch is the parallelism, as before
            fixed = settings.concurrency or BACKEND_CONCURRENCY
            controller, counts.mode = AdaptiveConcurrency(pinned=max(1, min(fixed, own or fixed))), "backend"
        elif settings.concurrency:
            controller, counts.mode = AdaptiveConcurrency(pinned=settings.concurrency), "pinned"
        else:
            controller = AdaptiveConcurrency(start=settings.start_concurrency, maximum=settings.max_concurrency)
            counts.mode = "adaptive"
        estimator = Estimator()
        gate = Gate(controller, rpm=settings.rpm, tpm=settings.tpm, estimator=estimator)
        cap, price = settings.max_cost_usd, settings.price
        spend = Spend(price, cap, estimator) if cap is not None and price is not None else None
        counts.gate, counts.concurrency = gate, controller.level
        return cls(backend, store, settings, counts, progress, gate, spend, batch_size)

    @property
    def workers(self) -> int:
        """Workers that take requests off the queue: as many as the level may ever allow (the gate
        holds the rest back), so a retry sleeping in backoff never holds a place another could use."""
        return self.gate.controller.maximum

    async def __call__(self, batch: list[Request], fatal_fast: bool = False) -> list[Generation]:
        """Send one batch (retried, gated). --max-cost may cut it short: the generations are those of the
        first len(result) requests, and a shorter result means the run is stopped."""
        reservation = 0.0
        if self.spend is not None:
            n, reservation = await self.spend.admit(batch)
            if n < len(batch) and not self.counts.stopped:
                self.counts.stopped_by, self.counts.stopped = "budget", self.spend.reason()
            if n == 0:
                return []
            batch = batch[:n]
        generations = await call_with_retries(self.backend, batch, self.settings, self.rng, fatal_fast, self.gate)
        self.gate.estimator.learn(batch, generations)
        if self.spend is not None:
            self.spend.settle(reservation, generations)
        return generations


async def call_with_retries(
    backend: Backend, requests: list[Request], settings: RunSettings, rng: random.Random, fatal_fast: bool = False,
    gate: Gate | None = None,
) -> list[Generation]:
    """One backend call with a hard timeout, retried on transient failures; never raises.
    `fatal_fast`: a connection failure is retried once at most (the gate request before the fan-out).
    `gate`: every attempt waits for a place under its concurrency level and --rpm/--tpm, and reports its
    outcome (a 429, timeout or 5xx halves an adaptive level; see medprobe.throttle)."""
    last, last_kind = "unknown error", ErrorKind.BACKEND
    attempts = settings.max_retries + 1
    for attempt in range(1, attempts + 1):
        ticket = await gate.enter(requests) if gate is not None else None
        start = time.perf_counter()
        delay: float | None = None
        answered: list[Generation] | None = None
        kind: ErrorKind | None = None
        try:
            # the backend enforces timeout_s itself (HTTP client timeout); this outer guard catches a
            # backend that ignores it, with a grace so it never pre-empts the backend's own, clearer error
            generations = await asyncio.wait_for(backend.generate(requests), timeout=settings.timeout_s * 1.1 + 0.5)
            if len(generations) != len(requests):
                raise PermanentError(f"backend returned {len(generations)} generations for {len(requests)} requests",
                                     kind=ErrorKind.BACKEND)  # fmt: skip
            answered = generations
            return [g if g.attempts == attempt else g.model_copy(update={"attempts": attempt}) for g in generations]
        except TransientError as exc:
            last, last_kind = str(exc), exc.kind
            kind = exc.kind
            if fatal_fast and exc.kind in FATAL_KINDS and attempt >= 2:
                return _failed(requests, f"gave up after {attempt} attempts; last error: {last}", last_kind, attempt,
                               time.perf_counter() - start)  # fmt: skip
            if exc.retry_after is not None:
                # honour the server's Retry-After (RFC 9110 10.2.3), plus a little jitter so a
                # crowd of workers told "retry in 2 s" do not all return in the same millisecond
                delay = min(exc.retry_after, settings.retry_after_max_s) * (1 + 0.1 * rng.random())
        except (TimeoutError, asyncio.TimeoutError):
            last = f"timed out after {settings.timeout_s:g} s (raise --timeout if the model is slow)"
            last_kind = kind = ErrorKind.TIMEOUT
        except PermanentError as exc:
            kind = exc.kind
            return _failed(requests, str(exc), exc.kind, attempt, time.perf_counter() - start)
        except Exception as exc:  # a backend bug must not kill the run; record it per sample
            kind = ErrorKind.BACKEND
            return _failed(requests, f"backend error {type(exc).__name__}: {exc}", ErrorKind.BACKEND, attempt,
                           time.perf_counter() - start)  # fmt: skip
        finally:
            if ticket is not None:
                gate.leave(ticket, answered, kind)  # type: ignore[union-attr]
        if attempt < attempts:
            if delay is None:  # exponential backoff with full jitter (AWS architecture blog, 2015)
                delay = rng.uniform(0, min(settings.backoff_max_s, settings.backoff_base_s * 2 ** (attempt - 1)))
            await asyncio.sleep(delay)
    return _failed(requests, f"gave up after {attempts} attempts; last error: {last}", last_kind, attempts, 0.0)


def _failed(requests: list[Request], message: str, kind: ErrorKind, attempts: int, latency: float) -> list[Generation]:
    return [Generation(error=message, error_kind=kind, attempts=attempts, latency_s=latency) for _ in requests]
