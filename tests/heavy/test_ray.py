"""The ray backend on CPU: 2 actors hosting the hf backend give the same records as a single-process hf
run, write into the ordinary run store, and a second run resumes with nothing sent; the same on a
two-node Ray cluster started here on loopback (a head and a worker node as separate `ray start`
processes, 1 CPU each), joined with `--ray-address`, one actor on each node; a pool the cluster cannot
hold fails before anything is sent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from _ray_cluster import HEAD_IP, WORKER_IP, loopback_cluster


def _run(model: str, out, extra=(), code: int = 0):
    from typer.testing import CliRunner

    from medprobe.cli import app

    args = ["run", "vqa-rad-demo", "--model", model, "--out", str(out), "--max-tokens", "4",
            "-O", "batch_size=4", "-O", "device=cpu", "-O", "dtype=float32", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def read_manifest(out):
    from medprobe.store import read_manifest as read

    return read(out)


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
        yield cluster.address


def _python(*args: str, code: int = 0) -> str:
    """Python in a process of its own, as medprobe runs on a cluster's head node: one `ray.init` per
    process (a second Ray session in this test process, after local_ray's, loses its actors at once)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _cluster_run(folder, out, address: str, *extra: str, code: int = 0) -> str:
    return _python("-c", "from medprobe.cli import main; main()", "run", "vqa-rad-demo", "--model",
                   f"ray/hf/{folder}", "--out", str(out), "--max-tokens", "4", "-O", "batch_size=4", "-O", "device=cpu",
                   "-O", "dtype=float32", "--ray-address", address, *extra, code=code)  # fmt: skip


_PLACEMENT = """
import asyncio, sys
from medprobe.backends import BackendConfig, create
backend = create(BackendConfig(provider="ray", model="hf/" + sys.argv[1], options={"actors": 2, "ray_address": sys.argv[2]}))
print("nodes:", ",".join(sorted(asyncio.run(backend.start()))))
asyncio.run(backend.aclose())
"""


def test_ray_on_a_two_node_cluster_joined_by_address(single, tiny_models, two_nodes, tmp_path):
    folder = tiny_models["llava"]
    _cluster_run(folder, tmp_path / "ray", two_nodes, "-O", "actors=2")
    pooled = _answers(tmp_path / "ray")
    assert pooled == single
    _cluster_run(folder, tmp_path / "ray", two_nodes, "-O", "actors=2")
    execution = read_manifest(tmp_path / "ray").last_execution
    assert execution is not None and (execution.sent, execution.cached) == (0, len(pooled))  # resumed: nothing sent
    # where the actors live: one per node (each node has the one CPU an actor reserves)
    placement = _python("-c", _PLACEMENT, str(folder), two_nodes)
    assert f"nodes: {HEAD_IP},{WORKER_IP}" in placement


def test_a_pool_the_cluster_cannot_hold_fails_before_anything_is_sent(tiny_models, two_nodes, tmp_path):
    out = _cluster_run(tiny_models["llava"], tmp_path / "ray", two_nodes, "-O", "actors=3", code=2)
    assert "3 actors of 1 CPU" in out and "the cluster has 2" in out and "Lower -O actors" in out
    assert not (tmp_path / "ray").exists()


def test_ray_two_actors_match_single_process_and_resume(single, tiny_models, local_ray, tmp_path):
    folder = tiny_models["llava"]
    _run(f"ray/hf/{folder}", tmp_path / "ray", ["-O", "actors=2"])
    pooled = _answers(tmp_path / "ray")
    assert len(pooled) >= 15 and pooled == single
    again = _run(f"ray/hf/{folder}", tmp_path / "ray", ["-O", "actors=2"])
    assert f"cached {len(pooled)}" in again  # resumed from the store: no request sent


def test_ray_rejects_other_hosted_providers_and_bad_options(tiny_models):
    from medprobe.backends import BackendConfig, create

    with pytest.raises(ValueError, match="hosts hf or vllm"):
        create(BackendConfig(provider="ray", model="openai/gpt-4o"))
    with pytest.raises(ValueError, match="Unknown option"):
        create(BackendConfig(provider="ray", model=f"hf/{tiny_models['llava']}", options={"actor": 2}))


def test_every_actor_loads_its_model_when_the_pool_starts(tiny_models, local_ray):
    import asyncio

    from medprobe.backends import BackendConfig, create

    backend = create(BackendConfig(provider="ray", model=f"hf/{tiny_models['llava']}",
                                   options={"actors": 2, "device": "cpu", "dtype": "float32"}))  # fmt: skip
    try:
        asyncio.run(backend.start())
        # the 1-request gate batch reaches one actor only; the other must not be left to load on the next batch
        loaded = ray.get([a.loaded.remote() for a in backend._actors])
    finally:
        asyncio.run(backend.aclose())
    assert loaded == [True, True]
