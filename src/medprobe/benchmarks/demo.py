"""The packaged VQA-RAD demo: 9 real images and their 65 QA rows (CC0 1.0), no download needed.

Rows are in the official VQA-RAD layout with `phrase_type` kept, so `vqa_rad.load_official`
parses them and the test/train rules apply; a demo run loads every row ("all") by default.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded
from medprobe.benchmarks._formats import LoadError


def data_dir() -> Path:
    """Folder of the packaged demo (images/, vqa_rad_demo.json, LICENSE.txt)."""
    folder = files("medprobe").joinpath("data", "vqa_rad_demo")
    if not isinstance(folder, Path):  # e.g. installed inside a zip: images need real files
        raise LoadError("The medprobe demo data is not on the file system; install medprobe as a regular package.")
    return folder


def load(options: LoadOptions) -> Loaded:
    from medprobe.benchmarks.vqa_rad import load_official

    if options.data:
        raise LoadError("vqa-rad-demo is the packaged sample; to use your own copy run the 'vqa-rad' benchmark "
                        "with --data.")
    folder = data_dir()
    return load_official(folder / "vqa_rad_demo.json", options, benchmark=SPEC.name, source="medprobe:demo",
                         default_split="all", images_root=folder / "images")


SPEC = BenchmarkSpec(
    name="vqa-rad-demo",
    description="Packaged VQA-RAD sample: 9 images, 65 QA (all splits; 15 in the official test split)",
    load=load,
    splits=("all", "test", "train"),
    default_split="all",
    train_split="train",
    source="packaged",
)
