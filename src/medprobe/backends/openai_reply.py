"""Reading an OpenAI chat-completions reply: its body under a size cap, its JSON into a Generation,
and what an error status means. Kept apart from the transport (`openai_compat`) so each rule about
a reply lives in one small place and is tested against the loopback server's fault modes."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from medprobe.types import ErrorKind, Generation, TokenLogprob, Usage

#: default cap on a reply body (-O max_reply_bytes): far above any real answer, far below what hurts
MAX_REPLY_BYTES = 4 * 2**20
#: an error body is only quoted in a message: read this much of it, never more
ERROR_BODY_BYTES = 64 * 2**10
_CHUNK = 64 * 2**10
#: statuses a retry can fix besides 5xx: timeout, conflict, too early (RFC 9110 15.5.9, RFC 8470)
_RETRYABLE_4XX = {408, 409, 425}


class BadReply(ValueError):
    """A 2xx body that is not an answer; the message says what is wrong with it."""


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> tuple[bytearray, bool]:
    """The body, read in chunks and never more than `cap` + 1 bytes of it held; `over` is True when it
    was larger than `cap` (then the bytes are only its start). Content-Length, when sent, fails fast."""
    if resp.content_length is not None and resp.content_length > cap and not resp.headers.get("Content-Encoding"):
        return bytearray(), True
    buf = bytearray()
    while chunk := await resp.content.read(min(_CHUNK, cap + 1 - len(buf))):
        buf += chunk
        if len(buf) > cap:
            return buf, True
    return buf, False


def status_kind(status: int) -> ErrorKind:
    """The kind of a non-2xx HTTP status (from the status alone, never from the body's text)."""
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status >= 500 or status in _RETRYABLE_4XX:
        return ErrorKind.SERVER
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    return ErrorKind.BAD_REQUEST


def parse(raw: bytes | bytearray, latency: float) -> Generation:
    """A Generation from a 2xx chat-completions body; BadReply when the body is not an answer.

    `content` null is an answer only when the server says why: an OpenAI `refusal` (becomes the text,
    so it is scored as a refusal), a reasoning chain that used every token (text "", chain kept), or
    finish_reason "content_filter" (a filtered reply: text "", scored invalid; retrying gets the same).
    Otherwise it is a bad reply, retried like a 5xx."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadReply("not JSON") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise BadReply("no choices")
    finish = choice.get("finish_reason")
    # vLLM and SGLang put a reasoning parser's chain in reasoning_content; OpenRouter and Ollama in reasoning
    chains = (message.get("reasoning_content"), message.get("reasoning"))
    reasoning = next((r for r in chains if isinstance(r, str)), None)
    text = _content(message.get("content"))
    if text is None:
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            text = refusal
        elif reasoning or finish == "content_filter":
            text = ""
        else:
            what = type(message.get("content")).__name__ if message.get("content") is not None else "null"
            raise BadReply(f"content is {what}, with no refusal or reasoning")
    usage = data.get("usage")
    return Generation(
        text=text,
        reasoning=reasoning or None,
        logprobs=_logprobs(choice.get("logprobs")),
        usage=_usage(usage) if isinstance(usage, dict) else None,
        latency_s=latency,
        finish_reason=finish if isinstance(finish, str) else None,
    )


def _content(content: Any) -> str | None:
    """The reply text: a string, or the text parts of a list (some servers answer with parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return None


def _usage(usage: dict) -> Usage:
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return Usage(prompt_tokens=_int(usage.get("prompt_tokens")), completion_tokens=_int(usage.get("completion_tokens")),
                 reasoning_tokens=_int(reasoning))  # fmt: skip


def _logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list):
        return None
    try:
        return tuple(
            TokenLogprob(
                token=str(t.get("token", "")),
                logprob=float(t.get("logprob", 0.0)),
                top=tuple((str(a.get("token", "")), float(a.get("logprob", 0.0))) for a in t.get("top_logprobs") or ()),
            )
            for t in content
        )
    except (AttributeError, TypeError, ValueError):
        raise BadReply("malformed logprobs") from None


def server_message(raw: bytes | bytearray) -> str | None:
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


def model_ids(raw: bytes | bytearray) -> list[str] | None:
    """The model names of a /models listing ({"data": [{"id"}]}), None when it is not one or is one
    page of several (then a missing name proves nothing)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    listed = data.get("data") if isinstance(data, dict) else None
    if not isinstance(listed, list) or data.get("has_more"):
        return None
    return [m["id"] for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]


def retry_after(headers: Any) -> float | None:
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


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
