"""The openai backend over several replicas: least-outstanding spreading, a dead replica taken out and
retried later, next-token scoring from a server's logprobs; a run survives a replica killed mid-run."""

from __future__ import annotations

import asyncio
import random

from openai_server import OpenAIServer, Reply

from medprobe.backends import BackendConfig
from medprobe.backends.likelihood import check_supported
from medprobe.backends.openai_compat import OpenAIBackend
from medprobe.backends.replicas import ReplicaPool
from medprobe.runner import RunSettings, call_with_retries
from medprobe.types import GenerationConfig, Message, Part, Request, Scoring


def _request(i: int, scoring: Scoring | None = None) -> Request:
    msg = Message(role="user", content=(Part(type="text", text=f"question {i}"),))
    return Request(sample_id=str(i), model="openai/m", messages=(msg,), config=GenerationConfig(max_tokens=4),
                   scoring=scoring)  # fmt: skip


def test_pool_prefers_least_outstanding_and_takes_out_a_dead_replica():
    pool = ReplicaPool(3, fail_threshold=2, cooldown_s=0.2)
    first = [pool.acquire() for _ in range(3)]
    assert sorted(first) == [0, 1, 2]  # one each before any gets a second
    pool.release(first[0], ok=True)
    assert pool.acquire() == first[0]  # the one with nothing in flight
    pool.release(1, ok=False, dead=True)  # connection refused: out at once
    assert 1 not in pool.live()
    assert all(pool.acquire() != 1 for _ in range(10))


async def test_spreads_and_survives_a_replica_killed_mid_run():
    servers = [OpenAIServer(latency=0.02).__enter__() for _ in range(3)]
    try:
        config = BackendConfig(provider="openai", model="m", base_urls=tuple(s.base_url for s in servers),
                               timeout_s=5, options={"replica_cooldown_s": 60})  # fmt: skip
        backend = OpenAIBackend(config)
        settings = RunSettings(max_retries=3, backoff_base_s=0.01)
        rng = random.Random(0)
        sem = asyncio.Semaphore(6)

        async def one(i: int):
            async with sem:
                if i == 30:
                    servers[2].__exit__(None, None, None)  # killed mid-run
                return (await call_with_retries(backend, [_request(i)], settings, rng))[0]

        gens = await asyncio.gather(*(one(i) for i in range(90)))
        assert all(g.ok for g in gens), [g.error for g in gens if not g.ok][:3]
        counts = [s.count() for s in servers[:2]]
        assert min(counts) >= 25  # the two live replicas share the load
        assert backend._pool.sent[2] <= 30 + 6  # the dead one gets no more after it was taken out
        await backend.aclose()
    finally:
        for s in servers[:2]:
            s.__exit__(None, None, None)


async def test_next_token_scores_from_server_logprobs(openai_server):
    lp = [("no", -0.2, [("no", -0.2), ("yes", -1.9), (" No", -3.0)])]
    openai_server.set_script(lambda received: Reply(text="no", logprobs=lp))
    backend = OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=(openai_server.base_url,)))
    scoring = Scoring(mode="next-token", choices=("yes", "no"), labels=("yes", "no"))
    gen = (await backend.generate([_request(0, scoring)]))[0]
    await backend.aclose()
    assert gen.text == "no" and gen.option_scores == {"yes": -1.9, "no": -0.2}
    check_supported(backend, "next-token")
    try:
        check_supported(backend, "option-likelihood")
    except ValueError as exc:
        assert "cannot run --answer-mode option-likelihood" in str(exc)
    else:
        raise AssertionError("openai must refuse option-likelihood")
