"""METEOR through pycocoevalcap's Meteor 1.5 jar (`java -jar meteor-1.5.jar - - -stdio -l en -norm`).

METEOR has no pure-Python equivalent that gives the jar's numbers (NLTK's `meteor_score` uses other
stemming, synonyms and fragmentation constants), so medprobe never substitutes one: without `java` on PATH
or without pycocoevalcap, the metric is reported "not available" with what to install, never 0.

The jar does the alignment (exact, stem, synonym, paraphrase) and returns each segment's sufficient
statistics (`SCORE` line). Its corpus score (what pycocoevalcap's `compute_score` returns and R2Gen
reports) is not the mean of segment scores: the jar sums the statistics of all segments and scores the
sum (Meteor 1.5 `MeteorStats.addStats`, `MeteorScorer.computeMetrics`). medprobe does that sum itself
(`corpus_weighted`), so a study bootstrap recomputes the jar's corpus score on every draw without the
JVM; `tests/test_textmetrics_coco.py` checks both against the jar's own output.

Starting the JVM loads the paraphrase tables (~10 s on 2 cores), so the statistics of each (candidate,
references) pair are kept: in memory, and in `meteor-1.5-stats.sqlite` under `$MEDPROBE_CACHE` (default
`$XDG_CACHE_HOME/medprobe`, else `~/.cache/medprobe`). A report or a comparison of runs already scored
then starts no JVM at all. The cache only holds what the jar answered for a text pair; without write
access medprobe goes on without it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medprobe.textmetrics.result import TextMetric

SOURCE = "pycocoevalcap Meteor (meteor-1.5.jar, -l en -norm)"
# Meteor 1.5 defaults for English (Constants.java, task "default"): alpha, beta, gamma, delta and the
# weights of the exact, stem, synonym and paraphrase modules.
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.20, 0.60, 0.75
MODULE_WEIGHTS = np.array([1.0, 0.6, 0.8, 0.6])
MODULES = 4
WIDTH = 4 + 4 * MODULES + 3  # lengths, function words, 4 counts per module, chunks, word matches

_lock = threading.Lock()
_jar = None
_stats: dict[tuple[str, tuple[str, ...]], tuple[float, ...]] = {}


def unavailable_reason() -> str | None:
    """None when METEOR can run here, else why not and what to install."""
    if importlib.util.find_spec("pycocoevalcap") is None:
        return "not available: pycocoevalcap is not installed (pip install 'medprobe[report]' or pip install pycocoevalcap)"
    if shutil.which("java") is None:
        return "not available: java is not on PATH (METEOR runs pycocoevalcap's meteor-1.5.jar; install a JRE 8+)"
    return None


def _scorer():
    global _jar
    if _jar is None:
        from pycocoevalcap.meteor.meteor import Meteor  # lazy: it starts a JVM

        _jar = Meteor()
    return _jar


def cache_file() -> Path:
    root = os.environ.get("MEDPROBE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medprobe"
    return Path(root) / "meteor-1.5-stats.sqlite"


def _key(cand: str, refs: tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps([cand, refs]).encode()).hexdigest()


def _open_cache() -> sqlite3.Connection | None:
    try:
        path = cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
        return db
    except (OSError, sqlite3.Error):  # a read-only home: go on without the cache
        return None


def _from_cache(db: sqlite3.Connection | None, keys: dict[str, tuple[str, tuple[str, ...]]]) -> None:
    if db is None or not keys:
        return
    names = list(keys)
    for start in range(0, len(names), 500):
        part = names[start:start + 500]
        rows = db.execute(f"SELECT key, row FROM stats WHERE key IN ({','.join('?' * len(part))})", part)
        for key, row in rows:
            values = tuple(json.loads(row))
            if len(values) == WIDTH:
                _stats[keys[key]] = values


def segment_stats(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """The jar's sufficient statistics (counts, written as floats), one row of `WIDTH` per (candidate, references) pair.
    Raises OSError when the JVM does not answer a statistics line."""
    pairs = [(cand, tuple(refs)) for cand, refs in zip(candidates, references)]
    with _lock:
        missing = {_key(*p): p for p in pairs if p not in _stats}
        db = _open_cache() if missing else None
        try:
            _from_cache(db, missing)
            new = [p for p in dict.fromkeys(pairs) if p not in _stats]
            if new:
                scorer = _scorer()
                with scorer.lock:  # pycocoevalcap's own lock around its pipe
                    for cand, refs in new:
                        _stats[(cand, refs)] = _ask(scorer, cand, refs)
                if db is not None:
                    try:
                        with db:
                            db.executemany("INSERT OR REPLACE INTO stats VALUES (?, ?)",
                                           [(_key(*p), json.dumps(_stats[p])) for p in new])
                    except sqlite3.Error:
                        pass  # a full or locked disk costs only the next run's JVM start
        finally:
            if db is not None:
                db.close()
        return np.array([_stats[p] for p in pairs], float).reshape(len(pairs), WIDTH)


def _ask(scorer, cand: str, refs: tuple[str, ...]) -> tuple[float, ...]:
    line = scorer._stat(cand, list(refs))  # the SCORE request pycocoevalcap's compute_score sends
    try:
        row = tuple(float(x) for x in line.split())
    except ValueError:
        row = ()
    if len(row) != WIDTH:
        raise OSError(f"the jar answered {line[:80]!r} instead of {WIDTH} statistics")
    return row


def _score(s: np.ndarray) -> np.ndarray:
    """Meteor 1.5 `computeMetrics` on rows of (summed) statistics."""
    s = np.atleast_2d(s).astype(float)
    test_len, ref_len, test_fn, ref_fn = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    per = s[:, 4:4 + 4 * MODULES].reshape(len(s), MODULES, 4)  # test content, ref content, test fn, ref fn
    chunks, test_words, ref_words = s[:, -3], s[:, -2], s[:, -1]
    test_wlen = DELTA * (test_len - test_fn) + (1 - DELTA) * test_fn
    ref_wlen = DELTA * (ref_len - ref_fn) + (1 - DELTA) * ref_fn
    test_wm = (per[:, :, 0] * DELTA + per[:, :, 2] * (1 - DELTA)) @ MODULE_WEIGHTS
    ref_wm = (per[:, :, 1] * DELTA + per[:, :, 3] * (1 - DELTA)) @ MODULE_WEIGHTS
    with np.errstate(divide="ignore", invalid="ignore"):
        p, r = test_wm / test_wlen, ref_wm / ref_wlen
        fmean = 1.0 / ((1 - ALPHA) / p + ALPHA / r)
        frag = np.where(_exact(s), 0.0, chunks / ((test_words + ref_words) / 2))
        score = fmean * (1 - GAMMA * frag ** BETA)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


def _exact(s: np.ndarray) -> np.ndarray:
    """Candidate = reference: every word matched in one chunk (no fragmentation penalty)."""
    per = s[:, 4:4 + 4 * MODULES].reshape(len(s), MODULES, 4)
    return (per[:, :, [0, 2]].sum(axis=(1, 2)) == s[:, 0]) & (per[:, :, [1, 3]].sum(axis=(1, 2)) == s[:, 1]) \
        & (s[:, -3] == 1)


def summable(stats: np.ndarray) -> np.ndarray:
    """Segment statistics as `addStats` adds them: an exact segment's chunk is left out of the sum."""
    out = np.array(stats, float)
    out[:, -3] = np.where(_exact(out), 0.0, out[:, -3])
    return out


def score_sums(summed: np.ndarray) -> np.ndarray:
    """The jar's corpus METEOR of each row of summed `summable` statistics."""
    return _score(summed)


def corpus_weighted(stats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The jar's corpus METEOR on each row of `weights` (resamples x studies, a count per study)."""
    return _score(np.asarray(weights, float) @ summable(stats))


def meteor(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> TextMetric:
    """Corpus METEOR (the jar's aggregate over all segments) and per-study METEOR, on pre-tokenised text."""
    reason = unavailable_reason()
    if reason is not None:
        return TextMetric(name="meteor", unavailable=reason, source=SOURCE)
    if not candidates:
        return TextMetric(name="meteor", unavailable="not available: no scored studies", source=SOURCE)
    try:
        stats = segment_stats(candidates, references)
    except (OSError, ValueError) as exc:  # the JVM failed to start, or the jar answered something else
        return TextMetric(name="meteor", unavailable=f"not available: the METEOR jar failed ({exc})", source=SOURCE)
    value = float(corpus_weighted(stats, np.ones((1, len(stats))))[0])
    return TextMetric(name="meteor", value=value, per_study=tuple(float(x) for x in _score(stats)), source=SOURCE)
