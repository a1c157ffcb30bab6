"""Shared test setup: a network guard, helper modules on sys.path, the loopback OpenAI server.

Tests must never reach the internet: results would depend on a remote service and a run could
leak data or spend money. The guard patches the socket layer for the whole session so any
connection to a non-loopback address raises `NetworkBlocked`, and fails the test even when the
code under test swallows that error.
"""

from __future__ import annotations

import os

import ipaddress
import socket
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # helper modules (openai_server, ...) import as top-level names
    sys.path.insert(0, str(TESTS))


# ---------------------------------------------------------------- network guard


class NetworkBlocked(RuntimeError):
    """Not an OSError on purpose: retry and fallback code that catches OSError must not hide it."""


class NetworkGuard:
    Blocked = NetworkBlocked

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._real = {
            "connect": socket.socket.connect,
            "connect_ex": socket.socket.connect_ex,
            "create_connection": socket.create_connection,
            "getaddrinfo": socket.getaddrinfo,
        }

    @staticmethod
    def is_local(host: object, numeric_ok: bool = False) -> bool:
        """Loopback (127/8, ::1, localhost); with numeric_ok any IP literal (no lookup happens)."""
        if host is None or host == "" or host == b"":
            return True
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        name = str(host).strip("[]").split("%")[0].lower()
        if name == "localhost" or name.endswith(".localhost"):
            return True
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return False
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        return numeric_ok or ip.is_loopback or ip.is_unspecified

    def _block(self, what: str, host: object, port: object) -> None:
        msg = (
            f"Network access blocked by tests/conftest.py: {what} to {host}:{port}. Tests may only reach "
            "loopback (127.0.0.0/8, ::1, localhost); start a local server instead (tests/openai_server.py)."
        )
        self.violations.append(msg)
        raise NetworkBlocked(msg)

    def install(self) -> None:
        real, guard = self._real, self

        def check(sock: socket.socket, address: object, what: str) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                if not guard.is_local(address[0]):
                    guard._block(what, address[0], address[1])

        def connect(sock, address):
            check(sock, address, "connect")
            return real["connect"](sock, address)

        def connect_ex(sock, address):
            check(sock, address, "connect_ex")
            return real["connect_ex"](sock, address)

        def create_connection(address, *args, **kwargs):
            if not guard.is_local(address[0]):
                guard._block("create_connection", address[0], address[1])
            return real["create_connection"](address, *args, **kwargs)

        def getaddrinfo(host, port, *args, **kwargs):
            if not guard.is_local(host, numeric_ok=True):  # numeric IPs are checked at connect
                guard._block("getaddrinfo (DNS lookup)", host, port)
            return real["getaddrinfo"](host, port, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.create_connection = create_connection
        socket.getaddrinfo = getaddrinfo

    def uninstall(self) -> None:
        socket.socket.connect = self._real["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._real["connect_ex"]  # type: ignore[method-assign]
        socket.create_connection = self._real["create_connection"]
        socket.getaddrinfo = self._real["getaddrinfo"]


GUARD = NetworkGuard()


def pytest_configure(config: pytest.Config) -> None:
    GUARD.install()  # before collection, so test-module imports are guarded too
    # datasets and huggingface_hub read these once, at import: set them before any test module imports
    # them, so a loader that falls back to the hub fails at once instead of trying the network
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    # METEOR's statistics cache (textmetrics.meteor): one per test session, never the user's
    import tempfile

    os.environ["MEDPROBE_CACHE"] = tempfile.mkdtemp(prefix="medprobe-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    GUARD.uninstall()


@pytest.fixture(autouse=True)
def _no_network():
    """Fail the test if it tried to reach the network, even if the error was caught."""
    GUARD.violations.clear()
    yield
    if GUARD.violations:
        found = list(GUARD.violations)
        GUARD.violations.clear()
        pytest.fail("\n".join(found), pytrace=False)


@pytest.fixture
def network_guard() -> NetworkGuard:
    """The guard, for tests of the guard itself (clear `.violations` after provoking it)."""
    return GUARD


# ---------------------------------------------------------------- loopback OpenAI server


@pytest.fixture(scope="session")
def _openai_server_session():
    from openai_server import OpenAIServer

    with OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server(_openai_server_session):
    """A real OpenAI-compatible server on 127.0.0.1 (one per session, reset for every test):
    `.base_url`, `.requests`, `.set_script()`, `.set_faults()`, `.set_latency()`, `.count()`."""
    server = _openai_server_session
    server.reset()
    server.models = server.api_key = None
    yield server
    server.reset()
