"""The public Python API behind `import medprobe`: run, score, load_run, report.

Each verb is the CLI verb of the same name, as a function over run folders. The common settings are
keyword arguments; anything else (generation settings, transport, answer modes) goes in a
`medprobe.pipeline.RunSpec` passed as `spec`, so no function here grows a long signature.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from medprobe import clusters, pipeline
from medprobe.backends import BackendConfig, parse_model
from medprobe.benchmarks import LoadOptions
from medprobe.results import Results
from medprobe.runner import Progress
from medprobe.runs import Run
from medprobe.runs import load as load_run


def run(
    benchmark: str, model: str | None = None, out: str | Path | None = None, *, base_url: str | Sequence[str] = (),
    api_key_env: str | None = None, split: str | None = None, limit: int | None = None, probes: Sequence[str] = (),
    seed: int = 0, spec: pipeline.RunSpec | None = None, progress: Progress | None = None,
) -> Run:  # fmt: skip
    """Run (or resume) `benchmark` on `model` ('PROVIDER/NAME', e.g. 'openai/gpt-4o', 'baseline/prior')
    into the folder `out` (default runs/BENCH-PROVIDER-NAME), score it under every preset, and return the run read back.

    Like `medprobe run`: answers are stored as they arrive, re-running resumes, a failed preflight
    raises ValueError before anything is sent. `spec` replaces every other setting but `out`.
    The run's status (complete, partial, stopped) is `run.manifest.status`.
    """
    if spec is None:
        if model is None:
            raise ValueError("medprobe.run needs a model, e.g. medprobe.run('vqa-rad', 'openai/gpt-4o', ...)")
        provider, name = parse_model(model)
        urls = (base_url,) if isinstance(base_url, str) else tuple(base_url)
        spec = pipeline.RunSpec(
            benchmark=benchmark, load=LoadOptions(split=split, limit=limit), seed=seed, probes=tuple(probes),
            backend=BackendConfig(provider=provider, model=name, base_urls=urls, api_key_env=api_key_env,
                                  options={"seed": seed} if provider == "baseline" else {}),
        )  # fmt: skip
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{Path(spec.benchmark).stem}-{spec.backend.provider}-{spec.backend.model}")
    folder = Path(out) if out is not None else Path("runs") / slug.strip("-")  # the CLI's default folder
    pipeline.run(spec, folder, progress)
    return load_run(folder)


def score(run_dir: str | Path, presets: Sequence[str] | None = None, cluster: str | None = clusters.DEFAULT,
          write: bool = True) -> Results:  # fmt: skip
    """Re-score a run folder's stored answers (no model calls), like `medprobe score`. `cluster`: what
    the intervals resample: 'image' (default), a metadata column, or 'none' (each question).
    `write`: save results.json and summary.md (only when every preset is scored)."""
    return pipeline.score(Path(run_dir), list(presets) if presets else None, write=write, cluster=cluster)


def report(runs: str | Path | Sequence[str | Path], out: str | Path = "report", preset: str | None = None) -> Path:
    """Write the HTML trust report of one or more run folders into `out` (like `medprobe report`);
    returns the path of its index.html, which opens from disk with no network."""
    from medprobe.views.html import write_report  # the HTML view pulls in Jinja2 and matplotlib: only when asked

    folders = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    return Path(write_report(folders, Path(out), preset).index)


__all__ = ["Run", "load_run", "report", "run", "score"]
