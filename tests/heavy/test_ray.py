"""The ray backend on CPU: 2 actors hosting the hf backend give the same records as a single-process hf
run, write into the ordinary run store, and a second run resumes with nothing sent."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _run(model: str, out, extra=()):
    from typer.testing import CliRunner

    from medprobe.cli import app

    args = ["run", "vqa-rad-demo", "--model", model, "--out", str(out), "--max-tokens", "4",
            "-O", "batch_size=4", "-O", "device=cpu", "-O", "dtype=float32", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _answers(out) -> dict[str, tuple]:
    from medprobe.store import RECORDS, RunStore

    return {r.sample.id: (r.final.text, r.final.usage.completion_tokens)
            for r in RunStore(out / RECORDS).records() if r.keys}  # fmt: skip


def test_ray_two_actors_match_single_process_and_resume(tiny_models, local_ray, tmp_path):
    folder = tiny_models["llava"]
    _run(f"hf/{folder}", tmp_path / "single")
    _run(f"ray/hf/{folder}", tmp_path / "ray", ["-O", "actors=2"])
    single, pooled = _answers(tmp_path / "single"), _answers(tmp_path / "ray")
    assert len(pooled) >= 15 and pooled == single
    again = _run(f"ray/hf/{folder}", tmp_path / "ray", ["-O", "actors=2"])
    assert f"cached {len(pooled)}" in again  # resumed from the store: no request sent


def test_ray_rejects_other_hosted_providers_and_bad_options(tiny_models):
    from medprobe.backends import BackendConfig, create

    with pytest.raises(ValueError, match="hosts hf or vllm"):
        create(BackendConfig(provider="ray", model="openai/gpt-4o"))
    with pytest.raises(ValueError, match="Unknown option"):
        create(BackendConfig(provider="ray", model=f"hf/{tiny_models['llava']}", options={"actor": 2}))
