"""What report probes share: the report text a record holds, and the split of a probe's groups into report
studies (`AnswerType.REPORT`, judged by text similarity) and questions (judged right or wrong).

A report is read the way its scoring preset reads it when the preset scores reports (reasoning chain and
section header removed, an empty or refused reply invalid); under a preset without a rule for reports it
is the reply after any reasoning chain, and an empty one is invalid. Invalid reports are counted next to
every figure (`invalid`), never compared as empty text.
"""

from __future__ import annotations

from medprobe import scoring
from medprobe.probes._kit import Group
from medprobe.reasoning import split_generation
from medprobe.types import AnswerType, Record, Sample


def is_report(sample: Sample) -> bool:
    return sample.answer_type is AnswerType.REPORT


def report_text(record: Record, preset: str) -> str | None:
    """The report of an answered record, or None when it is invalid (empty, refused, cut inside its chain)."""
    if not record.answered or record.final is None:
        return None
    rule = scoring.get(preset)
    if rule.applies(record.sample):
        answer = rule.score_generation(record.sample, record.final).answer
        return (answer.value or "").strip() or None if answer.valid else None
    part = split_generation(record.final)
    return part.answer.strip() or None if part.invalid_reason is None else None


def split_reports(groups: dict[str, Group]) -> tuple[dict[str, Group], dict[str, Group]]:
    """(report groups, the others), by the parent's answer type."""
    reports = {k: g for k, g in groups.items() if is_report(g.parent.sample)}
    return reports, {k: g for k, g in groups.items() if k not in reports}
