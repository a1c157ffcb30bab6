"""Stored probe variants as a reader that shows them needs them: what the variant asked and what came back,
without what only scoring needs.

A 10,000-question run with the default probes stores ~160,000 variants beside its clean samples.
Validating each as a full `Sample` and `Generation` (every field, every token logprob) was half of the time
a report took to write; these views read the same stored JSON into a few typed fields and skip the rest
(pydantic ignores the other keys without building them). Their outcomes come from `medprobe.outcomes`,
scored once when the run was scored.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from medprobe.types import ImageRef, Record, VariantTag


class _Light(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)


class _Turn(_Light):
    role: str


class VariantSample(_Light):
    """The fields of a stored variant `Sample` that differ between a variant and its parent."""

    id: str
    question: str
    answer: str
    options: tuple[str, ...] = ()
    images: tuple[ImageRef, ...] = ()
    history: tuple[_Turn, ...] = ()
    variant_of: VariantTag

    @property
    def shots(self) -> int:
        """In-context demonstrations sent before the question (one user turn each)."""
        return sum(1 for m in self.history if m.role == "user")


class Reply(_Light):
    """What a stored `Generation` says to a reader: the text, the chain and the failure (no logprobs)."""

    text: str | None = None
    reasoning: str | None = None
    finish_reason: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class VariantRow:
    """One stored variant with the reply to each planned turn that has one."""

    sample: VariantSample
    replies: tuple[Reply, ...]

    @property
    def final(self) -> Reply | None:
        return self.replies[-1] if self.replies else None

    @property
    def error(self) -> str | None:
        return next((g.error for g in self.replies if g.error), None)

    @classmethod
    def of(cls, record: Record) -> VariantRow:
        """The view of a variant record already read in full (a run held in memory, a legacy store)."""
        return cls(sample=VariantSample.model_validate(record.sample),
                   replies=tuple(Reply.model_validate(g) for g in record.generations))  # fmt: skip
