"""A run folder read back as one typed object: the manifest, the results (once scored) and the
records, streamed. `medprobe.load_run(dir)` returns it; the export and the public API read runs
through it (inspect_ai's `EvalLog` + `read_eval_log_samples` are the model).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field, ValidationError

from medprobe.manifest import Manifest
from medprobe.results import Results
from medprobe.store import RECORDS, RESULTS, RunStore, read_manifest, storage_errors
from medprobe.types import Frozen, Record


class Run(Frozen):
    """One run folder. `records()` streams every stored record (clean samples, then probe variants, in
    plan order); `results` is None until the run has been scored (`medprobe score DIR`)."""

    dir: Path = Field(description="the run folder")
    manifest: Manifest
    results: Results | None = Field(None, description="results.json; None when the folder was never scored")

    @property
    def label(self) -> str:
        """provider/model of the run."""
        return self.manifest.model_name

    @property
    def benchmark(self) -> str:
        return str(self.manifest.benchmark.get("benchmark"))

    def records(self) -> Iterator[Record]:
        """Every record of the run (sample + generations of each planned turn), read lazily from
        records.sqlite: the store is opened on the first record and closed after the last."""
        store = RunStore(self.dir / RECORDS, read_only=True)  # works in a read-only run folder
        try:
            yield from store.records(turns=self.manifest.turns)
        finally:
            store.close()


def load(run_dir: Path | str) -> Run:
    """Read a run folder's manifest.json and results.json (records stay on disk until iterated)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    path = run_dir / RESULTS
    results = None
    if path.is_file():
        with storage_errors(path):
            data = path.read_bytes()
        try:
            results = Results.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            raise ValueError(f"{path} does not match this medprobe version ({count} problems); re-score it with "
                             f"`medprobe score {run_dir}`.") from None  # fmt: skip
    return Run(dir=run_dir, manifest=manifest, results=results)
