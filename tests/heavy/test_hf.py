"""The hf backend on tiny random-weight Qwen2-VL, Qwen2.5-VL, LLaVA, Gemma3 and Idefics3 models: generation,
batching, likelihoods, CLI."""

from __future__ import annotations

import asyncio

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _tiny_models import FAMILIES  # noqa: E402

from medprobe import benchmarks  # noqa: E402
from medprobe.backends import BackendConfig, create  # noqa: E402
from medprobe.benchmarks import LoadOptions  # noqa: E402
from medprobe.prompts import first_turn, load_template  # noqa: E402
from medprobe.runner import Job, build_request  # noqa: E402
from medprobe.types import AnswerType, GenerationConfig, Sample  # noqa: E402


def _requests(n=4, mode="generate", config=GenerationConfig(max_tokens=6, logprobs=True, top_logprobs=2)):
    samples = benchmarks.load("vqa-rad-demo", LoadOptions(split="test")).samples[:n]
    job = Job(samples=samples, template=load_template("default"), model="hf/tiny", config=config, answer_mode=mode)
    return [build_request(job, s, first_turn(job.template, s), 0, False) for s in samples]


def _backend(folder, batch_size=4):
    return create(BackendConfig(provider="hf", model=str(folder), options={"batch_size": batch_size, "dtype": "float32"}))


@pytest.mark.parametrize("family", FAMILIES)
def test_generates_and_batching_equals_one_by_one(tiny_models, family):
    backend = _backend(tiny_models[family])
    requests = _requests()
    batched = asyncio.run(backend.generate(requests))
    single = [asyncio.run(backend.generate([r]))[0] for r in requests]
    for b, s in zip(batched, single, strict=True):
        assert b.ok and b.usage.completion_tokens >= 1 and b.usage.prompt_tokens > 10
        # random weights emit partial UTF-8: compare tokens and their logprobs, not text
        assert [t.token for t in b.logprobs] == [t.token for t in s.logprobs]
        assert [t.logprob for t in b.logprobs] == pytest.approx([t.logprob for t in s.logprobs], abs=1e-3)
        assert len(b.logprobs[0].top) == 2


def test_unsupported_family_names_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "blip"}')
    with pytest.raises(ValueError, match="not supported. Supported: Qwen2-VL.*Gemma 3"):
        create(BackendConfig(provider="hf", model=str(tmp_path)))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["option-likelihood", "next-token"])
def test_likelihood_scores_equal_a_hand_computation(tiny_models, mode, family):
    from transformers import AutoModelForImageTextToText

    from medprobe.backends.hf import load_processor  # AutoProcessor, except Qwen2-VL without torchvision

    folder = tiny_models[family]
    sample = Sample(id="mc1", benchmark="t", question="What organ is shown?", options=("liver", "left lung", "brain"),
                    answer="A", answer_type=AnswerType.MULTIPLE_CHOICE,
                    images=benchmarks.load("vqa-rad-demo", LoadOptions(split="test")).samples[0].images)  # fmt: skip
    job = Job(samples=[sample], template=load_template("default"), model="hf/tiny", answer_mode=mode)
    request = build_request(job, sample, first_turn(job.template, sample), 0, False)
    backend = _backend(folder)
    gen = asyncio.run(backend.generate([request]))[0]
    assert set(gen.option_scores) == {"A", "B", "C"}
    assert gen.text == max(gen.option_scores, key=gen.option_scores.get)

    processor = load_processor(str(folder), family)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    conv, images = backend.conversation(request)
    prefix = processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    n_prefix = len(processor.tokenizer(prefix, add_special_tokens=False)["input_ids"])
    for label, choice in zip("ABC", request.scoring.choices, strict=True):
        text = prefix if mode == "next-token" else prefix + choice
        inputs = processor(text=[text], images=[images], return_tensors="pt")
        with torch.no_grad():
            logp = model(**inputs).logits[0].log_softmax(-1)
        ids = inputs["input_ids"][0]
        if mode == "next-token":
            expected = logp[-1, processor.tokenizer(choice, add_special_tokens=False)["input_ids"][0]].item()
        else:
            n = len(processor.tokenizer(prefix + choice, add_special_tokens=False)["input_ids"]) - n_prefix
            expected = sum(logp[len(ids) - n + k - 1, ids[len(ids) - n + k]].item() for k in range(n)) / n
        assert gen.option_scores[label] == pytest.approx(expected, abs=1e-4)


def test_cli_runs_vqa_rad_demo_end_to_end(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from medprobe.cli import app
    from medprobe.store import RECORDS, RunStore

    out = tmp_path / "run"
    args = ["run", "vqa-rad-demo", "--model", f"hf/{tiny_models['gemma3']}", "--out", str(out), "--max-tokens", "4",
            "-O", "batch_size=8", "-O", "device=cpu", "--answer-mode", "option-likelihood"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [r for r in RunStore(out / RECORDS).records() if r.keys]  # the store may also hold train samples
    assert len(records) >= 15 and all(r.answered for r in records)
    closed = [r for r in records if r.sample.prompt_kind == AnswerType.CLOSED]
    assert closed and all(set(r.final.option_scores) == {"yes", "no"} for r in closed)
    again = CliRunner().invoke(app, args)  # resumes: nothing is sent again
    assert again.exit_code == 0 and f"cached {len(records)}" in again.output
