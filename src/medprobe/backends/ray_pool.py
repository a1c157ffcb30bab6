"""Scale-out over Ray: `--model ray/<hf|vllm>/<hub id or folder> -O actors=N` (extra `medprobe[ray]`).

A pool of N Ray actors, each hosting one local backend (hf or vllm) built from the same config. Every
runner batch is split into N contiguous chunks that run in parallel, one per actor, and the answers come
back in order to the ordinary runner, which writes them into the ordinary run store: a Ray run caches,
resumes and scores exactly like a single-process one. The runner, store and planner know nothing of Ray.

Ray options (the rest pass through to the hosted backend):
  actors, num_cpus / num_gpus (per actor), ray_address (`--ray-address`: an existing cluster; default
  `RAY_ADDRESS`, else a local Ray started here). On a cluster every node needs medprobe and the model
  installed, and image paths must resolve on every node (a shared filesystem), as for any Ray job
  (docs/scale-out.md). Before the first request the pool joins the cluster and checks that it can hold
  the actors at all, so a wrong address or too few CPUs/GPUs fails in seconds (exit 2), not as a hang.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from medprobe.backends._base import BackendConfig, PermanentError, TransientError, parse_model
from medprobe.types import ErrorKind, Generation, Request

HOSTED = ("hf", "vllm")
RAY_OPTIONS = {
    "actors": "number of Ray actors, each with its own model copy (default 2)",
    "num_cpus": "CPUs reserved per actor (default 1)",
    "num_gpus": "GPUs reserved per actor (default 0; 1 puts one model per GPU; vllm with tensor_parallel_size=k: k)",
    "ray_address": "Ray cluster to join (--ray-address): HEAD_IP:6379 on a cluster node, ray://HEAD_IP:10001 from "
                   "elsewhere, or auto (default: RAY_ADDRESS, else a local Ray started here)",
    "address": "the older name of ray_address (unlike ray_address, it enters the run identity)",
}


class _Host:
    """The actor: one hosted backend, called with a chunk of requests at a time."""

    def __init__(self, config: dict[str, Any]):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from medprobe.backends import create

        self.backend = create(BackendConfig(**config))

    def generate(self, requests: list[Request]) -> list[Generation]:
        return asyncio.run(self.backend.generate(requests))

    def ready(self) -> bool:
        """The hosted model loaded: every actor loads its copy at pool start, at the same time. Loading on
        the first chunk instead serialised them, since the 1-request gate batch reaches one actor only
        (2 actors took 22 s to start, 1 actor 11 s)."""
        load = getattr(self.backend, "load", None)
        if load is not None:
            load()
        return True

    def loaded(self) -> bool:
        """Whether the hosted model's weights are in memory (hf: the model; vllm: the engine)."""
        return any(getattr(self.backend, name, None) is not None for name in ("_model", "_llm"))

    def node_ip(self) -> str:
        import ray

        return ray.util.get_node_ip_address()


class RayBackend:
    name = "ray"
    max_concurrency = 1  # one batch at a time over the whole pool: the pool is the parallelism

    def __init__(self, config: BackendConfig):
        from medprobe.backends import create

        provider, model = parse_model(config.model)
        if provider not in HOSTED:
            raise ValueError(f"ray backend hosts {' or '.join(HOSTED)} backends: --model ray/hf/<model> or "
                             f"ray/vllm/<model>; got ray/{config.model}")  # fmt: skip
        own = {k: v for k, v in config.options.items() if k in RAY_OPTIONS}
        hosted_options = {k: v for k, v in config.options.items() if k not in RAY_OPTIONS}
        self.hosted = BackendConfig(provider=provider, model=model, timeout_s=config.timeout_s, options=hosted_options)
        probe = create(self.hosted)  # cheap (no weights): checks the hosted options and the model family here
        self.answer_modes = getattr(probe, "answer_modes", ("generate",))
        self.n_actors = max(1, int(own.get("actors") or 2))
        self.batch_size = max(1, int(getattr(probe, "batch_size", 1))) * self.n_actors
        self.num_cpus = float(own.get("num_cpus") or 1)
        self.num_gpus = float(own.get("num_gpus") or 0)
        self._own = own
        self._actors: list[Any] | None = None
        #: the IP address of each actor's node, once the pool has started
        self.nodes: tuple[str, ...] = ()

    def _address(self) -> str | None:
        return self._own.get("ray_address") or self._own.get("address") or os.environ.get("RAY_ADDRESS") or None

    def _connect(self) -> None:
        """Join the cluster (or start a local Ray) and refuse a pool it can never hold. A process that has
        already called `ray.init` keeps its connection."""
        import ray

        if not ray.is_initialized():
            address = self._address()
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                why = (str(exc.__cause__ or exc).strip().splitlines() or [""])[-1]  # the cause's last line says why
                raise PermanentError(
                    f"ray: could not join the Ray cluster at {address} ({why[:300]}). Check --ray-address "
                    "(HEAD_IP:PORT, as `ray start --head` prints it), that `ray status` works on the head, and, if "
                    "the cluster uses token authentication, RAY_AUTH_MODE=token and the cluster's RAY_AUTH_TOKEN "
                    "here too.", kind=ErrorKind.CONNECTION) from None  # fmt: skip
        have = ray.cluster_resources()
        need = {"CPU": self.n_actors * self.num_cpus, "GPU": self.n_actors * self.num_gpus}
        if any(amount > have.get(kind, 0.0) + 1e-9 for kind, amount in need.items()):
            raise PermanentError(
                f"ray: {self.n_actors} actors of {self.num_cpus:g} CPU and {self.num_gpus:g} GPU each need "
                f"{need['CPU']:g} CPUs and {need['GPU']:g} GPUs, and the cluster has {have.get('CPU', 0):g} and "
                f"{have.get('GPU', 0):g} in all. Lower -O actors, -O num_cpus or -O num_gpus, or add nodes.",
                kind=ErrorKind.BAD_REQUEST)  # fmt: skip

    async def preflight(self) -> None:
        """Before the fan-out: the cluster is reachable and can hold the pool (no model is loaded yet)."""
        await asyncio.to_thread(self._connect)

    async def start(self) -> tuple[str, ...]:
        """Start the pool now (the first batch otherwise does); returns each actor's node IP address."""
        await asyncio.to_thread(self._start)
        return self.nodes

    def _start(self) -> list[Any]:
        if self._actors is None:
            import ray

            self._connect()
            actor = ray.remote(_Host).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus)
            actors = [actor.remote(self.hosted.model_dump()) for _ in range(self.n_actors)]
            ray.get([a.ready.remote() for a in actors])
            self.nodes = tuple(ray.get([a.node_ip.remote() for a in actors]))
            self._actors = actors
        return self._actors

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        actors = await asyncio.to_thread(self._start)
        requests = list(requests)
        size = -(-len(requests) // len(actors))  # contiguous chunks keep each actor's batches like one process's
        chunks = [requests[i : i + size] for i in range(0, len(requests), size)]
        try:
            parts = await asyncio.gather(*(a.generate.remote(c) for a, c in zip(actors, chunks)))  # noqa: B905
        except Exception as exc:
            # the actor's own errors (PermanentError, TransientError, ...) arrive as instances of their type
            from ray.exceptions import RayActorError, RaySystemError

            if isinstance(exc, RayActorError | RaySystemError):  # an actor died: restart the pool, retry the batch
                self._actors = None
                raise TransientError(f"ray: {type(exc).__name__}: {str(exc)[:300]}") from None
            raise
        return [g for part in parts for g in part]

    async def aclose(self) -> None:
        if self._actors is not None:
            import ray

            for a in self._actors:
                ray.kill(a)
            self._actors = None


def create(config: BackendConfig) -> RayBackend:
    return RayBackend(config)
