"""pair: paired-image confusion on any benchmark, scored as MediConfusion (Sepehri et al., 2024).

Two clean samples form a pair when they ask the same question (normalised: lowercase, punctuation
dropped, whitespace collapsed; same answer type) about different images with different gold
answers. Within one question, samples are matched into disjoint pairs after a shuffle seeded by
(seed, question, "pair"), each with the next unmatched sample of a different gold. No new request
is made: the pairs are formed from the clean answers.

* set_accuracy = pairs with both answers right / pairs;
* confusion_rate = pairs whose two answers are the same valid answer / pairs with both answers valid
  (MediConfusion's denominator: valid pairs, not all pairs);
* individual_accuracy and invalid_rate over the paired samples.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medprobe.probes._base import ProbeMetric, ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec, answer_key, correct, metric, rng
from medprobe.types import Record, Sample

NAME = "pair"
USES_CLEAN = True  # pairs are formed among the clean samples


def check(spec: ProbeSpec) -> None:
    spec.check()


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    return []


def normalise(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", question.lower()).split())


def _images(r: Record) -> tuple:
    return tuple((i.root, i.path, i.url, hash(i.data)) for i in r.sample.images)


def make_pairs(records: Sequence[Record], seed: int) -> list[tuple[Record, Record]]:
    by_question: dict[tuple, list[Record]] = {}
    for r in records:
        if r.sample.images:
            by_question.setdefault((normalise(r.sample.question), r.sample.answer_type), []).append(r)
    pairs = []
    for (question, _), group in sorted(by_question.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda r: r.sample.id)
        order = rng(seed, question, NAME).permutation(len(group))
        free = [group[i] for i in order]
        while free:
            a = free.pop(0)
            gold = normalise(a.sample.answer)
            match = next((b for b in free if normalise(b.sample.answer) != gold and _images(b) != _images(a)), None)
            if match is not None:
                free.remove(match)
                pairs.append((a, match))
    return pairs


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    pairs = make_pairs([g.parent for g in groups.values()], seed)
    if not pairs:
        return ProbeResult(probe=NAME, ran=False, note="no two samples share a question with different gold answers")
    both, confused, singles, invalid = [], [], [], []
    for a, b in pairs:
        ca, cb = correct(a, preset), correct(b, preset)
        ka, kb = answer_key(a, preset), answer_key(b, preset)
        both.append(ca * cb)
        singles += [ca, cb]
        invalid += [float(ka == "<invalid>"), float(kb == "<invalid>")]
        if "<invalid>" not in (ka, kb):
            confused.append(float(ka == kb))
    headline = [metric(NAME, "set_accuracy", both, preset, seed)]
    if confused:
        headline.append(metric(NAME, "confusion_rate", confused, preset, seed))
    else:
        headline.append(ProbeMetric(probe=NAME, name="confusion_rate", value=float("nan"), n=0, preset=preset))
    rows = [metric(NAME, "individual_accuracy", singles, preset, seed),
            metric(NAME, "invalid_rate", invalid, preset, seed)]  # fmt: skip
    return ProbeResult(probe=NAME, headline=tuple(headline), rows=tuple(rows),
                       note=f"{len(pairs)} pairs of samples asking the same question about different images with "
                            "different golds; confusion_rate's n = pairs with both answers valid")  # fmt: skip
