"""Plan (samples x prompt x backend), then execute: async workers under an adaptive (or pinned) concurrency
level, per-request timeout, retries with backoff that honour Retry-After (medprobe.sending), and every
result persisted the moment it arrives.

A request whose key is already answered in the store is never sent again, so re-running the same
command resumes. Multi-turn prompts (MedXpertQA's answer trigger) run turn by turn: turn t+1 is
built from turn t's reply, and is itself a cached request.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medprobe import imaging
from medprobe.backends import Backend
from medprobe.backends.likelihood import scoring_for
from medprobe.prompts import PromptTemplate, first_turn, next_turn
# transport (settings, counts, retries) lives in medprobe.sending; these names stay importable from here
from medprobe.sending import FATAL_KINDS, Counts, Progress, RunSettings, Sender, call_with_retries
from medprobe.store import RunStore
from medprobe.types import (ErrorKind, Generation, GenerationConfig, Message, Request, Sample, Scalar,
                            without_surrogates)  # fmt: skip

__all__ = ["FATAL_KINDS", "Counts", "Job", "Progress", "RunSettings", "build_request", "call_with_retries", "execute",
           "with_overrides"]  # fmt: skip


@dataclass(frozen=True)
class Job:
    """What to ask: samples under one prompt template, one model, one generation config."""

    samples: Sequence[Sample]
    template: PromptTemplate
    model: str
    config: GenerationConfig = GenerationConfig()
    probe: str | None = None
    answer_mode: str = "generate"  # or next-token / option-likelihood (medprobe.backends.likelihood)
    #: backend options that change answers (dtype, revision, a baseline's seed): they enter every request key
    options: Mapping[str, Scalar] = field(default_factory=dict)




def with_overrides(config: GenerationConfig, overrides: Mapping[str, Any]) -> GenerationConfig:
    """A sample's generation overrides on the run's config. `extra_body` is merged key by key (nested
    dicts too), so a probe's `chat_template_kwargs` joins the run's --extra-body instead of replacing it."""
    if not overrides:
        return config
    update = dict(overrides)
    if isinstance(update.get("extra_body"), dict):
        update["extra_body"] = _merged(config.extra_body, update["extra_body"])
    return config.model_copy(update=update)


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_request(job: Job, sample: Sample, messages: tuple[Message, ...], turn: int, allow_outside: bool) -> Request:
    """Hash every image (raises imaging.ImageError for a missing/unsafe/corrupt one)."""
    hashes = tuple(
        imaging.sha256(p.image, allow_outside) for m in messages for p in m.content if p.type == "image" and p.image
    )
    # a probe variant carries its probe name, trial index and generation overrides (repeat's
    # temperature) in the sample, so its request key differs from the clean sample's
    probe = sample.variant_of.probe if sample.variant_of is not None else None
    config = with_overrides(job.config, sample.generation)
    return Request(
        sample_id=sample.id, model=job.model, messages=messages, config=config,
        image_hashes=hashes, turn=turn, probe=str(probe) if probe is not None else job.probe, trial=sample.trial,
        scoring=scoring_for(sample, job.answer_mode) if turn == len(job.template.followups) else None,
        backend_options=dict(job.options),
    )  # fmt: skip


def _capped(gen: Generation, limit: int) -> Generation:
    """Cut a runaway reply (and its chain) to `limit` characters; the record keeps the original length.
    A lone surrogate (a broken decoder, an imported file) becomes U+FFFD so the record can be stored."""
    text, chain = gen.text, gen.reasoning
    if any(t and _has_surrogate(t) for t in (text, chain)):
        text = without_surrogates(text) if text else text
        chain = without_surrogates(chain) if chain else chain
        gen = gen.model_copy(update={"text": text, "reasoning": chain})
    if (text is None or len(text) <= limit) and (chain is None or len(chain) <= limit):
        return gen
    update = {"truncated_from": len(text or "") + len(chain or "")}
    if text is not None and len(text) > limit:
        update["text"] = text[:limit]
    if chain is not None and len(chain) > limit:
        update["reasoning"] = chain[:limit]
    return gen.model_copy(update=update)


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and without_surrogates(text) != text


def _gate_message(gen: Generation) -> str:
    return f"the first request failed ({gen.error_kind}), so no other was sent: {gen.error}"


def _error_key(sample: Sample, turn: int) -> str:
    return f"error:{sample.benchmark}:{sample.id}:{turn}"




async def execute(job: Job, backend: Backend, store: RunStore, settings: RunSettings, progress: Progress | None = None) -> Counts:
    """Run every turn of every sample; returns counts. Safe to interrupt at any point."""
    counts = Counts(price=settings.price, max_cost_usd=settings.max_cost_usd)
    send = Sender.for_run(backend, store, settings, counts, progress)
    done = store.done()
    pending: list[tuple[Sample, tuple[Message, ...]]] = [(s, first_turn(job.template, s)) for s in job.samples]
    n_turns = 1 + len(job.template.followups)
    counts.total = len(pending) * n_turns
    for turn in range(n_turns):
        replies = await _round(job, send, pending, turn, done)
        if counts.stopped:
            counts.not_sent = max(0, counts.total - counts.done)
            break
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


async def _round(job: Job, send: Sender, pending, turn: int, done: dict[str, Generation]) -> dict[str, str]:
    """One turn for all pending samples: cached replies are reused, the rest sent by workers.

    Planning (hashing images, building keys) streams into the workers' queue, so the first requests
    are on the wire while later ones are still being planned.
    """
    store, settings, counts, progress = send.store, send.settings, send.counts, send.progress
    replies: dict[str, str] = {}
    queue: asyncio.Queue = asyncio.Queue()
    waiting: dict[str, list[Sample]] = {}  # identical requests (same key) are sent once
    n_workers = max(1, min(send.workers, len(pending)))  # a small run needs no 256 idle workers

    async def produce() -> None:
        plan: list[tuple[str, int, str]] = []
        gate = turn == 0 and counts.sent == 0  # the first request goes alone: a dead server costs one request
        for i, (sample, messages) in enumerate(pending):
            if counts.stopped:
                break
            try:
                request = build_request(job, sample, messages, turn, settings.allow_outside_root)
            except imaging.ImageError as exc:
                key = _error_key(sample, turn)
                plan.append((sample.id, turn, key))
                store.put_generation(key, Generation(error=f"sample {sample.id}: {exc}", error_kind=ErrorKind.BAD_INPUT,
                                                     attempts=0))  # fmt: skip
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
            elif gate:
                gate = False
                waiting[key] = [sample]
                # a refused connection is retried at most once here: a dead server ends the run within seconds
                generations = await send([request], fatal_fast=True)
                if not generations:  # --max-cost: not even the first request fits
                    waiting.pop(key, None)
                    continue
                await finish([request], generations)
                if done_gen[0].error_kind in FATAL_KINDS:
                    counts.gate_failed = True
                    counts.stopped = _gate_message(done_gen[0])
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
            while len(batch) < send.batch_size:  # local backends want full batches
                item = await queue.get()
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            generations = [] if counts.stopped else await send(batch)
            if generations:
                await finish(batch[: len(generations)], generations)
            for request in batch[len(generations):]:  # drain: nothing more is sent once the run is stopped
                waiting.pop(request.key, None)
            if stopping:
                return

    done_gen: list[Generation] = []

    async def finish(batch: list[Request], generations: list[Generation]) -> None:
        counts.concurrency = send.gate.level
        for request, gen in zip(batch, generations, strict=True):
            gen = _capped(gen, settings.max_text_chars)
            store.put_generation(request.key, gen, request.canonical())
            done_gen[:] = [gen]
            counts.sent += 1
            counts.usage.add(gen)
            if gen.ok:
                done[request.key] = gen
                counts.consecutive_fatal = 0
            elif gen.error_kind in FATAL_KINDS:
                counts.consecutive_fatal += 1
                if settings.breaker and counts.consecutive_fatal >= settings.breaker and not counts.stopped:
                    counts.stopped_by = "breaker"
                    counts.stopped = (f"circuit breaker: {counts.consecutive_fatal} requests in a row failed "
                                      f"({gen.error_kind}); last error: {gen.error}")  # fmt: skip
            for sample in waiting.pop(request.key):
                counts.done += 1
                if gen.ok:
                    replies[sample.id] = gen.text or ""
                else:
                    counts.errors += 1
        if progress:
            progress(counts)

    gc.freeze()  # samples and requests live for the whole run: keep the collector off them
    try:
        await asyncio.gather(produce(), *(worker() for _ in range(n_workers)))
    finally:
        gc.unfreeze()
    return replies


