"""The blind and corrupt probes on reports: text similarity instead of accuracy.

A report has no right or wrong answer, so a variant's report is compared as text, with the lexical metrics of
medprobe.textmetrics (pycocoevalcap's ROUGE-L and corpus BLEU-4, PTB tokens):

* blind: the report written without the image against the report written seeing it (`*_to_seeing`: how much
  of a report is template; 1 = the image changed nothing) and against the reference (`*_to_reference`), and
  the drop of the reference metric from seeing to blind (`*_drop`, paired by study);
* corrupt: the corrupted-image report against the reference, its drop from the clean report (paired by
  study) and its similarity to the clean report (`rouge_l_to_clean`).

Every interval resamples studies (`medprobe.textmetrics.corpus`: corpus BLEU re-summed from per-study counts;
a drop is a paired bootstrap, the same studies drawn for both reports). A pair whose seeing or variant report
is invalid (empty, refused) is left out of the similarities and counted: `invalid_rate` is the share of
variants whose report is invalid where the seeing one is valid (a model that refuses without the image).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medprobe.probes._base import ProbeMetric
from medprobe.probes._kit import metric
from medprobe.probes._text import report_text
from medprobe.textmetrics import corpus
from medprobe.types import Record

#: (probe metric name, textmetrics corpus metric)
METRICS = (("rouge_l", "rougeL"), ("bleu4", "bleu4"))


class Texts:
    """The valid (seeing, variant, reference) report triples of a list of (parent, variant) pairs."""

    def __init__(self, pairs: Sequence[tuple[Record, Record]], preset: str):
        self.seeing: list[str] = []
        self.variant: list[str] = []
        self.reference: list[str] = []
        self.invalid = 0  # variants with an invalid report where the seeing one is valid
        self.unseen = 0  # pairs whose seeing report is invalid (nothing to compare with)
        for parent, child in pairs:
            seeing, probed = report_text(parent, preset), report_text(child, preset)
            if seeing is None:
                self.unseen += 1
            elif probed is None:
                self.invalid += 1
            else:
                self.seeing.append(seeing)
                self.variant.append(probed)
                self.reference.append(parent.sample.answer)

    def table(self, candidates: list[str], references: list[str]) -> corpus.StudyTable:
        return corpus.study_table(candidates, [[r] for r in references])


def _row(probe: str, name: str, value: float, ci: tuple[float, float], n: int, preset: str, failed: int,
         detail: dict) -> ProbeMetric:  # fmt: skip
    return ProbeMetric(probe=probe, name=name, value=value, ci_low=ci[0], ci_high=ci[1], n=n, failed=failed,
                       preset=preset, detail=detail)  # fmt: skip


def _seed_name(probe: str, name: str, detail: dict) -> str:
    """Each figure's own draws, seeded by (seed, probe, figure, detail) as every probe figure is."""
    return f"probe/{probe}/{name}/" + ",".join(f"{k}={v}" for k, v in sorted(detail.items()))


def similarity(probe: str, name: str, table: corpus.StudyTable, preset: str, seed: int, failed: int,
               detail: dict) -> list[ProbeMetric]:  # fmt: skip
    """`rouge_l_<name>`-style rows: each corpus metric of `table` with its study-level bootstrap interval."""
    if not len(table):
        return []
    out = []
    for short, m in METRICS:
        label = f"{short}_{name}" if name else short
        ci = corpus.bootstrap_weighted(lambda w, m=m: table.weighted(m, w), len(table), seed,
                                       _seed_name(probe, label, detail))  # fmt: skip
        out.append(_row(probe, label, table.value(m), ci, len(table), preset, failed, detail))
    return out


def drops(probe: str, clean: corpus.StudyTable, probed: corpus.StudyTable, preset: str, seed: int, failed: int,
          detail: dict) -> list[ProbeMetric]:  # fmt: skip
    """clean minus probed, per corpus metric, with the paired bootstrap interval by study (the same studies
    drawn for both: corpus BLEU re-summed from per-study counts on each draw)."""
    if not len(clean):
        return []
    out = []
    for short, m in METRICS:
        ci = corpus.bootstrap_weighted(lambda w, m=m: clean.weighted(m, w) - probed.weighted(m, w), len(clean), seed,
                                       _seed_name(probe, f"{short}_drop", detail))  # fmt: skip
        out.append(_row(probe, f"{short}_drop", clean.value(m) - probed.value(m), ci, len(clean), preset, failed,
                        detail))  # fmt: skip
    return out


def invalid_rate(probe: str, texts: Texts, preset: str, seed: int, failed: int, detail: dict) -> ProbeMetric:
    values = [0.0] * len(texts.seeing) + [1.0] * texts.invalid
    return metric(probe, "invalid_rate", values, preset, seed, failed, **detail)


def blind(probe: str, pairs: Sequence[tuple[Record, Record]], preset: str, seed: int, failed: int,
          detail: dict) -> list[ProbeMetric]:  # fmt: skip
    """The blind figures of one variant kind (see the module docstring)."""
    texts = Texts(pairs, preset)
    detail = {**detail, "unseen": texts.unseen} if texts.unseen else detail
    seeing_ref = texts.table(texts.seeing, texts.reference)
    blind_ref = texts.table(texts.variant, texts.reference)
    return [*similarity(probe, "to_seeing", texts.table(texts.variant, texts.seeing), preset, seed, failed, detail),
            *similarity(probe, "to_reference", blind_ref, preset, seed, failed, detail),
            *drops(probe, seeing_ref, blind_ref, preset, seed, failed, detail),
            invalid_rate(probe, texts, preset, seed, failed, detail)]  # fmt: skip


def corrupted(probe: str, pairs: Sequence[tuple[Record, Record]], preset: str, seed: int, failed: int,
              detail: dict) -> list[ProbeMetric]:  # fmt: skip
    """The corrupt figures of one (corruption, severity) cell."""
    texts = Texts(pairs, preset)
    detail = {**detail, "unseen": texts.unseen} if texts.unseen else detail
    clean = texts.table(texts.seeing, texts.reference)
    probed = texts.table(texts.variant, texts.reference)
    to_clean = texts.table(texts.variant, texts.seeing)
    return [*similarity(probe, "", probed, preset, seed, failed, detail),
            *drops(probe, clean, probed, preset, seed, failed, detail),
            *similarity(probe, "to_clean", to_clean, preset, seed, failed, detail)[:1],
            invalid_rate(probe, texts, preset, seed, failed, detail)]  # fmt: skip


def clean_rows(probe: str, parents: Sequence[Record], preset: str, seed: int) -> list[ProbeMetric]:
    """ROUGE-L and BLEU-4 of the clean (seeing) reports against their references: clean_rouge_l, clean_bleu4."""
    valid = [(t, p.sample.answer) for p in parents if (t := report_text(p, preset)) is not None]
    table = corpus.study_table([t for t, _ in valid], [[r] for _, r in valid])
    return [m.model_copy(update={"name": f"clean_{m.name}"}) for m in similarity(probe, "", table, preset, seed, 0, {})]


def worst(rows: Sequence[ProbeMetric], name: str) -> ProbeMetric | None:
    """The largest `name` row (a drop), renamed worst_`name`."""
    found = [m for m in rows if m.name == name and m.n and not np.isnan(m.value)]
    if not found:
        return None
    return max(found, key=lambda m: m.value).model_copy(update={"name": f"worst_{name}"})
