"""summary.md reads in a terminal or a PR: a headline row per preset, then details without rows that
repeat another, ranges written "a to b", the status and coverage lines, and the verdicts."""

from __future__ import annotations

import re

from runfolders import closed_samples, make_run

from medprobe.summary import markdown
from medprobe.results import compute
from medprobe.store import read_records
from medprobe.types import AnswerType, ImageRef, Sample

PRESETS = ["strict", "llava-med", "multimedeval"]


def _samples(n: int) -> list[Sample]:
    """Closed and open questions about 4 images, all in English, two organs."""
    out = []
    for s in closed_samples(n):
        i = int(s.id[1:])
        kind = AnswerType.CLOSED if i % 3 else AnswerType.OPEN
        out.append(s.model_copy(update={
            "answer": "yes" if kind is AnswerType.CLOSED else "left lung", "answer_type": kind,
            "images": (ImageRef(path=f"img{i % 4}.png", root="/data"),),
            "metadata": {**s.metadata, "language": "en", "organ": "CHEST" if i < n // 2 else "ABD"}}))  # fmt: skip
    return out


def _summary(tmp_path) -> tuple[str, object]:
    samples = _samples(24)
    replies = ["Yes." if s.answer_type is AnswerType.CLOSED and i % 5 else "left lung" if i % 2 else "maybe"
               for i, s in enumerate(samples)]  # fmt: skip
    run = make_run(tmp_path / "run", samples, replies)
    manifest, records = read_records(run)
    results = compute(records, PRESETS, seed=0)
    return markdown(results, manifest, records=records), results


def test_headline_per_preset_then_details_without_redundant_rows(tmp_path):
    md, results = _summary(tmp_path)
    lines = md.splitlines()
    assert lines[0] == "# medprobe results: scripted/a on cases (split test)"
    head = lines.index("## headline")
    assert lines.index("## details") > head
    for preset in PRESETS:
        overall = results.preset(preset).get("overall")
        assert any(line.startswith(f"| `{preset}` | ") and f"| {100 * overall.value:.1f} |" in line
                   for line in lines[head:lines.index("## details")])  # fmt: skip
    # one language: a language=en row would repeat overall
    assert "| language=en |" not in md and "| organ=CHEST |" in md
    # MultiMedEval's accuracy and recall coincide on these answers: one row, both names
    assert re.search(r"\| `multimedeval` \| closed \| accuracy = [a-z_= ]*recall", md)
    assert len(lines) < 60


def test_ranges_status_coverage_interval_and_verdicts(tmp_path):
    md, results = _summary(tmp_path)
    assert not re.search(r"\d-\d", md)  # "12.5 to 50.0", never "12.5-50.0" (nor "-13.8-12.3")
    assert re.search(r"\| \d+\.\d to \d+\.\d", md)
    assert "- status: complete" in md and "- coverage: " in md
    assert "95% intervals: cluster bootstrap by image, 1000 resamples, 95% percentile" in md
    assert results.interval == "cluster bootstrap by image, 1000 resamples, 95% percentile"
    assert "## verdicts" in md and "could not be parsed" in md  # some answers are invalid ("maybe")
