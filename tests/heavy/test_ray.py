"""The ray backend on CPU: 2 actors hosting the hf backend give the same records as a single-process hf
run, write into the ordinary run store, and a second run resumes with nothing sent; the same on a
two-node Ray cluster started here on loopback (a head and a worker node as separate `ray start`
processes, 1 CPU each), joined with `--ray-address`, one actor on each node; a pool the cluster cannot
hold fails before anything is sent."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from _ray_cluster import HEAD_IP, WORKER_IP, loopback_cluster  # noqa: E402


def _run(model: str, out, extra=(), code: int = 0):
    from typer.testing import CliRunner

    from medprobe.cli import app

    args = ["run", "vqa-rad-demo", "--model", model, "--out", str(out), "--max-tokens", "4",
            "-O", "batch_size=4", "-O", "device=cpu", "-O", "dtype=float32", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def _answers(out) -> dict[str, tuple]:
    from medprobe.store import RECORDS, RunStore

    return {r.sample.id: (r.final.text, r.final.usage.completion_tokens)
            for r in RunStore(out / RECORDS).records() if r.keys}  # fmt: skip


@pytest.fixture(scope="module")
def single(tiny_models, tmp_path_factory) -> dict[str, tuple]:
    """The single-process hf run every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("single") / "run"
    _run(f"hf/{tiny_models['llava']}", out)
    return _answers(out)


@pytest.fixture
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def two_nodes():
    with loopback_cluster(cpus_per_node=1) as cluster:
        yield cluster


@pytest.fixture
def on_cluster(two_nodes, monkeypatch):
    """This process as a driver of the two-node cluster, not connected yet (--ray-address connects it)."""
    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    yield two_nodes.address
    ray.shutdown()


def test_ray_two_actors_match_single_process_and_resume(single, tiny_models, local_ray, tmp_path):
    folder = tiny_models["llava"]
    _run(f"ray/hf/{folder}", tmp_path / "ray", ["-O", "actors=2"])
    pooled = _answers(tmp_path / "ray")
    assert len(pooled) >= 15 and pooled == single
    again = _run(f"ray/hf/{folder}", tmp_path / "ray", ["-O", "actors=2"])
    assert f"cached {len(pooled)}" in again  # resumed from the store: no request sent


def test_ray_on_a_two_node_cluster_joined_by_address(single, tiny_models, on_cluster, tmp_path):
    from medprobe.backends import BackendConfig, create

    folder = tiny_models["llava"]
    args = ["--ray-address", on_cluster, "-O", "actors=2"]
    _run(f"ray/hf/{folder}", tmp_path / "ray", args)
    pooled = _answers(tmp_path / "ray")
    assert pooled == single
    assert {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} == {HEAD_IP, WORKER_IP}
    again = _run(f"ray/hf/{folder}", tmp_path / "ray", args)
    assert f"cached {len(pooled)}" in again
    # where the actors live: one per node (each node has the one CPU an actor reserves)
    backend = create(BackendConfig(provider="ray", model=f"hf/{folder}",
                                   options={"actors": 2, "ray_address": on_cluster, "device": "cpu"}))  # fmt: skip
    try:
        assert sorted(asyncio.run(backend.start())) == [HEAD_IP, WORKER_IP]
    finally:
        asyncio.run(backend.aclose())


def test_a_pool_the_cluster_cannot_hold_fails_before_anything_is_sent(tiny_models, on_cluster, tmp_path):
    out = _run(f"ray/hf/{tiny_models['llava']}", tmp_path / "ray", ["--ray-address", on_cluster, "-O", "actors=3"],
               code=2)  # fmt: skip
    assert "3 actors of 1 CPU" in out and "the cluster has 2" in out and "Lower -O actors" in out
    assert not (tmp_path / "ray").exists()


def test_ray_rejects_other_hosted_providers_and_bad_options(tiny_models):
    from medprobe.backends import BackendConfig, create

    with pytest.raises(ValueError, match="hosts hf or vllm"):
        create(BackendConfig(provider="ray", model="openai/gpt-4o"))
    with pytest.raises(ValueError, match="Unknown option"):
        create(BackendConfig(provider="ray", model=f"hf/{tiny_models['llava']}", options={"actor": 2}))
