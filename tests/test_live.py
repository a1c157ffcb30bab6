"""Answers scored as they arrive (medprobe.live): the end of a run reuses only what the store still holds
byte for byte, so its results are exactly those of re-scoring the stored records; and start-up leaves
the end-of-run modules out."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from medprobe import clusters, live, pipeline, scoring
from medprobe.backends import BackendConfig
from medprobe.store import RECORDS, RunStore
from medprobe.types import AnswerType, Generation, Sample

from test_e2e_cli import make_cases

REPLIES = ["Yes", "no", "Yes, there is a mass.", "<think>maybe</think>No.", "The liver (finding 3).", "", "B",
           "I cannot tell from this image.", "Answer: yes"]  # fmt: skip


def test_a_run_scored_as_answers_arrived_equals_rescoring_its_records(tmp_path):
    bench = make_cases(tmp_path, 40)
    rows = [json.loads(line) for line in bench.read_text().splitlines()]
    for i, row in enumerate(rows):  # open and closed questions, so every preset has rows
        row.update(answer_type="open", answer="liver") if i % 3 == 0 else None
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": r["id"], "text": f"{REPLIES[i % len(REPLIES)]} {i}"}) + "\n"
                               for i, r in enumerate(rows)))  # fmt: skip
    spec = pipeline.RunSpec(benchmark=str(bench), backend=BackendConfig(provider="scripted", model=str(answers)))
    results = pipeline.run(spec, tmp_path / "run")
    assert results.model_dump() == pipeline.rescore(tmp_path / "run")[2].model_dump()
    assert {p.preset for p in results.presets} >= {"strict", "llava-med", "multimedeval"}


def _sample(i: int) -> Sample:
    return Sample(id=f"s{i}", benchmark="x", question="q?", answer="yes", answer_type=AnswerType.CLOSED)


def test_stored_answers_are_reused_only_while_the_store_holds_their_bytes(tmp_path):
    samples = [_sample(0), _sample(1)]
    cache = live.ScoreCache()
    store = live.ScoringStore(tmp_path / RECORDS, samples, turns=1, cache=cache)
    store.put_samples(samples)
    store.put_plan([("s0", 0, "k0"), ("s1", 0, "k1")])
    written = [Generation(text="Yes, a mass"), Generation(text="no")]
    store.put_generation("k0", written[0])
    store.put_generation("k1", written[1])
    store.close()
    # the store changes behind the writer's back: record s1 now holds another answer
    db = sqlite3.connect(tmp_path / RECORDS)
    db.execute("UPDATE generations SET body = ? WHERE key = 'k1'", (Generation(text="yes").model_dump_json(),))
    db.commit()
    db.close()
    strict = scoring.get("strict")
    reader = RunStore(tmp_path / RECORDS, read_only=True)
    records = list(reader.records(turns=1, samples=samples, parsed=store.written))
    reader.close()
    assert records[0].final is written[0]  # unchanged: the written object, not a re-parse
    assert records[1].final == Generation(text="yes")  # changed: read back from the store
    assert cache.score(strict, records[0]) is cache._scores[("strict", "s0", "k0")][2]
    assert cache.score(strict, records[1]).answer.value == "yes"  # scored from what is stored now
    assert len(cache) == 2 * sum(p.applies(samples[0]) for p in map(scoring.get, scoring.names()))


def test_a_preset_that_fails_while_sending_does_not_stop_the_run(tmp_path, monkeypatch):
    def broken(self, sample, text):
        raise RuntimeError("a bug in a preset")

    monkeypatch.setattr(type(scoring.get("llava-med")), "score_answer", broken)
    store = live.ScoringStore(tmp_path / RECORDS, [_sample(0)], turns=1, cache=live.ScoreCache())
    store.put_plan([("s0", 0, "k0")])
    store.put_generation("k0", Generation(text="yes"))  # stored, though scoring it raised
    assert "k0" in store.written
    store.close()


def test_start_up_leaves_numpy_and_the_views_for_the_end_of_the_run():
    code = "import sys, medprobe.cli, medprobe.pipeline; print(sorted(set(sys.modules) & {'numpy', 'medprobe.results', 'medprobe.summary'}))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert pipeline.IMAGE_CLUSTERS == clusters.DEFAULT
