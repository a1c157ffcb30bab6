"""The run identity and the request key cover everything that changes an answer, and nothing that only
changes how requests are sent. Each field has its own case: dropping it from the key makes that case fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medprobe.backends import BackendConfig
from medprobe.benchmarks import LoadOptions
from medprobe.benchmarks._base import Provenance
from medprobe.cli import app
from medprobe.pipeline import RunSpec, identity
from medprobe.prompts import load_template
from medprobe.runner import RunSettings
from medprobe.types import GenerationConfig, ImageRef, ImageView, Message, Part, Request, Scoring

from test_e2e_cli import make_cases

BASE = Request(sample_id="s", model="openai/m", messages=(Message(role="user", content=(Part(type="text", text="q?"),)),))
WITH_IMAGE = Request(sample_id="s", model="openai/m", image_hashes=("ab" * 32,), messages=(
    Message(role="user", content=(Part(type="image", image=ImageRef(path="x.png")), Part(type="text", text="q?"))),))


@pytest.mark.parametrize(
    "change",
    [
        {"model": "openai/other"},
        {"messages": (Message(role="user", content=(Part(type="text", text="q!"),)),)},
        {"image_hashes": ("cd" * 32,)},
        {"probe": "blind"},
        {"trial": 1},
        {"scoring": Scoring(mode="next-token", choices=("A", "B"), labels=("A", "B"))},
        {"backend_options": {"dtype": "bfloat16"}},
        {"backend_options": {"revision": "abc123"}},
        {"backend_options": {"seed": 1}},
        *({"config": GenerationConfig(**{name: value})} for name, value in [
            ("max_tokens", 7), ("temperature", 0.5), ("top_p", 0.9), ("seed", 3), ("stop", ("\n",)),
            ("logprobs", True), ("top_logprobs", 5), ("image_max_side", 512),
            ("extra_body", {"chat_template_kwargs": {"enable_thinking": True}}),
        ]),
    ],
    ids=lambda c: next(iter(c)) + (f".{next(iter(c['config'].model_fields_set))}" if "config" in c else ""),
)
def test_every_answer_changing_field_enters_the_request_key(change):
    base = WITH_IMAGE if "image_hashes" in change else BASE
    assert base.model_copy(update=change).key != base.key


def test_every_generation_setting_is_covered_above():
    # a new GenerationConfig field must get its own case in the test above
    covered = {"max_tokens", "temperature", "top_p", "seed", "stop", "logprobs", "top_logprobs", "image_max_side",
               "extra_body"}  # fmt: skip
    assert set(GenerationConfig.model_fields) == covered


def test_keys_of_earlier_runs_stay_valid():
    # fields added after schema 1 enter the key only when set, so a 0.1 run folder resumes without re-sending:
    # this is the key medprobe 0.1 computed for BASE
    assert BASE.key == "71ef71ceff5051646e5a82d3fabae017563e01f131228aec18c1974d472cf59a"


def test_a_copy_never_carries_the_originals_cached_key():
    assert BASE.key and BASE.model_copy(update={"trial": 2}).key != BASE.key


PROV = Provenance(benchmark="cases", source="medprobe:demo", split="test", sha256="0" * 64)
TEMPLATE = load_template("default")
SPEC = RunSpec(benchmark="cases", backend=BackendConfig(provider="openai", model="m", base_urls=("http://h:1/v1",)))


def _ident(**update) -> dict:
    return identity(SPEC.model_copy(update=update), PROV, TEMPLATE)


@pytest.mark.parametrize(
    "update",
    [
        {"backend": SPEC.backend.model_copy(update={"options": {"dtype": "float16"}})},
        {"backend": SPEC.backend.model_copy(update={"options": {"revision": "r2"}})},
        {"backend": SPEC.backend.model_copy(update={"model": "m2"})},
        {"seed": 1},
        {"answer_mode": "next-token"},
        {"generation": GenerationConfig(extra_body={"reasoning_effort": "high"})},
        {"generation": GenerationConfig(temperature=0.7)},
        {"probes": ("blind",)},
        {"load": LoadOptions(view=ImageView(window="lung"))},
        {"train_split": "train"},
        {"prompt": "verbal-confidence"},
    ],
)
def test_every_answer_changing_setting_enters_the_run_identity(update):
    if "prompt" in update:  # the prompt enters through its hash
        assert identity(SPEC, PROV, load_template(update["prompt"])) != _ident()
        return
    assert _ident(**update) != _ident()


@pytest.mark.parametrize(
    "update",
    [
        {"settings": RunSettings(concurrency=64, timeout_s=5, max_retries=0, breaker=3)},
        {"backend": SPEC.backend.model_copy(update={"base_urls": ("http://other:2/v1",), "timeout_s": 3,
                                                    "options": {"max_connections": 4, "batch_size": 16}})},
        {"max_errors": "5%"},
    ],
)
def test_transport_settings_stay_out_of_the_identity(update):
    assert _ident(**update) == _ident()


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_different_seed_is_refused_naming_the_field(tmp_path):
    cases = make_cases(tmp_path, 4)
    out = tmp_path / "run"
    assert cli("run", str(cases), "--model", "baseline/random", "--seed", "0", "--out", str(out)).exit_code == 0
    result = cli("run", str(cases), "--model", "baseline/random", "--seed", "1", "--out", str(out))
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "seed: 0 -> 1" in text and "backend_options.seed: 0 -> 1" in text


def test_backend_option_change_is_refused_naming_it(tmp_path):
    cases = make_cases(tmp_path, 3)
    out = tmp_path / "run"
    assert cli("run", str(cases), "--model", "scripted/constant:yes", "--out", str(out)).exit_code == 0
    result = cli("run", str(cases), "--model", "scripted/constant:yes", "-O", "dtype=float16", "--out", str(out))
    assert result.exit_code == 2 and "backend_options.dtype" in " ".join(result.output.split())


def test_same_file_by_relative_and_absolute_path_is_the_same_run(tmp_path, monkeypatch):
    cases = make_cases(tmp_path, 3)
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    assert cli("run", os.path.relpath(cases), "--model", "baseline/random", "--out", str(out)).exit_code == 0
    again = cli("run", str(Path(cases).resolve()), "--model", "baseline/random", "--out", str(out))
    assert again.exit_code == 0, again.output
