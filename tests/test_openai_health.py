"""Run health on the openai backend, against the real loopback server (tests/openai_server.py):
every failure carries the kind its exception type or HTTP status says, replies that are not answers
are retryable errors, reasoning stays apart from the answer, a huge reply is refused without being
held, extra_body reaches the server, next-token mode keeps its logprobs, and preflight stops a dead
server, a refused key or an unknown model within one short request."""

from __future__ import annotations

import socket
import tracemalloc

import pytest
from openai_server import Fault, Reply
from test_backend_openai import KEY, KEY_ENV, request

from medprobe.backends import BackendConfig, PermanentError, TransientError
from medprobe.backends.openai_compat import DEFAULT_BASE_URL, OPTIONS, OpenAIBackend
from medprobe.runner import RunSettings, call_with_retries
from medprobe.types import ErrorKind, ImageRef, Scoring


@pytest.fixture
async def make_backend(openai_server, monkeypatch):
    """OpenAIBackend factories aimed at the loopback server with a key; all closed at the end."""
    monkeypatch.setenv(KEY_ENV, KEY)
    made: list[OpenAIBackend] = []

    def make(timeout_s: float = 5.0, **options) -> OpenAIBackend:
        made.append(backend_at(openai_server.base_url, api_key_env=KEY_ENV, timeout_s=timeout_s, options=options))
        return made[-1]

    yield make
    for backend in made:
        await backend.aclose()


def closed_port() -> int:
    with socket.socket() as s:  # closed when the block ends: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_at(url: str, model: str = "tiny-vlm", **config) -> OpenAIBackend:
    return OpenAIBackend(BackendConfig(provider="openai", model=model, base_urls=(url,), **config))


@pytest.fixture
def no_dns(monkeypatch):
    """Names under .invalid (RFC 6761) fail to resolve, as a DNS failure does, without any lookup."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# ---------------------------------------------------------------- error kinds from structure


@pytest.mark.parametrize(("status", "error", "kind", "hint"), [
    (429, TransientError, ErrorKind.RATE_LIMITED, "Rate limit"),
    (500, TransientError, ErrorKind.SERVER, "Internal"), (503, TransientError, ErrorKind.SERVER, "unavailable"),
    (408, TransientError, ErrorKind.SERVER, "timeout"), (409, TransientError, ErrorKind.SERVER, "Conflict"),
    (425, TransientError, ErrorKind.SERVER, "425"),
    (401, PermanentError, ErrorKind.AUTH, rf"check the key in \${KEY_ENV} \(--api-key-env\)"),
    (403, PermanentError, ErrorKind.AUTH, "no access to model 'tiny-vlm'"),
    (404, PermanentError, ErrorKind.NOT_FOUND, r"check --model \('tiny-vlm'\) and --base-url \(http://127"),
    (400, PermanentError, ErrorKind.BAD_REQUEST, "generation settings"),
    (413, PermanentError, ErrorKind.BAD_REQUEST, "--image-max-side"),
    (422, PermanentError, ErrorKind.BAD_REQUEST, "Unprocessable"),
])  # fmt: skip
async def test_status_gives_the_kind_and_keeps_the_hint(openai_server, make_backend, status, error, kind, hint):
    openai_server.set_faults(status)
    with pytest.raises(error, match=hint) as exc:
        await make_backend().generate([request("q")])
    assert type(exc.value) is error and exc.value.kind is kind


async def test_kind_never_comes_from_message_text(openai_server, make_backend):
    # the issue: "429" inside synpic33429.jpg was reported as rate limited
    openai_server.set_faults(Fault(400, message="cannot read synpic33429.jpg: HTTP 404 from upstream, 503"))
    with pytest.raises(PermanentError) as exc:
        await make_backend().generate([request("q")])
    assert exc.value.kind is ErrorKind.BAD_REQUEST
    openai_server.set_faults(Fault(503, message="401 Unauthorized"))
    with pytest.raises(TransientError) as exc:
        await make_backend().generate([request("q")])
    assert exc.value.kind is ErrorKind.SERVER


@pytest.mark.parametrize(("fault", "kind"), [
    ("drop", ErrorKind.CONNECTION), ("hang", ErrorKind.TIMEOUT), ("non_json", ErrorKind.BAD_REPLY),
    ("no_choices", ErrorKind.BAD_REPLY), ("empty_choices", ErrorKind.BAD_REPLY),
])  # fmt: skip
async def test_transport_faults_give_their_kind(openai_server, make_backend, fault, kind):
    openai_server.set_faults(fault)
    with pytest.raises(TransientError) as exc:
        await make_backend(timeout_s=0.3).generate([request("q")])
    assert exc.value.kind is kind


async def test_refused_connection_and_dns_failure_are_connection_errors(no_dns):
    for url in (f"http://127.0.0.1:{closed_port()}/v1", "http://model-server.invalid:8000/v1"):
        backend = backend_at(url)
        try:
            with pytest.raises(TransientError, match="connection error") as exc:
                await backend.generate([request("q")])
        finally:
            await backend.aclose()
        assert exc.value.kind is ErrorKind.CONNECTION


async def test_unusable_image_is_bad_input(make_backend):
    with pytest.raises(PermanentError, match="sample s1: .*cannot be decoded") as exc:
        await make_backend().generate([request("q", (ImageRef(data=b"\x89PNG not really"),))])
    assert exc.value.kind is ErrorKind.BAD_INPUT


# ---------------------------------------------------------------- replies that are not answers


@pytest.mark.parametrize(("message", "what"), [
    ({"content": None}, "content is null"), ({"content": 42}, "content is int"),
    ({"content": {"text": "yes"}}, "content is dict"), ({"content": [{"type": "image_url"}]}, "content is list"),
])  # fmt: skip
async def test_content_that_is_not_text_is_a_bad_reply(openai_server, make_backend, message, what):
    openai_server.set_script(lambda rec: Reply("yes", finish_reason="stop", message=message))
    with pytest.raises(TransientError, match=f"garbage body.*{what}") as exc:
        await make_backend().generate([request("q")])
    assert exc.value.kind is ErrorKind.BAD_REPLY


async def test_bad_replies_are_retried_then_stored_as_errors(openai_server, make_backend):
    openai_server.set_script(lambda rec: Reply("yes", finish_reason="stop", message={"content": None}))
    settings = RunSettings(max_retries=2, backoff_base_s=0.01, backoff_max_s=0.01, timeout_s=5)
    [gen] = await call_with_retries(make_backend(), [request("q")], settings, __import__("random").Random(0))
    assert gen.error_kind is ErrorKind.BAD_REPLY and gen.attempts == 3 and not gen.ok
    assert openai_server.count() == 3


async def test_refusal_is_the_text_and_content_filter_an_empty_answer(openai_server, make_backend):
    backend = make_backend()
    openai_server.set_script(lambda rec: Reply(None, message={"refusal": "I can't help with that."}))
    gen = (await backend.generate([request("q")]))[0]
    assert gen.text == "I can't help with that." and gen.error is None
    openai_server.set_script(lambda rec: None)  # content null, finish_reason content_filter: the server's answer
    gen = (await backend.generate([request("q")]))[0]
    assert gen.text == "" and gen.finish_reason == "content_filter"


# ---------------------------------------------------------------- reasoning


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_is_kept_apart_from_the_answer(openai_server, make_backend, field):
    chain = "The film shows blunting of the costophrenic angle."
    openai_server.set_script(lambda rec: Reply("Yes.", reasoning=chain, reasoning_key=field))
    gen = (await make_backend().generate([request("q", max_tokens=64)]))[0]
    assert (gen.text, gen.reasoning, gen.finish_reason) == ("Yes.", chain, "stop")
    assert gen.usage.reasoning_tokens == 8 and gen.usage.completion_tokens == 9


async def test_reasoning_that_spent_every_token_is_an_empty_answer(openai_server, make_backend):
    openai_server.set_script(lambda rec: Reply("Yes.", reasoning="one two three four five six"))
    gen = (await make_backend().generate([request("q", max_tokens=4)]))[0]
    body = openai_server.requests[0]
    assert body.fault is None
    assert (gen.text, gen.reasoning, gen.finish_reason, gen.error) == ("", "one two three four", "length", None)
    assert gen.usage.reasoning_tokens == 4


# ---------------------------------------------------------------- reply size cap


async def test_a_huge_reply_is_refused_naming_the_flags(openai_server, make_backend):
    assert "max_reply_bytes" in OPTIONS
    openai_server.set_faults(Fault("huge", times=1))  # 10 MB with a Content-Length: refused before reading
    with pytest.raises(PermanentError, match="larger than 4194304 bytes.*--max-tokens.*-O max_reply_bytes") as exc:
        await make_backend().generate([request("q")])
    assert exc.value.kind is ErrorKind.REPLY_TOO_LARGE
    assert (await make_backend().generate([request("q")]))[0].text == "yes"  # the connection pool is fine after


async def test_a_streamed_huge_reply_is_never_held_past_the_cap(openai_server, make_backend):
    openai_server.set_faults("huge_stream")  # 10 MB chunked: the size is only known by reading
    backend = make_backend(max_reply_bytes=2**20)
    tracemalloc.start()
    try:
        with pytest.raises(PermanentError, match="larger than 1048576 bytes") as exc:
            await backend.generate([request("q")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exc.value.kind is ErrorKind.REPLY_TOO_LARGE
    assert peak < 3 * 2**20, f"held {peak / 2**20:.1f} MiB for a 1 MiB cap"  # the whole reply is 10 MiB


async def test_a_reply_under_the_cap_is_read_whole(openai_server, make_backend):
    openai_server.set_faults(Fault("huge_stream", size=2**20))
    gen = (await make_backend(max_reply_bytes=2 * 2**20).generate([request("q")]))[0]
    assert len(gen.text) > 2**20 - 200 and set(gen.text) == {"x"}


# ---------------------------------------------------------------- extra_body


async def test_extra_body_reaches_the_server_and_wins_over_standard_fields(openai_server, make_backend):
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20, "temperature": 0.6}
    await make_backend().generate([request("q", temperature=0.0, max_tokens=8, extra_body=extra)])
    body = openai_server.requests[0].body
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["top_k"] == 20
    assert body["temperature"] == 0.6 and body["max_tokens"] == 8  # given explicitly: the user's field wins


async def test_extra_body_cannot_replace_the_model_or_messages(openai_server, make_backend):
    with pytest.raises(PermanentError, match="extra_body may not set messages, model") as exc:
        await make_backend().generate([request("q", extra_body={"model": "other", "messages": []})])
    assert exc.value.kind is ErrorKind.BAD_REQUEST and openai_server.count() == 0


# ---------------------------------------------------------------- next-token mode keeps its logprobs


async def test_next_token_mode_keeps_the_token_logprobs(openai_server, make_backend):
    top = [("B", -0.3), ("A", -1.5), (" C", -2.5)]
    openai_server.set_script(lambda rec: Reply("B", logprobs=[("B", -0.3, top)]))
    scoring = Scoring(mode="next-token", choices=("A", "B", "C"), labels=("A", "B", "C"))
    req = request("q", extra_body={"max_tokens": 50}).model_copy(update={"scoring": scoring})
    gen = (await make_backend().generate([req]))[0]
    assert gen.text == "B" and gen.option_scores == {"A": -1.5, "B": -0.3, "C": -2.5}
    assert gen.logprobs[0].token == "B" and gen.logprobs[0].top == tuple(top)
    body = openai_server.requests[0].body
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)  # scoring wins


# ---------------------------------------------------------------- preflight


async def test_preflight_passes_a_healthy_server_without_a_chat_request(openai_server, make_backend):
    openai_server.models = ("other", "tiny-vlm")
    await make_backend().preflight()
    assert openai_server.model_queries == [f"Bearer {KEY}"] and openai_server.count() == 0


async def test_preflight_on_a_dead_server_names_the_url_and_flag(no_dns):
    for url in (f"http://127.0.0.1:{closed_port()}/v1", "http://model-server.invalid:8000/v1"):
        with pytest.raises(PermanentError, match="cannot connect to http://.*/v1/models.*--base-url") as exc:
            await backend_at(url).preflight()
        assert exc.value.kind is ErrorKind.CONNECTION


async def test_preflight_on_a_silent_server_times_out_as_told():
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        with pytest.raises(PermanentError, match="did not answer within 0.5 s.*--base-url") as exc:
            await backend_at(url, timeout_s=0.5).preflight()
    assert exc.value.kind is ErrorKind.TIMEOUT


async def test_preflight_refused_key_names_api_key_env(openai_server, make_backend):
    openai_server.api_key, openai_server.models = "the-right-key", ("tiny-vlm",)
    with pytest.raises(PermanentError, match=rf"HTTP 401.*Incorrect API key.*\${KEY_ENV} \(--api-key-env\)") as exc:
        await make_backend().preflight()
    assert exc.value.kind is ErrorKind.AUTH and KEY not in str(exc.value)
    with pytest.raises(PermanentError, match="pass --api-key-env NAME") as exc:  # no key sent at all
        await backend_at(openai_server.base_url).preflight()
    assert exc.value.kind is ErrorKind.AUTH
    openai_server.api_key, openai_server.models_status = None, 403
    with pytest.raises(PermanentError, match="HTTP 403") as exc:
        await make_backend().preflight()
    assert exc.value.kind is ErrorKind.AUTH


async def test_preflight_unknown_model_lists_what_is_served(openai_server, make_backend):
    openai_server.models = tuple(f"model-{i:02d}" for i in range(14))
    with pytest.raises(PermanentError, match=r"'tiny-vlm' is not served by .*model-00, .*model-09 and 4 more.*"
                                             r"--model openai/NAME") as exc:  # fmt: skip
        await make_backend().preflight()
    assert exc.value.kind is ErrorKind.NOT_FOUND and "model-10" not in str(exc.value)
    openai_server.models = ("tiny-vlm:latest",)  # Ollama lists the tag and answers to the bare name
    await make_backend().preflight()


@pytest.mark.parametrize("status", [404, 405])
async def test_preflight_is_silent_when_the_server_has_no_models_endpoint(openai_server, make_backend, status):
    openai_server.models_status = status
    await make_backend().preflight()
    assert openai_server.count() == 0


async def test_preflight_takes_out_a_dead_replica_while_another_answers(openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    openai_server.models = ("tiny-vlm",)
    urls = (f"http://127.0.0.1:{closed_port()}/v1", openai_server.base_url)
    backend = OpenAIBackend(BackendConfig(provider="openai", model="tiny-vlm", base_urls=urls, api_key_env=KEY_ENV,
                                          options={"replica_cooldown_s": 60}))  # fmt: skip
    try:
        await backend.preflight()
        assert backend._pool.live() == [1]
        gens = [(await backend.generate([request(f"q{i}")]))[0] for i in range(3)]
        assert all(g.text == "yes" for g in gens) and openai_server.count() == 3
    finally:
        await backend.aclose()
    openai_server.models = ("other",)  # a wrong model name is wrong everywhere: no replica saves it
    with pytest.raises(PermanentError) as exc:
        await OpenAIBackend(BackendConfig(provider="openai", model="tiny-vlm", base_urls=urls,
                                          api_key_env=KEY_ENV)).preflight()  # fmt: skip
    assert exc.value.kind is ErrorKind.NOT_FOUND


# ---------------------------------------------------------------- no silent hosted API


def test_no_base_url_and_no_key_env_is_refused(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "set-but-never-used-implicitly")
    with pytest.raises(ValueError) as exc:
        OpenAIBackend(BackendConfig(provider="openai", model="gpt-4o"))
    assert ("pass --base-url URL for your own server (vLLM, SGLang, Ollama), or --api-key-env VAR to use "
            "OpenAI's hosted API") in str(exc.value)  # fmt: skip
    hosted = OpenAIBackend(BackendConfig(provider="openai", model="gpt-4o", api_key_env="OPENAI_API_KEY"))
    assert hosted._endpoints == (f"{DEFAULT_BASE_URL}/chat/completions",)


def test_endpoint_keeps_a_query_the_server_needs():
    backend = backend_at("http://127.0.0.1:1/v1/?api-version=2024-06-01")
    assert backend._endpoints == ("http://127.0.0.1:1/v1/chat/completions?api-version=2024-06-01",)
