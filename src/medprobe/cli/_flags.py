"""The options `run` and `suite` share, parsed into a RunSpec in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

def _ray_address(flags: _Flags, provider: str) -> dict[str, str]:
    """`--ray-address` as the ray backend's `ray_address` option (a transport setting: not in the run identity)."""
    if not flags.ray_address:
        return {}
    if provider != "ray":
        raise ValueError(f"--ray-address is for Ray backends: --model ray/hf/<model> or ray/vllm/<model>, not {provider}/...")
    return {"ray_address": flags.ray_address}

@dataclass(frozen=True)
class _Flags:
    """The options `run` and `suite` share, under the parameter names both commands use (defaults as in
    `run`); `spec` parses them into a RunSpec, so the two commands parse them in one place."""

    model: str
    base_url: list[str] | None = None
    api_key_env: str | None = None
    concurrency: int | None = None
    timeout: float = 120.0
    retries: int = 4
    limit: int | None = None
    split: str | None = None
    data: str | None = None
    images_dir: Path | None = None
    mapping: Path | None = None
    prompt: str = ""
    max_tokens: int = 512
    temperature: float = 0.0
    logprobs: int = 0
    image_max_side: int | None = None
    train_split: str | None = None
    seed: int = 0
    allow_outside_root: bool = False
    fetch_images: bool = False
    window: str | None = None
    slice_: str | None = None
    montage: int | None = None
    plane: str | None = None
    dicom_tag: list[str] | None = None
    section: str | None = None
    backend_option: list[str] | None = None
    ray_address: str | None = None
    probe: list[str] | None = None
    answer_mode: str = "generate"
    extra_body: str | None = None
    body_field: list[str] | None = None
    max_errors: str = "0"
    breaker: int = 10
    max_concurrency: int = 256
    rpm: float | None = None
    tpm: float | None = None
    max_cost: float | None = None
    prices: Path | None = None

    @classmethod
    def of(cls, values: dict) -> _Flags:
        """The flags among a command's parameters (`locals()`); those it lacks keep `run`'s defaults."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def spec(self, bench: str):
        """The RunSpec of these flags on `bench`; ValueError names the flag to fix."""
        from medprobe.backends.options import parse_extra_body, parse_options
        from medprobe.backends import BackendConfig, parse_model
        from medprobe.benchmarks import LoadOptions
        from medprobe.pipeline import RunSpec, parse_max_errors
        from medprobe.runner import RunSettings
        from medprobe.medimage.view import make_view
        from medprobe.types import GenerationConfig

        f = self
        provider, name = parse_model(f.model)
        view = make_view(f.window, f.slice_, f.montage, f.plane)
        if f.dicom_tag:
            from medprobe.medimage.tags import check as check_tags

            check_tags(f.dicom_tag)
        price = None
        if f.prices is not None:
            from medprobe.budget import load_prices, price_for

            price = price_for(load_prices(f.prices), f.model)
        elif f.max_cost is not None:
            raise ValueError('--max-cost needs the model\'s price: pass --prices FILE, e.g. a JSON file holding '
                             '{"' + name + '": {"input": 2.50, "output": 10.00}} (USD per million tokens)')
        return RunSpec(
            benchmark=bench,
            load=LoadOptions(split=f.split, data=f.data, images_dir=str(f.images_dir) if f.images_dir else None,
                             limit=f.limit, mapping=str(f.mapping) if f.mapping else None,
                             allow_outside_root=f.allow_outside_root, view=view, dicom_tags=tuple(f.dicom_tag or ()),
                             section=f.section),
            backend=BackendConfig(provider=provider, model=name, base_urls=tuple(f.base_url or ()),
                                  api_key_env=f.api_key_env, timeout_s=f.timeout,
                                  options={**({"seed": f.seed} if provider == "baseline" else {}),
                                           **parse_options(f.backend_option or ()), **_ray_address(f, provider)}),
            prompt=f.prompt,
            generation=GenerationConfig(max_tokens=f.max_tokens, temperature=f.temperature,
                                        image_max_side=f.image_max_side, logprobs=f.logprobs > 0,
                                        top_logprobs=f.logprobs,
                                        extra_body=parse_extra_body(f.extra_body, f.body_field or ())),
            settings=RunSettings(concurrency=f.concurrency, timeout_s=f.timeout, max_retries=f.retries,
                                 allow_outside_root=f.allow_outside_root, breaker=f.breaker,
                                 fetch_images=f.fetch_images, max_concurrency=f.max_concurrency, rpm=f.rpm, tpm=f.tpm,
                                 max_cost_usd=f.max_cost, price=price),
            seed=f.seed, train_split=f.train_split, answer_mode=f.answer_mode, probes=tuple(f.probe or ()),
            max_errors=parse_max_errors(f.max_errors),
        )  # fmt: skip
