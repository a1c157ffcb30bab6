"""Images on the network, downloaded only on request (`--fetch-images`), once, into the run folder.

A dataset row may name its image by an http(s) URL. medprobe never downloads behind the user's
back: without the flag such a sample fails at planning (`imaging.ImageError`, kind bad_input) with
a message naming the flag. With it, `prefetch` runs before planning: every distinct URL is fetched
concurrently with aiohttp (the event loop is never blocked), each under a size cap and a time
limit, and stored by content hash (`<cache_dir>/<sha256>.png`). The samples come back with those
images pointing at the cached files, so the request key holds the same image hash as any local copy
of the same bytes. `index.json` maps URL -> file, so a re-run fetches nothing it already holds. A URL
that fails stays a URL: its sample fails at planning with the reason (HTTP 404, over the size cap,
no answer in time).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from medprobe import __version__, imaging
from medprobe.types import ImageRef, Message, Sample

INDEX = "index.json"
INDEX_VERSION = 1
_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp"}
# a cached file's name is its sha256 plus a known extension; anything else in the index is ignored
_CACHED_NAME = re.compile(r"[0-9a-f]{64}(?:\.(?:png|jpg|gif|webp))?")


def is_remote(ref: ImageRef) -> bool:
    return ref.url is not None and ref.url.startswith(("http://", "https://"))


async def prefetch(samples: Sequence[Sample], cache_dir: str | Path, *, max_bytes: int = imaging.MAX_FILE_BYTES,
                   timeout_s: float = 30.0, concurrency: int = 8) -> tuple[list[Sample], list[str]]:
    """Download every distinct http(s) image of `samples` into `cache_dir`, at most `concurrency` at a time,
    each within `timeout_s` seconds and `max_bytes` bytes. Returns the samples with fetched images pointing at
    their cached files (the ImageRef's name keeps the URL, for reports), and one 'URL: why' line per failure.
    Samples whose image failed keep its URL and fail at planning, naming the reason."""
    urls = sorted({ref.url for s in samples for ref in _refs(s) if is_remote(ref) and ref.url})
    if not urls:
        return list(samples), []
    cache = Path(cache_dir).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    index = _read_index(cache)
    todo = [u for u in urls if not _cached(cache, index.get(u))]
    failed: dict[str, str] = {}
    if todo:
        results = await _fetch_all(todo, cache, max_bytes, timeout_s, concurrency)
        for url, (name, why) in zip(todo, results, strict=True):
            if name is not None:
                index[url] = name
            else:
                failed[url] = why or "unknown error"
        await asyncio.to_thread(_write_index, cache, index)
    for url in urls:  # planning names the reason for a URL that failed now, and forgets an older failure
        imaging.note_fetch_failure(url, failed.get(url))
    files = {u: index[u] for u in urls if u not in failed}
    rewritten = [_rewrite(s, files, cache) for s in samples]
    return rewritten, [f"{imaging.shown_url(u)}: {why}" for u, why in failed.items()]


async def _fetch_all(urls: list[str], cache: Path, max_bytes: int, timeout_s: float,
                     concurrency: int) -> list[tuple[str | None, str | None]]:
    import aiohttp

    limit = asyncio.Semaphore(max(1, concurrency))
    connector = aiohttp.TCPConnector(limit=max(1, concurrency))
    headers = {"User-Agent": f"medprobe/{__version__}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:  # fmt: skip

        async def one(url: str) -> tuple[str | None, str | None]:
            async with limit:
                return await _fetch(session, url, cache, max_bytes, timeout_s)

        return await asyncio.gather(*(one(u) for u in urls))


async def _fetch(session, url: str, cache: Path, max_bytes: int, timeout_s: float) -> tuple[str | None, str | None]:
    """(cached file name, None), or (None, why it failed). Never raises for a bad URL or host."""
    import aiohttp

    digest, chunks, size = hashlib.sha256(), [], 0
    try:
        # aiohttp's total timeout covers connect and read; the outer one also bounds a server that trickles
        async with asyncio.timeout(timeout_s), session.get(url) as resp:
            if resp.status != 200:
                return None, f"HTTP {resp.status}"
            if resp.content_length is not None and resp.content_length > max_bytes:
                return None, f"{resp.content_length:,} bytes, over the {max_bytes:,}-byte limit"
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > max_bytes:  # a body without Content-Length (or a lying one) is cut here
                    return None, f"over the {max_bytes:,}-byte limit"
                digest.update(chunk)
                chunks.append(chunk)
    except TimeoutError:
        return None, f"no complete answer within {timeout_s:g} s"
    except (aiohttp.ClientError, OSError, ValueError) as exc:  # refused, reset, DNS, an invalid URL
        return None, f"{type(exc).__name__}: {exc}".replace(url, imaging.shown_url(url))
    if size == 0:
        return None, "empty body"
    data = b"".join(chunks)
    name = digest.hexdigest() + _EXT.get(imaging.sniff_mime(data) or "", "")
    await asyncio.to_thread(_write_atomic, cache / name, data)
    return name, None


def _refs(sample: Sample) -> Iterator[ImageRef]:
    yield from sample.images
    for message in sample.history:
        yield from (p.image for p in message.content if p.image is not None)


def _rewrite(sample: Sample, files: dict[str, str], cache: Path) -> Sample:
    if not any(ref.url in files for ref in _refs(sample)):
        return sample

    def local(ref: ImageRef) -> ImageRef:
        if ref.url not in files:
            return ref
        return ImageRef(path=files[ref.url], root=str(cache), name=ref.name or imaging.shown_url(ref.url),
                        view=ref.view)  # fmt: skip

    def message(m: Message) -> Message:
        parts = tuple(p if p.image is None else p.model_copy(update={"image": local(p.image)}) for p in m.content)
        return m.model_copy(update={"content": parts})

    return sample.model_copy(update={"images": tuple(local(r) for r in sample.images),
                                     "history": tuple(message(m) for m in sample.history)})  # fmt: skip


def _cached(cache: Path, name: str | None) -> bool:
    return name is not None and _CACHED_NAME.fullmatch(name) is not None and (cache / name).is_file()


def _read_index(cache: Path) -> dict[str, str]:
    try:
        raw = json.loads((cache / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: fetch again (the files themselves are content-addressed)
    urls = raw.get("urls") if isinstance(raw, dict) else None
    return {str(k): str(v) for k, v in urls.items()} if isinstance(urls, dict) else {}


def _write_index(cache: Path, index: dict[str, str]) -> None:
    body = json.dumps({"version": INDEX_VERSION, "urls": dict(sorted(index.items()))}, indent=1).encode()
    _write_atomic(cache / INDEX, body)


def _write_atomic(path: Path, data: bytes) -> None:
    # a crash mid-write must never leave a truncated file under a name that claims its content hash
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
