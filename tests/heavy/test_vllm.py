"""The vllm backend (CPU build) on the tiny LLaVA folder: greedy output equals hf's; likelihood modes run."""

from __future__ import annotations

import asyncio
import os

import pytest

pytest.importorskip("vllm")
# vLLM's multimodal model modules import torchvision; no CPU torchvision build matches torch 2.13 here
# (../shared/LOCAL_MODELS.md), so this tier runs only where torchvision imports (e.g. a GPU machine)
pytest.importorskip("torchvision", reason="vLLM's VLM modules need torchvision matching torch")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from medprobe.backends import BackendConfig, create  # noqa: E402
from test_hf import _requests  # noqa: E402

CPU = {"dtype": "float32", "enforce_eager": True, "max_model_len": 1024, "gpu_memory_utilization": 0.3, "batch_size": 8}


@pytest.fixture(scope="session")
def vllm_llava(tiny_models):
    """One engine per session (18-29 s to start on CPU)."""
    backend = create(BackendConfig(provider="vllm", model=str(tiny_models["llava"]), options=CPU))
    backend._load()
    yield backend


def test_vllm_greedy_equals_hf(tiny_models, vllm_llava):
    requests = _requests(n=4)
    hf = create(BackendConfig(provider="hf", model=str(tiny_models["llava"]), options={"dtype": "float32"}))
    expected = asyncio.run(hf.generate(requests))
    got = asyncio.run(vllm_llava.generate(requests))
    for e, g in zip(expected, got, strict=True):
        assert g.ok and g.text == e.text  # same ids decode to the same text
        assert g.usage.completion_tokens == e.usage.completion_tokens
        assert [t.logprob for t in g.logprobs] == pytest.approx([t.logprob for t in e.logprobs], abs=2e-2)


@pytest.mark.parametrize("mode", ["option-likelihood", "next-token"])
def test_vllm_likelihood_modes_match_hf(tiny_models, vllm_llava, mode):
    requests = [r for r in _requests(n=6, mode=mode) if r.scoring is not None][:2]
    hf = create(BackendConfig(provider="hf", model=str(tiny_models["llava"]), options={"dtype": "float32"}))
    expected = asyncio.run(hf.generate(requests))
    got = asyncio.run(vllm_llava.generate(requests))
    for e, g in zip(expected, got, strict=True):
        assert g.option_scores == pytest.approx(e.option_scores, abs=2e-2)
