"""A scoring preset: one named rule set that turns (sample, model text) into a Score.

Every preset scores the answer part of a reply: `Preset.score` splits off a reasoning chain
(medprobe.reasoning) and hands what follows it to the preset's own rule, `score_answer`. Official presets
keep their official rules, applied to the answer part; a chain that never closes, or is followed by
nothing, is INVALID (`unfinished_reasoning`, `no_answer_after_reasoning`) under every preset, because no
official script defines an answer for a reply that holds none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from medprobe.reasoning import split
from medprobe.types import GOLD_HIDDEN, Answer, AnswerType, Generation, Outcome, Record, Sample, Score

#: `Answer.method` of every answer an official rule picked as the option nearest to the reply (a
#: similarity score) rather than one the reply named; such answers also carry `Answer.fallback`
NEAREST_OPTION = "nearest_option_fallback"


class Preset:
    """Subclass, set the class attributes, implement `score_answer`.

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
    #: computed only when asked for by name (`--preset`): the clinical report presets load model weights
    on_request: ClassVar[bool] = False

    def applies(self, sample: Sample) -> bool:
        """Whether this preset has a rule for the sample (its answer type, and its benchmark if restricted); never
        for a sample whose gold is not released (`types.GOLD_HIDDEN`: MMMU test)."""
        return (sample.answer_type in self.value_names and (not self.benchmarks or sample.benchmark in self.benchmarks)
                and not sample.metadata.get(GOLD_HIDDEN))

    def group_of(self, sample: Sample) -> AnswerType:
        """The answer-type row (closed / open / multiple choice) the official script reports the sample in:
        the dataset's answer type, unless the script decides it another way (MultiMedEval and MedEvalKit
        call a question closed when its gold is yes/no). medprobe.metrics.regroup forms the rows from it."""
        return sample.answer_type

    def score(self, sample: Sample, text: str | None, finish_reason: str | None = None,
              reasoning: str | None = None) -> Score:
        """Score one model output: the answer after its reasoning chain (inline in `text`, or given apart in
        `reasoning`, the server's field). `text` is None when generation failed (the runner records the error)."""
        if sample.metadata.get(GOLD_HIDDEN):  # a placeholder gold ("?"): scoring against it would say "wrong"
            answer = Answer(value=None, parser="no_gold", valid=False, reason="no_gold")
            return Score(outcome=Outcome.INVALID, value=0.0, preset=self.name, parser="no_gold", answer=answer)
        # no chain (or a failed generation): the common, cheap path; = not reasoning.may_hold_chain(text), inlined
        if reasoning is None and (text is None or ("think" not in text and "◁" not in text)):
            return self.score_answer(sample, text)
        part = split(text, reasoning, finish_reason)
        reason = part.invalid_reason
        if reason is None:
            return self.score_answer(sample, part.answer)
        # the preset's own INVALID score for a missing answer (its parser name), with the reason why
        failed = self.score_answer(sample, None)
        if failed.answer.reason != "error":  # e.g. unsupported_answer_type: that reason stands
            return failed
        return failed.model_copy(update={"answer": failed.answer.model_copy(update={"reason": reason})})

    def score_generation(self, sample: Sample, generation: Generation | None) -> Score:
        """`score` of a stored generation (its text, finish_reason and reasoning field)."""
        if generation is None:
            return self.score_answer(sample, None)
        return self.score(sample, generation.text, generation.finish_reason, generation.reasoning)

    def score_answer(self, sample: Sample, text: str | None) -> Score:
        """The preset's rule on the answer part (no chain in it). `text` None: generation failed, or there is
        no answer; return the preset's INVALID score with reason "error"."""
        raise NotImplementedError

    def corpus_rows(self, records: Sequence[Record], scores: Sequence[Score | None], subsets, seed: int) -> list | None:
        """The preset's rows when its metrics are corpus statistics (report presets: corpus BLEU, CIDEr), or
        None for the usual rows (the mean of `Score.value` per subset). `scores[i]` is None where the preset
        does not apply; `subsets` as medprobe.metrics.subsets gives them."""
        return None

    def unsupported(self, parser: str) -> Score:
        """No official rule for this sample (its answer type or benchmark): INVALID, never guessed.
        medprobe.results leaves such samples out of the preset's rows (see `applies`)."""
        answer = Answer(value=None, parser=parser, valid=False, reason="unsupported_answer_type")
        return Score(outcome=Outcome.INVALID, value=0.0, preset=self.name, parser=parser, answer=answer)
