"""The `medprobe` Typer app and what every command shares: failing with a message, progress bars."""

from __future__ import annotations

import re
import time

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Can this medical VLM be trusted, and how do we know?")

Opt = typer.Option


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)

def _storage_fail(exc: Exception) -> None:
    """Read-only folder, full disk, damaged records.sqlite: the message says what is safe; exit 6."""
    typer.secho(f"error: {exc}", fg="red", err=True)
    raise typer.Exit(6)

def _progress_bar():
    """A rich progress bar fed by the runner's Counts callback; returns (context, callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7.1f} req/s"), TextColumn("errors {task.fields[errors]}"),
        TextColumn("cached {task.fields[cached]}"), TextColumn("in flight ≤{task.fields[level]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), refresh_per_second=4,
    )  # fmt: skip
    task = bar.add_task("requests", total=None, rate=0.0, errors=0, cached=0, level=0)

    last = [0.0]

    def update(c) -> None:
        if not bar.live.is_started:  # shown once requests are planned, not while loading fails
            bar.start()
        now = time.monotonic()
        if now - last[0] < 0.1 and c.done < c.total:  # the bar redraws 4x/s; don't pay per request
            return
        last[0] = now
        elapsed = max(now - c.started, 1e-9)
        bar.update(task, total=c.total, completed=c.done, rate=c.sent / elapsed, errors=c.errors, cached=c.cached,
                   level=c.concurrency)  # the adaptive level (or the fixed number) of requests in flight

    return bar, update

def _derive_bar():
    """A rich progress bar for deriving probe variants (corrupting images is the slow part);
    returns (context, callback for `probes.derive`). It stops itself once every probe is done, so the
    requests bar can take the screen."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                   TimeElapsedColumn(), refresh_per_second=4)  # fmt: skip
    task = bar.add_task("probe variants", total=None)
    last = [0.0]

    def update(probe: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        bar.update(task, description=f"probe variants ({probe})", total=total, completed=done)
        if done >= total:
            bar.stop()
        elif not bar.live.is_started:
            bar.start()

    return bar, update

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
