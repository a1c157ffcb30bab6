"""Verdicts: what a figure means, in plain words, by a rule written down once (here and in docs/verdicts.md).

Each verdict is derived from one figure (`medprobe.figures`) and names it (`figure`), so a report can
link the sentence to the plot it reads. Rules use the figure's own 95% interval: "indistinguishable
from 0" means the interval contains 0, never that the point value is small. Thresholds are the
module constants below; change them here and in docs/verdicts.md together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from medprobe.compare import ALPHA
from medprobe.compare_report import ReportCompareResult, headline_diff
from medprobe.figures import CONFIDENT, Paired, RunFigures
from medprobe.types import Frozen

#: a blind gap (or any probe drop) of at least this many points, with an interval above 0, is "large"
LARGE_GAP = 0.10
#: a corruption drop at least this large at the highest severity, interval above 0: "fragile"
FRAGILE_DROP = 0.10
#: ECE at or above this: over- or under-confident; below WELL_CALIBRATED: well calibrated
MISCALIBRATED_ECE = 0.10
WELL_CALIBRATED_ECE = 0.05
#: overconfident when mean confidence exceeds accuracy by at least this (else underconfident when below)
CONFIDENCE_MARGIN = 0.02
#: share of answers no rule could read, at or above which the invalid rate gets a verdict
HIGH_INVALID = 0.05
#: closed (yes/no) questions are "at chance" when the interval of their accuracy contains this
CHANCE_YES_NO = 0.5
#: a subgroup is named when its interval lies wholly below another's of the same key and the gap is this large
SUBGROUP_GAP = 0.10
#: ... and both subgroups hold at least this many samples (a bootstrap interval of 4 right answers is [100, 100])
SUBGROUP_MIN_N = 30
#: negation twins: a false-yes rate at or above this means the model agrees with negated statements
FALSE_YES = 0.20
#: permutation consistency below this: the answer depends on the order of the options
CONSISTENT = 0.80

Level = Literal["good", "caution", "bad", "info"]


class Verdict(Frozen):
    key: str = Field(description="the rule's id, e.g. blind.ignores_image (docs/verdicts.md)")
    level: Level = Field(description="good, caution, bad, or info")
    text: str = Field(description="the verdict in plain words, with the number it is read from")
    figure: str = Field(description="which figure it is derived from: health, headline, reliability, corruption, "
                        "gaps, probes, subgroups, paired")
    run: str | None = Field(None, description="the model (run label) it is about; None for a comparison")
    rule: str = Field(description="the rule, in words")


def pp(x: float) -> str:
    """A difference in percentage points: '-1.5'."""
    return f"{100 * x:.1f}"


def ci_pp(low: float | None, high: float | None) -> str:
    return "no interval" if low is None or high is None else f"95% CI {pp(low)} to {pp(high)}"


def _contains_zero(low: float | None, high: float | None) -> bool:
    """The interval reaches 0, or there is none (then nothing is distinguishable from 0 either)."""
    return low is None or high is None or low <= 0 <= high


def _shown_to_contain_zero(low: float | None, high: float | None) -> bool:
    """An interval exists and contains 0: what "indistinguishable from 0" and "robust" need (no interval is
    no evidence of no effect)."""
    return low is not None and high is not None and low <= 0 <= high


# ---------------------------------------------------------------- one run


def health(f: RunFigures) -> list[Verdict]:
    c = f.coverage
    out = []
    if f.status not in ("complete", "running"):
        why = f" ({f.stop_reason})" if f.stop_reason else ""
        out.append(Verdict(key="health.status", level="bad", figure="health", run=f.label,
                           text=f"The run is {f.status}{why}: its figures stand on part of the benchmark.",
                           rule="status in manifest.json is not complete"))  # fmt: skip
    if c.samples and c.answered < c.samples:
        kinds = ", ".join(f"{t.kind} {t.count}" for t in c.errors_by_kind)
        missing = c.samples - c.answered
        retry = any(t.transient for t in c.errors_by_kind) or c.not_sent
        out.append(Verdict(key="health.partial", level="bad" if c.answered < 0.9 * c.samples else "caution",
                           figure="health", run=f.label,
                           # the headline's own note ("on 29 of 31 samples": rows skipped at load count), so the
                           # verdict and the number it is about give one denominator
                           text=f"Headline {c.partial_note()}: {missing} {'has' if missing == 1 else 'have'} no "
                                f"answer{f' ({kinds})' if kinds else ''}"
                                + (f" and {c.skipped} {'was' if c.skipped == 1 else 'were'} skipped at load" if c.skipped else "")
                                + ("; re-running the same command retries the transient ones." if retry else "."),
                           rule="coverage: answered < samples planned (bad below 90%)"))  # fmt: skip
    if c.skipped:
        out.append(Verdict(key="health.skipped", level="caution", figure="health", run=f.label,
                           text=f"{c.skipped} rows of the source were skipped at load (see load_errors in manifest.json).",
                           rule="coverage: rows skipped at load > 0"))  # fmt: skip
    return out


def headline(f: RunFigures) -> list[Verdict]:
    h = f.headline
    if h is None:
        return []
    out = []
    rate = h.invalid / h.n if h.n else 0.0
    if rate >= HIGH_INVALID:
        out.append(Verdict(key="headline.invalid", level="bad" if rate >= 2 * HIGH_INVALID else "caution",
                           figure="headline", run=f.label,
                           text=f"Often unreadable: {100 * rate:.1f}% of answers ({h.invalid} of {h.n}) could not be "
                                f"parsed under preset {h.preset}; they count as not correct.",
                           rule=f"invalid / n >= {HIGH_INVALID:.0%} (bad from {2 * HIGH_INVALID:.0%})"))  # fmt: skip
    closed = f.closed
    if closed is not None and closed.ci_low <= CHANCE_YES_NO <= closed.ci_high:
        plotted = any(s.key == "answer_type" for s in f.subgroups)
        out.append(Verdict(key="headline.chance", level="bad", figure="subgroups" if plotted else "headline", run=f.label,
                           text=f"Yes/no questions at chance level: accuracy {100 * closed.value:.1f}% "
                                f"(95% CI {100 * closed.ci_low:.1f} to {100 * closed.ci_high:.1f}, n={closed.n}) "
                                "is indistinguishable from a coin flip.",
                           rule=f"closed-question accuracy interval contains {CHANCE_YES_NO:.0%}"))  # fmt: skip
    return out


def blind(f: RunFigures) -> list[Verdict]:
    gaps = [g for g in f.gaps if g.name == "blind_gap"]
    if not gaps:
        return []
    # the no-image variant is the plainest test; the others follow when it did not run
    g = next((g for g in gaps if g.label.endswith("no image")), gaps[0])
    what = g.label.removeprefix("blind gap: ")
    figure = f"blind gap ({what}) {pp(g.value)} pp ({ci_pp(g.ci_low, g.ci_high)}, n={g.n})"
    rule = (f"blind gap = accuracy with the image minus with {what}, paired. Interval contains 0: ignores the image when "
            f"|gap| < {pp(LARGE_GAP)} pp, too few samples to tell otherwise; interval above 0: uses it (a little when the "
            f"gap is under {pp(LARGE_GAP)} pp); interval below 0: better without")  # fmt: skip
    if _shown_to_contain_zero(g.ci_low, g.ci_high) and abs(g.value) < LARGE_GAP:
        text, level, key = f"Answers barely depend on the image: {figure} is indistinguishable from 0.", "bad", "blind.ignores_image"
    elif _contains_zero(g.ci_low, g.ci_high):
        reach = "has no interval" if g.ci_low is None or g.ci_high is None else "includes 0"
        text, level, key = (f"Too few samples to tell whether answers depend on the image: {figure} {reach}.", "caution",
                            "blind.inconclusive")  # fmt: skip
    elif g.ci_high is not None and g.ci_high < 0:
        text, level, key = f"Answers are better without the image: {figure}.", "bad", "blind.better_blind"
    elif g.value >= LARGE_GAP:
        text, level, key = f"Uses the image: accuracy falls {pp(g.value)} pp with {what} ({ci_pp(g.ci_low, g.ci_high)}, n={g.n}).", "good", "blind.uses_image"
    else:
        text, level, key = f"Uses the image only a little: {figure}.", "caution", "blind.uses_image_little"
    return [Verdict(key=key, level=level, text=text, figure="gaps", run=f.label, rule=rule)]  # type: ignore[arg-type]


def calibration(f: RunFigures) -> list[Verdict]:
    r = f.reliability
    if r is None or r.ece is None:
        return []
    share = f"; {100 * r.confident_errors / r.errors:.0f}% of errors are made at confidence > {CONFIDENT}" if r.errors else ""
    ece = f"ECE {r.ece:.2f}" + (f" (95% CI {r.ece_low:.2f} to {r.ece_high:.2f})" if r.ece_low is not None else "")
    source = f" [{r.source} confidence, n={r.n}]"
    rule = (f"ECE (10 equal-width bins) >= {MISCALIBRATED_ECE}: overconfident when mean confidence exceeds accuracy by "
            f">= {pp(CONFIDENCE_MARGIN)} pp, underconfident when below by as much; ECE < {WELL_CALIBRATED_ECE}: well "
            "calibrated; in between: roughly calibrated")  # fmt: skip
    gap = r.mean_confidence - r.accuracy
    if r.ece >= MISCALIBRATED_ECE and gap >= CONFIDENCE_MARGIN:
        text, level, key = f"Overconfident: {ece}{share}.", "bad", "calibration.overconfident"
    elif r.ece >= MISCALIBRATED_ECE and gap <= -CONFIDENCE_MARGIN:
        text = f"Underconfident: {ece}; mean confidence {100 * r.mean_confidence:.0f}% against accuracy {100 * r.accuracy:.0f}%."
        level, key = "caution", "calibration.underconfident"
    elif r.ece >= MISCALIBRATED_ECE:
        text, level, key = f"Poorly calibrated: {ece}{share}.", "bad", "calibration.miscalibrated"
    elif r.ece < WELL_CALIBRATED_ECE:
        text, level, key = f"Well calibrated: {ece}{share}.", "good", "calibration.good"
    else:
        text, level, key = f"Roughly calibrated: {ece}{share}.", "caution", "calibration.rough"
    return [Verdict(key=key, level=level, text=text + source, figure="reliability", run=f.label, rule=rule)]  # type: ignore[arg-type]


def corruption(f: RunFigures) -> list[Verdict]:
    c = f.corruption
    if c is None:
        return []
    out, robust = [], []
    rule = (f"drop = clean minus corrupted accuracy at the highest severity, paired; >= {pp(FRAGILE_DROP)} pp with the "
            "interval above 0: fragile; interval containing 0 for every corruption: robust to those tested")  # fmt: skip
    for curve in c.curves:
        p = curve.points[-1]
        if p.drop is None:
            continue
        name = curve.corruption.replace("_", " ")
        if p.drop >= FRAGILE_DROP and p.drop_low is not None and p.drop_low > 0:
            out.append(Verdict(key="corruption.fragile", level="bad", figure="corruption", run=f.label, rule=rule,
                               text=f"Fragile to {name}: accuracy falls {pp(p.drop)} pp at severity {p.severity} "
                                    f"({ci_pp(p.drop_low, p.drop_high)}, n={p.n})."))  # fmt: skip
        elif _shown_to_contain_zero(p.drop_low, p.drop_high):
            robust.append(curve.corruption.replace("_", " "))
    if robust and len(robust) == len(c.curves):
        worst = max(c.curves, key=lambda cv: cv.points[-1].drop or 0.0)
        p = worst.points[-1]
        out.append(Verdict(key="corruption.robust", level="good", figure="corruption", run=f.label, rule=rule,
                           text=f"Robust to the corruptions tested ({', '.join(robust)}): no drop at the highest severity "
                                f"is distinguishable from 0 (largest {pp(p.drop or 0.0)} pp, "
                                f"{worst.corruption.replace('_', ' ')} at severity {p.severity})."))  # fmt: skip
    return out


def other_probes(f: RunFigures) -> list[Verdict]:
    out = []
    for p in f.probes:
        if not p.ran:
            continue
        for m in p.headline:
            if p.probe == "negate" and m.name == "false_yes_rate" and m.n and m.value >= FALSE_YES:
                out.append(Verdict(key="negate.false_yes", level="bad", figure="probes", run=f.label,
                                   text=f"Agrees with negated questions: it answers yes to {100 * m.value:.0f}% of twins "
                                        f"whose answer is no ({ci_pp(m.ci_low, m.ci_high)}, n={m.n}).",
                                   rule=f"negate probe false_yes_rate >= {FALSE_YES:.0%}"))  # fmt: skip
            if p.probe == "permute" and m.name == "permutation_consistency" and m.n and m.value < CONSISTENT:
                out.append(Verdict(key="permute.order", level="bad", figure="probes", run=f.label,
                                   text=f"Answers depend on the order of the options: right under every rotation for "
                                        f"only {100 * m.value:.0f}% of questions (n={m.n}).",
                                   rule=f"permute probe permutation_consistency < {CONSISTENT:.0%}"))  # fmt: skip
    for g in f.gaps:
        if g.probe in ("blind", "corrupt"):
            continue  # their own rules above
        if g.ci_low is not None and g.ci_low > 0 and g.value >= LARGE_GAP and g.probe != "icl":
            out.append(Verdict(key=f"{g.probe}.drop", level="bad", figure="gaps", run=f.label,
                               text=f"{g.label[0].upper()}{g.label[1:]}: {pp(g.value)} pp ({ci_pp(g.ci_low, g.ci_high)}).",
                               rule=f"a probe drop >= {pp(LARGE_GAP)} pp with its interval above 0"))  # fmt: skip
    return out


def subgroups(f: RunFigures) -> list[Verdict]:
    """The weakest subgroup of each key, when its interval lies wholly below the best one's."""
    out = []
    keys = dict.fromkeys(s.key for s in f.subgroups if s.key != "answer_type")
    for key in keys:
        rows = [s for s in f.subgroups if s.key == key]
        best, worst = max(rows, key=lambda s: s.value), min(rows, key=lambda s: s.value)
        if min(best.n, worst.n) < SUBGROUP_MIN_N:
            continue
        if best.value - worst.value >= SUBGROUP_GAP and worst.ci_high < best.ci_low:
            out.append(Verdict(key="subgroups.weaker", level="caution", figure="subgroups", run=f.label,
                               text=f"Weaker on {key} {worst.group}: {100 * worst.value:.1f}% (95% CI "
                                    f"{100 * worst.ci_low:.1f} to {100 * worst.ci_high:.1f}, n={worst.n}) against "
                                    f"{100 * best.value:.1f}% on {best.group} (n={best.n}); the intervals do not overlap.",
                               rule=f"lowest and highest subgroup of a key (each n >= {SUBGROUP_MIN_N}) differ by >= "
                                    f"{pp(SUBGROUP_GAP)} pp and their intervals do not overlap"))  # fmt: skip
    return out


RULES = (health, headline, blind, calibration, corruption, other_probes, subgroups)


def for_run(f: RunFigures) -> list[Verdict]:
    """Every verdict about one run, in report order (worst news first within the order of RULES)."""
    return [v for rule in RULES for v in rule(f)]


# ---------------------------------------------------------------- comparisons


def _report_pair(r: ReportCompareResult) -> list[Verdict]:
    """Two models' reports: the headline metric's paired difference, by the same two-figure rule as accuracy
    (the paired bootstrap interval by study and the metric's p, whose method the verdict names, must agree)."""
    m = headline_diff(r)
    if m is None or m.difference is None or m.low is None or m.high is None or m.p is None:
        return []
    rule = (f"paired comparison of reports on shared studies ({r.preset} {m.metric}): a difference when p < {ALPHA} "
            f"({m.p_method}) and the paired bootstrap interval by study excludes 0; no detectable difference when "
            f"p >= {ALPHA} and the interval contains 0; borderline when the two disagree")  # fmt: skip
    diff = (f"{r.run_a} minus {r.run_b} = {pp(m.difference)} pp {m.metric} ({ci_pp(m.low, m.high)} paired by study, "
            f"n={r.n} studies, p = {m.p:.3g})")  # fmt: skip
    excludes, rejects = m.low > 0 or m.high < 0, m.p < ALPHA
    if excludes and rejects:
        better, worse = (r.run_a, r.run_b) if m.difference > 0 else (r.run_b, r.run_a)
        key, text = "paired.difference", f"{better}'s reports are closer to the references than {worse}'s: {diff}."
    elif not excludes and not rejects:
        key, text = "paired.none", f"No detectable difference between the reports of {r.run_a} and {r.run_b}: {diff}."
    else:
        key, text = "paired.borderline", (f"Borderline difference between the reports of {r.run_a} and {r.run_b}: "
                                          f"{diff}; the interval and the test disagree. More studies would settle it.")
    return [Verdict(key=key, level="info", text=text, figure="paired", rule=rule)]


def for_pairs(pairs: Sequence[Paired]) -> list[Verdict]:
    """One verdict per compared pair, by `CompareResult.decision`: both paired figures must agree before a
    difference (or its absence) is stated, and the text names the test that decided."""
    out = []
    rule = (f"paired comparison on shared items: a difference when the exact McNemar p < {ALPHA} and the paired "
            f"95% interval excludes 0; no detectable difference when p >= {ALPHA} and the interval contains 0; "
            "borderline when the two disagree")  # fmt: skip
    for p in pairs:
        if p.report is not None:
            out += _report_pair(p.report)
        r = p.result
        if r is None or r.decision == "empty":
            continue
        ci = ci_pp(r.paired_ci.low, r.paired_ci.high).replace("95% CI", "paired 95% CI")
        diff = f"{r.run_a} minus {r.run_b} = {pp(r.difference or 0.0)} pp ({ci}, n={r.n})"
        test = f"exact McNemar p = {r.mcnemar_p:.3g}"
        if r.decision == "difference":
            better, worse = (r.run_a, r.run_b) if (r.difference or 0.0) > 0 else (r.run_b, r.run_a)
            text = (f"{better} is more accurate than {worse}: {diff}; both the McNemar test ({test}) and the paired "
                    "interval say so.")  # fmt: skip
            key = "paired.difference"
        elif r.decision == "none":
            text = (f"No detectable difference between {r.run_a} and {r.run_b}: {diff}; the paired interval contains 0 "
                    f"and the McNemar test does not reject ({test}).")  # fmt: skip
            key = "paired.none"
        elif r.decision == "interval_only":
            text = (f"Borderline difference between {r.run_a} and {r.run_b}: {diff}; the paired interval excludes 0, "
                    f"but the exact McNemar test does not reject ({test} >= {ALPHA}). More shared items would settle it.")
            key = "paired.borderline"
        else:
            text = (f"Borderline difference between {r.run_a} and {r.run_b}: {diff}; the exact McNemar test rejects "
                    f"({test} < {ALPHA}), but the paired interval ({r.interval}) contains 0. More shared items would "
                    "settle it.")  # fmt: skip
            key = "paired.borderline"
        out.append(Verdict(key=key, level="info", text=text, figure="paired", rule=rule))
    return out
