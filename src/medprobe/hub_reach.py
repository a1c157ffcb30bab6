"""Can this machine load a dataset from the Hugging Face hub right now? Asked before a run that would
read a benchmark from its hub default, so an offline machine fails at once instead of after
`datasets`' connection timeouts (about 25 s per attempt).

Offline is either declared (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE, which `datasets` and
`huggingface_hub` read) or found: a TCP connection to the hub endpoint (HF_ENDPOINT, default
huggingface.co) that does not open within `CONNECT_TIMEOUT` seconds, name lookup included. A dataset
already in the local Hugging Face cache is left to `datasets`, which reads the cache offline.
"""

from __future__ import annotations

import os
import socket
import threading
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT = 0.8  # seconds: a reachable hub answers a TCP handshake far sooner
_TRUE = {"1", "on", "yes", "true"}


def declared_offline() -> str | None:
    """The environment variable that declares this machine offline, if one does."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return name
    return None


def endpoint() -> tuple[str, int]:
    """(host, port) of the hub endpoint `huggingface_hub` would use."""
    url = urlsplit(os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)


@lru_cache(maxsize=8)
def _reachable(host: str, port: int, timeout: float) -> bool:
    """One TCP handshake, name lookup included, bounded by `timeout` (a lookup that hangs is given up on:
    it runs in a daemon thread). Cached per process: a suite asks once, not once per entry."""
    done: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                done.append(True)
        except Exception:  # noqa: BLE001 (refused, unreachable, no such name, blocked: all mean "not now")
            done.append(False)

    worker = threading.Thread(target=attempt, daemon=True, name="medprobe-hub-probe")
    worker.start()
    worker.join(timeout)
    return bool(done and done[0])


def cached(repo_id: str) -> bool:
    """Whether the local Hugging Face caches hold anything of `repo_id` (hub files or a `datasets` build)."""
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    hub = Path(os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or home / "hub")
    built = Path(os.environ.get("HF_DATASETS_CACHE") or home / "datasets")
    owner, _, name = repo_id.partition("/")
    return (hub / f"datasets--{owner}--{name}").is_dir() or (built / f"{owner}___{name}").is_dir()


def unreachable(repo_id: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """Why `repo_id` cannot be loaded from the hub now (None: it can be tried): the machine is offline
    and the dataset is not in the local cache."""
    if cached(repo_id):
        return None
    why = declared_offline()
    if why:
        return f"{why} is set (offline) and {repo_id} is not in the local Hugging Face cache"
    host, port = endpoint()
    if not _reachable(host, port, timeout):
        return f"the hub ({host}:{port}) did not answer within {timeout:g} s and {repo_id} is not in the local cache"
    return None
