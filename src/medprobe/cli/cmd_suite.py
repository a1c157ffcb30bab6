"""`medprobe suite NAME|FILE`: a paper's table as one job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from medprobe.cli._app import Opt, _fail, _progress_bar, _slug, _storage_fail, app
from medprobe.cli._flags import _Flags

@app.command()
def suite(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="a shipped suite (lingshu-mm, medgemma-mm; see `medprobe list`) or a suite TOML file (docs/suites.md)")],
    model: Annotated[str, Opt(help="PROVIDER/NAME, e.g. openai/lingshu-7b, baseline/prior")],
    data_root: Annotated[Optional[Path], Opt(help="folder holding each benchmark as DIR/<folder> (`medprobe data list` names them; `medprobe data get NAME --to DIR` fills them)")] = None,
    out: Annotated[Optional[Path], Opt(help="suite folder: one run folder per entry plus suite.json and suite.md (default runs/SUITE-MODEL); re-running resumes")] = None,
    base_url: Annotated[Optional[list[str]], Opt(help="OpenAI-compatible server URL, e.g. http://localhost:8000/v1")] = None,
    api_key_env: Annotated[Optional[str], Opt(help="name of the env var holding the API key (the key is never stored)")] = None,
    concurrency: Annotated[Optional[int], Opt(min=1, help="pin the requests in flight at N (default: adaptive, as in `medprobe run`)")] = None,
    timeout: Annotated[float, Opt(help="seconds per request before it is retried")] = 120.0,
    retries: Annotated[int, Opt(min=0, help="retries of a failed request (429/5xx/timeouts)")] = 4,
    limit: Annotated[Optional[int], Opt(min=1, help="first N samples of every entry only (a smoke test, not the paper's numbers)")] = None,
    max_tokens: Annotated[int, Opt(help="generation limit")] = 512,
    temperature: Annotated[float, Opt()] = 0.0,
    image_max_side: Annotated[Optional[int], Opt(help="downscale images so the longer side is at most this")] = None,
    seed: Annotated[int, Opt(help="seed for baselines and bootstrap intervals")] = 0,
    backend_option: Annotated[Optional[list[str]], Opt("--backend-option", "-O", help="KEY=VALUE for the backend, repeatable (as in `medprobe run`)")] = None,
    extra_body: Annotated[Optional[str], Opt(help="JSON object of fields passed through into every request body (as in `medprobe run`)")] = None,
    body_field: Annotated[Optional[list[str]], Opt("--body", "-B", help="KEY=VALUE request-body field, repeatable (as in `medprobe run`)")] = None,
    max_errors: Annotated[str, Opt(help="sample errors each entry tolerates before it counts as partial: a count (5) or a percentage (2%)")] = "0",
    breaker: Annotated[int, Opt(min=0, help="stop a run after this many consecutive connection/auth/not-found failures (0 = never)")] = 10,
    max_concurrency: Annotated[int, Opt(min=1, help="the most requests adaptive concurrency lets in flight")] = 256,
    rpm: Annotated[Optional[float], Opt(min=0.001, help="hosted-API budget: requests per minute, at most")] = None,
    tpm: Annotated[Optional[float], Opt(min=1, help="hosted-API budget: tokens per minute, at most")] = None,
    max_cost: Annotated[Optional[float], Opt(min=0.0, help="stop each run before it spends more than USD (needs --prices)")] = None,
    prices: Annotated[Optional[Path], Opt(help="JSON or TOML price table, USD per million tokens (as in `medprobe run`)")] = None,
    allow_outside_root: Annotated[bool, Opt(help="allow image paths outside the dataset folder")] = False,
    fetch_images: Annotated[bool, Opt(help="download http(s) image URLs of the data (cached in each run folder)")] = False,
) -> None:
    """Run a paper's table: every entry of a suite into one folder, one combined table, suite.json (resumable)."""
    from medprobe import suites
    from medprobe.store import StorageError
    from medprobe.suites.summary import print_table

    try:
        chosen = suites.load(name)
        base = _Flags.of(locals()).spec(chosen.entries[0].benchmark)
    except ValueError as exc:
        _fail(str(exc))
    folder = out or Path("runs") / _slug(f"{chosen.name}-{base.backend.provider}-{base.backend.model}")
    bars: dict = {}

    def start(run_name: str, i: int, n: int):
        typer.secho(f"\n== [{i}/{n}] {run_name} ==", bold=True)
        bars[run_name], update = _progress_bar()
        return update

    def done(run_name: str, entries) -> None:
        bar = bars.pop(run_name, None)
        if bar is not None:
            bar.stop()
        for e in entries:
            value = f"{100 * e.headline.value:.1f}" if e.headline else "n/a"
            typer.echo(f"{e.label}: {e.status} ({e.preset} {e.subset}/{e.metric or '-'} {value})")

    try:
        result = suites.run_suite(chosen, base, folder, data_root, suites.Hooks(start=start, done=done))
    except KeyboardInterrupt:
        typer.secho(f"interrupted; every answer so far is saved in {folder}. Re-run to resume.", err=True)
        raise typer.Exit(130) from None
    except StorageError as exc:
        _storage_fail(exc)
    except ValueError as exc:  # the suite names an unknown benchmark, split, preset or prompt
        _fail(f"{exc}\nNothing was run.")
    typer.echo("")
    print_table(result)
    typer.echo(f"suite folder: {folder}  ({suites.SUITE_JSON}, suite.md; one run folder per entry)")
    if result.exit_code:
        typer.secho(f"suite {result.status}: the worst entry exits {result.exit_code} (README's exit-code table); "
                    "re-run the same command to resume", fg="yellow", err=True)  # fmt: skip
        raise typer.Exit(result.exit_code)
