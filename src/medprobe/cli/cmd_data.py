"""`medprobe data list|get|check`: where a benchmark comes from, download it, check a copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medprobe.cli._app import Opt, _fail, app

data_app = typer.Typer(no_args_is_help=True, help="Benchmark data: where it comes from, download it, check a copy.")

app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list(
    as_json: Annotated[bool, Opt("--json", help="print the facts table as JSON")] = False,
) -> None:
    """Where each benchmark comes from, its licence, whether it is gated, and its folder under --data-root."""
    from rich.console import Console
    from rich.table import Table

    from medprobe import datasets_cmd

    rows = datasets_cmd.listing()
    if as_json:
        typer.echo(json.dumps({n: f.model_dump(mode="json") if f else None for n, f in rows}, indent=2))
        return
    table = Table(title="benchmark data (`medprobe data get NAME --to DIR` writes DIR/<folder>)", title_justify="left")
    for col in ("benchmark", "source", "licence", "gated", "folder"):
        table.add_column(col)
    for name, row in rows:
        if row is None:
            table.add_row(name, "?", "?", "?", "?")
            continue
        table.add_row(name, datasets_cmd.source_of(row), row.licence, "yes" if row.gated else "no", row.folder or "-")
    Console(markup=False).print(table)

@data_app.command("get")
def data_get(
    name: Annotated[str, typer.Argument(help="benchmark name (`medprobe data list`)")],
    to: Annotated[Path, Opt(help="data root: the benchmark goes into TO/<folder>, where `--data-root TO` finds it")] = Path("data"),
    images: Annotated[bool, Opt("--images/--no-images", help="also download and unpack the image archives (can be many GB)")] = True,
    accept_terms: Annotated[bool, Opt(help="gated sets: you accepted the conditions on the hub page and logged in (`hf auth login`)")] = False,
    revision: Annotated[Optional[str], Opt(help="hub revision (commit or tag) to download; default the latest")] = None,
) -> None:
    """Download a benchmark from the Hugging Face hub (official repo, only the files a run needs), then check it."""
    from medprobe import datasets_cmd

    try:
        got = datasets_cmd.get(name, to, images=images, accept_terms=accept_terms, revision=revision)
    except ValueError as exc:
        _fail(str(exc))
    if got.status == "packaged":
        typer.echo(f"{name}: {got.steps}")
        return
    if got.status in ("manual", "gated"):
        why = "is gated on the hub" if got.status == "gated" else "is not on a dataset hub"
        typer.secho(f"{name} {why}; nothing was downloaded. To get it:", fg="yellow", err=True)
        typer.echo(got.steps)
        raise typer.Exit(2)
    typer.echo(f"{name}: {got.files} files in {got.folder}")
    if got.steps:
        typer.echo(f"note: {got.steps}")
    if got.check is not None:
        _print_check(got.check)
        if not got.check.ok:
            raise typer.Exit(2)

@data_app.command("check")
def data_check(
    name: Annotated[str, typer.Argument(help="benchmark name (`medprobe data list`)")],
    data: Annotated[Optional[Path], Opt(help="the benchmark's folder (or a data root holding it); packaged sets need none")] = None,
    as_json: Annotated[bool, Opt("--json", help="print the check as JSON")] = False,
) -> None:
    """Compare a local copy with the official release: files, row counts, known hashes, split sizes, images."""
    from medprobe import datasets_cmd

    try:
        report = datasets_cmd.check(name, data)
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json") | {"ok": report.ok}, indent=2))
    else:
        _print_check(report)
    if not report.ok:
        raise typer.Exit(2)

def _print_check(report) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{report.benchmark}: {report.folder}", title_justify="left")
    for col in ("", "what", "official release", "this copy"):
        table.add_column(col)
    for item in report.items:
        mark = {True: Text("ok", style="green"), False: Text("DIFFERS", style="red"), None: Text("-")}[item.ok]
        table.add_row(mark, Text(str(item.what)), Text(str(item.expected)), Text(str(item.found)))
    Console().print(table)
    if report.differences:
        names = "; ".join(f"{i.what}: {i.found} (release: {i.expected})" for i in report.differences)
        typer.secho(f"{len(report.differences)} difference(s): {names}", fg="red", err=True)
    else:
        typer.echo("matches every count and hash medprobe knows for the release")
