"""The sample browser's data: every clean sample with its answers under every preset, its probe variants
beside it, and the same sample across the runs of a section, written as plain JavaScript files.

`data/SECTION-index.js` holds one compact row per sample (id, search text, subgroups, outcome codes per
run and preset, which probes changed the outcome) so the page filters 10,000 rows at once;
`data/SECTION-NNNN.js` hold the details of CHUNK samples each and are loaded only when a page shows
one of them. Script files, not fetch(): a page opened from disk (file://) may load scripts but not
read files. Text is data here: the page inserts it with textContent, never as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from medprobe.metrics import subgroup_keys
from medprobe.outcomes import Entry, Outcomes
from medprobe.reasoning import may_hold_chain, split, split_generation
from medprobe.runs import Run
from medprobe.types import Record, Sample
from medprobe.variant_rows import VariantRow, VariantSample
from medprobe.views.thumbs import SMALL, Thumbnails

CHUNK = 100
#: outcome codes are medprobe.outcomes' (c, w, i, s, e, -), and x: not in this run
ABSENT = "x"
#: a variant's stored reply is cut to this many characters in the page (the parent's is shown whole)
VARIANT_TEXT = 400
SEARCH_TEXT = 300
#: variant facts shown beside a variant; the variant's name already says its corruption, severity or rotation,
#: and the rest of a tag's detail stays in records.sqlite
_DETAIL = frozenset({"substituted", "mismatch_from", "temperature", "template"})


@dataclass
class Section:
    """The browser data of one benchmark section, ready to be written."""

    key: str
    runs: list[str]
    presets: list[str]
    probe_preset: list[str]
    probes: list[str]
    groups: list[str]
    rows: list[list] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)

    def meta(self) -> dict:
        return {"key": self.key, "runs": self.runs, "presets": self.presets, "probe_preset": self.probe_preset,
                "probes": self.probes, "groups": self.groups, "chunk": CHUNK, "n": len(self.rows)}  # fmt: skip


def _generation(record: Record, presets: Sequence[str], outcomes: Outcomes) -> tuple[dict, str]:
    """A run's answer to a clean sample (every turn, the chain apart, each preset's parse), and its outcome codes."""
    gen = record.final
    codes, parsed = [], {}
    for name in presets:
        found = outcomes.get(record.sample.id, name)
        code = ABSENT if found is None else found[0]
        codes.append(code)
        if found is not None and len(found) > 1:
            parsed[name] = found
    out: dict = {"s": parsed}
    if gen is not None:
        part = split_generation(gen)
        fields = {"text": gen.text, "chain": part.reasoning, "answer": part.answer if part.reasoning else None,
                  "finish": gen.finish_reason, "trunc": gen.truncated_from}
        out.update((k, v) for k, v in fields.items() if v is not None)  # 200,000 variants: every byte counts
        if len(record.generations) > 1:
            out["turns"] = [g.text for g in record.generations[:-1]]
    if record.error:
        out.update(err=record.error, kind=str(record.error_kind))
    elif not record.generations:
        out.update(err="no answer stored (the run was stopped or interrupted before this request)", kind="not_sent")
    return out, "".join(codes)


def _images(sample: Sample | VariantSample, run: Run, thumbs: Thumbnails, side: int | None = None) -> list:
    """[digest, why it cannot be shown, name] per image (variants are named by their variant instead)."""
    out = []
    for ref in sample.images:
        digest, why = thumbs.add(ref, run.dir, side) if side else thumbs.add(ref, run.dir)
        out.append([digest, why, "" if side else ref.describe()])
    return out


def _variant_sample(v: VariantSample, parent: Sample, run: Run, thumbs: Thumbnails) -> dict:
    tag = v.variant_of
    out: dict = {"probe": tag.probe, "variant": tag.variant}
    shown = {k: x for k, x in tag.detail.items() if k in _DETAIL}
    if shown:
        out["detail"] = shown
    if v.question != parent.question:
        out["q"] = v.question
    if v.options != parent.options:
        out["opts"] = list(v.options)
    if v.answer != parent.answer:
        out["gold"] = v.answer
    if v.history:
        out["shots"] = v.shots
    out["img"] = "same" if _same_images(v, parent) else _images(v, run, thumbs, SMALL)
    return out


def _same_images(a: VariantSample, b: Sample) -> bool:
    # by reference fields: cheaper than comparing the models
    return len(a.images) == len(b.images) and all(
        (x.path, x.root, x.url, x.view, x.data) == (y.path, y.root, y.url, y.view, y.data)
        for x, y in zip(a.images, b.images))  # fmt: skip


def _variant_answer(row: VariantRow, found: Entry | None, parent_code: str) -> tuple[list, bool]:
    """[outcome code, parsed value, rule, short text, error] of a variant, and whether its outcome differs
    from its parent's (a failed variant changes nothing: it has no answer)."""
    code = ABSENT if found is None else found[0]
    scored = found is not None and len(found) > 1
    reply = row.final
    text = None
    if reply is not None and reply.text is not None:
        text = reply.text
        if reply.reasoning is not None or may_hold_chain(text):
            text = split(text, reply.reasoning, reply.finish_reason).answer
        text = text if len(text) <= VARIANT_TEXT else text[:VARIANT_TEXT] + "…"
    value = found[1] if scored else None
    method = (found[2] or found[4]) if scored else ""
    if text is not None and value is not None and text.strip(" .!").lower() == value.lower():
        text = None  # the reply is its parsed answer ("Yes." -> yes): not stored twice
    changed = code in "cwi" and parent_code in "cwi" and code != parent_code
    return [code, value, method, text, row.error], changed


def build(section_key: str, runs: Sequence[Run], presets: Sequence[str], thumbs: Thumbnails,
          names: Sequence[str] | None = None, pool=None) -> Section:  # fmt: skip
    """Rows and details of every clean sample of `runs` (one benchmark), thumbnails registered in `thumbs`
    (those of the clean samples started in `pool`, a process pool, before the variants are gone through);
    `names`: what the page calls each run (default: its model label)."""
    clean: list[dict[str, Record]] = []
    variants: list[dict[str, list[VariantRow]]] = []
    order: dict[str, None] = {}
    probes: dict[str, None] = {}
    for run in runs:
        mine, kids = {}, {}
        for r in run.clean_records:
            mine[r.sample.id] = r
            order.setdefault(r.sample.id)
        for v in run.variant_rows:
            tag = v.sample.variant_of
            kids.setdefault(tag.parent_id, []).append(v)
            probes.setdefault(tag.probe)
        clean.append(mine)
        variants.append(kids)
    found = [run.outcomes(list(presets)) for run in runs]
    probe_presets = [run.manifest.default_preset for run in runs]
    probe_bits = {p: 1 << i for i, p in enumerate(probes)}
    groups: dict[str, int] = {}
    # the benchmark's own breakdowns too (GMAI-MMBench's category, OmniMedVQA's question type), as the tables
    keys = subgroup_keys([r for c in clean for r in c.values()])
    sec = Section(key=section_key, runs=list(names or [r.label for r in runs]), presets=list(presets),
                  probe_preset=probe_presets, probes=list(probes), groups=[])  # fmt: skip
    first = {sid: next((k, c[sid]) for k, c in enumerate(clean) if sid in c) for sid in order}
    images = {sid: _images(record.sample, runs[k], thumbs) for sid, (k, record) in first.items()}
    thumbs.start(pool)
    for sid, (k, record) in first.items():
        sample = record.sample
        detail: dict = {"id": sid, "q": sample.question, "type": str(sample.answer_type), "gold": sample.answer,
                        "opts": list(sample.options), "meta": {k2: v for k2, v in sample.metadata.items() if v not in (None, "")},
                        "img": images[sid]}  # fmt: skip
        if sample.history:
            detail["shots"] = len([m for m in sample.history if m.role == "user"])
        answers, codes, changed = [], [], []
        variant_rows: dict[str, dict] = {}
        search = [sid, sample.question, sample.answer, *sample.options]
        for j, run in enumerate(runs):
            rec = clean[j].get(sid)
            if rec is None:
                answers.append(None)
                codes.append(ABSENT * len(presets))
                changed.append(0)
                continue
            answer, code = _generation(rec, presets, found[j])
            answers.append(answer)
            codes.append(code)
            search.append((answer.get("text") or "")[:SEARCH_TEXT])
            parent = found[j].get(sid, probe_presets[j])
            parent_code = ABSENT if parent is None else parent[0]
            mask = 0
            for v in variants[j].get(sid, ()):
                vid = v.sample.id
                entry = variant_rows.get(vid)
                if entry is None:
                    entry = variant_rows[vid] = _variant_sample(v.sample, sample, run, thumbs)
                    entry["runs"] = [None] * len(runs)
                entry["runs"][j], flipped = _variant_answer(v, found[j].get(vid, probe_presets[j]), parent_code)
                if flipped:
                    mask |= probe_bits[v.sample.variant_of.probe]
            changed.append(mask)
        detail["runs"] = answers
        detail["vars"] = list(variant_rows.values())
        labels = [f"answer_type={sample.answer_type}"] + [f"{key}={sample.metadata[key]}" for key in keys
                                                          if sample.metadata.get(key) not in (None, "")]  # fmt: skip
        gids = [groups.setdefault(g, len(groups)) for g in labels]
        sec.rows.append([sid, " ".join(search).lower(), gids, codes, changed])
        sec.details.append(detail)
    sec.groups = list(groups)
    return sec


def resolve_thumbnails(sec: Section, thumbs: Thumbnails) -> None:
    """Replace each image digest by its thumbnail's file name (or its reason) once thumbnails are written."""

    def fix(images) -> list | str:
        if images == "same":
            return images
        out = []
        for digest, why, name in images:
            path = thumbs.name(digest) if digest else None
            out.append([path, why or (thumbs.reason(digest) if digest else None), name])
        return out

    for d in sec.details:
        d["img"] = fix(d["img"])
        for v in d["vars"]:
            v["img"] = fix(v["img"])


def write(sec: Section, folder: Path) -> list[str]:
    """data/KEY-index.js and data/KEY-NNNN.js; returns the index file's path relative to the report."""
    folder.mkdir(parents=True, exist_ok=True)
    index = {**sec.meta(), "rows": sec.rows}
    name = f"{sec.key}-index.js"
    (folder / name).write_bytes(b"medprobe.index(" + orjson.dumps(index) + b");\n")
    for c in range(0, len(sec.details), CHUNK):
        body = orjson.dumps(sec.details[c: c + CHUNK])
        (folder / f"{sec.key}-{c // CHUNK:04d}.js").write_bytes(
            b"medprobe.chunk(" + orjson.dumps(sec.key) + b"," + str(c // CHUNK).encode() + b"," + body + b");\n")
    return [f"{folder.name}/{name}"]
