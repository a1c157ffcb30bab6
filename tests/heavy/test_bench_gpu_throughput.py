"""bench/gpu_throughput.py's CPU dry run (tiny Idefics3, offline engine paths only: ~45 s) keeps the GPU
script exercised; the full dry run with the `vllm serve` phase takes ~80 s and is run by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("vllm")
REPO = Path(__file__).resolve().parents[2]


def test_gpu_throughput_dry_run(tmp_path):
    out = tmp_path / "figures.json"
    cmd = [sys.executable, str(REPO / "bench" / "gpu_throughput.py"), "--dry-run", "--skip-server", "--requests", "6",
           "--json", str(out)]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    figures = json.loads(out.read_text())["figures"]
    assert set(figures) == {"raw vLLM LLM.chat", "medprobe vllm backend"}
    assert figures["raw vLLM LLM.chat"]["tokens"] == figures["medprobe vllm backend"]["tokens"] > 0
    assert "of raw" in proc.stdout
