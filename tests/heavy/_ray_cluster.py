"""A two-node Ray cluster on loopback: a head and a worker node started as separate `ray start`
processes, as on two machines, each with its own node address (127.0.0.2 and 127.0.0.3: Ray rewrites
127.0.0.1 into the machine's network address, any other loopback address it keeps), its own CPUs, temp
folder and ports.

    with loopback_cluster() as cluster:      # cluster.address = "127.0.0.2:PORT"
        ray.init(address=cluster.address)

Token authentication (Ray's default for clusters started on one machine from 2.59 on) is turned off:
the driver would need RAY_AUTH_MODE=token and the token in its environment before `import ray` (Ray
reads them once, at import), which a test process that imported Ray already cannot have. A real
cluster should keep it on (docs/scale-out.md).

Stopping: `ray stop` would stop every Ray on the machine (another user's, another test run's), so each
node is stopped by its own process group (SIGTERM, then SIGKILL), which holds every process it started.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"


@dataclass
class Cluster:
    address: str
    temp: Path
    nodes: list[subprocess.Popen] = field(default_factory=list)


def _free_port(low: int = 0, high: int = 0) -> int:
    """A free port: in [low, high) when given, else one the system picks (from its ephemeral range)."""
    for _ in range(200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", random.randrange(low, high) if high else 0))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in [{low}, {high})")


def _start(args: list[str], env: dict[str, str], log: Path, timeout_s: float) -> subprocess.Popen:
    """`ray start ... --block` in its own process group; returns once the node says it is up."""
    ray = str(Path(sys.executable).parent / "ray")
    proc = subprocess.Popen([ray, "start", *args, "--block", "--disable-usage-stats"], env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError(f"ray start {' '.join(args[:2])} did not come up in {timeout_s:.0f} s:\n"
                       + log.read_text(errors="replace")[-3000:])  # fmt: skip


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc (multi-node Ray runs on Linux only)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(stat.parent.name))
    return pids


def _stop(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM the node's process group (a graceful stop), then SIGKILL whatever of it is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            proc.poll()  # reap the `ray start` process itself
            if not _group(proc.pid):
                return
            time.sleep(0.5)


@contextmanager
def loopback_cluster(cpus_per_node: int = 1, timeout_s: float = 240.0) -> Iterator[Cluster]:
    # a short temp folder: Ray's socket paths live under it and must stay under 108 characters
    temp = Path(tempfile.mkdtemp(prefix="mpray", dir="/tmp"))
    # the head's port outside the system's ephemeral range, where every local Ray picks its own: a Ray
    # session that ended in this process (or another) can still have a client retrying its old port,
    # and it would report its driver (job 01000000, like ours) dead to our head, which then kills our actors
    port = _free_port(20000, 30000)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env |= {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    cluster = Cluster(address=f"{HEAD_IP}:{port}", temp=temp)
    node = [f"--num-cpus={cpus_per_node}", "--num-gpus=0", f"--dashboard-agent-listen-port={_free_port()}"]
    try:
        cluster.nodes.append(_start(
            ["--head", f"--port={port}", f"--node-ip-address={HEAD_IP}", f"--temp-dir={temp / 'head'}",
             "--include-dashboard=false", f"--dashboard-port={_free_port()}",
             f"--ray-client-server-port={_free_port()}", *node], env, temp / "head.log", timeout_s))  # fmt: skip
        node[-1] = f"--dashboard-agent-listen-port={_free_port()}"
        cluster.nodes.append(_start(
            [f"--address={cluster.address}", f"--node-ip-address={WORKER_IP}", f"--temp-dir={temp / 'worker'}",
             *node], env, temp / "worker.log", timeout_s))  # fmt: skip
        yield cluster
    finally:
        for proc in reversed(cluster.nodes):  # the worker first, so the head sees it leave
            _stop(proc)
        if not os.environ.get("MEDPROBE_KEEP_RAY_LOGS"):  # set it to read the nodes' logs after a failure
            shutil.rmtree(temp, ignore_errors=True)
