"""MediConfusion (Sepehri et al., 2024; AIF4S/MediConfusion, MIT): 176 pairs of ROCO images that
share one question and two options, image 1's answer being the other option of image 2's.

Data: `data/dataset.json` of the official repo (a JSON object keyed by pair id). Pass it with
`--data path/to/dataset.json` (or the repo's `data/` folder).

Images are not redistributable. The authors' `scripts/download.py` reads `data/image_dict.json`
and, for every ROCO image, downloads its PubMed Central open-access package (`dlink`, an
ftp.ncbi.nlm.nih.gov `.tar.gz`), unpacks it, copies the figure `file_name` to
`<save_path>/<local>.jpg` and deletes the package; `save_path` defaults to `data/images`. So an
image is the file `<im_k_local>.jpg` (e.g. `20192.jpg`) in that folder. From a clone of the
repo: `python scripts/download.py` (26 MB), then `--images-dir MediConfusion/data/images`
(the default is `images/` beside dataset.json, which is where the script puts them).

Each image is its own sample (`<pair>-1`, `<pair>-2`), asked separately with the options as
stored (A, B; never shuffled), as `utils/answering.py` `sample_eval` does. Pair-level metrics
(set accuracy, confusion) come from `medprobe.scoring.mediconfusion.aggregate`.
Answer modes: `mc` = prompt `mediconfusion-mc` + preset `mediconfusion` (the default); the
official `greedy` / `prefix` modes = `--answer-mode next-token` / `option-likelihood` (backends
with logprobs only); free form = prompt `mediconfusion-free` then `medprobe judge RUN --protocol
mediconfusion`.
"""

from __future__ import annotations

import json
from pathlib import Path

from medprobe.benchmarks._base import BenchmarkSpec, LoadOptions, Loaded, Provenance
from medprobe.benchmarks._formats import LoadError, RawRow, RowError, file_sha256
from medprobe.benchmarks.custom import collect, finish, limit_filter, pick_split
from medprobe.scoring.mediconfusion import aggregate
from medprobe.types import AnswerType, ImageRef, Sample

FILE = "dataset.json"
REPO = "https://github.com/AIF4S/MediConfusion"


def load(options: LoadOptions) -> Loaded:
    split = pick_split(options.split, ("test",), "test")
    if not options.data:
        raise LoadError(f"MediConfusion's questions are not on a dataset hub: clone {REPO} and pass "
                        f"--data MediConfusion/data/{FILE}; download its images with scripts/download.py.")
    path = Path(options.data).expanduser()
    if path.is_dir():
        path = path / FILE
    if not path.is_file():
        raise LoadError(f"No such file: {path}. Pass --data with the path of MediConfusion's {FILE}.")
    try:
        pairs = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LoadError(f"{path} is not valid JSON ({exc}).") from None
    if not isinstance(pairs, dict):
        raise LoadError(f"{path} must be a JSON object keyed by pair id, as in the official repo.")
    root = Path(options.images_dir).expanduser() if options.images_dir else path.parent / "images"

    def rows():
        for pair_id, pair in pairs.items():
            for k in (1, 2):
                where = f"{path.name} pair {pair_id} image {k}"
                if not isinstance(pair, dict):
                    yield RawRow(where, error="expected an object")
                    continue
                yield RawRow(where, {**pair, "_pair": str(pair_id), "_k": k})

    def convert(row: dict) -> Sample:
        k = row["_k"]
        try:
            gold = str(row[f"im_{k}_correct"]).strip().upper()
            local, question = row[f"im_{k}_local"], str(row["question"]).strip()
            option_a, option_b = str(row["option_A"]).strip(), str(row["option_B"]).strip()
        except KeyError as exc:
            raise RowError(f"missing field {exc}") from None
        if gold not in ("A", "B"):
            raise RowError(f"im_{k}_correct is {gold!r}, not A or B")
        meta = {"pair": row["_pair"], "image_index": k, "category": "|".join(row.get(f"category_{k}") or ()),
                "roco_id": row.get(f"im_{k}"), "language": "en"}
        # the local file name is the download script's `<local>.jpg`
        image = ImageRef(path=f"{local}.jpg", root=str(root), name=f"{local}.jpg")
        return Sample(id=f"{row['_pair']}-{k}", benchmark=SPEC.name, split=split, question=question,
                      images=(image,), options=(option_a, option_b), answer=gold,
                      answer_type=AnswerType.MULTIPLE_CHOICE, metadata={k_: v for k_, v in meta.items() if v})

    samples, errors = collect(rows(), convert, options.limit)
    prov = Provenance(benchmark=SPEC.name, source=str(options.data), sha256=file_sha256(path), split=split,
                      filters=limit_filter(options))
    return finish(samples, errors, prov)


SPEC = BenchmarkSpec(
    name="mediconfusion",
    description="MediConfusion: 176 confusing image pairs (352 images), two options; set accuracy and confusion",
    load=load,
    default_preset="mediconfusion",
    prompt="mediconfusion-mc",
    source=f"{REPO} data/{FILE} (--data) + images from PMC (--images-dir)",
    aggregate=aggregate,
)
