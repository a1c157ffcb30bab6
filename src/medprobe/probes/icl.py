"""icl: k-shot in-context demonstrations from the train split (option `icl:k=2`; default 2), after
SMMILE (Rieff et al., 2025): an irrelevant example hurts, and the most relevant example placed last
helps (recency bias). Demonstrations are earlier user/assistant turns with their images, rendered
with the run's prompt template; the assistant turn is the demonstration's gold answer.

Variants: `random` (k drawn with the probe's seed), `similar_first` / `similar_last` (the k most
similar, most similar first / last, i.e. next to the query), `irrelevant` (the similar_last set
with one irrelevant example put first: another modality, else another organ, else the least
similar). Similarity is cheap and documented: Jaccard overlap of the normalised question words,
+0.5 for the same answer type, +0.25 each for the same organ and the same modality. A train item
showing the query's own image, or the query itself, is never a demonstration.

Without a train split (custom benchmarks), samples whose split is "train" are the pool.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from medprobe.probes._base import ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec, by_variant, correct, failed_by_variant, metric, rng, variant
from medprobe.prompts import PromptTemplate, first_turn
from medprobe.types import Message, Part, Sample

NAME = "icl"
DEFAULT_K = 2
KINDS = ("random", "similar_first", "similar_last", "irrelevant")


def check(spec: ProbeSpec) -> None:
    spec.check(KINDS, ("k",))


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9]+", text.lower()))


def similarity(a: Sample, b: Sample) -> float:
    wa, wb = _words(a.question), _words(b.question)
    score = len(wa & wb) / (len(wa | wb) or 1) + 0.5 * (a.answer_type == b.answer_type)
    for key in ("organ", "modality"):
        score += 0.25 * (a.metadata.get(key) is not None and a.metadata.get(key) == b.metadata.get(key))
    return score


def demo_turns(demos: Sequence[Sample], template: PromptTemplate) -> tuple[Message, ...]:
    """Each demonstration as a user turn (images + instruction) and an assistant turn (its gold)."""
    turns: list[Message] = []
    for d in demos:
        turns += [m for m in first_turn(template, d.model_copy(update={"history": ()})) if m.role == "user"]
        turns.append(Message(role="assistant", content=(Part(type="text", text=d.answer),)))
    return tuple(turns)


def _images(s: Sample) -> set:
    return {(r.root, r.path, r.url, hash(r.data)) for r in s.images}


def _irrelevant(s: Sample, pool: list[Sample], ranked: list[Sample], g: np.random.Generator) -> Sample:
    for key in ("modality", "organ"):
        if s.metadata.get(key) is not None:
            other = [d for d in ranked if d.metadata.get(key) not in (None, s.metadata[key])]
            if other:
                tail = other[-5:]
                return tail[int(g.integers(len(tail)))]
    return ranked[-1]


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    k = int(ctx.spec.param("k", DEFAULT_K))
    kinds = ctx.spec.words or KINDS
    template = ctx.template if isinstance(ctx.template, PromptTemplate) else PromptTemplate(name="default")
    train = list(ctx.train) or [s for s in samples if s.split == "train"]
    out = []
    for s in samples:
        mine = _images(s)
        pool = [d for d in train if d.id != s.id and not (mine & _images(d))]
        if len(pool) < k + 1:
            continue
        ranked = sorted(pool, key=lambda d: (-similarity(s, d), d.id))  # most similar first
        g = rng(ctx.seed, s.id, NAME)
        top = ranked[:k]
        sets = {
            "random": [pool[i] for i in g.permutation(len(pool))[:k]],
            "similar_first": top,
            "similar_last": top[::-1],
            "irrelevant": [_irrelevant(s, pool, ranked[k:] or ranked, g), *top[::-1]],
        }
        for name in kinds:
            demos = sets[name]
            out.append(variant(s, NAME, name, history=demo_turns(demos, template),
                               detail={"demonstrations": ",".join(d.id for d in demos), "shots": len(demos)}))  # fmt: skip
    return out


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    kinds, lost = by_variant(groups), failed_by_variant(groups)
    acc = {name: {p.sample.id: correct(v, preset) for p, v in pairs} for name, pairs in kinds.items()}
    acc.update({name: {} for name in lost if name not in acc})  # every variant failed: a row with n = 0
    clean = {g.parent.sample.id: correct(g.parent, preset) for g in groups.values()}

    def delta(a: str, b: str | None, name: str, **detail):
        """a minus b (b None: zero-shot), paired by sample; pairs with a failed variant are left out."""
        x, y = acc.get(a, {}), acc.get(b, {}) if b else clean
        both = sorted(set(x) & set(y))
        failed = lost.get(a, 0) + (lost.get(b, 0) if b else 0)
        return metric(NAME, name, [x[i] - y[i] for i in both], preset, seed, failed, **detail) if both or failed else None

    rows = [metric(NAME, "accuracy", list(v.values()), preset, seed, lost.get(k, 0), variant=k) for k, v in sorted(acc.items())]
    rows.append(metric(NAME, "zero_shot_accuracy", list(clean.values()), preset, seed))
    rows += [m for k in sorted(acc) if (m := delta(k, None, "gain_over_zero_shot", variant=k))]
    best = "similar_last" if "similar_last" in acc else "random"
    headline = [
        delta(best, None, "icl_gain", variant=best),
        delta("irrelevant", "similar_last", "irrelevant_example_effect"),
        delta("similar_last", "similar_first", "order_effect"),
    ]  # fmt: skip
    return ProbeResult(probe=NAME, headline=tuple(m for m in headline if m), rows=tuple(rows),
                       note="icl_gain = k-shot (most similar last) minus zero-shot accuracy; irrelevant_example_effect = "
                            "with one irrelevant example first minus without; order_effect = most relevant last minus "
                            "first (paired by sample)")  # fmt: skip
