"""OpenAIBackend against a real loopback OpenAI-compatible server (tests/openai_server.py)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import socket
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openai_server import Fault, Reply, serve_subprocess, stats
from PIL import Image

from medprobe import imaging
from medprobe.backends import Backend, BackendConfig, PermanentError, TransientError
from medprobe.backends.openai_compat import OpenAIBackend
from medprobe.types import GenerationConfig, ImageRef, Message, Part, Request

KEY_ENV = "MEDPROBE_TEST_KEY"
KEY = "Zq7/xR+2mW=pL9vKc4Tn8hJ3uB6yF1dS"  # no recognisable prefix: only the scrubber can find it
VQA_RAD = Path(__file__).parents[2] / "shared/data/vqa_rad/images"


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (12, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 60)).save(buf, format=fmt)
    return buf.getvalue()


def request(question: str, images: tuple[ImageRef, ...] = (), system: str | None = None, **cfg) -> Request:
    parts = tuple(Part(type="image", image=i) for i in images) + (Part(type="text", text=question),)
    messages = ((Message(role="system", content=(Part(type="text", text=system),)),) if system else ()) + (
        Message(role="user", content=parts),
    )
    return Request(sample_id="s1", model="tiny-vlm", messages=messages, config=GenerationConfig(**cfg),
                   image_hashes=tuple(imaging.sha256(i) for i in images))


@pytest.fixture
async def make_backend(openai_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    made: list[OpenAIBackend] = []

    def make(timeout_s: float = 5.0, **options) -> OpenAIBackend:
        config = BackendConfig(provider="openai", model="tiny-vlm", base_urls=(openai_server.base_url,),
                               api_key_env=KEY_ENV, timeout_s=timeout_s, options=options)
        made.append(OpenAIBackend(config))
        return made[-1]

    yield make
    for backend in made:
        await backend.aclose()


async def test_text_answers_and_request_body(openai_server, make_backend):
    openai_server.set_script({"effusion": "Yes, a small effusion."}, default="No.")
    backend = make_backend()
    assert isinstance(backend, Backend)
    gens = await backend.generate([request("Is there a pleural effusion?", system="Be brief.", seed=3,
                                           top_p=0.9, stop=("\n",), max_tokens=32)])
    assert gens[0].text == "Yes, a small effusion." and gens[0].finish_reason == "stop"
    assert (await backend.generate([request("Is the heart enlarged?")]))[0].text == "No."
    first = openai_server.requests[0]
    assert first.auth == f"Bearer {KEY}" and first.model == "tiny-vlm"
    body = first.body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"], body["stop"]) == (32, 0.0, 0.9, 3, ["\n"])
    assert "logprobs" not in body and "max_completion_tokens" not in body


async def test_max_completion_tokens_option(openai_server, make_backend):
    await make_backend(max_completion_tokens=True).generate([request("q", max_tokens=7)])
    body = openai_server.requests[0].body
    assert body["max_completion_tokens"] == 7 and "max_tokens" not in body


async def test_images_arrive_byte_exact(openai_server, make_backend, tmp_path):
    png = image_bytes("PNG")
    (tmp_path / "scan.jpg").write_bytes(jpg := image_bytes("JPEG", (20, 10)))
    refs = (ImageRef(data=png), ImageRef(path="scan.jpg", root=str(tmp_path)))
    await make_backend().generate([request("Describe both.", refs)])
    seen = openai_server.requests[0].images
    assert [(s.mime, s.sha256) for s in seen] == [
        ("image/png", hashlib.sha256(png).hexdigest()), ("image/jpeg", hashlib.sha256(jpg).hexdigest())]
    assert openai_server.requests[0].body["messages"][0]["content"][-1] == {"type": "text", "text": "Describe both."}


async def test_real_vqa_rad_jpegs(openai_server, make_backend):
    files = sorted(VQA_RAD.glob("*.jpg"))[:3] if VQA_RAD.is_dir() else []
    if not files:
        pytest.skip(f"VQA-RAD sample images not found at {VQA_RAD}")
    backend = make_backend()
    for f in files:
        await backend.generate([request("What organ is shown?", (ImageRef(path=f.name, root=str(VQA_RAD)),))])
    got = [r.images[0].sha256 for r in openai_server.requests]
    assert got == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert all(r.images[0].mime == "image/jpeg" and r.images[0].width for r in openai_server.requests)


async def test_image_max_side_downscales(openai_server, make_backend):
    await make_backend().generate([request("q", (ImageRef(data=image_bytes("PNG", (300, 200))),), image_max_side=64)])
    seen = openai_server.requests[0].images[0]
    assert (seen.width, seen.height) == (64, 43)


async def test_logprobs_usage_latency(openai_server, make_backend):
    openai_server.set_script({"yes or no": "Yes it is"})
    openai_server.set_latency(0.05)
    gen = (await make_backend().generate([request("yes or no?", logprobs=True, top_logprobs=3)]))[0]
    body = openai_server.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 3
    assert "".join(t.token for t in gen.logprobs) == "Yes it is"
    assert gen.logprobs[0].logprob == pytest.approx(-0.01) and len(gen.logprobs[0].top) == 3
    assert gen.logprobs[0].top[0] == ("Yes", pytest.approx(-0.01))
    assert gen.usage.prompt_tokens == 3 and gen.usage.completion_tokens == 3
    assert gen.latency_s >= 0.05


async def test_scripted_logprobs_and_no_logprobs_when_not_asked(openai_server, make_backend):
    openai_server.set_script(lambda rec: Reply("No", logprobs=[("No", -0.2, [("No", -0.2), ("Yes", -1.7)])]))
    backend = make_backend()
    gen = (await backend.generate([request("q", logprobs=True, top_logprobs=2)]))[0]
    assert gen.logprobs[0].top == (("No", -0.2), ("Yes", -1.7))
    assert (await backend.generate([request("q")]))[0].logprobs is None


async def test_content_parts_refusal_and_length(openai_server, make_backend):
    backend = make_backend()
    openai_server.set_script(lambda rec: Reply("A B C", as_parts=True))
    assert (await backend.generate([request("q")]))[0].text == "A B C"
    openai_server.set_script(lambda rec: None)  # content null, finish_reason content_filter
    gen = (await backend.generate([request("q")]))[0]
    assert gen.text == "" and gen.finish_reason == "content_filter" and gen.error is None
    openai_server.set_script(lambda rec: "one two three four")
    gen = (await backend.generate([request("q", max_tokens=2)]))[0]
    assert gen.text == "one two" and gen.finish_reason == "length"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 409])
async def test_server_errors_are_transient_and_not_retried(openai_server, make_backend, status):
    openai_server.set_faults(status)
    with pytest.raises(TransientError, match=str(status)):
        await make_backend().generate([request("q")])
    assert openai_server.count() == 1  # the runner retries, never the backend


async def test_429_retry_after_seconds_and_date(openai_server, make_backend):
    backend = make_backend()
    openai_server.set_faults(Fault(429, retry_after="7", times=1))
    with pytest.raises(TransientError) as exc:
        await backend.generate([request("q")])
    assert exc.value.retry_after == 7.0
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    openai_server.set_faults(Fault(429, retry_after=format_datetime(when, usegmt=True)))
    with pytest.raises(TransientError) as exc:
        await backend.generate([request("q")])
    assert 25 <= exc.value.retry_after <= 31


async def test_hang_times_out_as_transient(openai_server, make_backend):
    openai_server.set_faults("hang")
    start = time.perf_counter()
    with pytest.raises(TransientError, match="within 0.3s"):
        await make_backend(timeout_s=0.3).generate([request("q")])
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(("fault", "pattern"), [
    ("non_json", "garbage body.*not JSON.*502 Bad Gateway"),
    ("no_choices", "garbage body.*no choices"),
    ("drop", "connection error"),
])
async def test_broken_replies_are_transient(openai_server, make_backend, fault, pattern):
    openai_server.set_faults(fault)
    with pytest.raises(TransientError, match=pattern):
        await make_backend().generate([request("q")])


async def test_connection_refused_is_transient(make_backend, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=(f"http://127.0.0.1:{port}/v1",)))
    try:
        with pytest.raises(TransientError, match="connection error"):
            await backend.generate([request("q")])
    finally:
        await backend.aclose()


@pytest.mark.parametrize(("status", "pattern"), [
    (400, "Invalid request"), (403, "no access"), (404, "does not exist.*check --model"), (422, "Unprocessable"),
])
async def test_client_errors_are_permanent(openai_server, make_backend, status, pattern):
    openai_server.set_faults(status)
    with pytest.raises(PermanentError, match=pattern):
        await make_backend().generate([request("q")])


async def test_unknown_model_from_server(openai_server, make_backend):
    openai_server.models = ("real-model",)
    with pytest.raises(PermanentError, match="tiny-vlm.*does not exist.*check --model"):
        await make_backend().generate([request("q")])


async def test_key_never_leaks(openai_server, make_backend):
    openai_server.api_key = "the-right-key"  # the server answers 401 and echoes the key it got
    backend = make_backend()
    texts = [repr(backend)]
    with pytest.raises(PermanentError) as exc:
        await backend.generate([request("q")])
    assert f"${KEY_ENV}" in str(exc.value) and "Incorrect API key" in str(exc.value)
    texts += [str(exc.value), repr(exc.value)]
    openai_server.api_key = None
    for fault in (Fault("non_json", message=f"proxy saw Authorization: Bearer {KEY}"),
                  Fault("no_choices", message=f"bad key {KEY}"), Fault(500, message=KEY[:-1] + " " + KEY),
                  Fault(400, message="x" * 190 + KEY)):  # the key straddles the excerpt cut
        openai_server.set_faults(fault)
        with pytest.raises((TransientError, PermanentError)) as exc:
            await backend.generate([request("q")])
        texts += [str(exc.value), repr(exc.value)]
    leaked = [t for t in texts if KEY in t or KEY[:20] in t]
    assert not leaked and openai_server.requests[0].auth == f"Bearer {KEY}"


async def test_missing_key_env_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="Set OPENAI_API_KEY or pass --api-key-env NAME"):
        OpenAIBackend(BackendConfig(provider="openai", model="gpt-4o", api_key_env="OPENAI_API_KEY"))
    with pytest.raises(ValueError, match="Set NOPE_KEY"):
        OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=("http://127.0.0.1:1/v1",),
                                    api_key_env="NOPE_KEY"))
    with pytest.raises(ValueError, match="Unknown option.*typo"):
        OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=("http://127.0.0.1:1/v1",),
                                    options={"typo": 1}))


def test_invalid_base_url_is_a_clear_error():
    for bad in ("localhost:8000/v1", "ftp://127.0.0.1/v1", "http://[bad/v1"):
        with pytest.raises(ValueError, match="Invalid --base-url"):
            OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=(bad,)))


# a session left open in a finished loop cannot be closed from the next one; Python warns when it is collected
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_backend_survives_a_second_event_loop(openai_server):
    backend = OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=(openai_server.base_url,)))
    assert asyncio.run(backend.generate([request("q")]))[0].text == "yes"  # no aclose: a forgetful caller
    assert asyncio.run(backend.generate([request("q")]))[0].text == "yes"
    asyncio.run(backend.aclose())
    gc.collect()  # collect the abandoned session here, under this test's warning filters


async def test_bad_image_is_permanent(make_backend):
    with pytest.raises(PermanentError, match="cannot be decoded"):
        await make_backend().generate([request("q", (ImageRef(data=b"\x89PNG not really"),))])


async def test_concurrent_requests_share_the_session(openai_server, make_backend):
    openai_server.set_latency(0.2)
    backend = make_backend()
    start = time.perf_counter()
    gens = await asyncio.gather(*(backend.generate([request(f"q{i}")]) for i in range(50)))
    assert len(gens) == 50 and time.perf_counter() - start < 1.5  # parallel, not 50 x 0.2 s
    await backend.aclose()
    await backend.aclose()  # idempotent


@pytest.mark.slow
async def test_subprocess_server_and_fault_schedule(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    faults = [Fault(500, match="flaky", times=2)]
    with serve_subprocess(script={"flaky": "ok"}, faults=faults) as base_url:
        backend = OpenAIBackend(BackendConfig(provider="openai", model="m", base_urls=(base_url,), api_key_env=KEY_ENV))
        try:
            outcomes = []
            for _ in range(3):
                try:
                    outcomes.append((await backend.generate([request("a flaky question")]))[0].text)
                except TransientError:
                    outcomes.append("transient")
        finally:
            await backend.aclose()
        assert outcomes == ["transient", "transient", "ok"]
        s = stats(base_url)
    assert s["by_question"] == {"a flaky question": 3} and s["faults"] == {"500": 2} and s["auth"] == [f"Bearer {KEY}"]
