"""Heavy tier: real architectures with tiny random weights (needs torch + transformers; see .ci/heavy)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """One folder per family, built once per session (about a second each)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from _tiny_models import FAMILIES, build

    root = tmp_path_factory.mktemp("tiny")
    return {family: build(family, root / family) for family in FAMILIES}


@pytest.fixture(scope="session")
def tiny_vllm_model(tiny_models) -> Path:
    """The family vLLM's CPU build loads here without torchvision (Idefics3; see _tiny_models.VLLM_FAMILIES)."""
    return tiny_models["idefics3"]
