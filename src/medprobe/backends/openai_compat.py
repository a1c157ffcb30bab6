"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, Ollama, hosted APIs.

The backend sends one HTTP request per `Request` and never retries: it only sorts failures into
TransientError (the runner retries, honouring `retry_after`) and PermanentError (recorded as the
sample's error). aiohttp with one keep-alive session and orjson bodies: on a 2-core machine this
reached 0.93 of ideal throughput where httpx reached 0.46, so per-request work stays minimal
(image data URLs come pre-encoded and cached from `imaging.to_data_url`).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from yarl import URL

from medprobe import imaging
from medprobe.backends._base import BackendConfig, PermanentError, TransientError
from medprobe.backends.likelihood import from_top_logprobs, scored
from medprobe.backends.replicas import ReplicaPool
from medprobe.types import Generation, Message, Part, Request, TokenLogprob, Usage

#: the product default when no --base-url is given (hosted OpenAI)
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
OPTIONS = {
    "max_completion_tokens": "send max_completion_tokens instead of max_tokens (newer hosted OpenAI models)",
    "max_connections": "cap on open connections (default 0: unbounded, the runner's concurrency bounds it)",
    "replica_fail_threshold": "with several --base-url: 5xx replies in a row that take a replica out (default 3)",
    "replica_cooldown_s": "with several --base-url: seconds a failed replica stays out before a retry (default 10)",
}
#: statuses a retry can fix: timeouts, conflicts, rate limits, server faults (and any other 5xx)
_TRANSIENT = {408, 409, 425, 429}
_HINTS = {
    400: "the server rejected the request; check the generation settings and --image-max-side",
    403: "the key in ${env} has no access to model {model!r}",
    404: "check --model ({model!r}) and --base-url ({url})",
    413: "the request is too large; lower --image-max-side",
    422: "the server rejected the request; check the generation settings",
}
# defensive scrubbing of anything that looks like a credential, besides the exact key
_SECRETS = re.compile(r"(Bearer\s+)\S+|\bsk-[A-Za-z0-9_\-]{8,}", re.IGNORECASE)


class OpenAIBackend:
    """Chat completions over HTTP; `config.base_urls[0]`, key from `config.api_key_env`."""

    name = "openai"
    batch_size = 1
    # option-likelihood needs prompt logprobs, which the OpenAI API does not define
    answer_modes = ("generate", "next-token")

    def __init__(self, config: BackendConfig):
        unknown = set(config.options) - set(OPTIONS)
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in OPTIONS.items())
            raise ValueError(f"Unknown option(s) for the openai backend: {', '.join(sorted(unknown))}. Known: {known}.")
        self.config = config
        bases = [_checked(b) for b in config.base_urls or (DEFAULT_BASE_URL,)]
        self._endpoints = tuple(str(b).rstrip("/") + "/chat/completions" for b in bases)
        # a URL safe to show in messages: no user:password, no query (either may carry a key)
        self._shown_url = str(bases[0].with_user(None).with_query(None))
        # a local server usually needs no key; hosted OpenAI always does
        self._key_env = config.api_key_env or (None if config.base_urls else DEFAULT_KEY_ENV)
        self._key = os.environ.get(self._key_env) if self._key_env else None
        if self._key_env and not self._key:
            raise ValueError(
                f"Environment variable {self._key_env} is not set. Set {self._key_env} or pass --api-key-env NAME."
            )
        self._headers = {"Content-Type": "application/json"}
        if self._key:
            self._headers["Authorization"] = f"Bearer {self._key}"
        self._max_completion = bool(config.options.get("max_completion_tokens"))
        self._pool = ReplicaPool(
            len(self._endpoints),
            fail_threshold=int(config.options.get("replica_fail_threshold") or 3),
            cooldown_s=float(config.options.get("replica_cooldown_s") or 10.0),
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.config.model!r}, url={self._shown_url!r}, key_env={self._key_env!r})"

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        # batch_size is 1: the runner sends one request per call and gets parallelism from concurrency
        return [await self._one(request) for request in requests]

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> OpenAIBackend:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    def _endpoint(self, request: Request) -> str:
        """Where this request goes (counted as outstanding on that replica until `_pool.release`)."""
        return self._endpoints[self._pool.acquire()]

    def _client(self) -> aiohttp.ClientSession:
        # created lazily: a ClientSession belongs to the event loop it was made in (a second
        # asyncio.run() with the same backend gets a new one)
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session_loop = loop
            limit = int(self.config.options.get("max_connections") or 0)
            connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.config.timeout_s)
            )
        return self._session

    async def _one(self, request: Request) -> Generation:
        try:
            body = self._body(request)
        except PermanentError as exc:  # an image that cannot be sent: name the sample, like planning does
            raise PermanentError(f"sample {request.sample_id}: {exc}") from None
        if request.scoring is not None:  # next-token: the first reply token's top alternatives
            body.update({"max_tokens": 1, "logprobs": True, "top_logprobs": 20, "temperature": 0.0})
            body.pop("max_completion_tokens", None)
        payload = orjson.dumps(body)
        url = self._endpoint(request)
        replica = self._endpoints.index(url)
        start = time.perf_counter()
        answered = dead = False
        try:
            async with self._client().post(url, data=payload, headers=self._headers) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
            answered = status < 500
        except aiohttp.ClientConnectorError as exc:
            dead = True  # connection refused / no route: take the replica out now
            raise TransientError(self._scrub(f"connection error to {self._shown(url)}: {type(exc).__name__}: {exc}")) from None
        except TimeoutError:  # aiohttp's total timeout (asyncio.TimeoutError is TimeoutError on 3.11)
            raise TransientError(f"no answer from {self._shown_url} within {self.config.timeout_s:g}s") from None
        except aiohttp.InvalidURL:  # base URLs are checked at construction; kept so a bad URL is never retried
            raise PermanentError(f"invalid --base-url {self._shown_url!r}: use e.g. http://host:8000/v1") from None
        except (aiohttp.ClientError, OSError) as exc:
            # connection refused / reset, server disconnect, truncated payload: worth a retry
            raise TransientError(self._scrub(f"connection error to {self._shown_url}: {type(exc).__name__}: {exc}")) from None
        finally:
            self._pool.release(replica, ok=answered, dead=dead)
        latency = time.perf_counter() - start
        if 200 <= status < 300:
            if request.scoring is not None:
                return self._scored(request, self._parse(raw, latency))
            return self._parse(raw, latency)
        raise self._http_error(status, headers, raw, self.config.model)

    def _shown(self, url: str) -> str:
        return str(URL(url).with_user(None).with_query(None))

    def _scored(self, request: Request, gen: Generation) -> Generation:
        assert request.scoring is not None
        if not gen.logprobs:
            raise PermanentError(
                f"{self._shown_url} returned no logprobs: --answer-mode next-token needs a server that returns them "
                "(vLLM, SGLang); use --answer-mode generate for this server."
            )
        first = gen.logprobs[0]
        top = dict(first.top) | {first.token: first.logprob}
        return scored(request.scoring, from_top_logprobs(request.scoring, top), gen.usage, gen.latency_s)

    def _body(self, request: Request) -> dict[str, Any]:
        cfg = request.config
        hashes = iter(request.image_hashes)  # known from planning: no re-hashing per request
        body: dict[str, Any] = {
            "model": self.config.model,  # the request's model is PROVIDER/NAME; the server knows NAME
            "messages": [self._message(m, cfg.image_max_side, hashes) for m in request.messages],
            "max_completion_tokens" if self._max_completion else "max_tokens": cfg.max_tokens,
            "temperature": cfg.temperature,
        }
        if cfg.top_p is not None:
            body["top_p"] = cfg.top_p
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        if cfg.stop:
            body["stop"] = list(cfg.stop)
        if cfg.logprobs or cfg.top_logprobs:
            body["logprobs"] = True
            if cfg.top_logprobs:
                body["top_logprobs"] = cfg.top_logprobs
        return body

    def _message(self, message: Message, max_side: int | None, hashes: Iterator[str]) -> dict[str, Any]:
        parts = message.content
        if len(parts) == 1 and parts[0].type == "text":
            # a plain string is what every server accepts, including strict system-role templates
            return {"role": message.role, "content": parts[0].text or ""}
        return {"role": message.role, "content": [self._part(p, max_side, hashes) for p in parts]}

    def _part(self, part: Part, max_side: int | None, hashes: Iterator[str]) -> dict[str, Any]:
        if part.type == "text":
            return {"type": "text", "text": part.text or ""}
        if part.image is None:
            raise PermanentError("an image part has no image reference; check the prompt builder")
        try:
            digest = next(hashes, None)
            # a digest means the runner already hashed this image under the run's --allow-outside-root
            # policy (runner.build_request refuses escaping paths unless allowed), so honour that choice
            url = imaging.to_data_url(part.image, max_side, allow_outside_root=digest is not None, digest=digest)
        except imaging.ImageError as exc:
            raise PermanentError(str(exc)) from None
        return {"type": "image_url", "image_url": {"url": url}}

    def _parse(self, raw: bytes, latency: float) -> Generation:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise TransientError(f"garbage body from {self._shown_url} (HTTP 200, not JSON): {self._excerpt(raw)!r}") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise TransientError(f"garbage body from {self._shown_url} (HTTP 200, no choices): {self._excerpt(raw)!r}")
        content = message.get("content")
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        elif not isinstance(content, str):
            content = ""  # refusal / content filter / all tokens spent on reasoning: finish_reason says why
        usage = data.get("usage")
        return Generation(
            text=content,
            logprobs=_logprobs(choice.get("logprobs")),
            usage=Usage(
                prompt_tokens=_int(usage.get("prompt_tokens")), completion_tokens=_int(usage.get("completion_tokens"))
            )
            if isinstance(usage, dict)
            else None,
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
        )

    def _http_error(self, status: int, headers: Any, raw: bytes, model: str) -> Exception:
        detail = self._excerpt(raw, _server_message(raw))
        text = f"HTTP {status} from {self._shown_url}: {detail}"
        if status == 429 or status in _TRANSIENT or status >= 500:
            return TransientError(text, retry_after=_retry_after(headers))
        if status == 401:
            hint = (
                f"check the key in ${self._key_env}"
                if self._key
                else "the server wants an API key: set one in an environment variable and pass --api-key-env NAME"
            )
        else:
            hint = _HINTS.get(status, "retrying will not help").format(
                env=self._key_env, model=model, url=self._shown_url
            )
        return PermanentError(f"{text}. Hint: {hint}.")

    def _excerpt(self, raw: bytes, text: str | None = None, limit: int = 200) -> str:
        """A short, one-line, scrubbed piece of a reply for an error message."""
        # scrub before cutting: a cut through the key would leave a prefix the scrubber cannot match
        text = self._scrub(text if text is not None else raw.decode("utf-8", "replace"))
        return " ".join(text[: limit * 4].split())[:limit] or "<empty body>"

    def _scrub(self, text: str) -> str:
        """Remove the API key from anything that may end up in an error, a log or a report."""
        if self._key:
            text = text.replace(self._key, "***")
        return _SECRETS.sub(lambda m: (m.group(1) or "") + "***", text)


def _checked(base: str) -> URL:
    try:
        url = URL(base)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        # the URL itself is not echoed: a hand-typed one may carry a key in its query
        raise ValueError("Invalid --base-url: expected http(s)://HOST[:PORT]/v1, e.g. http://127.0.0.1:8000/v1.")
    return url


def _server_message(raw: bytes) -> str | None:
    """The error text in OpenAI ({"error": {"message"}}), vLLM ({"message"}) or FastAPI ({"detail"}) shape."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])
    for value in (err, data.get("message"), data.get("detail")):
        if value:
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    return None


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait: `retry-after-ms` (OpenAI), else `Retry-After` as seconds or an HTTP-date."""
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list):
        return None
    return tuple(
        TokenLogprob(
            token=t.get("token", ""),
            logprob=float(t.get("logprob", 0.0)),
            top=tuple((a.get("token", ""), float(a.get("logprob", 0.0))) for a in t.get("top_logprobs") or ()),
        )
        for t in content
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None

