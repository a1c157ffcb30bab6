"""Generated tokens/s of a real-size VLM on one GPU: raw vLLM vs medprobe's vllm backend vs medprobe's openai
backend against a `vllm serve` (OpenAI-compatible) server on the same GPU. Target: medprobe >= 95% of raw.

The model is Qwen2.5-VL-7B's architecture with random weights (`load_format=dummy`): only its config, a
tokenizer trained here and a processor are written to a temp folder, so nothing is downloaded. The same
1,000 image questions (the 9 packaged VQA-RAD images, one unique question each) and the same prompts
(medprobe's default template) go through all three paths, greedy, `--max-tokens` each.

    python bench/gpu_throughput.py                      # GPU: 7B, 1,000 questions, 64 tokens
    python bench/gpu_throughput.py --dry-run            # CPU: tiny Idefics3, 12 questions (exercises the script)

Needs torch, transformers and vllm (GPU: `pip install vllm`; CPU dry run: requirements-heavy.txt).
Phases run one after another so each has the GPU to itself: server first, then the offline engine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import REPO, medprobe, write_benchmark

sys.path.insert(0, str(REPO / "tests" / "heavy"))  # tiny-model and tokenizer builders
CPU = {"dtype": "float32", "enforce_eager": True, "max_model_len": 1024, "gpu_memory_utilization": 0.3}


def qwen25_vl_7b(folder: Path) -> Path:
    """Qwen2.5-VL-7B-Instruct's published architecture, no weights (vLLM's load_format=dummy fills them)."""
    from _tiny_models import _QWEN_TEMPLATE, _tokenizer
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLProcessor, Qwen2VLImageProcessor

    tok = _tokenizer("qwen2_vl")
    # random weights pick any of the 152,064 ids: give every id a token so detokenizing never meets an unknown id
    tok.add_tokens([f"<|x{i}|>" for i in range(152064 - len(tok))])
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    text = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]})  # fmt: skip
    vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
                  in_chans=3, hidden_act="silu")  # fmt: skip
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                              video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                              vision_end_token_id=ids["<|vision_end|>"], eos_token_id=tok.eos_token_id,
                              pad_token_id=tok.pad_token_id, tie_word_embeddings=False, torch_dtype="bfloat16")  # fmt: skip
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    config.save_pretrained(folder)
    images = Qwen2VLImageProcessor(min_pixels=256 * 28 * 28, max_pixels=256 * 28 * 28)  # <= 256 visual tokens
    Qwen2_5_VLProcessor(image_processor=images, tokenizer=tok, chat_template=_QWEN_TEMPLATE).save_pretrained(folder)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tokens(out: Path) -> int:
    from medprobe.store import RECORDS, RunStore

    return sum(r.final.usage.completion_tokens for r in RunStore(out / RECORDS).records() if r.keys)


def run_openai(folder: Path, bench: Path, tmp: Path, engine: dict, a) -> tuple[float, int]:
    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder), "--host", "127.0.0.1",
           "--port", str(port), "--served-model-name", "bench", "--load-format", "dummy",
           "--max-num-seqs", str(a.max_num_seqs)]  # fmt: skip
    for k, v in engine.items():
        flag = "--" + k.replace("_", "-")
        cmd += [flag] if v is True else [flag, str(v)]
    log = open(tmp / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    try:
        deadline = time.monotonic() + 900
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"vllm server failed:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
                break
            except OSError:
                time.sleep(1)
        out = tmp / "openai"
        wall, _ = medprobe("run", str(bench), "--model", "openai/bench", "--base-url", f"http://127.0.0.1:{port}/v1",
                           "--out", str(out), "--max-tokens", str(a.max_tokens), "--concurrency", str(a.concurrency),
                           "--retries", "0")  # fmt: skip
        return wall, _tokens(out)
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def prompts(bench: Path, max_tokens: int):
    """The requests medprobe plans for this benchmark, and the same conversations for raw vLLM."""
    from medprobe import benchmarks
    from medprobe.backends.vllm_offline import VLLMBackend
    from medprobe.prompts import first_turn, load_template
    from medprobe.runner import Job, build_request
    from medprobe.types import GenerationConfig

    samples = benchmarks.load(str(bench), benchmarks.LoadOptions()).samples
    job = Job(samples=samples, template=load_template("default"), model="raw", config=GenerationConfig(max_tokens=max_tokens))
    requests = [build_request(job, s, first_turn(job.template, s), 0, False) for s in samples]
    return [VLLMBackend.conversation(None, r) for r in requests]  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU: tiny Idefics3 model, few questions")
    p.add_argument("--requests", type=int, default=None, help="questions (default 1000; dry run 12)")
    p.add_argument("--max-tokens", type=int, default=None, help="tokens per answer (default 64; dry run 8)")
    p.add_argument("--concurrency", type=int, default=256, help="openai backend concurrency")
    p.add_argument("--max-num-seqs", type=int, default=256, help="vLLM sequences scheduled at once (all paths)")
    p.add_argument("--skip-server", action="store_true", help="only raw vLLM and medprobe's vllm backend")
    p.add_argument("--json", type=Path, help="also write the figures here")
    a = p.parse_args()
    a.requests = a.requests or (12 if a.dry_run else 1000)
    a.max_tokens = a.max_tokens or (8 if a.dry_run else 64)
    engine = dict(CPU) if a.dry_run else {"max_model_len": 8192, "gpu_memory_utilization": 0.85}
    if a.dry_run:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        folder = tmp / "model"
        if a.dry_run:
            from _tiny_models import build

            build("idefics3", folder)
        else:
            qwen25_vl_7b(folder)
        bench = write_benchmark(tmp, a.requests)
        if not a.skip_server:
            wall, toks = run_openai(folder, bench, tmp, engine, a)
            figures["medprobe openai + vllm serve"] = {"s": wall, "tokens": toks}

        from vllm import SamplingParams

        from medprobe.backends.vllm_offline import engine as get_engine
        from medprobe.backends.vllm_offline import shutdown_engines
        from medprobe.cli import app

        options = {**engine, "load_format": "dummy", "max_num_seqs": a.max_num_seqs}
        llm = get_engine(str(folder), **options)  # started once; medprobe's vllm backend below reuses it
        convs = prompts(bench, a.max_tokens)
        llm.chat(convs[:2], SamplingParams(max_tokens=2, temperature=0.0), use_tqdm=False)  # warm-up
        start = time.perf_counter()
        res = llm.chat(convs, SamplingParams(max_tokens=a.max_tokens, temperature=0.0), use_tqdm=False)
        figures["raw vLLM LLM.chat"] = {"s": time.perf_counter() - start,
                                        "tokens": sum(len(r.outputs[0].token_ids) for r in res)}  # fmt: skip
        out = tmp / "vllm"
        opts = [x for k, v in options.items() for x in ("-O", f"{k}={v}")] + ["-O", f"batch_size={a.requests}"]
        start = time.perf_counter()
        app(["run", str(bench), "--model", f"vllm/{folder}", "--out", str(out), "--max-tokens", str(a.max_tokens),
             *opts], standalone_mode=False)  # fmt: skip
        figures["medprobe vllm backend"] = {"s": time.perf_counter() - start, "tokens": _tokens(out)}
        shutdown_engines()
        gc.collect()
    raw = figures["raw vLLM LLM.chat"]
    raw_tps = raw["tokens"] / raw["s"]
    device = "cpu (dry run)" if a.dry_run else _gpu_name()
    print(f"\n{a.requests} image questions, {a.max_tokens} max tokens, device: {device}")
    for name, f in figures.items():
        f["tokens_per_s"] = f["tokens"] / f["s"]
        f["vs_raw"] = f["tokens_per_s"] / raw_tps
        print(f"  {name:<30} {f['tokens']:>7} tokens {f['s']:>8.2f} s {f['tokens_per_s']:>9.1f} tok/s  {f['vs_raw']:.1%} of raw")
    if a.json:
        a.json.write_text(json.dumps({"device": device, "requests": a.requests, "max_tokens": a.max_tokens,
                                      "figures": figures}, indent=2))  # fmt: skip


def _gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    main()
