"""What a benchmark is: a loader function plus its declared default protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import dataclass, field

from pydantic import Field

from medprobe.types import Frozen, ImageView, Sample, Scalar


class Provenance(Frozen):
    """Where the samples came from, recorded in every run's manifest."""

    benchmark: str
    source: str = Field(description="hub id, file path (as given by the user) or 'medprobe:demo'")
    revision: str | None = Field(None, description="hub revision / dataset fingerprint, when loaded from a hub")
    sha256: str | None = Field(None, description="sha256 of the source file, when loaded from a file")
    split: str
    filters: dict[str, Scalar] = Field(default_factory=dict)
    rows: int = 0


class LoadOptions(Frozen):
    """What the user chose when loading a benchmark."""

    split: str | None = Field(None, description="None means the benchmark's default split")
    data: str | None = Field(None, description="override the source: a local file/folder or a hub id")
    images_dir: str | None = Field(None, description="folder holding the images, when not beside the data")
    limit: int | None = None
    mapping: str | None = Field(None, description="custom benchmarks: a JSON/YAML file renaming columns")
    allow_outside_root: bool = False
    view: ImageView | None = Field(None, description="default rendering of DICOM/NIfTI images (--window, "
                                   "--slice, --montage, --plane); a row's own columns override it")
    dicom_tags: tuple[str, ...] = Field((), description="non-identifying DICOM fields copied into metadata "
                                        "(--dicom-tag; medprobe.medimage.tags.ALLOWED)")
    section: str | None = Field(None, description="report benchmarks: the report section that is the gold "
                                "(--section findings|impression); None: the benchmark's default. Loaders record it "
                                "in Provenance.filters, so it enters the run identity")


@dataclass(frozen=True)
class Loaded:
    """Samples plus provenance. `samples` is a list: benchmarks hold references, never pixels."""

    samples: list[Sample]
    provenance: Provenance
    errors: list[str] = field(default_factory=list)  # rows skipped, each with a message naming the row


@dataclass(frozen=True)
class BenchmarkSpec:
    """A built-in benchmark: its splits and default protocol (prompt set + scoring preset)."""

    name: str
    description: str
    load: Callable[[LoadOptions], Loaded]
    splits: tuple[str, ...] = ("test",)
    default_split: str = "test"
    default_preset: str = "strict"
    prompt: str = "default"
    train_split: str | None = None  # the split the `baseline/prior` backend learns from
    source: str = ""  # default hub id or 'packaged'
    #: benchmark-level metrics over scored records (set accuracy, pair scores, ...), added to each
    #: preset's rows by `results.compute`: aggregate(records, scores, preset_name, seed) -> list[Metric].
    #: `scores[i]` is None where the preset has no rule for `records[i]`.
    aggregate: Callable[[Sequence[Any], Sequence[Any], str, int], list[Any]] | None = None
    #: the loader also accepts a published per-sample result file as --data (it carries question and
    #: gold), so `medprobe import` works without the dataset (SMMILE's result CSVs)
    reads_result_files: bool = False
    #: report sections the gold can be (--section), default first; empty: the benchmark takes no --section
    sections: tuple[str, ...] = ()
    #: metadata keys this benchmark's paper reports accuracy by, as subgroup rows beside
    #: `medprobe.metrics.SUBGROUP_KEYS` (GMAI-MMBench's `category`)
    subgroups: tuple[str, ...] = ()
