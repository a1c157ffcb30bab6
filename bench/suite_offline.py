"""A suite on a machine that cannot reach the hub, through the real `medprobe suite` command (start-up
included): three entries with no local data and one packaged entry, run (a) with HF_HUB_OFFLINE=1 and
(b) without it, against a hub endpoint that never answers (a TCP listener that never accepts, its
backlog full). Prints the seconds per missing entry (target < 1 s; `datasets` alone waits ~25 s per
attempt) and that the packaged entry still completed.

    python bench/suite_offline.py              # add --baseline: also time one bare datasets.load_dataset
                                               # against the silent hub (what each entry cost before), and the ratio
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITE = """name = "offline"
[[entry]]
benchmark = "medframeqa"
[[entry]]
benchmark = "mmmu-med"
split = "validation"
[[entry]]
benchmark = "gmai-mmbench"
[[entry]]
benchmark = "vqa-rad-demo"
split = "test"
"""


def silent_endpoint() -> tuple[socket.socket, str]:
    """A listener whose backlog is full, so a further connection is never accepted (it hangs, as a
    black-holed route does)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    for _ in range(8):  # fill the backlog; later connects hang in SYN-SENT
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
    return server, f"http://127.0.0.1:{port}"


def run(folder: Path, env: dict[str, str]) -> tuple[float, dict]:
    (folder / "t.toml").write_text(SUITE, encoding="utf-8")
    cmd = [sys.executable, "-c", "from medprobe.cli import main; main()", "suite", str(folder / "t.toml"),
           "--model", "scripted/constant:yes", "--data-root", str(folder / "data"), "--out", str(folder / "runs")]
    (folder / "data").mkdir()
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - start, json.loads((folder / "runs" / "suite.json").read_text())


def main() -> None:
    server, endpoint = silent_endpoint()
    base = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    base["HF_HOME"] = tempfile.mkdtemp(prefix="hf-home-")  # an empty cache
    print(f"load average {os.getloadavg()[0]:.1f}")
    for name, env in (("HF_HUB_OFFLINE=1", {**base, "HF_HUB_OFFLINE": "1"}),
                      ("no flag, silent hub", {**base, "HF_ENDPOINT": endpoint})):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, result = run(Path(tmp), env)
        status = {e["label"]: e["status"] for e in result["entries"]}
        per_entry = seconds / 3  # an upper bound: start-up and the packaged run are in `seconds` too
        print(f"{name}: {seconds:.1f} s for the suite (start-up and the packaged run included); "
              f"missing entries {[s for label, s in status.items() if label != 'vqa-rad-demo']}, "
              f"packaged entry {status['vqa-rad-demo']}")
    if "--baseline" in sys.argv:
        code = ("import datasets, time; t = time.perf_counter()\ntry: datasets.load_dataset('SuhaoYu1020/MedFrameQA')\n"
                "except Exception: pass\nprint(time.perf_counter() - t)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**base, "HF_ENDPOINT": endpoint}, timeout=600, check=False)
        bare = float(out.stdout.strip().splitlines()[-1])
        print(f"bare datasets.load_dataset against the silent hub: {bare:.1f} s per entry; with the probe "
              f"{per_entry:.2f} s per entry (ratio {bare / per_entry:.0f}x)")
    server.close()


if __name__ == "__main__":
    main()
