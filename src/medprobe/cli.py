"""The `medprobe` command: a thin layer over medprobe.pipeline."""

from __future__ import annotations

import gc
import json
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Optional

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


def _ray_address(flags: _Flags, provider: str) -> dict[str, str]:
    """`--ray-address` as the ray backend's `ray_address` option (a transport setting: not in the run identity)."""
    if not flags.ray_address:
        return {}
    if provider != "ray":
        raise ValueError(f"--ray-address is for Ray backends: --model ray/hf/<model> or ray/vllm/<model>, not {provider}/...")
    return {"ray_address": flags.ray_address}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


@dataclass(frozen=True)
class _Flags:
    """The options `run` and `suite` share, under the parameter names both commands use (defaults as in
    `run`); `spec` parses them into a RunSpec, so the two commands parse them in one place."""

    model: str
    base_url: list[str] | None = None
    api_key_env: str | None = None
    concurrency: int | None = None
    timeout: float = 120.0
    retries: int = 4
    limit: int | None = None
    split: str | None = None
    data: str | None = None
    images_dir: Path | None = None
    mapping: Path | None = None
    prompt: str = ""
    max_tokens: int = 512
    temperature: float = 0.0
    logprobs: int = 0
    image_max_side: int | None = None
    train_split: str | None = None
    seed: int = 0
    allow_outside_root: bool = False
    fetch_images: bool = False
    window: str | None = None
    slice_: str | None = None
    montage: int | None = None
    plane: str | None = None
    dicom_tag: list[str] | None = None
    section: str | None = None
    backend_option: list[str] | None = None
    ray_address: str | None = None
    probe: list[str] | None = None
    answer_mode: str = "generate"
    extra_body: str | None = None
    body_field: list[str] | None = None
    max_errors: str = "0"
    breaker: int = 10
    max_concurrency: int = 256
    rpm: float | None = None
    tpm: float | None = None
    max_cost: float | None = None
    prices: Path | None = None

    @classmethod
    def of(cls, values: dict) -> _Flags:
        """The flags among a command's parameters (`locals()`); those it lacks keep `run`'s defaults."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def spec(self, bench: str):
        """The RunSpec of these flags on `bench`; ValueError names the flag to fix."""
        from medprobe.backends.options import parse_extra_body, parse_options
        from medprobe.backends import BackendConfig, parse_model
        from medprobe.benchmarks import LoadOptions
        from medprobe.pipeline import RunSpec, parse_max_errors
        from medprobe.runner import RunSettings
        from medprobe.medimage.view import make_view
        from medprobe.types import GenerationConfig

        f = self
        provider, name = parse_model(f.model)
        view = make_view(f.window, f.slice_, f.montage, f.plane)
        if f.dicom_tag:
            from medprobe.medimage.tags import check as check_tags

            check_tags(f.dicom_tag)
        price = None
        if f.prices is not None:
            from medprobe.budget import load_prices, price_for

            price = price_for(load_prices(f.prices), f.model)
        elif f.max_cost is not None:
            raise ValueError('--max-cost needs the model\'s price: pass --prices FILE, e.g. a JSON file holding '
                             '{"' + name + '": {"input": 2.50, "output": 10.00}} (USD per million tokens)')
        return RunSpec(
            benchmark=bench,
            load=LoadOptions(split=f.split, data=f.data, images_dir=str(f.images_dir) if f.images_dir else None,
                             limit=f.limit, mapping=str(f.mapping) if f.mapping else None,
                             allow_outside_root=f.allow_outside_root, view=view, dicom_tags=tuple(f.dicom_tag or ()),
                             section=f.section),
            backend=BackendConfig(provider=provider, model=name, base_urls=tuple(f.base_url or ()),
                                  api_key_env=f.api_key_env, timeout_s=f.timeout,
                                  options={**({"seed": f.seed} if provider == "baseline" else {}),
                                           **parse_options(f.backend_option or ()), **_ray_address(f, provider)}),
            prompt=f.prompt,
            generation=GenerationConfig(max_tokens=f.max_tokens, temperature=f.temperature,
                                        image_max_side=f.image_max_side, logprobs=f.logprobs > 0,
                                        top_logprobs=f.logprobs,
                                        extra_body=parse_extra_body(f.extra_body, f.body_field or ())),
            settings=RunSettings(concurrency=f.concurrency, timeout_s=f.timeout, max_retries=f.retries,
                                 allow_outside_root=f.allow_outside_root, breaker=f.breaker,
                                 fetch_images=f.fetch_images, max_concurrency=f.max_concurrency, rpm=f.rpm, tpm=f.tpm,
                                 max_cost_usd=f.max_cost, price=price),
            seed=f.seed, train_split=f.train_split, answer_mode=f.answer_mode, probes=tuple(f.probe or ()),
            max_errors=parse_max_errors(f.max_errors),
        )  # fmt: skip


@app.command()
def run(
    bench: Annotated[str, typer.Argument(help="benchmark name (see `medprobe list`) or a data file (JSONL/CSV/parquet)")],
    model: Annotated[str, Opt(help="PROVIDER/NAME, e.g. openai/gpt-4o, baseline/prior, scripted/answers.jsonl")],
    base_url: Annotated[Optional[list[str]], Opt(help="OpenAI-compatible server URL, e.g. http://localhost:8000/v1")] = None,
    api_key_env: Annotated[Optional[str], Opt(help="name of the env var holding the API key (the key is never stored)")] = None,
    concurrency: Annotated[Optional[int], Opt(min=1, help="pin the requests in flight at N (default: adaptive: starts at 16, grows while latency holds, halves on 429s, 5xx and timeouts, up to --max-concurrency)")] = None,
    timeout: Annotated[float, Opt(help="seconds per request before it is retried")] = 120.0,
    retries: Annotated[int, Opt(min=0, help="retries of a failed request (429/5xx/timeouts)")] = 4,
    limit: Annotated[Optional[int], Opt(min=1, help="first N samples only")] = None,
    out: Annotated[Optional[Path], Opt(help="run folder (default runs/BENCH-MODEL); re-running resumes")] = None,
    split: Annotated[Optional[str], Opt(help="benchmark split (default: the benchmark's official test split)")] = None,
    data: Annotated[Optional[str], Opt(help="local copy of the benchmark (file/folder) or a hub id")] = None,
    images_dir: Annotated[Optional[Path], Opt(help="folder holding the benchmark's images")] = None,
    mapping: Annotated[Optional[Path], Opt(help="custom benchmarks: JSON file renaming columns")] = None,
    prompt: Annotated[str, Opt(help="prompt template name or JSON file (default: the benchmark's)")] = "",
    max_tokens: Annotated[int, Opt(help="generation limit")] = 512,
    temperature: Annotated[float, Opt()] = 0.0,
    logprobs: Annotated[int, Opt(min=0, max=20, help="ask for the top-N token logprobs (calibration); 0 = off")] = 0,
    image_max_side: Annotated[Optional[int], Opt(help="downscale images so the longer side is at most this")] = None,
    train_split: Annotated[Optional[str], Opt(help="split baseline/prior learns from")] = None,
    seed: Annotated[int, Opt(help="seed for baselines and bootstrap intervals")] = 0,
    preset: Annotated[Optional[str], Opt(help="preset shown in the table (all are computed)")] = None,
    allow_outside_root: Annotated[bool, Opt(help="allow image paths outside the dataset folder")] = False,
    fetch_images: Annotated[bool, Opt(help="download http(s) image URLs of the data (cached in the run folder); without it they are sample errors")] = False,
    window: Annotated[Optional[str], Opt(help="DICOM/NIfTI window: lung, mediastinum, soft_tissue, bone, brain, dicom, minmax or CENTER,WIDTH (a row's 'window' column overrides)")] = None,
    slice_: Annotated[Optional[str], Opt("--slice", help="DICOM series/multi-frame or NIfTI slice: middle, an index, or a fraction like 0.25")] = None,
    montage: Annotated[Optional[int], Opt(min=1, max=64, help="tile K evenly spaced slices into one image")] = None,
    plane: Annotated[Optional[str], Opt(help="NIfTI plane: axial, coronal or sagittal (after RAS reorientation)")] = None,
    dicom_tag: Annotated[Optional[list[str]], Opt(help="copy a non-identifying DICOM field into metadata, repeatable: Modality, BodyPartExamined, ViewPosition, ImageLaterality, Laterality, SliceThickness")] = None,
    section: Annotated[Optional[str], Opt(help="report benchmarks (iu-xray, mimic-cxr, chexpert-plus): the report section that is the reference, findings (default) or impression; studies without it are skipped at load and counted")] = None,
    backend_option: Annotated[Optional[list[str]], Opt("--backend-option", "-O", help="KEY=VALUE for the backend, repeatable: batch_size=8, device=cuda, dtype=bfloat16, tensor_parallel_size=2, max_model_len=4096, gpu_memory_utilization=0.9, load_format=dummy (see docs/scale-out.md)")] = None,
    ray_address: Annotated[Optional[str], Opt(help="--model ray/...: the Ray cluster to join, HEAD_IP:6379 (as `ray start --head` prints it) or ray://HEAD_IP:10001 (default: RAY_ADDRESS, else a local Ray); same as -O ray_address=... (docs/scale-out.md)")] = None,
    probe: Annotated[Optional[list[str]], Opt(help="reliability probe, repeatable: blind, corrupt, permute, negate, pair, paraphrase, repeat, icl, think, laterality (reports); options as NAME:ITEM,KEY=VALUE@LEVELS, e.g. corrupt:gaussian_noise,jpeg@3,5 or repeat:k=5,t=0.7 (docs/probes.md)")] = None,
    answer_mode: Annotated[str, Opt(help="generate | next-token | option-likelihood (likelihood modes need hf, vllm or an openai server with logprobs)")] = "generate",
    extra_body: Annotated[Optional[str], Opt(help="JSON object of fields passed through into every request body, e.g. '{\"chat_template_kwargs\": {\"enable_thinking\": false}}' (part of the request key and the manifest)")] = None,
    body_field: Annotated[Optional[list[str]], Opt("--body", "-B", help="KEY=VALUE request-body field on top of --extra-body, repeatable; VALUE is JSON when it parses, else a string; a dotted KEY nests: -B reasoning_effort=high, -B top_k=20, -B chat_template_kwargs.enable_thinking=false")] = None,
    max_errors: Annotated[str, Opt(help="sample errors tolerated before the run exits 3 (partial): a count (5) or a percentage (2%)")] = "0",
    breaker: Annotated[int, Opt(min=0, help="stop the run after this many consecutive connection/auth/not-found failures (0 = never)")] = 10,
    max_concurrency: Annotated[int, Opt(min=1, help="the most requests adaptive concurrency lets in flight")] = 256,
    rpm: Annotated[Optional[float], Opt(min=0.001, help="hosted-API budget: requests per minute, at most (every attempt counts)")] = None,
    tpm: Annotated[Optional[float], Opt(min=1, help="hosted-API budget: tokens per minute, at most (estimated before sending, corrected from each reply's usage)")] = None,
    max_cost: Annotated[Optional[float], Opt(min=0.0, help="stop before this execution spends more than USD (needs --prices); the answers so far are kept, exit 5")] = None,
    prices: Annotated[Optional[Path], Opt(help='JSON or TOML price table, USD per million tokens: {"MODEL": {"input": 2.5, "output": 10}}; adds cost to the usage totals')] = None,
) -> None:
    """Run a model on a benchmark (resumable) and score it under every preset."""
    try:
        spec = _Flags.of(locals()).spec(bench)
        _known_preset(preset)  # a misspelt --preset fails before anything is sent
    except ValueError as exc:
        _fail(str(exc))
    folder = out or Path("runs") / _slug(f"{Path(bench).stem}-{spec.backend.provider}-{spec.backend.model}")
    _run_and_show(spec, folder, preset)


def scoring_name(name: str | None) -> str | None:
    """The registered spelling of a preset name ("llava_med" -> "llava-med"); an unknown one as given."""
    from medprobe import scoring

    try:
        return None if name is None else scoring.get(name).name
    except ValueError:
        return name


def _known_preset(name: str | None) -> None:
    from medprobe import scoring

    if name is not None:
        scoring.get(name)  # ValueError listing the presets


def _on_request(name: str | None) -> bool:
    """Whether `name` is a preset computed only when named (medprobe.scoring.Preset.on_request)."""
    from medprobe import scoring

    try:
        return name is not None and scoring.get(name).on_request
    except ValueError:  # unknown: the caller's scoring says which presets exist
        return False


def _run_and_show(spec, folder: Path, preset: str | None, exit_on_problem: bool = True) -> int:
    """Run, print the table and the run's health; returns (or exits with) the exit code of README's table."""
    from medprobe.manifest import RunStatus
    from medprobe.pipeline import PreflightError, exit_code
    from medprobe.pipeline import run as run_pipeline
    from medprobe.store import StorageError, read_manifest

    bar, update = _progress_bar()
    derive_bar, on_derive = _derive_bar()
    try:
        try:
            results = run_pipeline(spec, folder, progress=update, derive_progress=on_derive)
        finally:
            derive_bar.stop()
            bar.stop()
    except KeyboardInterrupt:
        typer.secho(f"interrupted; everything answered so far is saved in {folder}. Re-run to resume.", err=True)
        raise typer.Exit(130) from None
    except PreflightError as exc:
        _fail(f"{exc}\nNothing was sent and no run folder was written.")
    except StorageError as exc:
        _storage_fail(exc)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    from medprobe.summary import print_table  # the view stack (numpy): imported after the run, not before it

    manifest = read_manifest(folder)
    if _on_request(preset):  # asked for by name: scored now and saved beside the others
        from medprobe.pipeline import presets_with, rescore, write_results

        manifest, records, results = rescore(folder, presets_with(folder, scoring_name(preset)))
        write_results(folder, manifest, results, records)
    print_table(results, manifest, scoring_name(preset) if preset else manifest.default_preset)
    typer.echo(f"run folder: {folder}  (all presets: {folder / 'summary.md'})")
    code = int(exit_code(manifest))
    if manifest.status is not RunStatus.COMPLETE:
        typer.secho(f"run {manifest.status}: {manifest.stop_reason} (exit {code}; see `medprobe run --help` and the "
                    "README's exit-code table)", fg="yellow", err=True)  # fmt: skip
    if code and exit_on_problem:
        raise typer.Exit(code)
    return code


@app.command()
def score(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    preset: Annotated[Optional[str], Opt(help="one preset (default: all)")] = None,
    as_json: Annotated[bool, Opt("--json", help="print results as JSON (values are fractions in [0, 1])")] = False,
    subgroups: Annotated[bool, Opt(help="show subgroup rows in the table")] = False,
    out: Annotated[Optional[Path], Opt(help="folder for results.json and summary.md (default: the run folder; use it when that is read-only)")] = None,
    cluster_key: Annotated[str, Opt(help="what intervals resample: image (default: questions about one image move together), a metadata column (e.g. patient_id), or none (each question)")] = "image",
) -> None:
    """Re-score stored outputs (no model calls)."""
    from medprobe.pipeline import rescore, write_results
    from medprobe.summary import print_table
    from medprobe.store import StorageError

    from medprobe.pipeline import presets_with

    # an on-request preset (clinical report metrics) is scored with the others and saved: results.json holds
    # every preset, so the card and the report show it; any other --preset is a view of one, never saved
    adds = _on_request(preset)
    if out is not None and preset and not adds:
        _fail("--out saves results.json and summary.md, which hold every preset; drop --preset to write them.")
    try:
        asked = presets_with(run_dir, scoring_name(preset)) if adds else [preset] if preset else None
        manifest, records, results = rescore(run_dir, asked, cluster=cluster_key)
    except StorageError as exc:
        _storage_fail(exc)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(results.model_dump(mode="json"), indent=2))
    else:
        print_table(results, manifest, scoring_name(preset) if adds else preset, subgroups)
    if preset and not adds:
        return  # a single preset is shown, never saved over the all-preset results.json
    try:
        write_results(out or run_dir, manifest, results, records)
    except StorageError as exc:
        if out is not None:
            _storage_fail(exc)  # the folder the user asked for could not be written
        # the scores above are complete; only the saved copy is missing, so this is a warning (exit 0)
        typer.secho(f"warning: results.json and summary.md were not saved: {exc}", fg="yellow", err=True)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="predictions file (JSONL/JSON/CSV)")],
    benchmark: Annotated[str, Opt(help="benchmark name or data file the predictions answer")],
    id_field: Annotated[str, Opt(help="column holding the sample id")],
    prediction_field: Annotated[str, Opt(help="column holding the model's text")],
    out: Annotated[Path, Opt(help="run folder to create")],
    data: Annotated[Optional[str], Opt(help="local copy of the benchmark (file/folder) or a hub id")] = None,
    split: Annotated[Optional[str], Opt(help="benchmark split")] = None,
    gold_field: Annotated[Optional[str], Opt(help="take the gold answer from this column of FILE")] = None,
    preset: Annotated[Optional[str], Opt(help="preset shown in the table (all are computed)")] = None,
) -> None:
    """Score another tool's predictions with medprobe's presets."""
    from medprobe.benchmarks import LoadOptions
    from medprobe.importing import ImportSpec, import_predictions
    from medprobe.summary import print_table
    from medprobe.store import read_manifest

    try:
        spec = ImportSpec(file=str(file), benchmark=benchmark, load=LoadOptions(split=split, data=data),
                          id_field=id_field, prediction_field=prediction_field, gold_field=gold_field)  # fmt: skip
        results = import_predictions(spec, out)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    manifest = read_manifest(out)
    print_table(results, manifest, preset or manifest.default_preset)
    for warning in manifest.warnings:
        typer.secho(f"warning: {warning}", fg="yellow", err=True)


@app.command()
def demo(out: Annotated[Path, Opt(help="folder for the demo runs")] = Path("runs/demo")) -> None:
    """Offline demo: the shipped VQA-RAD sample (9 real images; its 15 official test questions) with
    baseline models that learn from the sample's 50 train questions."""
    from medprobe.backends import BackendConfig
    from medprobe.benchmarks import LoadOptions
    from medprobe.pipeline import RunSpec

    for kind in ("prior", "random"):
        typer.secho(f"\n== baseline/{kind} on vqa-rad-demo ==", bold=True)
        spec = RunSpec(benchmark="vqa-rad-demo", load=LoadOptions(split="test"),
                       backend=BackendConfig(provider="baseline", model=kind))  # fmt: skip
        _run_and_show(spec, out / f"baseline-{kind}", "strict")
    typer.echo("\nNext: point --model at your model, e.g. medprobe run vqa-rad-demo --model openai/NAME "
               "--base-url http://localhost:8000/v1")  # fmt: skip


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


def main() -> None:
    try:
        app()
    finally:
        # the process ends next: its last full collection would walk every record still alive (~0.2 s at
        # 6,000), only to free memory the exit frees anyway (bench/throughput.py)
        gc.freeze()
