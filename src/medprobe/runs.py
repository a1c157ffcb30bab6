"""A run folder read back as one typed object: the manifest, the results (once scored) and the
records. `medprobe.load_run(dir)` returns it, and every reader of a run folder goes through it: the
public API, the export, the paired comparison (medprobe.compare), the figures and the HTML report
(inspect_ai's `EvalLog` + `read_eval_log_samples` are the model).

Records stay on disk until asked for: `records()` streams them, `all_records` reads them once and keeps
them (figures and comparisons pass over them several times). Readers that show probe variants rather
than score them (the report) take `clean_records` and `variant_rows`, and `outcomes()`, which scoring
kept in outcomes.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import Field, PrivateAttr, ValidationError

from medprobe import outcomes as stored_outcomes
from medprobe.manifest import Manifest
from medprobe.outcomes import Outcomes
from medprobe.results import Results
from medprobe.store import (
    RECORDS,
    RESULTS,
    RunStore,
    read_manifest,
    read_records,
    storage_errors,
)
from medprobe.types import Frozen, Record
from medprobe.variant_rows import VariantRow


class Run(Frozen):
    """One run folder. `records()` streams every stored record (clean samples, then probe variants, in
    plan order); `results` is None until the run has been scored (`medprobe score DIR`)."""

    dir: Path = Field(description="the run folder")
    manifest: Manifest
    results: Results | None = Field(None, description="results.json; None when the folder was never scored")
    _records: list[Record] | None = PrivateAttr(None)
    _split: tuple[list[Record], list[VariantRow]] | None = PrivateAttr(None)

    @classmethod
    def held(cls, run_dir: Path, manifest: Manifest, results: Results | None, records: Iterable[Record]) -> Run:
        """A run whose records are already in memory (a run being scored): nothing is read from disk."""
        run = cls(dir=run_dir, manifest=manifest, results=results)
        run._records = list(records)
        return run

    @property
    def label(self) -> str:
        """provider/model of the run."""
        return self.manifest.model_name

    @property
    def benchmark(self) -> str:
        return str(self.manifest.benchmark.get("benchmark"))

    @property
    def split(self) -> str:
        return str(self.manifest.benchmark.get("split"))

    def scored(self) -> Results:
        """results.json, for readers that need it (figures, the report); says how to write it when missing."""
        if self.results is None:
            raise FileNotFoundError(f"{self.dir} has no {RESULTS}. Run `medprobe score {self.dir}` first.")
        return self.results

    def records(self) -> Iterator[Record]:
        """Every record of the run (sample + generations of each planned turn). Read lazily from
        records.sqlite (the store is opened on the first record and closed after the last) unless the run
        holds them already."""
        if self._records is not None:
            yield from self._records
            return
        store = RunStore(self.dir / RECORDS, read_only=True)  # works in a read-only run folder
        try:
            yield from store.records(turns=self.manifest.turns)
        finally:
            store.close()

    @property
    def all_records(self) -> list[Record]:
        """Every record, read from disk on first use and kept."""
        if self._records is None:
            _, self._records = read_records(self.dir)
        return self._records


    @property
    def clean_records(self) -> list[Record]:
        """The records of clean samples (no probe variant), read once and kept."""
        return self._split_records()[0]

    @property
    def variant_rows(self) -> list[VariantRow]:
        """Every probe variant as a `VariantRow` (what it asked and what came back), read once and kept."""
        return self._split_records()[1]

    def _split_records(self) -> tuple[list[Record], list[VariantRow]]:
        if self._split is None:
            if self._records is not None:
                self._split = ([r for r in self._records if not r.sample.is_variant],
                               [VariantRow.of(r) for r in self._records if r.sample.is_variant])  # fmt: skip
            else:
                store = RunStore(self.dir / RECORDS, read_only=True)
                try:
                    self._split = store.split_records(turns=self.manifest.turns)
                finally:
                    store.close()
        return self._split

    def outcomes(self, presets: list[str]) -> Outcomes:
        """Each clean sample's entry under `presets` and each variant's under the probe preset: the stored
        outcomes.json when it stands for these records and presets, else scored here from the records."""
        probe = self.manifest.default_preset
        if self._records is None:
            store = RunStore(self.dir / RECORDS, read_only=True)
            try:
                found = stored_outcomes.read(self.dir, store.fingerprint())
            finally:
                store.close()
            if found is not None and found.probe_preset == probe:
                return stored_outcomes.extended(found, self.clean_records, presets)
        return stored_outcomes.table(self.all_records, presets, probe)


def load(run_dir: Path | str, scored: bool = False) -> Run:
    """Read a run folder's manifest.json and results.json (records stay on disk until asked for).
    `scored`: the folder must hold results.json (FileNotFoundError naming `medprobe score` otherwise)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    path = run_dir / RESULTS
    results = None
    if path.is_file():
        with storage_errors(path):
            data = path.read_bytes()
        try:
            results = Results.model_validate_json(data)
        except (ValueError, ValidationError) as exc:
            count = exc.error_count() if isinstance(exc, ValidationError) else 1
            raise ValueError(f"{path} does not match this medprobe version ({count} problems); re-score it with "
                             f"`medprobe score {run_dir}`.") from None  # fmt: skip
    run = Run(dir=run_dir, manifest=manifest, results=results)
    if scored:
        run.scored()
    return run
