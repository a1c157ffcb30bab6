"""Run folders for the HTML report tests, made by the real pipeline with scripted models of known behaviour:
closed, open and multiple-choice questions on the real VQA-RAD demo images (and a DICOM file when pydicom
is installed), reasoning chains, token logprobs, a refusal, an error, HTML in a reply, and the blind,
corrupt and negate probes."""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

from medprobe import pipeline
from medprobe.backends import BackendConfig
from medprobe.backends.scripted import register_function
from medprobe.pipeline import RunSpec
from medprobe.types import (
    ErrorKind,
    Generation,
    GenerationConfig,
    Request,
    TokenLogprob,
)

PROBES = ("blind:none,blank", "corrupt:gaussian_blur,jpeg@1,5", "negate")
HTML_REPLY = "<b>No</b><script>window.__injected = 1</script><img src=x onerror=window.__injected=2>"
ERROR_ID = "c5"


def demo_images() -> list[Path]:
    folder = resources.files("medprobe") / "data" / "vqa_rad_demo" / "images"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".jpg"))


def write_bench(folder: Path, n_closed: int = 12) -> Path:
    """A JSONL benchmark: closed questions (several per image), two open, two multiple choice."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = []
    for src in demo_images()[:4]:
        shutil.copy(src, images / src.name)
        names.append(f"images/{src.name}")
    rows = [{"id": f"c{i}", "image": names[i % len(names)], "question": f"Is there a lesion in zone {i}?",
             "answer": "yes" if i % 2 else "no", "answer_type": "closed", "modality": ["CT", "MRI"][i % 2],
             "organ": ["CHEST", "HEAD", "ABD"][i % 3]} for i in range(n_closed)]  # fmt: skip
    rows += [{"id": "o1", "image": names[0], "question": "Which organ is shown?", "answer": "lung", "answer_type": "open",
              "modality": "CT", "organ": "CHEST"},
             {"id": "o2", "image": names[1], "question": "What is abnormal?", "answer": "mass", "answer_type": "open",
              "modality": "MRI", "organ": "HEAD"},
             {"id": "m1", "image": names[2], "question": "Which plane?", "options": ["Axial", "Coronal", "Sagittal"],
              "answer": "B", "modality": "CT", "organ": "ABD"},
             {"id": "m2", "image": names[3], "question": "Which modality?", "options": ["CT", "MRI"], "answer": "A",
              "modality": "MRI", "organ": "CHEST"}]  # fmt: skip
    dicom = _dicom(folder)
    if dicom is not None:
        rows.append({"id": "d1", "image": dicom, "question": "Is this a CT scan?", "answer": "yes", "answer_type": "closed",
                     "modality": "CT", "organ": "HEAD"})  # fmt: skip
    path = folder / "cases.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _dicom(folder: Path) -> str | None:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return None
    src = get_testdata_file("CT_small.dcm", download=False)
    if src is None:
        return None
    shutil.copy(src, folder / "images" / "ct_small.dcm")
    return "images/ct_small.dcm"


def _logprobs(word: str, p: float) -> tuple[TokenLogprob, ...]:
    import math

    other = {"Yes": "No", "No": "Yes", "A": "B", "B": "A", "C": "A"}.get(word, "No")
    return (TokenLogprob(token=word, logprob=math.log(p), top=((word, math.log(p)), (other, math.log(1 - p)))),)


def model(strength: int):
    """A scripted model: right on most clean closed questions (more often with a higher strength), 'yes' without an
    image, wrong under blur at severity 5, a reasoning chain on some replies, an error on ERROR_ID."""

    def answer(request: Request) -> Generation:
        sid = request.sample_id
        parent = sid.split("~")[0]
        h = int(hashlib.sha256(f"{strength}/{parent}".encode()).hexdigest(), 16)
        if parent == ERROR_ID and strength == 1:
            return Generation(error="HTTP 400: the server refused the request", error_kind=ErrorKind.BAD_REQUEST)
        gold_yes = parent.startswith("c") and int(parent[1:]) % 2 == 1
        if parent == "d1":
            gold_yes = True
        if parent.startswith("m"):
            letter = {"m1": "B", "m2": "A"}[parent] if h % 3 else "C"
            return Generation(text=f"Answer: {letter}", logprobs=_logprobs(letter, 0.8))
        if parent.startswith("o"):
            return Generation(text={"o1": "lung", "o2": "a mass"}[parent] if strength > 1 else "liver")
        right = h % 10 < 5 + 2 * strength
        if "~blind:" in sid or not request.image_hashes:
            right = gold_yes  # says yes without a real image
        elif "~corrupt:gaussian_blur@5" in sid:
            right = False
        elif "~negate:" in sid:
            right = h % 2 == 0
        word = ("Yes" if gold_yes else "No") if right else ("No" if gold_yes else "Yes")
        if parent == "c3" and "~" not in sid:
            return Generation(text="I cannot determine this from the image.")
        if parent == "c4" and "~" not in sid and strength == 1:
            return Generation(text=HTML_REPLY, logprobs=_logprobs("No", 0.7))
        text = word
        if h % 4 == 0:
            text = f"<think>The {'lesion is visible' if right else 'image is unclear'} in zone {parent}.</think>{word}."
        return Generation(text=text, logprobs=_logprobs(word, 0.95 if h % 3 else 0.6))

    return answer


def run_pipeline(spec: RunSpec, out: Path):
    """pipeline.run in a thread of its own: playwright's sync API keeps an event loop running in the test's thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(pipeline.run, spec, out).result()


#: presets the report runs are scored under (all of them would only slow the tests down)
PRESETS = ["strict", "llava-med", "multimedeval"]


def make_runs(folder: Path, models: int = 2) -> list[Path]:
    """Run `models` scripted models on the same benchmark, with probes and logprobs; returns the run folders."""
    import pytest

    bench = write_bench(folder / "bench")
    out = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "default_presets", lambda: list(PRESETS))
        for k in range(1, models + 1):
            register_function(f"report-model-{k}", model(k))
            spec = RunSpec(benchmark=str(bench), backend=BackendConfig(provider="scripted", model=f"fn:report-model-{k}"),
                           generation=GenerationConfig(logprobs=True, top_logprobs=2), probes=PROBES,
                           max_errors="100%")  # fmt: skip
            run_pipeline(spec, folder / f"run{k}")
            out.append(folder / f"run{k}")
    return out
