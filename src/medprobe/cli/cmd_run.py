"""`medprobe run`, `score`, `import` and `demo`: a model on a benchmark, and its scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from medprobe.cli._app import Opt, _derive_bar, _fail, _progress_bar, _slug, _storage_fail, app
from medprobe.cli._flags import _Flags

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
