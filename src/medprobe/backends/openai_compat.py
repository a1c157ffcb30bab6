"""Any OpenAI-compatible chat-completions server: vLLM, SGLang, Ollama, hosted APIs.

The backend sends one HTTP request per `Request` and never retries: it only sorts failures into
TransientError (the runner retries, honouring `retry_after`) and PermanentError (recorded as the
sample's error), each with an `ErrorKind` taken from the exception type or the HTTP status, never
from message text. aiohttp with one keep-alive session and orjson bodies: on a 2-core machine this
reached 0.93 of ideal throughput where httpx reached 0.46, so per-request work stays minimal
(image data URLs come pre-encoded and cached from `imaging.to_data_url`). Reading a reply
(size cap, parse, status kinds) lives in `openai_reply`; the key is scrubbed by `medprobe.secrets`
from every error, reply text, reasoning chain and logprob token before it leaves this module.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
import orjson
from yarl import URL

from medprobe import imaging
from medprobe.backends import openai_reply as reply
from medprobe.backends._base import BackendConfig, PermanentError, TransientError
from medprobe.backends.likelihood import from_top_logprobs, scored
from medprobe.backends.replicas import ReplicaPool
from medprobe.secrets import Scrubber
from medprobe.types import TRANSIENT_KINDS, ErrorKind, Generation, Message, Part, Request, TokenLogprob

#: hosted OpenAI, used only when --api-key-env is given without --base-url
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: preflight answers within this many seconds (or --timeout, if shorter)
PREFLIGHT_TIMEOUT_S = 10.0
OPTIONS = {
    "max_completion_tokens": "send max_completion_tokens instead of max_tokens (newer hosted OpenAI models)",
    "max_connections": "cap on open connections (default 0: unbounded, the runner's concurrency bounds it)",
    "max_reply_bytes": f"largest reply body accepted, in bytes (default {reply.MAX_REPLY_BYTES}: 4 MiB); "
    "a larger one is the sample's error",
    "replica_fail_threshold": "with several --base-url: 5xx replies in a row that take a replica out (default 3)",
    "replica_cooldown_s": "with several --base-url: seconds a failed replica stays out before a retry (default 10)",
}
#: extra_body may not replace these: they carry the request's identity and the reply's shape
_RESERVED = ("model", "messages", "stream")
_HINTS = {
    400: "the server rejected the request; check the generation settings and --image-max-side",
    404: "check --model ({model!r}) and --base-url ({url})",
    413: "the request is too large; lower --image-max-side",
    422: "the server rejected the request; check the generation settings",
}


class OpenAIBackend:
    """Chat completions over HTTP to `config.base_urls` (spread over replicas), key from `config.api_key_env`."""

    name = "openai"
    batch_size = 1
    # option-likelihood needs prompt logprobs, which the OpenAI API does not define
    answer_modes = ("generate", "next-token")

    def __init__(self, config: BackendConfig):
        unknown = set(config.options) - set(OPTIONS)
        if unknown:
            known = ", ".join(f"{k} ({v})" for k, v in OPTIONS.items())
            raise ValueError(f"Unknown option(s) for the openai backend: {', '.join(sorted(unknown))}. Known: {known}.")
        if not config.base_urls and not config.api_key_env:
            # never fall back to the hosted API silently: a forgotten --base-url would send data out
            raise ValueError(
                f"openai/{config.model} has no server: pass --base-url URL for your own server (vLLM, SGLang, "
                "Ollama), or --api-key-env VAR to use OpenAI's hosted API."
            )
        self.config = config
        self._bases = tuple(_checked(b) for b in config.base_urls or (DEFAULT_BASE_URL,))
        self._endpoints = tuple(str(_joined(b, "chat/completions")) for b in self._bases)
        self._key_env = config.api_key_env
        self._key = os.environ.get(self._key_env) if self._key_env else None
        if self._key_env and not self._key:
            raise ValueError(
                f"Environment variable {self._key_env} is not set. Set {self._key_env} or pass --api-key-env NAME."
            )
        # a password or query value typed into a --base-url is a secret too
        self._scrub = Scrubber(self._key, *(s for b in self._bases for s in _url_secrets(b)))
        self._headers = {"Content-Type": "application/json"}
        if self._key:
            self._headers["Authorization"] = f"Bearer {self._key}"
        self._max_completion = bool(config.options.get("max_completion_tokens"))
        self._max_reply = int(config.options.get("max_reply_bytes") or reply.MAX_REPLY_BYTES)
        self._pool = ReplicaPool(
            len(self._endpoints),
            fail_threshold=int(config.options.get("replica_fail_threshold") or 3),
            cooldown_s=float(config.options.get("replica_cooldown_s") or 10.0),
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.config.model!r}, url={_shown(self._bases[0])!r}, key_env={self._key_env!r})"

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        # batch_size is 1: the runner sends one request per call and gets parallelism from concurrency
        return [await self._one(request) for request in requests]

    async def preflight(self) -> None:
        """Check endpoint, key and model name within seconds, before a run fans out: GET /models on
        every replica, no retries. Raises PermanentError (kind CONNECTION, TIMEOUT, AUTH or NOT_FOUND)
        naming the flag that fixes it; returns silently when the server has no /models to ask. With
        several replicas, unreachable ones are taken out of rotation as long as one answers."""
        timeout = aiohttp.ClientTimeout(total=min(self.config.timeout_s, PREFLIGHT_TIMEOUT_S))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            checks = [self._check(session, base) for base in self._bases]
            outcomes = await asyncio.gather(*checks, return_exceptions=True)
        failures = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
        for _, exc in failures:
            if not isinstance(exc, PermanentError) or exc.kind not in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT):
                raise exc  # a wrong key or model name is wrong on every replica
        if failures and len(failures) == len(outcomes):
            raise failures[0][1]
        for i, _ in failures:
            self._pool.take_out(i)

    async def _check(self, session: aiohttp.ClientSession, base: URL) -> None:
        url = _joined(base, "models")
        shown, seconds = _shown(url), session.timeout.total
        headers = {k: v for k, v in self._headers.items() if k == "Authorization"}
        try:
            async with session.get(url, headers=headers) as resp:
                status = resp.status
                raw, over = await reply.read_capped(resp, self._max_reply)
        except aiohttp.ClientConnectorError as exc:  # refused, no route, DNS failure
            raise PermanentError(self._scrub.message(
                f"cannot connect to {shown} ({type(exc).__name__}: {exc}). Is the server running? Check --base-url."
            ), kind=ErrorKind.CONNECTION) from None  # fmt: skip
        except TimeoutError:
            raise PermanentError(
                f"{shown} did not answer within {seconds:g} s. Is the server up and reachable? Check --base-url.",
                kind=ErrorKind.TIMEOUT,
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PermanentError(self._scrub.message(
                f"connection to {shown} failed ({type(exc).__name__}: {exc}). Check --base-url."
            ), kind=ErrorKind.CONNECTION) from None  # fmt: skip
        if status in (401, 403):
            detail = self._excerpt(raw, reply.server_message(raw))
            raise PermanentError(f"HTTP {status} from {shown}: {detail}. Hint: {self._auth_hint(status)}.",
                                 kind=ErrorKind.AUTH)  # fmt: skip
        if status != 200 or over:
            return  # no models endpoint (404/405) or an odd one: the runner's first request is the gate
        served = reply.model_ids(raw)
        model = self.config.model
        # Ollama lists "NAME:latest" and answers to NAME
        if served and model not in served and f"{model}:latest" not in served:
            names = ", ".join(served[:10]) + (f" and {len(served) - 10} more" if len(served) > 10 else "")
            raise PermanentError(self._scrub.message(
                f"model {model!r} is not served by {_shown(base)}; it serves: {names}. "
                "Pass --model openai/NAME with one of these names, or check --base-url."
            ), kind=ErrorKind.NOT_FOUND)  # fmt: skip

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> OpenAIBackend:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

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
        except PermanentError as exc:  # an image or extra_body that cannot be sent: name the sample
            raise PermanentError(f"sample {request.sample_id}: {exc}", kind=exc.kind) from None
        payload = orjson.dumps(body)
        replica = self._pool.acquire()
        url = self._endpoints[replica]
        shown = _shown(URL(url))
        start = time.perf_counter()
        answered = dead = False
        try:
            async with self._client().post(url, data=payload, headers=self._headers) as resp:
                status, headers = resp.status, resp.headers
                ok = 200 <= status < 300
                raw, over = await reply.read_capped(resp, self._max_reply if ok else reply.ERROR_BODY_BYTES)
            answered = status < 500
        except aiohttp.ClientConnectorError as exc:  # refused, no route, DNS failure: take the replica out now
            dead = True
            raise TransientError(self._scrub.message(f"connection error to {shown}: {type(exc).__name__}: {exc}"),
                                 kind=ErrorKind.CONNECTION) from None  # fmt: skip
        except TimeoutError:  # aiohttp's total timeout (asyncio.TimeoutError is TimeoutError on 3.11)
            raise TransientError(f"no answer from {shown} within {self.config.timeout_s:g}s",
                                 kind=ErrorKind.TIMEOUT) from None  # fmt: skip
        except (aiohttp.InvalidURL, aiohttp.TooManyRedirects) as exc:  # never fixed by a retry
            raise PermanentError(f"cannot follow {shown} ({type(exc).__name__}): check --base-url, e.g. "
                                 "http://host:8000/v1", kind=ErrorKind.BAD_REQUEST) from None  # fmt: skip
        except (aiohttp.ClientError, OSError) as exc:  # reset, server disconnect, truncated body: worth a retry
            raise TransientError(self._scrub.message(f"connection error to {shown}: {type(exc).__name__}: {exc}"),
                                 kind=ErrorKind.CONNECTION) from None  # fmt: skip
        finally:
            self._pool.release(replica, ok=answered, dead=dead)
        if not ok:
            raise self._http_error(status, headers, raw, shown)
        if over:
            raise PermanentError(
                f"the reply from {shown} is larger than {self._max_reply} bytes; lower --max-tokens, or raise "
                "-O max_reply_bytes=N if replies this long are expected",
                kind=ErrorKind.REPLY_TOO_LARGE,
            )
        try:
            gen = self._scrubbed(reply.parse(raw, time.perf_counter() - start))
        except reply.BadReply as exc:
            raise TransientError(f"garbage body from {shown} (HTTP {status}, {exc}): {self._excerpt(raw)!r}",
                                 kind=ErrorKind.BAD_REPLY) from None  # fmt: skip
        return gen if request.scoring is None else self._scored(request, gen, shown)

    def _scored(self, request: Request, gen: Generation, shown: str) -> Generation:
        assert request.scoring is not None
        if not gen.logprobs:
            raise PermanentError(
                f"{shown} returned no logprobs: --answer-mode next-token needs a server that returns them "
                "(vLLM, SGLang); use --answer-mode generate for this server.",
                kind=ErrorKind.UNSUPPORTED,
            )
        first = gen.logprobs[0]
        top = dict(first.top) | {first.token: first.logprob}
        scores = from_top_logprobs(request.scoring, top)
        return scored(request.scoring, scores, gen.usage, gen.latency_s, logprobs=gen.logprobs)

    def _scrubbed(self, gen: Generation) -> Generation:
        """The generation with the key gone from its text, reasoning and logprob tokens (an echo of the
        request is still a reply, and replies are stored)."""
        if not self._scrub:
            return gen
        logprobs = gen.logprobs
        if logprobs:
            tokens = self._scrub.tokens([t.token for t in logprobs])
            logprobs = tuple(
                TokenLogprob(token=tok, logprob=t.logprob, top=tuple((self._scrub(a), lp) for a, lp in t.top))
                for tok, t in zip(tokens, logprobs, strict=True)
            )
        return gen.model_copy(update={
            "text": self._scrub(gen.text) if gen.text else gen.text,
            "reasoning": self._scrub(gen.reasoning) if gen.reasoning else gen.reasoning,
            "finish_reason": self._scrub(gen.finish_reason) if gen.finish_reason else gen.finish_reason,
            "logprobs": logprobs,
        })  # fmt: skip

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
        # extra_body comes last, so a field the user wrote there wins over the standard one (they asked
        # for it explicitly, e.g. a server-specific temperature). The fields naming the model, holding
        # the conversation or changing the reply's shape stay ours.
        if reserved := sorted(set(cfg.extra_body) & set(_RESERVED)):
            raise PermanentError(f"extra_body may not set {', '.join(reserved)}: use --model and the prompt "
                                 "options for those", kind=ErrorKind.BAD_REQUEST)  # fmt: skip
        body.update(cfg.extra_body)
        if request.scoring is not None:  # next-token: the first reply token's top alternatives, whatever else
            body.update({"max_tokens": 1, "logprobs": True, "top_logprobs": 20, "temperature": 0.0})
            body.pop("max_completion_tokens", None)
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
            raise PermanentError("an image part has no image reference; check the prompt builder",
                                 kind=ErrorKind.BACKEND)  # fmt: skip
        try:
            digest = next(hashes, None)
            # a digest means the runner already hashed this image under the run's --allow-outside-root
            # policy (runner.build_request refuses escaping paths unless allowed), so honour that choice
            url = imaging.to_data_url(part.image, max_side, allow_outside_root=digest is not None, digest=digest)
        except imaging.ImageError as exc:
            raise PermanentError(str(exc), kind=ErrorKind.BAD_INPUT) from None
        return {"type": "image_url", "image_url": {"url": url}}

    def _http_error(self, status: int, headers: Any, raw: bytes | bytearray, shown: str) -> Exception:
        kind = reply.status_kind(status)
        text = f"HTTP {status} from {shown}: {self._excerpt(raw, reply.server_message(raw))}"
        if kind in TRANSIENT_KINDS:
            return TransientError(text, retry_after=reply.retry_after(headers), kind=kind)
        if kind is ErrorKind.AUTH:
            hint = self._auth_hint(status)
        else:
            hint = _HINTS.get(status, "retrying will not help").format(model=self.config.model, url=shown)
        return PermanentError(f"{text}. Hint: {hint}.", kind=kind)

    def _auth_hint(self, status: int) -> str:
        if not self._key:
            return "the server wants an API key: set one in an environment variable and pass --api-key-env NAME"
        if status == 403:
            return f"the key in ${self._key_env} has no access to model {self.config.model!r}; check --api-key-env"
        return f"check the key in ${self._key_env} (--api-key-env)"

    def _excerpt(self, raw: bytes | bytearray, text: str | None = None, limit: int = 200) -> str:
        """A short, one-line, scrubbed piece of a reply for an error message."""
        # scrub before cutting (Scrubber.cut): a cut through the key would leave a prefix no scrubber matches
        text = text if text is not None else raw.decode("utf-8", "replace")  # whole: bounded by the read cap
        return self._scrub.cut(" ".join(self._scrub.message(text).split()), limit) or "<empty body>"


def _checked(base: str) -> URL:
    try:
        url = URL(base)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        # the URL itself is not echoed: a hand-typed one may carry a key in its query
        raise ValueError("Invalid --base-url: expected http(s)://HOST[:PORT]/v1, e.g. http://127.0.0.1:8000/v1.")
    return url


def _joined(base: URL, path: str) -> URL:
    """`base` + "/path", keeping a query the server may need (e.g. Azure's api-version)."""
    return base.with_path(base.path.rstrip("/") + "/" + path).with_query(base.query)


def _shown(url: URL) -> str:
    """A URL safe to show in messages: no user:password, no query (either may carry a key)."""
    return str(url.with_user(None).with_query(None).with_fragment(None))


def _url_secrets(url: URL) -> list[str]:
    # short values (api-version=1) are not secrets worth masking everywhere
    return [s for s in (url.password, *url.query.values()) if s and len(s) >= 8]
