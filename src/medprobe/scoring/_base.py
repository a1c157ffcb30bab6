"""A scoring preset: one named rule set that turns (sample, model text) into a Score."""

from __future__ import annotations

from typing import ClassVar

from medprobe.types import Answer, AnswerType, Outcome, Sample, Score


class Preset:
    """Subclass, set the class attributes, implement `score`.

    `value_names` says what `Score.value` means per answer type (e.g. LLaVA-Med reports closed
    *accuracy* but open *recall*), so every aggregated number carries its metric and preset name.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    reproduces: ClassVar[str]  # the official script / toolkit whose numbers this preset reproduces
    value_names: ClassVar[dict[AnswerType, str]] = {
        AnswerType.CLOSED: "accuracy",
        AnswerType.OPEN: "accuracy",
        AnswerType.MULTIPLE_CHOICE: "accuracy",
    }

    #: benchmarks whose official script this preset reproduces; empty = any benchmark. A preset
    #: restricted to a benchmark (probmed, smmile-*) scores only that benchmark's samples.
    benchmarks: ClassVar[tuple[str, ...]] = ()

    def applies(self, sample: Sample) -> bool:
        """Whether this preset has a rule for the sample (its answer type, and its benchmark if restricted)."""
        return sample.answer_type in self.value_names and (not self.benchmarks or sample.benchmark in self.benchmarks)

    def score(self, sample: Sample, text: str | None) -> Score:
        """Score one model output. `text` is None when generation failed (the runner records the error)."""
        raise NotImplementedError

    def unsupported(self, parser: str) -> Score:
        """No official rule for this sample (its answer type or benchmark): INVALID, never guessed.
        medprobe.results leaves such samples out of the preset's rows (see `applies`)."""
        answer = Answer(value=None, parser=parser, valid=False, reason="unsupported_answer_type")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=self.name, parser=parser, answer=answer)
