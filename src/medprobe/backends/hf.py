"""Local models with transformers: `--model hf/<hub id or local folder>` (extra `medprobe[hf]`).

AutoProcessor + AutoModelForImageTextToText with the model's own chat template; batches are left
padded and decoded greedily unless a temperature is set. The config is read at construction (an
unsupported family fails before any request); weights load on the first call, so building the
backend is cheap (Ray actors, `--answer-mode` checks). Work runs in a thread so the event loop
stays free to store results. `chat_template_kwargs` in --extra-body reach the chat template
(`enable_thinking`); reasoning delimiters survive decoding (medprobe.backends.chains).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medprobe.backends._base import BackendConfig, PermanentError, chat_messages
from medprobe.backends.chains import Delimiters, restore_opening
from medprobe.backends.likelihood import ANSWER_MODES, scored
from medprobe.backends.options import check_known
from medprobe.types import Generation, Request, TokenLogprob, Usage

#: model_type in config.json -> family name; each is built and run in tests/heavy (qwen2_vl, qwen2_5_vl, llava,
#: gemma3, idefics3) or shares its code path in transformers' AutoModelForImageTextToText
SUPPORTED = {
    "qwen2_vl": "Qwen2-VL", "qwen2_5_vl": "Qwen2.5-VL", "llava": "LLaVA-1.5 / LLaVA-Med", "llava_next": "LLaVA-NeXT",
    "gemma3": "Gemma 3 / MedGemma", "idefics3": "Idefics3", "smolvlm": "SmolVLM",
}  # fmt: skip
OPTIONS = {
    "batch_size": "requests per forward pass (default 8)",
    "device": "cpu, cuda, cuda:1, mps (default: cuda when available)",
    "dtype": "auto, float32, bfloat16, float16 (default auto)",
    "attn_implementation": "eager, sdpa, flash_attention_2 (default: transformers' choice)",
    "trust_remote_code": "allow model code from the hub folder (default false)",
}


def _read_config(model: str) -> dict[str, Any]:
    path = Path(model)
    if path.is_dir():
        file = path / "config.json"
        if not file.is_file():
            raise ValueError(f"{model} has no config.json: pass a folder saved with save_pretrained, or a hub id.")
        return json.loads(file.read_text())
    from transformers import AutoConfig  # a hub id: resolved from the cache (or the hub when online)

    try:
        return AutoConfig.from_pretrained(model).to_dict()
    except OSError as exc:
        raise ValueError(f"Cannot find model {model!r} locally or on the hub ({exc}). Pass a local folder.") from None


class HFBackend:
    """transformers generate over batches; likelihood modes from one forward pass per choice set."""

    name = "hf"
    max_concurrency = 1  # one model, one forward at a time; batching gives the parallelism
    answer_modes = ANSWER_MODES

    def __init__(self, config: BackendConfig):
        check_known("hf", config.options, OPTIONS)
        self.config = config
        model_type = _read_config(config.model).get("model_type")
        if model_type not in SUPPORTED:
            raise ValueError(
                f"hf backend: model type {model_type!r} of {config.model} is not supported. Supported: "
                + ", ".join(f"{v} ({k})" for k, v in SUPPORTED.items())
                + ". Serve other models with vLLM and use --model openai/NAME --base-url ..."
            )
        self.model_type = model_type
        self.batch_size = int(config.options.get("batch_size") or 8)
        self._model = self._processor = None

    def load(self) -> None:
        """Load the processor and weights now (the first `generate` does it otherwise)."""
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForImageTextToText

        opts = self.config.options
        device = str(opts.get("device") or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = str(opts.get("dtype") or "auto")
        kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        if opts.get("attn_implementation"):
            kwargs["attn_implementation"] = opts["attn_implementation"]
        trust = bool(opts.get("trust_remote_code"))
        self._processor = load_processor(self.config.model, self.model_type, trust)
        self._processor.tokenizer.padding_side = "left"  # generation continues from the last position
        model = AutoModelForImageTextToText.from_pretrained(self.config.model, trust_remote_code=trust, **kwargs)
        self._model = model.to(device).eval()
        self._device = device
        self._delimiters = Delimiters.of(self._processor.tokenizer)

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return await asyncio.to_thread(self._run, list(requests))

    async def aclose(self) -> None:
        self._model = self._processor = None

    # ------------------------------------------------------------------ work in the thread
    def _run(self, requests: list[Request]) -> list[Generation]:
        self.load()
        out: dict[int, Generation] = {}
        gen_idx = [i for i, r in enumerate(requests) if r.scoring is None]
        # processors want the same number of images in every row of a batch: group by count
        groups: dict[int, list[int]] = {}
        for i in gen_idx:
            groups.setdefault(len(requests[i].image_hashes), []).append(i)
        for idx in groups.values():
            out.update(zip(idx, self._generate([requests[i] for i in idx]), strict=True))
        for i, r in enumerate(requests):
            if r.scoring is not None:
                out[i] = self._score(r)
        return [out[i] for i in range(len(requests))]

    def conversation(self, request: Request) -> tuple[list[dict], list]:
        """Messages in the chat-template shape and the PIL images in order."""
        return chat_messages(request, lambda _img: {"type": "image"})  # the processor takes the images apart

    def _inputs(self, texts: list[str], images: list[list]):
        flat = [im for row in images for im in row]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if flat:
            kwargs["images"] = images  # nested per row: every supported processor accepts it, Gemma3 needs it
        return self._processor(**kwargs).to(self._device)

    def prompt_text(self, conv: list[dict], template_kwargs: dict[str, Any] | None = None) -> str:
        # extra template variables (Qwen3's enable_thinking) come from --extra-body chat_template_kwargs
        return self._processor.apply_chat_template(conv, tokenize=False, add_generation_prompt=True,
                                                   **(template_kwargs or {}))  # fmt: skip

    def _generate(self, requests: list[Request]) -> list[Generation]:
        import torch

        start = time.perf_counter()
        cfg = requests[0].config  # the runner batches one job: one config (checked below)
        if any(r.config != cfg for r in requests):  # e.g. the think probe's two arms: one batch per config
            groups: dict[str, list[int]] = {}
            for i, r in enumerate(requests):
                groups.setdefault(r.config.model_dump_json(), []).append(i)
            done: dict[int, Generation] = {}
            for idx in groups.values():
                done.update(zip(idx, self._generate([requests[i] for i in idx]), strict=True))
            return [done[i] for i in range(len(requests))]
        convs = [self.conversation(r) for r in requests]
        prompts = [self.prompt_text(c, cfg.extra_body.get("chat_template_kwargs")) for c, _ in convs]
        inputs = self._inputs(prompts, [ims for _, ims in convs])
        sample = cfg.temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": cfg.max_tokens, "do_sample": sample}
        if sample:
            kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p or 1.0)
            if cfg.seed is not None:
                torch.manual_seed(cfg.seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        want_lp = cfg.logprobs or cfg.top_logprobs > 0
        with torch.inference_mode():
            out = self._model.generate(**inputs, **kwargs, return_dict_in_generate=True, output_logits=want_lp)
        prompt_len = inputs["input_ids"].shape[1]
        new = out.sequences[:, prompt_len:]
        tok = self._processor.tokenizer
        eos = set(_as_list(self._model.generation_config.eos_token_id) or [tok.eos_token_id])
        latency = (time.perf_counter() - start) / len(requests)
        gens = []
        for row, request in enumerate(requests):
            ids = new[row].tolist()
            n = next((k for k, t in enumerate(ids) if t in eos), None)
            finish = "stop" if n is not None else "length"
            kept = ids[:n] if n is not None else ids
            text, opened = restore_opening(prompts[row], self._delimiters.decode(tok, kept))
            text, stopped = _apply_stop(text, cfg.stop)
            lps = None
            if want_lp:
                steps = torch.stack([lg[row] for lg in out.logits[: len(kept)]]).float().log_softmax(-1) if kept else None
                lps = tuple(_token_lp(tok, steps[k], t, cfg.top_logprobs) for k, t in enumerate(kept)) if kept else ()
            prompt_tokens = int(inputs["attention_mask"][row].sum())
            gens.append(Generation(
                text=text, logprobs=lps, latency_s=latency, finish_reason="stop" if stopped else finish,
                usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(kept) + (n is not None),
                            reasoning_tokens=self._delimiters.chain_tokens(kept, opened)),
            ))  # fmt: skip
        return gens

    def _score(self, request: Request) -> Generation:
        """Log-likelihoods of each choice as the reply: prompt + choice text through one forward pass."""
        import torch

        start = time.perf_counter()
        scoring = request.scoring
        assert scoring is not None
        conv, images = self.conversation(request)
        prefix = self.prompt_text(conv, request.config.extra_body.get("chat_template_kwargs"))
        tok = self._processor.tokenizer
        n_prefix = len(tok(prefix, add_special_tokens=False)["input_ids"])
        if scoring.mode == "next-token":
            texts = [prefix]
        else:
            texts = [prefix + c for c in scoring.choices]
        inputs = self._inputs(texts, [images] * len(texts))
        with torch.inference_mode():
            logits = self._model(**inputs).logits.float().log_softmax(-1)
        ids = inputs["input_ids"]
        width = ids.shape[1]
        scores: list[float] = []
        if scoring.mode == "next-token":
            for choice in scoring.choices:
                first = tok(choice, add_special_tokens=False)["input_ids"][0]
                scores.append(float(logits[0, -1, first]))
        else:
            for row, choice in enumerate(scoring.choices):
                n_text = len(tok(prefix + choice, add_special_tokens=False)["input_ids"])
                n = n_text - n_prefix  # choice tokens: the row's last n positions (left padding)
                if n <= 0:
                    raise PermanentError(f"choice {choice!r} adds no tokens after the prompt")
                pos = torch.arange(width - n, width)
                lp = logits[row, pos - 1].gather(-1, ids[row, pos].unsqueeze(-1)).squeeze(-1)
                scores.append(float(lp.mean()))
        usage = Usage(prompt_tokens=int(inputs["attention_mask"].sum()), completion_tokens=0)
        return scored(scoring, scores, usage, time.perf_counter() - start)


#: families whose transformers-5 processor requires a video processor, which needs torchvision
_VIDEO_PROCESSOR_CLASSES = {"qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}


def load_processor(model: str, model_type: str | None = None, trust_remote_code: bool = False):
    """AutoProcessor, or for Qwen2-VL / Qwen2.5-VL without torchvision an image-only processor.

    transformers 5 makes these processors load and type-check a video processor, and video processors
    need torchvision, even for image-only prompts. Without torchvision the processor is built from its
    tokenizer (with the chat template) and image processor (the PIL one) and no video processor:
    images and text are processed exactly as by the full processor; passing videos is an error.
    """
    from transformers import AutoProcessor
    from transformers.utils import is_torchvision_available

    if model_type not in _VIDEO_PROCESSOR_CLASSES or is_torchvision_available():
        return AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    base = getattr(transformers, _VIDEO_PROCESSOR_CLASSES[model_type])

    class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None  # no video processor: the check itself would import torchvision
            return super().check_argument_for_proper_class(argument_name, argument)

    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    images = AutoImageProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    # the processor's template (chat_template.jinja, or the legacy chat_template.json), else the tokenizer's
    template = base.get_processor_dict(model)[0].get("chat_template") or tokenizer.chat_template
    return ImageOnlyProcessor(images, tokenizer, None, chat_template=template)


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [int(value)]


def _apply_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cut = min((i for s in stops if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _token_lp(tok, step, token_id: int, k: int) -> TokenLogprob:
    top = ()
    if k:
        values, idx = step.topk(min(k, step.shape[-1]))
        top = tuple((tok.decode([int(i)]), float(v)) for v, i in zip(values, idx, strict=True))
    value = float(step[token_id])
    return TokenLogprob(token=tok.decode([token_id]), logprob=value if math.isfinite(value) else -1e9, top=top)


def create(config: BackendConfig) -> HFBackend:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return HFBackend(config)
