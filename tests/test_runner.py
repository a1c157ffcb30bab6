"""Runner behaviour: retries, timeouts, permanent errors, resume, multi-turn, dedup, bad images."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from PIL import Image

from medprobe.backends import PermanentError, TransientError
from medprobe.prompts import PromptTemplate
from medprobe.runner import Job, RunSettings, build_request, execute
from medprobe.store import RunStore
from medprobe.types import AnswerType, Generation, ImageRef, Sample

FAST = RunSettings(concurrency=4, timeout_s=2.0, max_retries=3, backoff_base_s=0.001, backoff_max_s=0.01)


class FakeBackend:
    """Answers 'yes'; `plan` maps sample id -> list of exceptions raised on successive calls."""

    name = "fake"
    batch_size = 1

    def __init__(self, plan=None, answer=lambda r: "yes", hang_s: float = 0.0):
        self.plan = {k: list(v) for k, v in (plan or {}).items()}
        self.calls: Counter[str] = Counter()
        self.answer = answer
        self.hang_s = hang_s

    async def generate(self, requests):
        out = []
        for r in requests:
            self.calls[(r.sample_id, r.turn)] += 1
            faults = self.plan.get(r.sample_id)
            if faults:
                raise faults.pop(0)
            if self.hang_s:
                await asyncio.sleep(self.hang_s)
            out.append(Generation(text=self.answer(r)))
        return out

    async def aclose(self):
        pass


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    return ImageRef(path="img.png", root=str(tmp_path))


def samples(image, n=6, **kw):
    return [
        Sample(id=f"s{i}", benchmark="t", question=f"Is there a lesion {i}?", answer="yes",
               answer_type=AnswerType.CLOSED, images=(image,), **kw)
        for i in range(n)
    ]  # fmt: skip


def job(items, template=PromptTemplate(name="default")):
    return Job(samples=items, template=template, model="fake/m")


def run(j, backend, store, settings=FAST):
    store.put_samples(j.samples)
    return asyncio.run(execute(j, backend, store, settings))


def test_transient_errors_are_retried_and_attempts_recorded(tmp_path, image):
    backend = FakeBackend({"s1": [TransientError("500"), TransientError("reset")]})
    store = RunStore(tmp_path / "r.sqlite")
    counts = run(job(samples(image)), backend, store)
    records = {r.sample.id: r for r in store.records()}
    assert counts.errors == 0 and counts.sent == 6
    assert records["s1"].final.text == "yes" and records["s1"].final.attempts == 3
    assert records["s0"].final.attempts == 1


def test_retry_after_is_honoured(tmp_path, image):
    backend = FakeBackend({"s0": [TransientError("429", retry_after=0.3)]})
    store = RunStore(tmp_path / "r.sqlite")
    start = time.perf_counter()
    run(job(samples(image, n=1)), backend, store)
    assert time.perf_counter() - start >= 0.3
    assert backend.calls[("s0", 0)] == 2


def test_exhausted_retries_and_permanent_errors_are_recorded_per_sample(tmp_path, image):
    backend = FakeBackend({"s0": [TransientError("503")] * 10, "s2": [PermanentError("model not found")]})
    store = RunStore(tmp_path / "r.sqlite")
    counts = run(job(samples(image)), backend, store)
    records = {r.sample.id: r for r in store.records()}
    assert counts.errors == 2
    assert "gave up after 4 attempts" in records["s0"].error and "503" in records["s0"].error
    assert records["s2"].error == "model not found" and backend.calls[("s2", 0)] == 1  # not retried
    assert all(records[f"s{i}"].answered for i in (1, 3, 4, 5))


def test_hang_past_timeout_becomes_an_error_quickly(tmp_path, image):
    backend = FakeBackend(hang_s=30)
    store = RunStore(tmp_path / "r.sqlite")
    settings = FAST.model_copy(update={"timeout_s": 0.05, "max_retries": 1})
    start = time.perf_counter()
    counts = run(job(samples(image, n=2)), backend, store, settings)
    assert time.perf_counter() - start < 5
    assert counts.errors == 2
    assert all("timed out" in r.error for r in store.records())


def test_resume_sends_only_missing_and_retries_errors(tmp_path, image):
    store = RunStore(tmp_path / "r.sqlite")
    first = FakeBackend({"s3": [PermanentError("boom")]})
    run(job(samples(image)), first, store)
    assert sum(first.calls.values()) == 6
    second = FakeBackend()
    counts = run(job(samples(image)), second, store)
    assert dict(second.calls) == {("s3", 0): 1}  # only the failed one is asked again
    assert counts.cached == 5 and counts.sent == 1
    third = FakeBackend()
    run(job(samples(image)), third, store)
    assert sum(third.calls.values()) == 0
    assert all(r.answered for r in store.records())


def test_a_later_error_never_overwrites_a_success(tmp_path, image):
    store = RunStore(tmp_path / "r.sqlite")
    req = build_request(job(samples(image)), samples(image)[0], (), 0, False)
    store.put_generation(req.key, Generation(text="yes"))
    store.put_generation(req.key, Generation(error="late failure"))
    assert store.done()[req.key].text == "yes"


def test_request_key_ignores_transport_but_not_content(tmp_path, image):
    s = samples(image)[0]
    from medprobe.prompts import first_turn

    base = build_request(job([s]), s, first_turn(PromptTemplate(name="default"), s), 0, False)
    again = build_request(job([s]), s, first_turn(PromptTemplate(name="default"), s), 0, False)
    assert base.key == again.key
    other_prompt = PromptTemplate(name="x", closed="{question} Reply yes or no.")
    assert build_request(job([s]), s, first_turn(other_prompt, s), 0, False).key != base.key
    # a different image content changes the key even at the same path
    Image.new("RGB", (8, 8), (99, 0, 0)).save(tmp_path / "img.png")
    import os

    os.utime(tmp_path / "img.png", ns=(1, 1))
    assert build_request(job([s]), s, first_turn(PromptTemplate(name="default"), s), 0, False).key != base.key


def test_identical_requests_are_sent_once(tmp_path, image):
    a, b = samples(image, n=1) * 2
    b = b.model_copy(update={"id": "dup"})
    backend = FakeBackend()
    store = RunStore(tmp_path / "r.sqlite")
    run(job([a, b]), backend, store)
    assert sum(backend.calls.values()) == 1
    assert [r.final.text for r in store.records()] == ["yes", "yes"]


def test_multi_turn_builds_followup_from_reply(tmp_path, image):
    template = PromptTemplate(name="cot", closed="{question} Think.", followups=("Therefore the answer is",))
    seen = []

    def answer(r):
        seen.append(r)
        return "Let me think." if r.turn == 0 else "yes"

    store = RunStore(tmp_path / "r.sqlite")
    backend = FakeBackend({"s1": [PermanentError("down")]}, answer=answer)
    run(job(samples(image, n=2), template), backend, store)
    turn1 = [r for r in seen if r.turn == 1]
    assert len(turn1) == 1  # s1 failed at turn 0, so it gets no turn 1
    msgs = turn1[0].messages
    assert [m.role for m in msgs] == ["user", "assistant", "user"]
    assert msgs[1].content[0].text == "Let me think." and msgs[2].content[0].text == "Therefore the answer is"
    records = {r.sample.id: r for r in store.records(turns=2)}
    assert records["s0"].answered and records["s0"].final.text == "yes"
    assert not records["s1"].answered


def test_unusable_image_is_a_per_sample_error(tmp_path, image):
    items = samples(image, n=3)
    missing = ImageRef(path="nope.png", root=str(tmp_path))
    escaping = ImageRef(path="../../etc/passwd", root=str(tmp_path))
    items[1] = items[1].model_copy(update={"images": (missing,)})
    items[2] = items[2].model_copy(update={"images": (escaping,)})
    backend = FakeBackend()
    store = RunStore(tmp_path / "r.sqlite")
    counts = run(job(items), backend, store)
    records = {r.sample.id: r for r in store.records()}
    assert counts.errors == 2 and sum(backend.calls.values()) == 1
    assert "Image not found: nope.png" in records["s1"].error and "sample s1" in records["s1"].error
    assert "outside the dataset root" in records["s2"].error
