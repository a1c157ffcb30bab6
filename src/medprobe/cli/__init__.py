"""The `medprobe` command: a thin layer over medprobe.pipeline, one module per group of commands
(registered on import, in the order `medprobe --help` lists them)."""

from __future__ import annotations

import gc

from medprobe.cli import cmd_run, cmd_views, cmd_suite, cmd_data  # noqa: F401  (they register the commands)
from medprobe.cli._app import app
from medprobe.cli._flags import _Flags

def main() -> None:
    try:
        app()
    finally:
        # the process ends next: its last full collection would walk every record still alive (~0.2 s at
        # 6,000), only to free memory the exit frees anyway (bench/throughput.py)
        gc.freeze()


__all__ = ["_Flags", "app", "main"]
