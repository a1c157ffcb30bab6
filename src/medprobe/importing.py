"""`medprobe import`: turn another tool's prediction file into a run folder, so its outputs are
scored by the same presets (and compared, probed and reported like any medprobe run)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from pydantic import Field

from medprobe import __version__, benchmarks
from medprobe.benchmarks import LoadOptions
from medprobe.benchmarks._formats import file_sha256, read_file
from medprobe.results import Results
from medprobe.store import MANIFEST, RECORDS, RunStore, write_json
from medprobe.manifest import Manifest, PromptInfo, RunStatus
from medprobe.types import ErrorKind, Frozen, Generation, without_surrogates


class ImportSpec(Frozen):
    file: str = Field(description="predictions file: JSONL, JSON list or CSV")
    benchmark: str
    load: LoadOptions = LoadOptions()
    id_field: str
    prediction_field: str
    gold_field: str | None = Field(None, description="take the gold answer from the predictions file")


def import_predictions(spec: ImportSpec, out: Path) -> Results:
    from medprobe.pipeline import score

    path = Path(spec.file)
    if not path.is_file():
        raise FileNotFoundError(f"Predictions file not found: {path}")
    rows, row_errors = [], []
    for raw in read_file(path):
        (rows.append(raw.data) if raw.data is not None else row_errors.append(f"{raw.where}: {raw.error}"))
    if rows and spec.id_field not in rows[0]:
        raise ValueError(f"{path} has no column {spec.id_field!r} (columns: {', '.join(rows[0])}); pass --id-field.")
    if rows and spec.prediction_field not in rows[0]:
        raise ValueError(f"{path} has no column {spec.prediction_field!r} (columns: {', '.join(rows[0])}); pass --prediction-field.")
    by_id: dict[str, dict] = {}
    duplicates = []
    for row in rows:
        key = str(row.get(spec.id_field))
        if key in by_id:
            duplicates.append(key)
        by_id[key] = row
    if duplicates:
        raise ValueError(f"{path} has duplicate ids in {spec.id_field!r}: {', '.join(duplicates[:10])}. Keep one prediction per sample.")

    load = spec.load
    bench_spec = benchmarks.spec_for(spec.benchmark)
    if bench_spec is not None and bench_spec.reads_result_files and not load.data:
        # the file carries question and gold (SMMILE's published CSVs): no dataset needed
        load = load.model_copy(update={"data": str(path)})
    loaded = benchmarks.load(spec.benchmark, load)
    sha = file_sha256(path)
    samples, plan = [], []
    store_path = out / RECORDS
    if store_path.exists():
        raise ValueError(f"{out} already exists; pass a new --out for each import.")
    store = RunStore(store_path)
    missing = 0
    for sample in loaded.samples:
        row = by_id.get(sample.id)
        if row is not None and spec.gold_field:
            sample = sample.model_copy(update={"answer": str(row.get(spec.gold_field, ""))})
        samples.append(sample)
        key = hashlib.sha256(f"import:{sha}:{sample.id}".encode()).hexdigest()
        plan.append((sample.id, 0, key))
        if row is None:
            missing += 1
            gen = Generation(error=f"no prediction for this sample in {path.name}", error_kind=ErrorKind.BAD_INPUT,
                             attempts=0)  # fmt: skip
        else:
            value = row.get(spec.prediction_field)
            gen = (Generation(text=without_surrogates(str(value))) if value is not None
                   else Generation(error="empty prediction", error_kind=ErrorKind.BAD_INPUT))  # fmt: skip
        store.put_generation(key, gen)
    store.put_samples(samples)
    store.put_plan(plan)
    store.close()
    known = {s.id for s in loaded.samples}
    unknown = [k for k in by_id if k not in known]
    warnings = []
    if missing:
        warnings.append(f"{missing} benchmark samples have no prediction in {path.name}; they count as errors.")
    if unknown:
        warnings.append(f"{len(unknown)} predictions match no sample of {spec.benchmark} (e.g. {unknown[:3]}); check --split / --id-field.")
    warnings += row_errors[:20]
    bench = benchmarks.spec_for(spec.benchmark)
    manifest = Manifest(
        medprobe_version=__version__, command="import",
        status=RunStatus.COMPLETE if not missing else RunStatus.PARTIAL,
        stop_reason=f"{missing} samples have no prediction" if missing else None,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        benchmark=loaded.provenance.model_dump(mode="json"), load_errors=tuple(loaded.errors[:100]),
        load_error_count=len(loaded.errors), default_preset=bench.default_preset if bench else "strict",
        prompt=PromptInfo(name="imported"),
        backend={"provider": "import", "model": path.name, "file_sha256": sha,
                 "id_field": spec.id_field, "prediction_field": spec.prediction_field, "gold_field": spec.gold_field},
        warnings=tuple(warnings),
    )  # fmt: skip
    write_json(out / MANIFEST, manifest.to_json())
    return score(out)
