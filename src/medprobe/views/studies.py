"""The study view of report runs: each study's images, its reference report, every model's report with its
differences from the reference marked, and the per-study metrics, sortable and filterable by metric.

The data goes to `data/SECTION-studies.js` as one script (a page opened from disk may load scripts, not
read files), queued on `window.medprobeStudies` so it may load before or after `assets/studies.js`.

Per-study metrics are what the run's headline preset records for a study (`Score.value` under its value
name, and every `Score.extra` entry: bleu1..4, rougeL, ...). Under a preset without a rule for reports
(strict) they are those of medprobe's default report preset, `report`, and the page says which. The differences are word-level (difflib on lower-cased words with
their punctuation stripped): `-` words of the reference the report lacks, `+` words the report adds.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from medprobe import scoring
from medprobe.figures import score
from medprobe.probes._text import is_report, report_text
from medprobe.runs import Run
from medprobe.types import Outcome, Record
from medprobe.views.thumbs import Thumbnails

#: the preset whose per-study values are shown when the run's preset has no rule for reports (medprobe's
#: default report preset: pycocoevalcap sentence BLEU-1..4 and ROUGE-L on PTB tokens)
FALLBACK = "report"
_KEY = re.compile(r"[^\w]+")


def word_diff(reference: str, report: str) -> list[list[str]]:
    """[[op, text], ...] turning the reference into the report, word by word: '=' shared, '-' only in the
    reference (missed), '+' only in the report (added). The texts keep their own words and case."""
    a, b = reference.split(), report.split()
    keys_a = [_KEY.sub("", w.lower()) or w for w in a]
    keys_b = [_KEY.sub("", w.lower()) or w for w in b]
    out: list[list[str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(["=", " ".join(b[j1:j2])])
            continue
        if i2 > i1:
            out.append(["-", " ".join(a[i1:i2])])
        if j2 > j1:
            out.append(["+", " ".join(b[j1:j2])])
    return out


@dataclass
class Studies:
    """The study view of one section, ready to be written."""

    key: str
    runs: list[str]
    sources: list[str]
    metrics: list[str] = field(default_factory=list)
    studies: list[dict] = field(default_factory=list)
    _images: list[list] = field(default_factory=list, repr=False)

    def meta(self) -> dict:
        return {"key": self.key, "runs": self.runs, "sources": self.sources, "metrics": self.metrics}


def _read(record: Record, preset: str) -> tuple[str | None, dict[str, float] | None]:
    """(the report or None when invalid, the preset's per-study values or None when it has no rule for
    reports), scoring the record once."""
    rule = scoring.get(preset)
    if not rule.applies(record.sample):
        return report_text(record, preset), None
    s = score(rule, record)
    if s.outcome is Outcome.INVALID:  # an invalid report or a failed request has no metric (never a 0)
        return None, {}
    name = rule.value_names.get(record.sample.answer_type, "value")
    return (s.answer.value or "").strip() or None, {name: s.value, **s.extra}


def build(key: str, runs: Sequence[Run], presets: Sequence[str], thumbs: Thumbnails,
          names: Sequence[str] | None = None) -> Studies | None:  # fmt: skip
    """The study view of a section's runs (`presets`: each run's headline preset), or None without reports."""
    clean = [{r.sample.id: r for r in run.clean_records if is_report(r.sample)}
             for run in runs]  # fmt: skip
    order = list(dict.fromkeys(sid for mine in clean for sid in mine))
    if not order:
        return None
    values: list[dict[str, dict[str, float]]] = []
    reports: list[dict[str, str | None]] = []
    sources = []
    for mine, preset in zip(clean, presets):
        ids = list(mine)
        rule = preset if any(scoring.get(preset).applies(r.sample) for r in mine.values()) else FALLBACK
        texts, own = zip(*(_read(mine[s], rule) for s in ids)) if ids else ((), ())
        reports.append(dict(zip(ids, texts)))
        values.append({s: v or {} for s, v in zip(ids, own)})
        sources.append(f"preset {rule}" + ("" if rule == preset else f" (the run's preset {preset} has no rule for "
                                                                     "reports)"))
    out = Studies(key=key, runs=list(names or [r.label for r in runs]), sources=sources)
    metrics: dict[str, None] = {}
    for sid in order:
        k, first = next((k, c[sid]) for k, c in enumerate(clean) if sid in c)
        sample = first.sample
        images = []
        for ref in sample.images:
            digest, why = thumbs.add(ref, runs[k].dir)
            images.append([digest, why, ref.describe()])
        out._images.append(images)
        entry: dict = {"id": sid, "ref": sample.answer, "views": sample.metadata.get("views"), "runs": []}
        for j in range(len(runs)):
            rec = clean[j].get(sid)
            if rec is None:
                entry["runs"].append(None)
                continue
            text = reports[j][sid]
            cell: dict = {"m": values[j].get(sid, {})}
            metrics.update(dict.fromkeys(cell["m"]))
            if not rec.answered:
                cell["err"] = rec.error or "no answer stored"
            elif text is None:
                cell["invalid"] = True
                cell["text"] = rec.final.text if rec.final is not None else ""
            else:
                cell["diff"] = word_diff(sample.answer, text)
            entry["runs"].append(cell)
        out.studies.append(entry)
    out.metrics = list(metrics)
    return out


def write(view: Studies, thumbs: Thumbnails, folder: Path) -> str:
    """data/KEY-studies.js (thumbnail names resolved: call after `thumbs.write`); its path from the report."""
    for entry, images in zip(view.studies, view._images):
        entry["img"] = [[thumbs.name(d) if d else None, why or (thumbs.reason(d) if d else None), name]
                        for d, why, name in images]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{view.key}-studies.js"
    body = orjson.dumps({**view.meta(), "studies": view.studies})
    (folder / name).write_bytes(b"(window.medprobeStudies = window.medprobeStudies || []).push(" + body + b");\n")
    return f"{folder.name}/{name}"
