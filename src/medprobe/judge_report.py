"""The judge in results: a `judge:<model>` preset row set and the judge/rule agreement section.

`medprobe score RUN` calls `attach` when the run folder holds judge.sqlite: the stored verdicts
become Scores (outcome from the judge, parser `judge:<prompt>@<hash>`), aggregated like any preset
(overall, answer types, subgroups, the benchmark's own rows such as MediConfusion's set accuracy
and confusion), and each rule preset is compared with the judge sample by sample: the share of
samples where "judge says correct" equals "rule says correct", and Cohen's kappa of the two.
Samples without a verdict (the judge request failed) are counted as judge errors, never scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from medprobe import clusters, judge_green, scoring
from medprobe.clusters import Resampling
from medprobe.judge_report_green import ReportAgreement, graded
from medprobe.judge_report_green import markdown as green_markdown
from medprobe.metrics import Metric, PresetResult, benchmark_aggregate, subsets
from medprobe.types import Answer, Frozen, Outcome, Record, Score

if TYPE_CHECKING:
    from medprobe.judge import Verdict
    from medprobe.results import Results


class Agreement(Frozen):
    """Judge vs one rule preset on the samples both scored (an invalid answer counts as not correct)."""

    preset: str
    n: int
    agreement: float = Field(description="share of samples where judge correct == rule correct")
    kappa: float | None = Field(description="Cohen's kappa; None when chance agreement is 1 (both constant)")
    both_correct: int
    judge_only: int = Field(description="judge correct, rule not")
    rule_only: int = Field(description="rule correct, judge not")
    both_wrong: int


class JudgeSection(Frozen):
    preset: str = Field(description="name of the judge's preset rows, judge:<provider/model>")
    judge_model: str
    prompts: dict[str, str] = Field(description="judge prompt name -> hash")
    judged: int = Field(description="answered samples with a verdict (correct, wrong or invalid)")
    errors: int = Field(description="answered samples whose judge request failed: no verdict, not scored")
    invalid_reasons: dict[str, int] = Field(default_factory=dict, description="unparseable_verdict, no_margin")
    agreement: tuple[Agreement, ...] = ()
    report_agreement: tuple[ReportAgreement, ...] = Field((), description="GREEN verdicts on reports: correlation "
                                                          "with each rule metric, study by study")


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen (1960) for two binary raters: (p_o - p_e) / (1 - p_e)."""
    po = float(np.mean(a == b))
    pa, pb = float(a.mean()), float(b.mean())
    pe = pa * pb + (1 - pa) * (1 - pb)
    return None if pe >= 1 else (po - pe) / (1 - pe)


def agreement(preset: str, judge: np.ndarray, rule: np.ndarray) -> Agreement:
    return Agreement(preset=preset, n=len(judge), agreement=float(np.mean(judge == rule)), kappa=cohen_kappa(judge, rule),
                     both_correct=int(np.sum(judge & rule)), judge_only=int(np.sum(judge & ~rule)),
                     rule_only=int(np.sum(~judge & rule)), both_wrong=int(np.sum(~judge & ~rule)))  # fmt: skip


def _score(v: Verdict) -> Score:
    parser = f"judge:{v.prompt_name}@{v.prompt_hash}"
    answer = Answer(value=v.chosen if v.kind == "option-scores" else None, parser=parser, method=v.kind,
                    valid=v.outcome is not Outcome.INVALID, reason=v.reason)
    return Score(outcome=v.outcome, value=float(v.outcome is Outcome.CORRECT), preset=f"judge:{v.judge_model}",
                 parser=parser, answer=answer)  # type: ignore[arg-type]


def judge_rows(records: Sequence[Record], verdicts: dict[str, Verdict], rules: Sequence[str], seed: int,
               cluster: str | None = clusters.DEFAULT):  # fmt: skip
    """(PresetResult, JudgeSection) for the answered clean records, or None without verdicts;
    intervals resample `cluster` (medprobe.clusters), like the rule presets' rows."""
    answered = [r for r in records if r.answered and not r.sample.is_variant]
    have = [(r, verdicts[r.sample.id]) for r in answered if r.sample.id in verdicts]
    if not have:
        return None
    model = have[0][1].judge_model
    name = f"judge:{model}"
    # GREEN-style verdicts grade reports (a score, not right/wrong): their own rows (medprobe.judge_report_green)
    reports = [(r, v) for r, v in have if v.kind == judge_green.KIND]
    green = graded(reports, rules, name, seed, cluster)
    have = [(r, v) for r, v in have if v.kind != judge_green.KIND]
    answered = [r for r in answered if verdicts.get(r.sample.id) is None or verdicts[r.sample.id].kind != judge_green.KIND]
    scored = [(r, _score(v)) for r, v in have if v.outcome is not None]
    errors = len(answered) - len(scored) + green.errors
    recs, scores = [r for r, _ in scored], [s for _, s in scored]
    metrics = []
    outcome = np.array([s.outcome for s in scores], object)
    resampling = Resampling.of([r.sample for r in recs], cluster)
    for subset, idx in subsets(recs) if recs else []:
        if len(idx) == 0:
            continue
        values = np.array([scores[i].value for i in idx])
        low, high = resampling.ci(values, idx, seed, f"{name}/{subset}/accuracy")
        tally = Counter(outcome[idx])
        metrics.append(Metric(subset=subset, metric="accuracy", preset=name,
                              parsers=tuple(sorted({scores[i].parser for i in idx})), value=float(values.mean()),
                              ci_low=low, ci_high=high, n=len(idx), correct=tally[Outcome.CORRECT],
                              wrong=tally[Outcome.WRONG], invalid=tally[Outcome.INVALID],
                              interval=resampling.method_for(idx), clusters=resampling.count(idx)))  # fmt: skip
    metrics = green.metrics + metrics
    kinds = sorted({v.kind for _, v in have} | ({judge_green.KIND} if reports else set()))
    # benchmark rows (MediConfusion pairs) need the chosen option: only option-score verdicts carry one
    if kinds == ["option-scores"] and (aggregate := benchmark_aggregate(recs)) is not None:
        metrics += aggregate(recs, scores, name, seed)
    result = PresetResult(
        preset=name, description=f"LLM judge {model} ({', '.join(kinds)} verdicts); unreadable verdicts are invalid",
        reproduces="SMMILE evaluate_LLMJudge.py (1/0 verdicts); MediConfusion clean_up_gpt + check_answer (option scores, margin 3)"
                   + ("; GREEN compute_green (green: matched / (matched + significant errors), mean over readable verdicts)"
                      if reports else ""),
        metrics=tuple(metrics))  # fmt: skip
    judge_ok = np.array([s.outcome is Outcome.CORRECT for s in scores], bool)
    rows = []
    for rule in rules:
        preset = scoring.get(rule)
        keep = [i for i, r in enumerate(recs) if preset.applies(r.sample)]
        if keep:
            rule_ok = np.array([preset.score_generation(recs[i].sample, recs[i].final).outcome is Outcome.CORRECT
                                for i in keep], bool)  # fmt: skip
            rows.append(agreement(rule, judge_ok[keep], rule_ok))
    section = JudgeSection(preset=name, judge_model=model,
                           prompts={v.prompt_name: v.prompt_hash for _, v in [*have, *reports]},
                           judged=len(scored) + green.judged, errors=errors,
                           invalid_reasons=dict(Counter(v.reason for _, v in have if v.reason) + green.invalid_reasons),
                           agreement=tuple(rows), report_agreement=green.agreement)  # fmt: skip
    return result, section


def attach(run_dir: Path, records: Sequence[Record], results: Results, seed: int,
           cluster: str | None = clusters.DEFAULT) -> Results:  # fmt: skip
    """`results` plus the judge's preset rows and section when `run_dir` was judged."""
    from medprobe.judge import read_verdicts

    verdicts = read_verdicts(run_dir)
    rules = [p.preset for p in results.presets if not p.preset.startswith("judge:")]
    out = judge_rows(records, verdicts, rules, seed, cluster) if verdicts else None
    if out is None:
        return results
    preset, section = out
    return results.model_copy(update={"presets": results.presets + (preset,), "judge": section})


def markdown(section: JudgeSection | None) -> list[str]:
    """The agreement table of summary.md (and of `medprobe judge`)."""
    if section is None:
        return []
    prompts = ", ".join(f"{n} ({h})" for n, h in section.prompts.items())
    invalid = ", ".join(f"{k} {v}" for k, v in sorted(section.invalid_reasons.items())) or "0"
    lines = ["", f"## judge `{section.judge_model}`", "",
             f"Prompts: {prompts}. Verdicts: {section.judged}; judge errors (no verdict, not scored): "
             f"{section.errors}; invalid verdicts: {invalid}. Accuracy rows: preset `{section.preset}`; "
             "a recall-style rule counts as correct only with full credit.",
             "", "| rule preset | n | agreement % | Cohen's kappa | both correct | judge only | rule only | both wrong |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for a in section.agreement:
        kappa = "n/a" if a.kappa is None else f"{a.kappa:.3f}"
        lines.append(f"| {a.preset} | {a.n} | {100 * a.agreement:.1f} | {kappa} | {a.both_correct} | {a.judge_only} | "
                     f"{a.rule_only} | {a.both_wrong} |")
    return lines + green_markdown(section.report_agreement)
