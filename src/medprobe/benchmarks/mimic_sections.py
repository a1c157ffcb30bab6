"""MIMIC-CXR report sections by the rules of the official sectioner (MIT-LCP/mimic-cxr, txt/section_parser.py
`section_text` + `normalize_section_names`, as txt/create_section_files.py applies them to write
mimic_cxr_sectioned.csv). Written from those rules, not copied:

1. A header is a line starting with one space, then capitals, spaces or ()/,- and a colon
   (`\\n ([A-Z ()/,-]+):\\s`): the release's 80-column text files indent every line by one space, and a
   mixed-case "Findings:" inside a sentence is not a header. Text before the first header is the preamble.
2. A header's text runs to the next header line (or the end of the report). The whitespace after the colon may
   be the header line's own line break: then a header on the very next line is not a header but the
   first words of this one's text, as the official parser reads it (its skip to the next line break
   changes nothing, a header always starting with one).
3. Names are lower-cased and normalised: the frequent names and misspellings of `frequent_sections`
   ("conclusion" -> impression, "clinical history" -> history, "reason for exam" -> indication, ...);
   else a name containing impression, findings, history, comparison or addendum becomes that name;
   else a name describing the study ("chest", "pa and lateral", "portable", ...) becomes findings.
4. Empty findings and impression sections are dropped (a report title, or a duplicated header). In a
   report with neither, the last section's paragraphs after its first become 'last_paragraph'.
5. The text of a section is the *last* section of that name, stripped (`list_rindex` in
   create_section_files.py).
6. A few reports are sectioned by hand in `custom_mimic_cxr_rules`; create_section_files.py writes no
   findings/impression row for them, so `HAND_SECTIONED` studies have neither section here either.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")

# normalised name -> the other spellings the official table maps to it
_ALIASES = {
    "impression": ("conclusion", "findings and impression", "findings/impression", "findings/ impression",
                   "ndication", "impresson", "imprression", "imoression", "impressoin", "imprssion", "impresion",
                   "imperssion", "mpression", "impession"),
    "findings": ("chest, two views", "finding", "findins", "findindgs", "findgings", "findngs", "findnings",
                 "finidngs", "reference findings"),
    "comparison": ("comparisons", "reference exam", "comparison exam", "comparison film", "comparision",
                   "comparsion", "comparrison", "comparisions"),
    "indication": ("reason for examination", "reason for exam", "clinical indication", "idication"),
    "history": ("clinical history", "clinical information", "patient history", "pfi"),
    "examination": ("exam", "type of examination"),
    "recommendations": ("recommendation(s)", "recommendation"),
    "wet read": ("wetread",),
}
# names the official table keeps as they are (they skip the substring rules below)
_KEPT = ("preamble", "impression", "comparison", "indication", "findings", "examination", "technique", "history",
         "notification", "addendum", "date", "comment", "wet read", "recommendations")
_NAMES = {name: name for name in _KEPT} | {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
_MAIN = ("impression", "findings", "history", "comparison", "addendum")
_DESCRIBES_STUDY = re.compile("|".join(re.escape(p) for p in (
    "chest", "portable", "pa and lateral", "lateral and pa", "ap and lateral", "lateral and ap", "frontal and",
    "two views", "frontal view", "pa view", "ap view", "one view", "lateral view", "bone window", "frontal upright",
    "frontal semi-upright", "ribs", "pa and lat")))

#: studies of `custom_mimic_cxr_rules` (renamed sections and hand-set spans): absent from mimic_cxr_sectioned.csv
HAND_SECTIONED = frozenset((
    "s50913680", "s59363654", "s59279892", "s59768032", "s57936451", "s50058765", "s53356173", "s53202765",
    "s50808053", "s51966317", "s50743547", "s56451190", "s59067458", "s59215320", "s55124749", "s54365831",
    "s59087630", "s58157373", "s56482935", "s58375018", "s54654948", "s55157853", "s51491012", "s50525523",
    "s57564132", "s59982525", "s53488209", "s54875119", "s50196495", "s56579911", "s52648681", "s59889364",
    "s53514462", "s59505494", "s53182247", "s51410602", "s56412866", "s54986978", "s59003148", "s57150433",
    "s56760320", "s59562049", "s52674888", "s55258338", "s59330497", "s52119491", "s58235663", "s50798377",
    "s54168089", "s53071062", "s56724958", "s54231141", "s53607029", "s52035334",
))


def normalise(name: str) -> str:
    """A header's name as the official sectioner names it (rule 3)."""
    name = name.lower().strip()
    if name in _NAMES:
        return _NAMES[name]
    main = next((m for m in _MAIN if m in name), None)
    if main is not None:
        return main
    return "findings" if _DESCRIBES_STUDY.search(name) else name


def split_sections(text: str) -> list[tuple[str, str]]:
    """(normalised name, text) of each section in report order (rules 1-4); one 'full report' without headers."""
    found = _HEADER.search(text)
    sections = [("full report", text)] if found is None else [("preamble", text[: found.start(1)])]
    while found is not None:
        name, start = found.group(1), found.end()
        found = _HEADER.search(text, start)
        sections.append((normalise(name), text[start: found.start() if found else len(text)]))
    sections = [(n, t) for n, t in sections if n not in ("findings", "impression") or t.strip()]
    names = {n for n, _ in sections}
    last_name, last = sections[-1]
    if "findings" not in names and "impression" not in names and "\n \n" in last:
        # rule 4b: a report without either ends in paragraphs; the first stays with its header,
        # the rest becomes 'last_paragraph'
        first, rest = last.split("\n \n", 1)
        sections[-1:] = [(last_name, first), ("last_paragraph", rest)]
    return sections


def section(text: str, name: str, study: str = "") -> str:
    """The text of the last section called `name` (rule 5), stripped; '' when the report has none."""
    if study in HAND_SECTIONED and name in ("findings", "impression"):
        return ""  # rule 6
    return next((t.strip() for n, t in reversed(split_sections(text)) if n == name), "")
