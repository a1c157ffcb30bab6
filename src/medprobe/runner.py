"""Plan (samples x prompt x backend), then execute: bounded async workers, per-request timeout,
retries with backoff that honour Retry-After, and every result persisted the moment it arrives.

A request whose key is already answered in the store is never sent again, so re-running the same
command resumes. Multi-turn prompts (MedXpertQA's answer trigger) run turn by turn: turn t+1 is
built from turn t's reply, and is itself a cached request.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pydantic import Field

from medprobe import imaging
from medprobe.backends import Backend, PermanentError, TransientError
from medprobe.backends.likelihood import scoring_for
from medprobe.prompts import PromptTemplate, first_turn, next_turn
from medprobe.store import RunStore
from medprobe.types import Frozen, Generation, GenerationConfig, Message, Request, Sample


class RunSettings(Frozen):
    """Transport settings: they shape how requests are sent, never what is asked (not in the key)."""

    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(120.0, gt=0, description="per-request limit, enforced around each backend call")
    max_retries: int = Field(4, ge=0, description="retries after the first attempt, for transient failures")
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = Field(300.0, description="cap on a server's Retry-After, so one reply cannot stall a run for hours")
    allow_outside_root: bool = False


@dataclass(frozen=True)
class Job:
    """What to ask: samples under one prompt template, one model, one generation config."""

    samples: Sequence[Sample]
    template: PromptTemplate
    model: str
    config: GenerationConfig = GenerationConfig()
    probe: str | None = None
    answer_mode: str = "generate"  # or next-token / option-likelihood (medprobe.backends.likelihood)


@dataclass
class Counts:
    total: int = 0  # requests in this execution (all turns), known so far
    cached: int = 0
    sent: int = 0
    errors: int = 0
    done: int = 0
    started: float = field(default_factory=time.monotonic)


Progress = Callable[[Counts], None]


def build_request(job: Job, sample: Sample, messages: tuple[Message, ...], turn: int, allow_outside: bool) -> Request:
    """Hash every image (raises imaging.ImageError for a missing/unsafe/corrupt one)."""
    hashes = tuple(
        imaging.sha256(p.image, allow_outside) for m in messages for p in m.content if p.type == "image" and p.image
    )
    # a probe variant carries its probe name, trial index and generation overrides (repeat's
    # temperature) in the sample, so its request key differs from the clean sample's
    probe = sample.metadata.get("probe")
    config = job.config.model_copy(update=sample.generation) if sample.generation else job.config
    return Request(
        sample_id=sample.id, model=job.model, messages=messages, config=config,
        image_hashes=hashes, turn=turn, probe=str(probe) if probe is not None else job.probe, trial=sample.trial,
        scoring=scoring_for(sample, job.answer_mode) if turn == len(job.template.followups) else None,
    )  # fmt: skip


def _error_key(sample: Sample, turn: int) -> str:
    return f"error:{sample.benchmark}:{sample.id}:{turn}"


async def execute(job: Job, backend: Backend, store: RunStore, settings: RunSettings, progress: Progress | None = None) -> Counts:
    """Run every turn of every sample; returns counts. Safe to interrupt at any point."""
    counts = Counts()
    done = store.done()
    pending: list[tuple[Sample, tuple[Message, ...]]] = [(s, first_turn(job.template, s)) for s in job.samples]
    n_turns = 1 + len(job.template.followups)
    counts.total = len(pending) * n_turns
    for turn in range(n_turns):
        replies = await _round(job, backend, store, settings, pending, turn, done, counts, progress)
        if turn + 1 < n_turns:
            followup = job.template.followups[turn]
            skipped = len(pending) - len(replies)
            counts.total -= skipped * (n_turns - turn - 1)  # no later turn for a failed one
            pending = [(s, next_turn(msgs, replies[s.id], followup)) for s, msgs in pending if s.id in replies]
    if progress:
        progress(counts)
    return counts


_STOP = object()
_PLAN_CHUNK = 256


async def _round(job, backend, store, settings, pending, turn, done, counts, progress) -> dict[str, str]:
    """One turn for all pending samples: cached replies are reused, the rest sent by workers.

    Planning (hashing images, building keys) streams into the workers' queue, so the first requests
    are on the wire while later ones are still being planned.
    """
    replies: dict[str, str] = {}
    queue: asyncio.Queue = asyncio.Queue()
    waiting: dict[str, list[Sample]] = {}  # identical requests (same key) are sent once
    rng = random.Random()  # jitter only; never affects what is asked
    batch_size = max(1, getattr(backend, "batch_size", 1))
    n_workers = max(1, min(settings.concurrency, getattr(backend, "max_concurrency", settings.concurrency)))

    async def produce() -> None:
        plan: list[tuple[str, int, str]] = []
        for i, (sample, messages) in enumerate(pending):
            try:
                request = build_request(job, sample, messages, turn, settings.allow_outside_root)
            except imaging.ImageError as exc:
                key = _error_key(sample, turn)
                plan.append((sample.id, turn, key))
                store.put_generation(key, Generation(error=f"sample {sample.id}: {exc}", attempts=0))
                counts.errors += 1
                counts.done += 1
                continue
            key = request.key
            plan.append((sample.id, turn, key))
            if (hit := done.get(key)) is not None:
                replies[sample.id] = hit.text or ""
                counts.cached += 1
                counts.done += 1
            elif key in waiting:
                waiting[key].append(sample)
            else:
                waiting[key] = [sample]
                queue.put_nowait(request)
            if i % _PLAN_CHUNK == _PLAN_CHUNK - 1:
                store.put_plan(plan)
                plan = []
                await asyncio.sleep(0)  # let workers send what is queued
        store.put_plan(plan)
        for _ in range(n_workers):
            queue.put_nowait(_STOP)
        if progress:
            progress(counts)

    async def worker() -> None:
        while True:
            item = await queue.get()
            if item is _STOP:
                return
            batch, stopping = [item], False
            while len(batch) < batch_size:  # local backends want full batches
                item = await queue.get()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            generations = await call_with_retries(backend, batch, settings, rng)
            for request, gen in zip(batch, generations, strict=True):
                store.put_generation(request.key, gen, request.canonical())
                counts.sent += 1
                if gen.ok:
                    done[request.key] = gen
                for sample in waiting.pop(request.key):
                    counts.done += 1
                    if gen.ok:
                        replies[sample.id] = gen.text or ""
                    else:
                        counts.errors += 1
            if progress:
                progress(counts)
            if stopping:
                return

    gc.freeze()  # samples and requests live for the whole run: keep the collector off them
    try:
        await asyncio.gather(produce(), *(worker() for _ in range(n_workers)))
    finally:
        gc.unfreeze()
    return replies


async def call_with_retries(
    backend: Backend, requests: list[Request], settings: RunSettings, rng: random.Random
) -> list[Generation]:
    """One backend call with a hard timeout, retried on transient failures; never raises."""
    last = "unknown error"
    attempts = settings.max_retries + 1
    for attempt in range(1, attempts + 1):
        start = time.perf_counter()
        delay: float | None = None
        try:
            # the backend enforces timeout_s itself (HTTP client timeout); this outer guard catches a
            # backend that ignores it, with a grace so it never pre-empts the backend's own, clearer error
            generations = await asyncio.wait_for(backend.generate(requests), timeout=settings.timeout_s * 1.1 + 0.5)
            if len(generations) != len(requests):
                raise PermanentError(f"backend returned {len(generations)} generations for {len(requests)} requests")
            return [g if g.attempts == attempt else g.model_copy(update={"attempts": attempt}) for g in generations]
        except TransientError as exc:
            last = str(exc)
            if exc.retry_after is not None:
                # honour the server's Retry-After (RFC 9110 10.2.3), plus a little jitter so a
                # crowd of workers told "retry in 2 s" do not all return in the same millisecond
                delay = min(exc.retry_after, settings.retry_after_max_s) * (1 + 0.1 * rng.random())
        except (TimeoutError, asyncio.TimeoutError):
            last = f"timed out after {settings.timeout_s:g} s (raise --timeout if the model is slow)"
        except PermanentError as exc:
            return _failed(requests, str(exc), attempt, time.perf_counter() - start)
        except Exception as exc:  # a backend bug must not kill the run; record it per sample
            return _failed(requests, f"backend error {type(exc).__name__}: {exc}", attempt, time.perf_counter() - start)
        if attempt < attempts:
            if delay is None:  # exponential backoff with full jitter (AWS architecture blog, 2015)
                delay = rng.uniform(0, min(settings.backoff_max_s, settings.backoff_base_s * 2 ** (attempt - 1)))
            await asyncio.sleep(delay)
    return _failed(requests, f"gave up after {attempts} attempts; last error: {last}", attempts, 0.0)


def _failed(requests: list[Request], message: str, attempts: int, latency: float) -> list[Generation]:
    return [Generation(error=message, attempts=attempts, latency_s=latency) for _ in requests]
