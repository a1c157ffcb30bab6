"""The openai backend against a real vLLM OpenAI-compatible server (CPU build) started here on loopback
with the tiny Idefics3 folder: text and logprobs, the same greedy answers as hf, next-token scoring
from the server's top logprobs, and `medprobe run` end to end. The server is ready in ~40 s."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytest.importorskip("torch")
pytest.importorskip("vllm")

from medprobe.backends import BackendConfig, create  # noqa: E402
from medprobe.types import AnswerType  # noqa: E402
from test_hf import _requests  # noqa: E402

NAME = "tiny-idefics3"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(tiny_vllm_model, tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` (the package's `vllm` console script is broken)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_vllm_model),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", NAME, "--max-model-len", "1024",
           "--enforce-eager", "--dtype", "float32", "--gpu-memory-utilization", "0.3"]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM server not ready in 240 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _openai(url):
    return create(BackendConfig(provider="openai", model=NAME, base_urls=(url,)))


def test_openai_backend_returns_text_and_logprobs_like_hf(tiny_vllm_model, vllm_server):
    requests = _requests(n=4)
    got = asyncio.run(_run(_openai(vllm_server), requests))
    hf = create(BackendConfig(provider="hf", model=str(tiny_vllm_model), options={"dtype": "float32"}))
    expected = asyncio.run(hf.generate(requests))
    for e, g in zip(expected, got, strict=True):
        assert g.ok and g.usage.completion_tokens == e.usage.completion_tokens
        assert g.text == e.text  # PNG data URLs decode to the same pixels: the same greedy tokens
        assert len(g.logprobs) == len(e.logprobs) and all(len(t.top) == 2 for t in g.logprobs)
        assert [t.logprob for t in g.logprobs] == pytest.approx([t.logprob for t in e.logprobs], abs=2e-3)


async def _run(backend, requests):
    try:
        return [(await backend.generate([r]))[0] for r in requests]
    finally:
        await backend.aclose()


def test_cli_against_the_server_generate_and_next_token(vllm_server, tmp_path):
    from typer.testing import CliRunner

    from medprobe.cli import app
    from medprobe.store import RECORDS, RunStore

    for mode in ("generate", "next-token"):
        out = tmp_path / mode
        args = ["run", "vqa-rad-demo", "--model", f"openai/{NAME}", "--base-url", vllm_server, "--out", str(out),
                "--max-tokens", "4", "--concurrency", "4", "--answer-mode", mode]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        records = [r for r in RunStore(out / RECORDS).records() if r.keys]
        assert len(records) >= 15 and all(r.answered for r in records)
        if mode == "next-token":
            closed = [r for r in records if r.sample.prompt_kind == AnswerType.CLOSED]
            assert closed and all(set(r.final.option_scores) == {"yes", "no"} for r in closed)
