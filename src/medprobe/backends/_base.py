"""The backend seam: one verb, `generate`, and a lazy registry of providers.

Caching, concurrency, retries and progress wrap a backend from outside (`medprobe.runner`),
so a new backend is one small file. Heavy dependencies are imported inside the factories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from pydantic import Field

from medprobe.types import ErrorKind, Frozen, Generation, Request


class BackendConfig(Frozen):
    """Everything a backend needs to start. Secrets are never stored here, only the env var's name."""

    provider: str = Field(description="registry name, e.g. 'openai', 'baseline', 'scripted'")
    model: str = Field(description="model name as the provider knows it")
    base_urls: tuple[str, ...] = ()
    api_key_env: str | None = Field(None, description="name of the environment variable holding the API key")
    timeout_s: float = 120.0
    options: dict[str, str | int | float | bool | None] = Field(default_factory=dict)

    def public(self) -> dict:
        """Settings safe to write in a manifest: base URLs lose user:password and query strings,
        where a hand-typed key may hide (the key itself is only ever read from the env var)."""
        from yarl import URL

        def safe(url: str) -> str:
            try:
                return str(URL(url).with_user(None).with_query(None).with_fragment(None))
            except ValueError:
                return "<unparseable URL>"

        return {**self.model_dump(), "base_urls": [safe(u) for u in self.base_urls]}


class TransientError(Exception):
    """A failure worth retrying (5xx, 429, timeout, connection reset, garbage body); `kind` says which."""

    def __init__(self, message: str, retry_after: float | None = None, kind: ErrorKind = ErrorKind.SERVER):
        super().__init__(message)
        self.retry_after = retry_after
        self.kind = kind


class PermanentError(Exception):
    """A failure that retrying cannot fix (400, 401, 404, a bad image): recorded as the sample's error."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.BAD_REQUEST):
        super().__init__(message)
        self.kind = kind


@runtime_checkable
class Backend(Protocol):
    """A model. `generate` returns one Generation per request, in order, or raises
    TransientError / PermanentError for the whole call."""

    name: str
    #: requests per `generate` call the runner should send; HTTP backends take 1 and rely on concurrency
    batch_size: int

    async def generate(self, requests: Sequence[Request]) -> list[Generation]: ...

    async def aclose(self) -> None: ...


Factory = Callable[[BackendConfig], Backend]


def _openai(config: BackendConfig) -> Backend:
    from medprobe.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(config)


def _baseline(config: BackendConfig) -> Backend:
    from medprobe.backends.baseline import BaselineBackend

    return BaselineBackend(config)


def _scripted(config: BackendConfig) -> Backend:
    from medprobe.backends.scripted import ScriptedBackend

    return ScriptedBackend(config)


def _hf(config: BackendConfig) -> Backend:
    from medprobe.backends.hf import create as make

    return make(config)


def _vllm(config: BackendConfig) -> Backend:
    from medprobe.backends.vllm_offline import create as make

    return make(config)


def _ray(config: BackendConfig) -> Backend:
    from medprobe.backends.ray_pool import create as make

    return make(config)


_REGISTRY: dict[str, tuple[Factory, str]] = {
    "openai": (_openai, "any OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama, hosted APIs)"),
    "baseline": (_baseline, "honest floors: baseline/random and baseline/prior (train-split majority per question type)"),
    "hf": (_hf, "transformers on this machine: hf/<hub id or folder> (pip install 'medprobe[hf]')"),
    "vllm": (_vllm, "vLLM offline engine: vllm/<hub id or folder> (pip install 'medprobe[vllm]')"),
    "ray": (_ray, "Ray actors hosting hf or vllm: ray/hf/<folder> -O actors=N (pip install 'medprobe[ray]')"),
    "scripted": (_scripted, "answers from a file (scripted/PATH.jsonl) or a registered function: tests and re-scoring"),
}


def register(name: str, factory: Factory, description: str) -> None:
    """Add a provider (the seam for local backends: hf, vllm, ray)."""
    _REGISTRY[name] = (factory, description)


def providers() -> dict[str, str]:
    return {name: desc for name, (_, desc) in sorted(_REGISTRY.items())}


def parse_model(spec: str) -> tuple[str, str]:
    """'openai/gpt-4o' -> ('openai', 'gpt-4o'); the model part may itself contain slashes."""
    provider, sep, model = spec.partition("/")
    if not sep or not model:
        raise ValueError(f"--model must be PROVIDER/NAME, e.g. openai/gpt-4o or baseline/prior; got {spec!r}")
    return provider, model


def create(config: BackendConfig) -> Backend:
    try:
        factory, _ = _REGISTRY[config.provider]
    except KeyError:
        raise ValueError(
            f"Unknown provider {config.provider!r}. Available: {', '.join(sorted(_REGISTRY))}. "
            "Local backends (hf, vllm, ray) need their extra: pip install 'medprobe[hf]'."
        ) from None
    return factory(config)


def chat_messages(request: Request, image_part: Callable[[object], dict]) -> tuple[list[dict], list]:
    """The request as chat-template messages (what transformers and vLLM take) and its PIL images in
    order; `image_part(img)` makes the content part an image becomes. A bad image is the sample's error."""
    from medprobe import imaging

    images, conv = [], []
    for m in request.messages:
        parts = []
        for p in m.content:
            if p.type == "text":
                parts.append({"type": "text", "text": p.text or ""})
                continue
            try:
                img = imaging.open_image(p.image, request.config.image_max_side).convert("RGB")
            except imaging.ImageError as exc:
                raise PermanentError(str(exc), kind=ErrorKind.BAD_INPUT) from None
            images.append(img)
            parts.append(image_part(img))
        conv.append({"role": m.role, "content": parts})
    return conv, images
