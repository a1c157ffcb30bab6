"""paraphrase: prompt sensitivity. Variants of each sample:

* `rephrase`: the dataset's own paraphrase where it has one (VQA-RAD `question_rephrase`);
* instruction templates wrapped around the question (the answer-format instruction of the run's
  prompt template is kept, so the parser sees the same format): `expert`, `careful`, `qa`.

agreement = share of a sample's prompts (clean + variants) giving its most common answer;
worst_template_accuracy = the lowest accuracy over the clean prompt and each template, on the
samples that have every template. A prompt whose request failed counts as disagreeing in agreement
(not known to agree); a sample with a failed template is left out of the template accuracies; both
are counted in `failed`.
"""

from __future__ import annotations

from collections.abc import Sequence

from medprobe.probes._base import ProbeResult
from medprobe.probes._kit import (Group, ProbeContext, ProbeSpec, answer_key, by_variant, correct, failed_by_variant,
                                  metric, paired_rows, tag, variant)
from medprobe.probes.repeat import majority
from medprobe.types import Sample

NAME = "paraphrase"
TEMPLATES = {
    "expert": "You are an expert radiologist reading this study. {question}",
    "careful": "Look carefully at the image before answering. {question}",
    "qa": "Question: {question}",
}
KINDS = ("rephrase", *TEMPLATES)


def check(spec: ProbeSpec) -> None:
    spec.check(KINDS)


def derive(samples: Sequence[Sample], ctx: ProbeContext) -> list[Sample]:
    kinds = ctx.spec.words or KINDS
    out = []
    for s in samples:
        rephrase = str(s.metadata.get("question_rephrase") or "").strip()
        if "rephrase" in kinds and rephrase and rephrase.lower() != s.question.strip().lower():
            out.append(variant(s, NAME, "rephrase", question=rephrase))
        for name, template in TEMPLATES.items():
            if name in kinds:
                out.append(variant(s, NAME, name, question=template.format(question=s.question)))
    return out


def analyze(groups: dict[str, Group], preset: str, seed: int) -> ProbeResult:
    agreement = []
    for g in groups.values():
        keys = [answer_key(r, preset) for r in (g.parent, *g.variants)]
        _, share = majority(keys)
        agreement.append(share * len(keys) / (len(keys) + len(g.failed)))  # failed prompts count as disagreeing
    kinds, lost = by_variant(groups), failed_by_variant(groups)
    failed = sum(lost.values())
    rows = []
    for name in [k for k in KINDS if k in kinds or k in lost]:
        rows += paired_rows(NAME, kinds.get(name, []), preset, seed, failed=lost.get(name, 0), variant=name)
    # worst template: on the parents that have every template variant, so accuracies are comparable
    templates = [k for k in TEMPLATES if k in kinds or k in lost]
    full = [g for g in groups.values() if {tag(v).variant for v in g.variants} >= set(templates)]
    lost_templates = sum(lost.get(k, 0) for k in templates)
    headline = [metric(NAME, "agreement", agreement, preset, seed, failed)]
    if templates and full:
        per = {"clean": [correct(g.parent, preset) for g in full]}
        for name in templates:
            per[name] = [correct(next(v for v in g.variants if tag(v).variant == name), preset) for g in full]
        worst = min(per, key=lambda k: sum(per[k]))
        headline.append(metric(NAME, "worst_template_accuracy", per[worst], preset, seed, lost_templates, template=worst))
        rows += [metric(NAME, "template_accuracy", v, preset, seed, lost_templates, template=k) for k, v in per.items()]
    elif templates:  # every sample lost a template to a failed request: say so rather than drop the figure
        headline.append(metric(NAME, "worst_template_accuracy", [], preset, seed, lost_templates))
    return ProbeResult(probe=NAME, headline=tuple(headline), rows=tuple(rows),
                       note="agreement = share of a sample's prompts giving its most common answer; templates wrap "
                            "the question, the answer-format instruction is the run's")  # fmt: skip
