"""vLLM's offline engine: `--model vllm/<hub id or local folder>` (extra `medprobe[vllm]`).

Each runner batch is one `LLM.chat` call (vLLM schedules the batch continuously inside), images as
PIL objects in `image_pil` parts. Engine options pass through `--backend-option`. Likelihood modes
use `prompt_logprobs` on prompt + choice text (one generated token, discarded). On a CPU build set
dtype=float32, enforce_eager=true and VLLM_CPU_KVCACHE_SPACE (../shared/LOCAL_MODELS.md).
`chat_template_kwargs` in --extra-body go to `LLM.chat` (one call per distinct value: the think probe
mixes enable_thinking false and true in one batch); reasoning delimiters survive decoding
(medprobe.backends.chains).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from medprobe.backends._base import BackendConfig, chat_messages
from medprobe.backends.chains import Delimiters, restore_opening
from medprobe.backends.likelihood import ANSWER_MODES, scored
from medprobe.backends.options import check_known
from medprobe.types import Generation, Request, TokenLogprob, Usage

ENGINE_OPTIONS = {
    "tensor_parallel_size": "GPUs per engine (default 1)",
    "max_model_len": "context length cap (default: the model's)",
    "gpu_memory_utilization": "share of GPU memory for weights + KV cache (on CPU: a share of RAM)",
    "load_format": "auto, safetensors, dummy (random weights: throughput benchmarks)",
    "dtype": "auto, float32, bfloat16, float16",
    "enforce_eager": "skip CUDA graphs (needed on CPU)",
    "max_num_seqs": "sequences scheduled at once",
    "seed": "engine seed",
    "trust_remote_code": "allow model code from the folder",
}
OPTIONS = {"batch_size": "requests per LLM.chat call (default 256)", **ENGINE_OPTIONS}


_ENGINES: dict[tuple, Any] = {}


def engine(model: str, **kwargs: Any):
    """One `vllm.LLM` per (model, engine options) in this process: a second backend on the same model (a
    resumed run, a CLI call inside a test session, the benchmark) reuses the loaded engine."""
    kwargs.setdefault("limit_mm_per_prompt", {"image": 4})
    key = (model, repr(sorted(kwargs.items())))
    if key not in _ENGINES:
        from vllm import LLM

        _ENGINES[key] = LLM(model=model, **kwargs)
    return _ENGINES[key]


def shutdown_engines() -> None:
    """Stop every cached engine's worker processes now (tests: before pytest closes the log streams)."""
    while _ENGINES:
        _, llm = _ENGINES.popitem()
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()


class VLLMBackend:
    name = "vllm"
    max_concurrency = 1  # one engine; the batch is the parallelism
    answer_modes = ANSWER_MODES

    def __init__(self, config: BackendConfig):
        check_known("vllm", config.options, OPTIONS)
        self.config = config
        self.batch_size = int(config.options.get("batch_size") or 256)
        self._llm = None

    def load(self):
        """The engine, started now if it is not yet (the first `generate` does it otherwise)."""
        if self._llm is None:
            kwargs: dict[str, Any] = {k: v for k, v in self.config.options.items() if k in ENGINE_OPTIONS and v is not None}
            self._llm = engine(self.config.model, **kwargs)
        return self._llm

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return await asyncio.to_thread(self._run, list(requests))

    async def aclose(self) -> None:
        self._llm = None

    # ------------------------------------------------------------------ work in the thread
    def conversation(self, request: Request) -> list[dict]:
        return chat_messages(request, lambda img: {"type": "image_pil", "image_pil": img})[0]

    def _params(self, request: Request):
        from vllm import SamplingParams

        cfg = request.config
        k = cfg.top_logprobs if cfg.top_logprobs else (1 if cfg.logprobs else None)
        return SamplingParams(
            max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p or 1.0, seed=cfg.seed,
            stop=list(cfg.stop) or None, logprobs=k,
        )  # fmt: skip

    def _run(self, requests: list[Request]) -> list[Generation]:
        llm = self.load()
        out: dict[int, Generation] = {}
        gen_idx = [i for i, r in enumerate(requests) if r.scoring is None]
        # LLM.chat takes one set of template variables per call: one call per distinct set
        by_kwargs: dict[str, list[int]] = {}
        for i in gen_idx:
            by_kwargs.setdefault(repr(_template_kwargs(requests[i])), []).append(i)
        delimiters = Delimiters.of(llm.get_tokenizer()) if gen_idx else None
        for idx in by_kwargs.values():
            start = time.perf_counter()
            results = llm.chat([self.conversation(requests[i]) for i in idx], [self._params(requests[i]) for i in idx],
                               use_tqdm=False, chat_template_kwargs=_template_kwargs(requests[idx[0]]))  # fmt: skip
            latency = (time.perf_counter() - start) / len(idx)
            for i, res in zip(idx, results, strict=True):
                out[i] = _generation(res, requests[i], latency, delimiters, llm.get_tokenizer())
        for i, r in enumerate(requests):
            if r.scoring is not None:
                out[i] = self._score(llm, r)
        return [out[i] for i in range(len(requests))]

    def _score(self, llm, request: Request) -> Generation:
        """prompt_logprobs over the prompt + each choice: the choice's tokens are the prompt's last n."""
        from vllm import SamplingParams

        start = time.perf_counter()
        scoring = request.scoring
        assert scoring is not None
        conv = self.conversation(request)
        tok = llm.get_tokenizer()
        prefix = tok.apply_chat_template(_text_only(conv), tokenize=False, add_generation_prompt=True)
        n_prefix = len(tok(prefix, add_special_tokens=False)["input_ids"])
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, logprobs=20)
        scores = []
        if scoring.mode == "next-token":
            res = llm.chat([conv], params, use_tqdm=False)[0]
            top = res.outputs[0].logprobs[0]  # {token_id: Logprob} for the first reply token
            for choice in scoring.choices:
                first = tok(choice, add_special_tokens=False)["input_ids"][0]
                if first not in top:  # not in the top 20: ask for exactly that token's prompt logprob
                    top = _prompt_lp(llm, conv, choice, tok, n_prefix, last_only=True) | top
                scores.append(top[first].logprob if hasattr(top[first], "logprob") else top[first])
        else:
            for choice in scoring.choices:
                lps = _prompt_lp(llm, conv, choice, tok, n_prefix)
                scores.append(sum(lps) / len(lps))
        return scored(scoring, scores, Usage(completion_tokens=0), time.perf_counter() - start)


def _prompt_lp(llm, conv, choice, tok, n_prefix, last_only=False):
    from vllm import SamplingParams

    full = conv + [{"role": "assistant", "content": [{"type": "text", "text": choice}]}]
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
    res = llm.chat([full], params, use_tqdm=False, add_generation_prompt=False, continue_final_message=True)[0]
    prefix = tok.apply_chat_template(_text_only(conv), tokenize=False, add_generation_prompt=True)
    n = len(tok(prefix + choice, add_special_tokens=False)["input_ids"]) - n_prefix
    ids, plps = res.prompt_token_ids, res.prompt_logprobs
    values = [plps[j][ids[j]].logprob for j in range(len(ids) - n, len(ids))]
    if last_only:
        return {ids[len(ids) - n]: values[0]}
    return values


def _text_only(conv: list[dict]) -> list[dict]:
    """The conversation with image parts as the template's image marker (token counting only)."""
    return [{"role": m["role"], "content": [p if p["type"] == "text" else {"type": "image"} for p in m["content"]]}
            for m in conv]  # fmt: skip


def _template_kwargs(request: Request) -> dict[str, Any] | None:
    return request.config.extra_body.get("chat_template_kwargs") or None


def _generation(res, request: Request, latency: float, delimiters: Delimiters | None = None, tok=None) -> Generation:
    o = res.outputs[0]
    text = o.text
    if delimiters is not None and delimiters.keep:  # the tokenizer marks <think> special: vLLM dropped it
        text = delimiters.decode(tok, o.token_ids)
    text, opened = restore_opening(res.prompt or "", text)
    lps = None
    if o.logprobs is not None:
        lps = tuple(
            TokenLogprob(
                token=step[tid].decoded_token or "", logprob=float(step[tid].logprob),
                top=tuple((lp.decoded_token or "", float(lp.logprob)) for t, lp in step.items()
                          if lp.rank is not None and lp.rank <= request.config.top_logprobs),
            )
            for tid, step in zip(o.token_ids, o.logprobs, strict=True)
        )  # fmt: skip
    return Generation(
        text=text, logprobs=lps, latency_s=latency, finish_reason=o.finish_reason,
        usage=Usage(prompt_tokens=len(res.prompt_token_ids or ()), completion_tokens=len(o.token_ids),
                    reasoning_tokens=delimiters.chain_tokens(o.token_ids, opened) if delimiters else None),
    )  # fmt: skip


def create(config: BackendConfig) -> VLLMBackend:
    return VLLMBackend(config)
