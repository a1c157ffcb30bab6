"""`medprobe list`, `compare`, `card`, `report`, `judge` and `export`: what a person reads of runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medprobe.cli._app import Opt, _fail, _progress_bar, _storage_fail, app

@app.command("list")
def list_() -> None:
    """Benchmarks, scoring presets, backends and suites."""
    from rich.console import Console
    from rich.table import Table

    from medprobe import benchmarks, scoring, suites
    from medprobe.backends import providers

    from rich.text import Text

    console = Console()
    for title, rows in [
        ("benchmarks", benchmarks.describe().items()),
        ("presets", ((k, f"{d.rstrip('.')}. Reproduces: {r}.") for k, (d, r) in scoring.describe().items())),
        ("backends (--model PROVIDER/NAME)", providers().items()),
        ("suites (medprobe suite NAME)", suites.describe().items()),
    ]:
        table = Table(title=title, title_justify="left", show_header=False)
        for name, text in rows:
            table.add_row(Text(name, style="bold"), Text(str(text)))  # Text: "medprobe[hf]" is not markup
        console.print(table)

@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="run folder of model A")],
    run_b: Annotated[Path, typer.Argument(help="run folder of model B (same benchmark and split)")],
    preset: Annotated[Optional[str], Opt(help="scoring preset (default: run A's benchmark default)")] = None,
    as_json: Annotated[bool, Opt("--json", help="print the comparison as JSON (values are fractions)")] = False,
    cluster_key: Annotated[str, Opt(help="what intervals resample: image (default: questions about one image move together), a metadata column (e.g. patient_id), or none (each question)")] = "image",
) -> None:
    """A vs B on shared items: paired bootstrap of the accuracy difference and the exact McNemar test."""
    from medprobe.compare import compare as compare_runs
    from medprobe.compare import markdown

    from medprobe.store import StorageError

    if preset and _is_report_preset(preset):  # reports have no right/wrong: per-metric paired bootstrap by study
        _compare_reports(run_a, run_b, preset, as_json)
        return
    try:
        result = compare_runs(run_a, run_b, preset, cluster=cluster_key)
    except StorageError as exc:
        _storage_fail(exc)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, allow_nan=False) if as_json else markdown(result))
    if result.empty_reason:  # nothing compared is not a result: exit 2, after printing what was left out
        _fail(result.empty_reason)

def _is_report_preset(name: str) -> bool:
    from medprobe import scoring
    from medprobe.types import AnswerType

    try:
        return AnswerType.REPORT in scoring.get(name).value_names
    except ValueError:
        return False  # an unknown name: compare_runs says which presets exist

def _compare_reports(run_a: Path, run_b: Path, preset: str, as_json: bool) -> None:
    from medprobe import compare_report

    try:
        result = compare_report.compare(run_a, run_b, preset)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, allow_nan=False) if as_json
               else compare_report.markdown(result))
    if result.n == 0:
        _fail(f"Runs {run_a} and {run_b} have no study with a valid report in both; nothing to compare.")

@app.command()
def card(
    runs: Annotated[list[Path], typer.Argument(help="one or more run folders (one column per model)")],
    out: Annotated[Optional[Path], Opt(help="folder for card.json and card.md (default: the first run folder)")] = None,
    preset: Annotated[Optional[str], Opt(help="headline preset (default: each run's benchmark default)")] = None,
    cluster_key: Annotated[str, Opt(help="what the pairwise comparisons resample: image (default: questions about one image move together), a metadata column (e.g. patient_id), or none (each question)")] = "image",
) -> None:
    """The trust card (card.json + card.md): accuracy, invalid rate, probe figures, calibration, subgroups."""
    from medprobe.card import build_card
    from medprobe.card_markdown import write_card
    from medprobe.store import StorageError

    try:
        json_path, md_path = write_card(build_card(runs, preset, cluster_key), out or runs[0])
    except StorageError as exc:
        _storage_fail(exc)  # names --out, for a read-only run folder
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(md_path.read_text(encoding="utf-8"))
    typer.echo(f"wrote {json_path} and {md_path}")

@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="one or more run folders (runs of one benchmark share a section), or a suite folder (its entries' runs)")],
    out: Annotated[Path, Opt(help="folder for index.html and its assets (opens from disk, no network)")] = Path("report"),
    preset: Annotated[Optional[str], Opt(help="headline preset (default: each run's benchmark default)")] = None,
    allow_outside_root: Annotated[bool, Opt(help="allow image paths outside the dataset folder")] = False,
) -> None:
    """The HTML trust report: run health, headlines, verdicts, plots (SVG + PNG) and a sample browser."""
    from medprobe.store import StorageError
    from medprobe.suites.result import run_folders  # light: no run stack for a report
    from medprobe.views.html import write_report

    try:
        summary = write_report(run_folders(runs), out, preset, allow_outside_root)  # a suite folder: its runs
    except StorageError as exc:
        _storage_fail(exc)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _storage_fail(exc)  # the report folder could not be written (read-only, full disk)
    typer.echo(f"wrote {summary.index}: {summary.samples} samples, {summary.variants} probe variants, "
               f"{summary.thumbnails} images ({summary.thumbnails_reused} reused) in {summary.seconds:.1f} s")

@app.command()
def judge(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    judge_model: Annotated[str, Opt(help="judge PROVIDER/NAME, e.g. openai/gpt-4o")],
    base_url: Annotated[Optional[list[str]], Opt(help="OpenAI-compatible server URL of the judge")] = None,
    api_key_env: Annotated[Optional[str], Opt(help="env var holding the judge's API key (never stored)")] = None,
    concurrency: Annotated[Optional[int], Opt(min=1, help="pin the judge requests in flight at N (default: adaptive, as `run`: starts at 16, grows while latency holds, halves on 429s, 5xx and timeouts, up to --max-concurrency)")] = None,
    max_concurrency: Annotated[int, Opt(min=1, help="the most judge requests adaptive concurrency lets in flight")] = 256,
    timeout: Annotated[float, Opt(help="seconds per judge request before it is retried")] = 120.0,
    retries: Annotated[int, Opt(min=0, help="retries of a failed judge request")] = 4,
    judge_prompt: Annotated[Optional[str], Opt(help="judge prompt name (smmile-binary, mediconfusion-scores, green-report) or JSON file")] = None,
    kind: Annotated[str, Opt(help="auto | binary | option-scores | green (auto: green for reports, option scores for "
                                  "multiple choice)")] = "auto",
) -> None:
    """LLM judge over a run's answers (resumable, cached); adds judge rows and judge/rule agreement to results."""
    from medprobe.backends import BackendConfig, parse_model
    from medprobe.judge import JudgeSpec
    from medprobe.judge import judge as run_judge
    from medprobe.judge_report import markdown
    from medprobe.pipeline import score as score_run
    from medprobe.runner import RunSettings

    try:
        provider, name = parse_model(judge_model)
        spec = JudgeSpec(backend=BackendConfig(provider=provider, model=name, base_urls=tuple(base_url or ()),
                                               api_key_env=api_key_env, timeout_s=timeout),
                         prompt=judge_prompt, kind=kind,  # type: ignore[arg-type]
                         settings=RunSettings(concurrency=concurrency, max_concurrency=max_concurrency,
                                              timeout_s=timeout, max_retries=retries))
        bar, update = _progress_bar()
        try:
            done = run_judge(run_dir, spec, progress=update)
        finally:
            bar.stop()
        results = score_run(run_dir)
    except KeyboardInterrupt:
        typer.secho(f"interrupted; verdicts so far are cached in {run_dir}. Re-run to resume.", err=True)
        raise typer.Exit(130) from None
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    level = f"; concurrency {done.concurrency}, peak {done.concurrency_peak}" if done.concurrency_peak else ""
    typer.echo(f"judged {done.judged} samples ({done.sent} requests sent, {done.cached} cached, "
               f"{done.errors} judge errors, {done.skipped} skipped{level})")
    if results.judge is not None:
        row = results.preset(results.judge.preset).get("overall")
        typer.echo(f"{results.judge.preset}: {row.metric} {100 * row.value:.1f} "
                   f"(95% CI {100 * row.ci_low:.1f} to {100 * row.ci_high:.1f}) n={row.n} invalid={row.invalid}")
        typer.echo("\n".join(markdown(results.judge)))

@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    fmt: Annotated[str, Opt("--format", help="jsonl, csv or parquet")] = "jsonl",
    out: Annotated[Optional[Path], Opt(help="file to write (default: stdout; parquet needs a file)")] = None,
    preset: Annotated[Optional[list[str]], Opt(help="presets whose outcome columns to include, repeatable (default: the run's)")] = None,
) -> None:
    """One row per sample and probe variant: id, metadata, raw output, reasoning, parsed answer and rule, outcome per preset, error kind."""
    from medprobe import export as exporter
    from medprobe import runs as run_folders
    from medprobe.store import StorageError

    try:
        n = exporter.write(run_folders.load(run_dir), fmt, out, preset)
    except BrokenPipeError:  # `medprobe export RUN | head`: the reader has what it wanted
        raise typer.Exit(0) from None
    except StorageError as exc:
        _storage_fail(exc)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _storage_fail(exc)  # --out could not be written (read-only, full disk)
    if out is not None:
        typer.echo(f"wrote {n} rows to {out}", err=True)
