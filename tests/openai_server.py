"""A real, scripted OpenAI-compatible chat server on loopback, for tests and benchmarks.

In a thread:      with OpenAIServer(script={"effusion": "yes"}, latency=0.05) as srv: srv.base_url
In a subprocess:  with serve_subprocess(latency=0.2, script={...}, faults=[...]) as base_url: stats(base_url)
From a shell:     python tests/openai_server.py --port 0 --latency 0.2 --config '{"script": {"x": "y"}, "faults": [...]}'
                  (prints the port on its first stdout line; --config holds OpenAIServer keyword arguments)

A script maps the last user text to an answer: a callable `fn(Received) -> str | Reply | None`, or a
mapping {substring: answer} (first key found in the question wins), else `default`. None means a
refused answer (content null, finish_reason "content_filter"). A `Reply` adds a reasoning chain
(sent as `reasoning_content`, like vLLM and SGLang; it spends max_tokens first, so a long chain ends
with content null and finish_reason "length"), message fields set verbatim (`refusal`, a non-string
`content`) and logprobs. `echo_key` answers with the Authorization key in every encoding an echo takes.
Faults are `Fault` rules checked in order; the first whose index/match/times/rate all fit fires.
GET /v1/models (what a preflight asks) checks `api_key` and lists `models`; with `models` None it
answers 404, like a server with no models endpoint (it takes any name), and `models_status` forces a status.
`max_in_flight=N` plays a server at capacity: past N requests being answered, it answers 429 with Retry-After.
Handler work is kept tiny (one orjson parse, base64 + sha256 per image, a PIL header read) so one
process serves well over 400 req/s of ~70 KB bodies on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import io
import random
import re
import select
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

_DATA_URL = re.compile(r"data:(image/(?:png|jpeg|jpg|gif|webp));base64,")
_MAGIC = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8\xff", "image/jpg": b"\xff\xd8\xff", "image/gif": b"GIF8"}
_TOKEN = re.compile(r"\s*\S+")  # tokens keep their leading space, like byte-level BPE ("Yes", " it")


@dataclass(frozen=True)
class Reply:
    """A scripted answer with more control than a plain string."""

    text: str | None
    finish_reason: str | None = None
    #: explicit logprobs: [(token, logprob, [(alt, logprob), ...]), ...]; default: deterministic fakes
    logprobs: list[tuple[str, float, list[tuple[str, float]]]] | None = None
    #: send content as a list of {"type": "text"} parts instead of a string
    as_parts: bool = False
    #: a reasoning chain, sent in `reasoning_key` and counted in usage.completion_tokens_details.reasoning_tokens
    reasoning: str | None = None
    reasoning_key: str = "reasoning_content"
    #: message fields sent verbatim, overriding the computed ones: {"content": 42}, {"refusal": "I can't"}
    message: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Fault:
    """One fault rule. kind: an HTTP status (500, 429, 401, ...) or "hang", "non_json",
    "no_choices", "empty_choices" (`choices: []`), "drop" (close the connection without answering),
    "huge" (a valid reply of `size` bytes, with Content-Length) or "huge_stream" (the same, chunked,
    written 64 KiB at a time so the server never holds it). In `message`, "{echo}" becomes the
    received key in every encoding (`echoes`)."""

    kind: int | str
    index: int | Sequence[int] | None = None  # 0-based arrival index (or indexes) since the last reset
    match: str | None = None  # substring of the last user text
    times: int | None = None  # fire at most this many times (then answer normally)
    rate: float = 1.0  # fire with this probability (seeded)
    retry_after: str | float | None = None  # Retry-After header value, sent verbatim (seconds or HTTP-date)
    message: str | None = None  # error message / garbage body; default per kind
    hang_s: float = 3600.0  # how long "hang" sleeps before answering normally
    size: int = 10 * 2**20  # bytes of a "huge" reply

    @classmethod
    def of(cls, spec: Fault | Mapping[str, Any] | int | str) -> Fault:
        """A rule from a Fault, a dict of its fields (JSON fault plans), or a bare kind (500, "hang")."""
        return spec if isinstance(spec, Fault) else cls(**spec) if isinstance(spec, Mapping) else cls(kind=spec)


@dataclass
class ImageSeen:
    mime: str
    sha256: str
    nbytes: int
    width: int | None = None
    height: int | None = None


@dataclass
class Received:
    """One request as the server saw it; image URLs in `body` are replaced by "<sha256:...>"."""

    index: int
    question: str  # text of the last user message
    auth: str | None  # the Authorization header
    model: str | None
    images: list[ImageSeen] = field(default_factory=list)
    image_error: str | None = None
    body: dict = field(default_factory=dict)
    fault: str | None = None
    at: float = 0.0  # arrival time on the server's event-loop clock (seconds)

    @property
    def image_count(self) -> int:
        return len(self.images)


Script = Callable[[Received], "str | Reply | None"] | Mapping[str, "str | Reply | None"] | None


class OpenAIServer:
    """The scripted server; start it in a thread with `start()` / `with`, or serve it from `main()`."""

    def __init__(self, script: Script = None, *, default: str = "yes", latency: float = 0.0, faults=(),
                 models: tuple[str, ...] | None = None, api_key: str | None = None, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0, inspect_images: bool = True,
                 models_status: int | None = None, max_in_flight: int | None = None, busy_retry_after: float = 1.0):
        self.host, self.port = host, port
        self.in_flight = 0
        #: decode and hash every image (tests); benchmarks turn it off so the server's own CPU
        #: time does not count against the client being measured
        self.inspect_images = inspect_images
        self.models, self.api_key, self.seed = models, api_key, seed
        self.reset(script, default=default, latency=latency, faults=faults)
        #: answer GET /models with this status instead (404/405: a server with no models endpoint)
        self.models_status = models_status
        #: a server at capacity: a request arriving while this many are being answered gets a 429 with
        #: Retry-After `busy_retry_after` seconds (recorded with fault "busy"); None = no limit
        self.max_in_flight, self.busy_retry_after = max_in_flight, busy_retry_after
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- scripting (safe to call from the test thread: plain attribute swaps) --
    def reset(self, script: Script = None, *, default: str = "yes", latency: float = 0.0, faults=()) -> None:
        self.requests: list[Received] = []
        #: GET /models requests seen (their Authorization headers)
        self.model_queries: list[str | None] = []
        self.models_status: int | None = None
        self.max_in_flight: int | None = None
        self.busy_retry_after, self.peak_in_flight = 1.0, 0
        self.script, self.default, self.latency = script, default, latency
        self.set_faults(*faults)
        self._rng = random.Random(self.seed)

    def set_script(self, script: Script, default: str | None = None) -> None:
        self.script = script
        if default is not None:
            self.default = default

    def set_faults(self, *faults: Fault | Mapping[str, Any] | int | str) -> None:
        # one attribute swap, so a handler on the server thread never sees rules and counts of different plans
        self.plan = ([Fault.of(f) for f in faults], [0] * len(faults))

    def set_latency(self, seconds: float) -> None:
        self.latency = seconds

    def count(self, substring: str | None = None) -> int:
        """How many requests arrived (whose question contains `substring`)."""
        return sum(1 for r in self.requests if substring is None or substring in r.question)

    def stats(self) -> dict[str, Any]:
        reqs = list(self.requests)
        return {
            "requests": len(reqs),
            "by_question": dict(Counter(r.question for r in reqs)),
            "faults": dict(Counter(r.fault for r in reqs if r.fault)),
            "auth": sorted({r.auth or "" for r in reqs}),
            "images": sum(r.image_count for r in reqs),
            "image_errors": sum(1 for r in reqs if r.image_error),
            "peak_in_flight": self.peak_in_flight,
        }

    # -- HTTP --
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/_stats", self._stats)
        return app

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _models(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.model_queries.append(auth)
        if self.models_status is not None:
            return _error(self.models_status, "no such route")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return _error(401, f"Incorrect API key provided: {_bearer(auth)}")
        if self.models is None:  # it answers to any model name, so it has no list that could exclude one
            return _error(404, "this server serves any model name; set `models` to list some")
        data = [{"id": m, "object": "model"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "request body is not a JSON object")
        index = len(self.requests)  # no await until the append below: indexes are unique
        rec = Received(index, "", request.headers.get("Authorization"), body.get("model"), body=body, at=arrived)
        _inspect(rec, self.inspect_images)
        self.requests.append(rec)
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            rec.fault = "busy"  # answered at once, like a gateway shedding load
            return _error(429, "Too many requests in flight, retry later",
                          {"Retry-After": f"{self.busy_retry_after:g}"})
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer_chat(request, rec, index, arrived)
        finally:
            self.in_flight -= 1

    async def _answer_chat(self, request: web.Request, rec: Received, index: int, arrived: float) -> web.StreamResponse:
        fault = self._pick_fault(index, rec.question)
        if self.latency:  # the reply leaves `latency` seconds after the request arrived, work included
            await asyncio.sleep(max(0.0, self.latency - (asyncio.get_running_loop().time() - arrived)))
        if fault is not None:
            rec.fault = str(fault.kind)
            return await self._inject(fault, request, rec)
        if self.api_key is not None and rec.auth != f"Bearer {self.api_key}":
            return _error(401, f"Incorrect API key provided: {_bearer(rec.auth)}")  # echoes, like real APIs
        if self.models is not None and rec.model not in self.models:
            return _error(404, f"The model `{rec.model}` does not exist.")
        if rec.image_error:
            return _error(400, rec.image_error)
        return web.Response(body=orjson.dumps(self._completion(rec)), content_type="application/json")

    def _pick_fault(self, index: int, question: str) -> Fault | None:
        faults, fired = self.plan
        for i, f in enumerate(faults):
            if f.index is not None and index not in (f.index if isinstance(f.index, Sequence) else (f.index,)):
                continue
            if f.match is not None and f.match not in question:
                continue
            if f.times is not None and fired[i] >= f.times:
                continue
            if f.rate < 1.0 and self._rng.random() >= f.rate:
                continue
            fired[i] += 1
            return f
        return None

    async def _inject(self, fault: Fault, request: web.Request, rec: Received) -> web.StreamResponse:
        kind = fault.kind
        if kind == "hang":
            await asyncio.sleep(fault.hang_s)
            return web.Response(body=orjson.dumps(self._completion(rec)), content_type="application/json")
        if kind == "non_json":
            return web.Response(text=_echoed(fault.message, rec) or "<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        if kind == "no_choices":
            return web.json_response({"id": f"chatcmpl-{rec.index}", "object": "chat.completion",
                                      "message": _echoed(fault.message, rec) or "upstream overloaded"})
        if kind == "empty_choices":
            return web.json_response({"id": f"chatcmpl-{rec.index}", "object": "chat.completion", "choices": []})
        if kind in ("huge", "huge_stream"):
            return await _huge(request, fault.size, stream=kind == "huge_stream")
        if kind == "drop":
            request.transport.close()  # the client sees a server disconnect, no status line
            raise asyncio.CancelledError  # stop aiohttp from writing to the closed transport
        status = int(kind)
        message = _echoed(fault.message, rec) or _DEFAULT_MESSAGES.get(status, "error").format(
            key=_bearer(rec.auth), model=rec.model)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
        return _error(status, message, headers)

    def _completion(self, rec: Received) -> dict[str, Any]:
        reply = self._answer(rec)
        text, finish = reply.text, reply.finish_reason
        body = rec.body
        tokens = _TOKEN.findall(text) if text else []
        thought = _TOKEN.findall(reply.reasoning) if reply.reasoning else []
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        reasoning = reply.reasoning
        if limit is not None and len(thought) >= limit:  # the chain spent every token: no answer at all
            thought, tokens, text, finish = thought[:limit], [], None, "length"
            reasoning = "".join(thought)
        elif limit is not None and len(thought) + len(tokens) > limit:
            tokens, finish = tokens[: limit - len(thought)], "length"
            text = "".join(tokens)
        finish = finish or ("content_filter" if text is None else "stop")
        logprobs = None
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            rows = reply.logprobs or [
                (t, -0.01 * (i + 1), [(t, -0.01 * (i + 1))] + [(f"<alt{j}>", -0.01 * (i + 1) - j) for j in range(1, k)])
                for i, t in enumerate(tokens)]
            logprobs = {"content": [{"token": t, "logprob": lp, "top_logprobs": [
                {"token": a, "logprob": alp} for a, alp in top[:k]]} for t, lp, top in rows]}
        content: Any = text
        if reply.as_parts and text is not None:
            content = [{"type": "text", "text": t} for t in (tokens or [text])]
        prompt_tokens = len(rec.question.split()) + 64 * rec.image_count
        message: dict[str, Any] = {"role": "assistant", "content": content}
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": len(thought) + len(tokens),
                                 "total_tokens": prompt_tokens + len(thought) + len(tokens)}
        if reasoning is not None:
            message[reply.reasoning_key] = reasoning
            usage["completion_tokens_details"] = {"reasoning_tokens": len(thought)}
        message.update(reply.message or {})
        return {
            "id": f"chatcmpl-{rec.index}", "object": "chat.completion", "created": 0, "model": rec.model,
            "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}],
            "usage": usage,
        }

    def _answer(self, rec: Received) -> Reply:
        script, answer = self.script, self.default
        if callable(script):
            answer = script(rec)
        elif script:
            answer = next((a for key, a in script.items() if key in rec.question), self.default)
        return answer if isinstance(answer, Reply) else Reply(answer)

    # -- hosting in a background thread --
    def start(self) -> OpenAIServer:
        """Serve from a daemon thread (works from sync code and from inside a running event loop)."""
        bound: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                runner = loop.run_until_complete(self._serve())
            except BaseException as exc:  # a bind error surfaces in the caller's thread
                bound.set_exception(exc)
                return
            bound.set_result(None)
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="openai-server", daemon=True)
        self._thread.start()
        bound.result(timeout=30)
        return self

    async def _serve(self) -> web.AppRunner:
        # handler_cancellation: a "hang" handler dies when the client gives up, so shutdown is quick
        runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = self._loop = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


_DEFAULT_MESSAGES = {
    400: "Invalid request: unsupported parameter", 401: "Incorrect API key provided: {key}",
    403: "You do not have access to model {model}", 404: "The model `{model}` does not exist.",
    408: "Request timeout", 409: "Conflict, please retry", 422: "Unprocessable request",
    429: "Rate limit reached, retry later", 500: "Internal server error", 502: "Bad gateway",
    503: "Service unavailable", 504: "Gateway timeout",
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    payload = {"error": {"message": message, "type": kind, "code": status}}
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json", headers=headers)


def _bearer(auth: str | None) -> str:
    return (auth or "").removeprefix("Bearer ")


def echoes(secret: str) -> str:
    """`secret` in every form an echo of a request can take (issue 8): verbatim, URL-encoded three
    ways, JSON-escaped (`\\/` and `\\uXXXX`), spaced out, and base64 (alone, inside Basic auth, and
    at each of the 3 offsets of a base64 group)."""
    raw = secret.encode()
    b64 = [base64.b64encode(pre + raw).decode() for pre in (b"", b"Bearer ", b"x", b"xy", b"user:")]
    forms = [secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote(secret), urllib.parse.quote_plus(secret),
             orjson.dumps(secret).decode()[1:-1].replace("/", "\\/"), "".join(f"\\u{ord(c):04x}" for c in secret),
             " ".join(secret), "\n".join(secret), *b64, base64.urlsafe_b64encode(raw).decode()]
    return " | ".join(forms)


def echo_key(rec: Received) -> str:
    """A script that answers with the request's key in every encoding (an echoing proxy or model)."""
    return "You sent: " + echoes(_bearer(rec.auth))


def _echoed(message: str | None, rec: Received) -> str | None:
    return message.replace("{echo}", echoes(_bearer(rec.auth))) if message else message


async def _huge(request: web.Request, size: int, stream: bool) -> web.StreamResponse:
    """A valid completion whose content makes the body `size` bytes."""
    head = b'{"id": "chatcmpl-huge", "object": "chat.completion", "choices": [{"index": 0, "message": ' \
           b'{"role": "assistant", "content": "'
    tail = b'"}, "finish_reason": "stop"}]}'
    filler = max(0, size - len(head) - len(tail))
    if not stream:
        return web.Response(body=head + b"x" * filler + tail, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(head)
    chunk = b"x" * 2**16
    with contextlib.suppress(ConnectionError):  # the client stops reading at its cap and hangs up
        for _ in range(filler // len(chunk)):
            await resp.write(chunk)
        await resp.write(b"x" * (filler % len(chunk)) + tail)
        await resp.write_eof()
    return resp


def _inspect(rec: Received, images: bool = True) -> None:
    """Fill question and images; check each image is a valid base64 PNG/JPEG data URL."""
    for msg in rec.body.get("messages") or ():
        content = msg.get("content")
        if isinstance(content, str):
            if msg.get("role") == "user":
                rec.question = content
            continue
        texts = []
        for part in content or ():
            if part.get("type") == "text":
                texts.append(part.get("text") or "")
            elif part.get("type") == "image_url" and not images:
                rec.images.append(ImageSeen("unchecked", "", 0))
            elif part.get("type") == "image_url":
                url = (part.get("image_url") or {}).get("url") or ""
                seen = _check_image(url)
                if isinstance(seen, str):
                    rec.image_error = rec.image_error or seen
                    continue
                rec.images.append(seen)
                part["image_url"]["url"] = f"<sha256:{seen.sha256}>"  # keep the log small
        if msg.get("role") == "user":
            rec.question = "\n".join(texts)


def _check_image(url: str) -> ImageSeen | str:
    m = _DATA_URL.match(url)
    if not m:
        return f"image_url is not a base64 image data URL: {url[:40]!r}"
    try:
        data = base64.b64decode(url[m.end():], validate=True)
    except (binascii.Error, ValueError):
        return "image data URL has invalid base64"
    mime = m.group(1)
    if mime in _MAGIC and not data.startswith(_MAGIC[mime]):
        return f"image bytes do not match {mime}"
    seen = ImageSeen(mime, hashlib.sha256(data).hexdigest(), len(data))
    try:
        from PIL import Image

        seen.width, seen.height = Image.open(io.BytesIO(data)).size  # header only, no decode
    except ImportError:
        pass
    except Exception:
        return f"cannot decode {mime} image"
    return seen


# -- subprocess mode (benchmarks: the server gets its own core) --
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--config", default="{}", help='JSON keyword arguments: {"script": {"substring": "answer"}, '
                   '"default": "yes", "faults": [{"kind": 429, "rate": 0.05}], "models": [...], "api_key": ...}')
    a = p.parse_args(argv)
    config = orjson.loads(a.config)
    config["models"] = tuple(config["models"]) if config.get("models") else None
    server = OpenAIServer(port=a.port, latency=a.latency, **config)

    async def serve() -> None:
        await server._serve()
        print(server.port, flush=True)
        await asyncio.Event().wait()

    try:  # the server gets its own core in benchmarks; uvloop keeps its per-request overhead small
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve())


@contextlib.contextmanager
def serve_subprocess(*, latency: float = 0.0, faults=(), ready_timeout: float = 20.0, **config: Any) -> Iterator[str]:
    """Run the server in its own process (config: script as a mapping, default, models, api_key, seed);
    yields its base URL and kills it on exit."""
    config["faults"] = [asdict(Fault.of(f)) for f in faults]
    argv = [sys.executable, str(Path(__file__).resolve()), "--port", "0", "--latency", str(latency),
            "--config", orjson.dumps(config).decode()]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        readable, _, _ = select.select([proc.stdout], [], [], ready_timeout)
        line = proc.stdout.readline().strip() if readable else ""  # type: ignore[union-attr]
        if not line.isdigit():
            raise RuntimeError(f"openai_server subprocess did not start (exit code {proc.poll()}, said {line!r})")
        yield f"http://127.0.0.1:{line}/v1"
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]


def stats(base_url: str) -> dict[str, Any]:
    """The request log summary of a (subprocess) server: counts by question, faults, auth headers."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_stats", timeout=10) as resp:  # noqa: S310
        return orjson.loads(resp.read())


if __name__ == "__main__":
    main()
