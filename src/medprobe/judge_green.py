"""A GREEN-style judge of generated reports: the judge counts a candidate report's errors against the reference.

GREEN (Ostmeier et al., "GREEN: Generative Radiology Report Evaluation and Error Notation", Findings of EMNLP
2024; github.com/Stanford-AIMI/GREEN, green_score/green.py) asks a language model for the number of
clinically significant and insignificant errors in six categories, and for the number of matched findings:

    (a) a false report of a finding           (b) a missed finding of the reference
    (c) a wrong anatomic location or side     (d) a misjudged severity
    (e) a comparison the reference does not make
    (f) an omitted change from a prior study that the reference describes

and scores a study `GREEN = matched / (matched + significant errors)` (the sum over the six categories),
0 when nothing matched (`compute_green`: `if matched_findings == 0: return 0`). The prompt text here is
medprobe's own, asking for the same sections and counts; any OpenAI-compatible model can be the judge.

Parsing follows `parse_error_counts`: a section's text runs to the next section header; one that starts with
"No" holds no errors; a category line `(a) ...: N.` gives its count, a category not listed counts 0, and the
matched findings are the number that opens their section. Where GREEN turns a reply without its sections
into a score of 0, medprobe marks it invalid (`unparseable_verdict`): a reply that says nothing is not a
report with nothing right.
"""

from __future__ import annotations

import re

from pydantic import Field

from medprobe.types import Frozen, Outcome

KIND = "green"
#: the outcome of a readable GREEN verdict (`Verdict.outcome`; INVALID marks an unreadable one): a report is
#: graded, not right or wrong; medprobe.judge_report_green reads the grade from `Verdict.scores["green"]`
GRADED = Outcome.SCORED
NAME = "green-report"
CATEGORIES = ("a", "b", "c", "d", "e", "f")
SIGNIFICANT, INSIGNIFICANT, MATCHED = "Clinically Significant Errors", "Clinically Insignificant Errors", "Matched Findings"

_CATEGORY_TEXT = """\
(a) a finding the candidate reports that the reference does not contain;
(b) a finding of the reference that the candidate leaves out;
(c) a finding the candidate places at the wrong anatomic location or on the wrong side;
(d) a finding whose severity the candidate judges differently from the reference;
(e) a comparison with a prior study that the candidate makes and the reference does not;
(f) a change since a prior study that the reference describes and the candidate leaves out."""

#: the judge's instruction (medprobe's wording of GREEN's task); placeholders {answer} (the reference report)
#: and {response} (the candidate); literal braces are doubled for str.format
USER = (
    "You are checking a radiology report written by an AI system (the candidate) against the report a "
    "radiologist wrote for the same study (the reference). Judge the clinical content only, not the wording "
    "or the style.\n\n"
    "Count the candidate's errors in each of these categories, separately for errors that matter clinically "
    "(they could change the patient's care) and errors that do not:\n" + _CATEGORY_TEXT + "\n"
    "Also count the findings that both reports state in agreement (matched findings).\n\n"
    "Reference report:\n{answer}\n\nCandidate report:\n{response}\n\n"
    "Answer in exactly this layout, with a number after every colon (write 0 when there is none), and a blank "
    "line between sections:\n\n"
    "[Explanation]:\n<a few sentences>\n\n"
    "[Clinically Significant Errors]:\n"
    "(a) False report of a finding: <number>. <error>; <error>\n"
    "(b) Missed finding: <number>. <error>\n"
    "(c) Wrong location or side: <number>. <error>\n"
    "(d) Wrong severity: <number>. <error>\n"
    "(e) Comparison not in the reference: <number>. <error>\n"
    "(f) Omitted comparison: <number>. <error>\n\n"
    "[Clinically Insignificant Errors]:\n"
    "(a) False report of a finding: <number>. <error>\n"
    "... the same six lines as above ...\n\n"
    "[Matched Findings]:\n<number>. <finding>; <finding>\n"
)
MAX_TOKENS = 1024

_HEADER = re.compile(r"^[ \t*#]*\[([A-Za-z ]+)\][ \t*]*:", re.MULTILINE)
_LINE = re.compile(r"^[ \t*\-]*\(([a-f])\)[^:\n]*:[ \t*]*(\d+)\b", re.MULTILINE)
_LEADING = re.compile(r"^[ \t*]*(\d+)\b")


class GreenCounts(Frozen):
    """What one GREEN-style judge reply says, or why it cannot be read (`error`)."""

    significant: dict[str, int] = Field(default_factory=dict, description="category (a-f) -> significant errors")
    insignificant: dict[str, int] = Field(default_factory=dict, description="category (a-f) -> insignificant errors")
    matched: int | None = None
    error: str | None = None

    @property
    def green(self) -> float | None:
        """matched / (matched + significant errors); 0 when nothing matched (GREEN's compute_green)."""
        if self.error is not None or self.matched is None:
            return None
        if self.matched == 0:
            return 0.0
        return self.matched / (self.matched + sum(self.significant.values()))

    def scores(self) -> dict[str, float]:
        """The verdict's numbers as stored (`Verdict.scores`): green, matched, both error sums, each category."""
        out = {"green": float(self.green or 0.0), "matched": float(self.matched or 0),
               "significant": float(sum(self.significant.values())),
               "insignificant": float(sum(self.insignificant.values()))}  # fmt: skip
        out |= {f"significant_{k}": float(v) for k, v in self.significant.items()}
        out |= {f"insignificant_{k}": float(v) for k, v in self.insignificant.items()}
        return out


def _sections(text: str) -> dict[str, str]:
    """section name (lower case) -> its text, up to the next section header."""
    heads = list(_HEADER.finditer(text))
    return {m.group(1).strip().lower(): text[m.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            for i, m in enumerate(heads)}  # fmt: skip


def _errors(section: str) -> dict[str, int]:
    if section.strip().lower().startswith("no"):  # "No errors." (parse_error_counts: startswith("No"))
        return dict.fromkeys(CATEGORIES, 0)
    counts = dict.fromkeys(CATEGORIES, 0)
    for m in _LINE.finditer(section):
        counts[m.group(1)] = int(m.group(2))  # the first number after the colon, as GREEN reads it
    return counts


def parse_green(text: str) -> GreenCounts:
    """The counts of a judge reply in the layout of `USER`; `error` says why a reply cannot be read."""
    sections = _sections(text)
    sig, matched = sections.get(SIGNIFICANT.lower()), sections.get(MATCHED.lower())
    if sig is None or matched is None:
        missing = [name for name, s in ((SIGNIFICANT, sig), (MATCHED, matched)) if s is None]
        return GreenCounts(error=f"judge reply lacks the section(s) {', '.join(missing)}: {text.strip()[:80]!r}")
    if matched.strip().lower().startswith("no"):
        count = 0
    elif (m := _LEADING.match(matched.strip())) is not None:
        count = int(m.group(1))
    else:
        return GreenCounts(error=f"no number of matched findings in the judge reply: {matched.strip()[:80]!r}")
    insig = sections.get(INSIGNIFICANT.lower())
    return GreenCounts(significant=_errors(sig), insignificant=_errors(insig) if insig is not None else {},
                       matched=count)  # fmt: skip
