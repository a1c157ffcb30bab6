"""Build medprobe run folders directly (manifest + records.sqlite + results.json) from hand-made
samples and replies, for tests of compare, card and calibration (no model, no server)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from medprobe.results import compute
from medprobe.store import MANIFEST, RECORDS, RESULTS, RunStore, write_json
from medprobe.types import SCHEMA_VERSION, AnswerType, Generation, Sample

PRESETS = ["strict", "llava-med"]


def closed_samples(n: int, benchmark: str = "cases", split: str = "test") -> list[Sample]:
    return [Sample(id=f"q{i}", benchmark=benchmark, split=split, question=f"Is there a mass? ({i})", answer="yes",
                   answer_type=AnswerType.CLOSED, metadata={"modality": "CT" if i % 2 else "MRI"})
            for i in range(n)]  # fmt: skip


def make_run(folder: Path, samples: list[Sample], replies: list[str | Generation | None], model: str = "a",
             benchmark: str | None = None, split: str | None = None, seed: int = 0) -> Path:  # fmt: skip
    """A scored run folder; a reply None is a failed request."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "schema_version": SCHEMA_VERSION, "command": "run", "status": "complete", "seed": seed, "turns": 1,
        "benchmark": {"benchmark": benchmark or samples[0].benchmark, "split": split or samples[0].split,
                      "source": "test", "rows": len(samples)},
        "default_preset": "strict", "prompt": {"name": "default", "hash": "0" * 16},
        "backend": {"provider": "scripted", "model": model}, "generation": {},
    }  # fmt: skip
    write_json(folder / MANIFEST, manifest)
    store = RunStore(folder / RECORDS)
    store.put_samples(samples)
    store.put_plan((s.id, 0, f"{model}-{s.id}") for s in samples)
    for s, reply in zip(samples, replies):
        gen = reply if isinstance(reply, Generation) else Generation(text=reply, error=None if reply else "HTTP 500: gave up")
        store.put_generation(f"{model}-{s.id}", gen)
    records = list(store.records())
    store.close()
    # the presets are named so these tests do not depend on which other presets are registered
    write_json(folder / RESULTS, compute(records, PRESETS, seed=seed).model_dump(mode="json"))
    return folder


def legacy_body(body: bytes) -> bytes:
    """A stored sample as medprobe wrote it before `variant_of`: the tag and the probe's detail in metadata."""
    data = json.loads(body)
    tag = data.pop("variant_of")
    if tag is not None:
        data["metadata"] = {**data["metadata"], "parent_id": tag["parent_id"], "probe": tag["probe"],
                            "variant": tag["variant"], **tag["detail"]}  # fmt: skip
    return json.dumps(data).encode()


def store_as_legacy(records: Path) -> None:
    """Rewrite every stored sample of a records.sqlite as a version before `variant_of` wrote it."""
    db = sqlite3.connect(records)
    with db:
        for idx, body in db.execute("SELECT idx, body FROM samples").fetchall():
            db.execute("UPDATE samples SET body = ? WHERE idx = ?", (legacy_body(body), idx))
    db.close()
