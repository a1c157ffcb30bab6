"""What a benchmark is: a loader function plus its declared default protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import Field

from medprobe.types import Frozen, Sample, Scalar


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
