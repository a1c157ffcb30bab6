"""Honest floors every report can show.

- `baseline/random`: a uniform guess: yes/no for closed questions, a letter for multiple choice,
  a train-split answer for open questions, a train-split report for report generation. Seeded by
  (seed, sample id): reproducible.
- `baseline/prior`: answers without looking at the image or the question text beyond its type:
  the train split's most frequent answer for the question's (answer kind, question type), falling
  back to the answer kind alone. A model that does not beat it is not reading the image. On report
  benchmarks that is the train split's most frequent report (whitespace-normalised): a normal-study
  template, the floor report-generation papers compare with (most IU-Xray studies are normal).
  Train rows that are also being evaluated are left out of the counts, so the floor never sees
  the gold of what it answers. (Not leave-one-out: on small data, removing a sample's own answer
  from near-balanced counts flips the majority against it and makes the floor look worse than it is.)
"""

from __future__ import annotations

import random
import time
import zlib
from collections import Counter
from collections.abc import Sequence

from medprobe.backends._base import BackendConfig, PermanentError
from medprobe.prompts import LETTERS
from medprobe.types import AnswerType, Generation, Request, Sample

KINDS = ("random", "prior")


def _norm(answer: str) -> str:
    return " ".join(answer.lower().split())


def _counted(s: Sample) -> str:
    """What a train sample's answer counts as: the letter, the whole report (case kept), or the normalised answer."""
    if s.answer_type == AnswerType.MULTIPLE_CHOICE:
        return s.answer
    if s.answer_type == AnswerType.REPORT:
        return " ".join(s.answer.split())
    return _norm(s.answer)


class BaselineBackend:
    name = "baseline"
    batch_size = 512
    needs_train = True

    def __init__(self, config: BackendConfig):
        if config.model not in KINDS:
            raise ValueError(f"Unknown baseline {config.model!r}; use baseline/random or baseline/prior.")
        self.kind = config.model
        self.seed = int(config.options.get("seed") or 0)
        self.samples: dict[str, Sample] = {}
        self.by_type: dict[tuple, Counter] = {}

    def bind(self, samples: Sequence[Sample], train: Sequence[Sample] | None) -> None:
        """Called by the runner before generation with the evaluated samples and the train split."""
        self.samples = {s.id: s for s in samples}
        evaluated = {(s.benchmark, s.id) for s in samples}
        for s in train or ():
            if (s.benchmark, s.id) in evaluated:
                continue
            answer = _counted(s)
            for key in self._keys(s):
                self.by_type.setdefault(key, Counter())[answer] += 1

    @staticmethod
    def _keys(s: Sample) -> tuple[tuple, ...]:
        return ((s.prompt_kind, s.metadata.get("question_type")), (s.prompt_kind,))

    def _prior(self, s: Sample) -> str | None:
        for key in self._keys(s):
            if counts := self.by_type.get(key):
                # ties broken alphabetically so the floor is deterministic
                return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        return None

    def _random(self, s: Sample) -> str:
        rng = random.Random(zlib.crc32(f"{self.seed}:{s.benchmark}:{s.id}".encode()))
        if s.prompt_kind == AnswerType.MULTIPLE_CHOICE:
            return LETTERS[rng.randrange(max(1, len(s.options)))]
        if s.prompt_kind == AnswerType.CLOSED:
            return rng.choice(("yes", "no"))
        pool = sorted(self.by_type.get((s.prompt_kind,), ()))  # open answers, or reports
        if pool:
            return rng.choice(pool)
        if s.prompt_kind == AnswerType.REPORT:
            raise PermanentError(
                "baseline/random draws a report from the benchmark's train split, which had none here "
                "(the layout has no train split, or --train-split names an empty one)"
            )
        return "unknown"

    def answer(self, s: Sample) -> str:
        if self.kind == "random":
            return self._random(s)
        guess = self._prior(s)
        if guess is None:
            raise PermanentError(
                "baseline/prior has no train answer for this question type: it learns from the benchmark's train "
                "split minus the evaluated samples (evaluate --split test, pass --train-split, or use baseline/random)"
            )
        return guess

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out = []
        for r in requests:
            start = time.perf_counter()
            sample = self.samples.get(r.sample_id)
            if sample is None:
                raise PermanentError(f"baseline got a request for unknown sample {r.sample_id}")
            out.append(Generation(text=self.answer(sample), latency_s=time.perf_counter() - start))
        return out

    async def aclose(self) -> None:
        return None
