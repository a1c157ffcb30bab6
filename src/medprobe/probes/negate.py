"""negate: adversarial twins, in the spirit of ProbMed (Yan et al., 2024). Three constructions,
each made only where the gold of the twin follows from the data:

* `mc`: every option of a multiple-choice item becomes a yes/no question ("Is the answer X?"):
  yes for the gold option, no for the others. The item counts only if every twin is right.
* `substitute`: a closed question whose gold is yes, that asks what the image *is* ("Is this a CT
  scan?", "Is this an image of the chest?"), and names the sample's own `modality` / `organ`
  label: the label's word is replaced by another value's word, gold no. The pair (original,
  twin) counts only if both are right. Questions about findings ("Is the lung clear?") are never
  substituted: changing the organ there does not make the answer no.
* `attribute`: ProbMed's ground-truth / adversarial pair built from the metadata alone, once per
  image and attribute: "Is this a CT image?" (yes) and "Is this an MRI image?" (no).

A twin set with a failed twin is not known to be right entirely: it counts as not right, and the
figure's `failed` says how many twins failed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from medprobe.probes._base import ProbeResult
from medprobe.probes._kit import Group, ProbeContext, ProbeSpec, correct, metric, rng, score, tag, variant
from medprobe.prompts import LETTERS
from medprobe.types import AnswerType, Sample

NAME = "negate"
KINDS = ("mc", "substitute", "attribute")

# canonical value -> (surface form used in new questions, words that name it in a question)
MODALITIES = {
    "ct": ("CT", ("ct", "computed tomography", "cat scan")),
    "mri": ("MRI", ("mri", "mr", "magnetic resonance")),
    "x-ray": ("X-ray", ("x-ray", "xray", "radiograph", "plain film")),
    "ultrasound": ("ultrasound", ("ultrasound", "sonogram")),
}
ORGANS = {
    "head": ("head", ("head", "brain", "skull")),
    "chest": ("chest", ("chest", "thorax", "lung", "lungs")),
    "abdomen": ("abdomen", ("abdomen", "abdominal")),
    "pelvis": ("pelvis", ("pelvis", "pelvic")),
    "neck": ("neck", ("neck",)),
}
ALIASES = {"abd": "abdomen", "xray": "x-ray", "x ray": "x-ray", "mr": "mri", "brain": "head", "lung": "chest",
           "brain_tissue": "head", "us": "ultrasound", "brain_face": "head"}  # fmt: skip
ATTRIBUTES = {"modality": (MODALITIES, "Is this {a} {x} image?"), "organ": (ORGANS, "Does this image show the {x}?")}
# questions that ask what the image is: "is this (a|an) ...", "is the image ...", "was this taken with ..."
_KIND = r"(image|scan|study|film|radiograph|picture|exam|ct|mri|x-?ray)"
_IDENTITY = re.compile(rf"^\s*(?:(?:is|was)\s+this\s+(?:an?\s+|the\s+)?(?:[\w-]+\s+)?{_KIND}\b"
                       rf"|(?:is|was|does)\s+the\s+{_KIND}\b)", re.I)


def check(spec: ProbeSpec) -> None:
    spec.check(KINDS)


def _canon(value, table: dict) -> str | None:
    key = str(value or "").strip().lower().replace("_", " ")
    key = ALIASES.get(key, key)
    return key if key in table else None


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" or word.upper() in ("MRI", "X-RAY") else "a"


def _yes_no(s: Sample, twin_id: str, question: str, answer: str, group: str, **meta) -> Sample:
    return variant(s, NAME, twin_id, question=question, answer=answer, options=(), answer_type=AnswerType.CLOSED,
                   prompt_type=AnswerType.CLOSED, detail={"twin_group": group, **meta})  # fmt: skip


def _mc_twins(s: Sample) -> list[Sample]:
    gold = s.answer.strip().upper()
    return [_yes_no(s, f"mc:{LETTERS[i]}", f'{s.question}\nIs the answer "{opt}"?', "yes" if LETTERS[i] == gold else "no",
                    "mc", option=opt)
            for i, opt in enumerate(s.options)]  # fmt: skip


def _substitute(s: Sample, ctx: ProbeContext) -> list[Sample]:
    if s.answer_type is not AnswerType.CLOSED or s.answer.strip().lower() != "yes" or not _IDENTITY.match(s.question):
        return []
    out = []
    for attr, (table, _) in ATTRIBUTES.items():
        own = _canon(s.metadata.get(attr), table)
        if own is None:
            continue
        words = sorted(table[own][1], key=len, reverse=True)
        found = re.search(r"\b(" + "|".join(map(re.escape, words)) + r")\b", s.question, re.I)
        others = [k for k in table if k != own]
        if not found:
            continue
        new = table[others[int(rng(ctx.seed, s.id, f"{NAME}/{attr}").integers(len(others)))]][0]
        question = s.question[: found.start()] + new + s.question[found.end() :]
        question = re.sub(r"\b(a|an)(\s+)" + re.escape(new), lambda m: _article(new) + m.group(2) + new, question, 1)
        out.append(_yes_no(s, f"sub:{attr}", question, "no", f"sub:{attr}", substituted=new))
    return out


def _attribute(s: Sample, ctx: ProbeContext, seen: set) -> list[Sample]:
    out = []
    image = tuple(r.describe() + str(r.root) for r in s.images)
    for attr, (table, template) in ATTRIBUTES.items():
        own = _canon(s.metadata.get(attr), table)
        if own is None or not s.images or (image, attr) in seen:
            continue
        seen.add((image, attr))
        others = [k for k in table if k != own]
        adv = table[others[int(rng(ctx.seed, s.id, f"{NAME}/attr/{attr}").integers(len(others)))]][0]
        for side, word, answer in (("gt", table[own][0], "yes"), ("adv", adv, "no")):
            out.append(_yes_no(s, f"attr:{attr}:{side}", template.format(a=_article(word), x=word), answer,
                               f"attr:{attr}"))  # fmt: skip
    return out


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    kinds = ctx.spec.words or KINDS
    out, seen = [], set()
    for s in samples:
        if "mc" in kinds and s.answer_type is AnswerType.MULTIPLE_CHOICE and s.options \
                and s.answer.strip().upper() in LETTERS[: len(s.options)]:  # fmt: skip
            out += _mc_twins(s)
        if "substitute" in kinds:
            out += _substitute(s, ctx)
        if "attribute" in kinds:
            out += _attribute(s, ctx, seen)
    return out


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    all_right: dict[str, list[float]] = {}
    lost: Counter[str] = Counter()  # construction -> failed twins
    false_yes, twin_acc = [], []
    failed_no = 0
    for g in groups.values():
        sets: dict[str, list] = {}
        broken: Counter[str] = Counter()
        for v in g.failed:
            broken[str(tag(v).detail["twin_group"])] += 1
            failed_no += v.sample.answer == "no"
        for v in g.variants:
            sets.setdefault(str(tag(v).detail["twin_group"]), []).append(v)
            ok = correct(v, preset)
            twin_acc.append(ok)
            if v.sample.answer == "no":
                a = score(v, preset).answer
                false_yes.append(1.0 if a.valid and a.value == "yes" else 0.0)
        for name in dict.fromkeys([*sets, *broken]):
            kind = name.split(":")[0]
            lost[kind] += broken[name]
            if broken[name]:  # a failed twin: the set is not known to be right entirely
                all_right.setdefault(kind, []).append(0.0)
                continue
            # a substituted twin is paired with its original question (ProbMed: both must be right)
            members = [g.parent, *sets[name]] if name.startswith("sub:") else sets[name]
            all_right.setdefault(kind, []).append(min(correct(r, preset) for r in members))
    every = [x for v in all_right.values() for x in v]
    failed = sum(lost.values())
    rows = [metric(NAME, "negation_twin_accuracy", v, preset, seed, lost[k], construction=k)
            for k, v in sorted(all_right.items())]  # fmt: skip
    rows += [metric(NAME, "twin_accuracy", twin_acc, preset, seed, failed),
             metric(NAME, "false_yes_rate", false_yes, preset, seed, failed_no)]
    headline = (metric(NAME, "negation_twin_accuracy", every, preset, seed, failed), rows[-1])
    return ProbeResult(probe=NAME, headline=headline, rows=tuple(rows),
                       note="negation_twin_accuracy = share of twin sets (mc: every option's yes/no twin; substitute: "
                            "original + its 'no' twin; attribute: ProbMed's yes/no pair) answered right entirely; "
                            "false_yes_rate = 'yes' to a twin whose gold is no")  # fmt: skip
