"""METEOR through pycocoevalcap's Meteor 1.5 jar (`java -jar meteor-1.5.jar - - -stdio -l en -norm`).

METEOR has no pure-Python equivalent that gives the jar's numbers (NLTK's `meteor_score` uses other
stemming, synonyms and fragmentation constants), so medprobe never substitutes one: without `java` on PATH
or without pycocoevalcap, the metric is reported "not available" with what to install, never 0.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Sequence

from medprobe.textmetrics.result import TextMetric

SOURCE = "pycocoevalcap Meteor (meteor-1.5.jar, -l en -norm)"


def unavailable_reason() -> str | None:
    """None when METEOR can run here, else why not and what to install."""
    if importlib.util.find_spec("pycocoevalcap") is None:
        return "not available: pycocoevalcap is not installed (pip install 'medprobe[report]' or pip install pycocoevalcap)"
    if shutil.which("java") is None:
        return "not available: java is not on PATH (METEOR runs pycocoevalcap's meteor-1.5.jar; install a JRE 8+)"
    return None


def meteor(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> TextMetric:
    """Corpus METEOR (the jar's aggregate over all segments) and per-study METEOR, on pre-tokenised text."""
    reason = unavailable_reason()
    if reason is not None:
        return TextMetric(name="meteor", unavailable=reason, source=SOURCE)
    if not candidates:
        return TextMetric(name="meteor", unavailable="not available: no scored studies", source=SOURCE)
    from pycocoevalcap.meteor.meteor import Meteor  # lazy: it starts a JVM

    try:
        scorer = Meteor()
        gts = {i: list(r) for i, r in enumerate(references)}
        res = {i: [c] for i, c in enumerate(candidates)}
        score, scores = scorer.compute_score(gts, res)
    except (OSError, ValueError) as exc:  # the JVM failed to start, or the jar answered something else
        return TextMetric(name="meteor", unavailable=f"not available: the METEOR jar failed ({exc})", source=SOURCE)
    return TextMetric(name="meteor", value=float(score), per_study=tuple(float(s) for s in scores), source=SOURCE)
