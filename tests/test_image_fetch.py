"""Images on the network only on request: without --fetch-images an http(s) image is a sample error naming
the flag; with it, `image_fetch.prefetch` downloads each URL once (size cap, time limit, never blocking the
loop) into a content-addressed cache. Every server here is a real one on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from typer.testing import CliRunner

from medprobe import imaging
from medprobe.cli import app
from medprobe.image_fetch import INDEX, prefetch
from medprobe.prompts import PromptTemplate
from medprobe.runner import Job, RunSettings, execute
from medprobe.store import RunStore
from medprobe.types import AnswerType, Generation, ImageRef, Message, Part, Sample


def png(colour: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "PNG")
    return buf.getvalue()


PNG, OTHER = png(), png((200, 0, 0))


class ImageServer:
    """aiohttp.web on 127.0.0.1: /ok.png, /copy.png (the same bytes), /other.png, /missing.png (404),
    /big.png (5,000 bytes, with Content-Length), /stream.png (5,000 bytes chunked, no Content-Length)."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def __aenter__(self) -> ImageServer:
        app_ = web.Application()
        app_.router.add_get("/{name}", self.handle)
        self.runner = web.AppRunner(app_)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] += 1
        if name in ("ok.png", "copy.png"):
            return web.Response(body=PNG, content_type="image/png")
        if name == "other.png":
            return web.Response(body=OTHER, content_type="image/png")
        if name == "big.png":
            return web.Response(body=b"x" * 5000, content_type="image/png")
        if name == "stream.png":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(5):
                await resp.write(b"x" * 1000)
            await resp.write_eof()
            return resp
        return web.Response(status=404, text="no such image")


async def silent_host() -> tuple[asyncio.base_events.Server, str]:
    """Accepts connections, reads the request, never answers."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def sample(sid: str, *urls: str, history: str | None = None) -> Sample:
    turns = ()
    if history:
        turns = (Message(role="user", content=(Part(type="image", image=ImageRef(url=history)),
                                                Part(type="text", text="an example"))),)  # fmt: skip
    return Sample(id=sid, benchmark="t", question=f"Is it normal? ({sid})", answer="yes",
                  answer_type=AnswerType.CLOSED, images=tuple(ImageRef(url=u) for u in urls), history=turns)  # fmt: skip


async def test_images_are_fetched_once_cached_by_content_and_not_fetched_again(tmp_path):
    async with ImageServer() as srv:
        ok, copy, other = f"{srv.base}/ok.png", f"{srv.base}/copy.png", f"{srv.base}/other.png"
        samples = [sample("a", ok), sample("b", copy, other), sample("c", ok, history=other), sample("local")]
        fetched, failed = await prefetch(samples, tmp_path / "image_cache", max_bytes=10_000, timeout_s=5,
                                         concurrency=4)  # fmt: skip
        assert failed == []
        assert srv.hits == {"ok.png": 1, "copy.png": 1, "other.png": 1}  # each distinct URL once
        by_id = {s.id: s for s in fetched}
        a, b, c = by_id["a"].images[0], by_id["b"].images[0], by_id["c"].history[0].content[0].image
        assert a.url is None and a.name == ok and a.path == b.path  # same bytes, one file
        assert imaging.read_bytes(a) == PNG and imaging.sha256(a) == hashlib.sha256(PNG).hexdigest()
        assert a.path == f"{hashlib.sha256(PNG).hexdigest()}.png"
        assert imaging.read_bytes(c) == OTHER and by_id["c"].images[0].path == a.path
        assert by_id["local"] == samples[3]  # untouched
        index = json.loads((tmp_path / "image_cache" / INDEX).read_text())
        assert set(index["urls"]) == {ok, copy, other}

        again, failed = await prefetch(samples, tmp_path / "image_cache", max_bytes=10_000, timeout_s=5,
                                       concurrency=4)  # fmt: skip
        assert failed == [] and again == fetched
        assert srv.hits == {"ok.png": 1, "copy.png": 1, "other.png": 1}  # a re-run fetches nothing


async def test_404_oversize_and_a_silent_host_fail_with_reasons_while_the_loop_runs(tmp_path):
    server, silent = await silent_host()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    try:
        async with ImageServer() as srv:
            urls = {"missing": f"{srv.base}/missing.png", "big": f"{srv.base}/big.png",
                    "stream": f"{srv.base}/stream.png", "silent": f"{silent}/x.png", "ok": f"{srv.base}/ok.png"}
            samples = [sample(k, u) for k, u in urls.items()]
            tick = asyncio.create_task(ticker())
            async with asyncio.timeout(60):  # a guard against a hang (a limit not honoured), not a speed check
                fetched, failed = await prefetch(samples, tmp_path / "cache", max_bytes=1000, timeout_s=0.5,
                                                 concurrency=8)  # fmt: skip
            tick.cancel()
    finally:
        server.close()
    reasons = dict(line.split(": ", 1) for line in failed)  # "URL: why"
    assert reasons == {
        urls["missing"]: "HTTP 404",
        urls["big"]: "5,000 bytes, over the 1,000-byte limit",
        urls["stream"]: "over the 1,000-byte limit",
        urls["silent"]: "no complete answer within 0.5 s",
    }
    assert ticks > 5  # the event loop kept running while the silent host held its connection
    by_id = {s.id: s for s in fetched}
    assert by_id["ok"].images[0].url is None
    for kind in ("missing", "big", "stream", "silent"):
        ref = by_id[kind].images[0]
        assert ref.url == urls[kind]  # a failed image keeps its URL, and planning names the reason
        with pytest.raises(imaging.ImageError, match="could not be downloaded") as exc:
            imaging.sha256(ref)
        assert reasons[urls[kind]] in str(exc.value)
    assert not list((tmp_path / "cache").glob(".tmp-*"))  # nothing half-written is left


class Answers:
    name, batch_size = "fake", 1

    async def generate(self, requests):
        return [Generation(text="yes") for _ in requests]

    async def aclose(self):
        pass


async def test_a_failed_download_is_a_bad_input_error_at_planning_naming_the_reason(tmp_path):
    async with ImageServer() as srv:
        samples = [sample("good", f"{srv.base}/ok.png"), sample("gone", f"{srv.base}/missing.png")]
        fetched, failed = await prefetch(samples, tmp_path / "cache", max_bytes=10_000, timeout_s=5, concurrency=2)
    assert len(failed) == 1
    store = RunStore(tmp_path / "r.sqlite")
    store.put_samples(fetched)
    job = Job(samples=fetched, template=PromptTemplate(name="default"), model="fake/m")
    counts = await execute(job, Answers(), store, RunSettings(max_retries=0))
    records = {r.sample.id: r for r in store.records()}
    store.close()
    assert counts.errors == 1 and records["good"].answered
    assert records["gone"].error_kind == "bad_input"
    assert "could not be downloaded (HTTP 404)" in records["gone"].error


def test_without_the_flag_an_http_image_is_a_sample_error_naming_it(tmp_path):
    jpeg = Path(__file__).resolve().parents[1] / "src/medprobe/data/vqa_rad_demo/images/synpic21044.jpg"
    (tmp_path / "good.jpg").write_bytes(jpeg.read_bytes())
    rows = [{"id": "good", "image": "good.jpg"}, {"id": "web", "image": "https://images.example.invalid/x.png"}]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps({**r, "question": "Is it normal?", "answer": "yes"}) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["run", str(cases), "--model", "scripted/constant:yes", "--out", str(tmp_path / "run")])
    assert result.exit_code == 3, result.output  # one sample error; the network guard saw no connection
    from medprobe.store import read_records

    _, records = read_records(tmp_path / "run")
    by_id = {r.sample.id: r for r in records}
    assert by_id["good"].answered and by_id["web"].error_kind == "bad_input"
    assert "https://images.example.invalid/x.png is on the network" in by_id["web"].error
    assert "pass --fetch-images" in by_id["web"].error


@pytest.fixture
def image_server():
    """ImageServer on its own loop in a thread, for tests that drive the (synchronous) CLI."""
    import threading

    loop = asyncio.new_event_loop()
    srv = ImageServer()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(srv.__aenter__())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield srv
    asyncio.run_coroutine_threadsafe(srv.__aexit__(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_fetch_images_flag_downloads_into_the_run_folder_once(tmp_path, image_server):
    rows = [{"id": "web", "image": f"{image_server.base}/ok.png"}, {"id": "gone", "image": f"{image_server.base}/missing.png"}]
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps({**r, "question": "Is it normal?", "answer": "yes"}) + "\n" for r in rows))
    args = ["run", str(cases), "--model", "scripted/constant:yes", "--fetch-images", "--out", str(tmp_path / "run")]
    for _ in range(2):  # the second run resumes: nothing is downloaded again
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 3, result.output
    assert image_server.hits == {"ok.png": 1, "missing.png": 2}  # a failed URL is tried again on a re-run
    from medprobe.store import read_records

    _, records = read_records(tmp_path / "run")
    by_id = {r.sample.id: r for r in records}
    assert by_id["web"].answered and by_id["web"].sample.images[0].name == f"{image_server.base}/ok.png"
    assert (tmp_path / "run" / "image_cache" / f"{hashlib.sha256(PNG).hexdigest()}.png").read_bytes() == PNG
    assert "could not be downloaded (HTTP 404)" in by_id["gone"].error and by_id["gone"].error_kind == "bad_input"
