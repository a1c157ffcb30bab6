"""`medprobe judge RUN`: an LLM judge over a run's stored answers, through the same runner.

Each answered sample of the run (probe variants excepted) becomes one judge request: the judge
prompt (named and hashed, `medprobe.judge_prompts`) filled with the question, the gold (or the
options) and the model's reply. Requests go through `runner.execute` into `judge.sqlite` in the run
folder, keyed by the request's sha256 like any generation, so re-running sends only the missing
verdicts and a killed judge resumes. Verdicts (judge model, prompt name and hash, raw reply) are
then written to that file's `verdicts` table; `medprobe score RUN` reads them back
(`medprobe.judge_report`). A judge failure is that sample's error or invalid verdict: no rule
preset ever stands in for the judge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import orjson
from pydantic import Field

from medprobe import judge_green
from medprobe.backends import BackendConfig, create
from medprobe.judge_prompts import DEFAULT, JudgePrompt, Kind, load_judge_prompt, parse_binary, parse_option_scores
from medprobe.prompts import LETTERS, PromptTemplate
from medprobe.runner import Counts, Job, Progress, RunSettings, execute
from medprobe.scoring.mediconfusion import MARGIN
from medprobe.reasoning import split_generation
from medprobe.store import MANIFEST, RunStore, read_manifest, read_records, write_json
from medprobe.types import AnswerType, Frozen, GenerationConfig, Outcome, Record, Sample

JUDGE_DB = "judge.sqlite"
_TABLES = """
CREATE TABLE IF NOT EXISTS verdicts (sample_id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS judge_meta (name TEXT PRIMARY KEY, body BLOB NOT NULL);
"""


class JudgeSpec(Frozen):
    """Everything one `medprobe judge` needs; recorded in the run's manifest (no secrets in it)."""

    backend: BackendConfig = Field(description="the judge model")
    prompt: str | None = Field(None, description="judge prompt name or JSON file; None: the default of each kind")
    kind: Literal["auto", "binary", "option-scores", "green"] = Field(
        "auto", description="auto: GREEN-style error counts for reports, option scores for multiple-choice "
        "samples, 1/0 verdicts for the others")
    settings: RunSettings = RunSettings()
    margin: float = Field(MARGIN, description="option scores: the winner must beat every other option by this")

    @property
    def model(self) -> str:
        return f"{self.backend.provider}/{self.backend.model}"


class Verdict(Frozen):
    """One sample's judgement. `outcome` None: no verdict (the judge request failed after retries)."""

    sample_id: str
    judge_model: str
    prompt_name: str
    prompt_hash: str
    kind: Kind
    key: str | None = Field(None, description="request key of the judge call in judge.sqlite")
    raw: str | None = Field(None, description="the judge's reply as received")
    outcome: Outcome | None = None
    chosen: str | None = Field(None, description="option scores: the option the margin rule chose")
    scores: dict[str, float] | None = None
    reason: str | None = Field(None, description="why the outcome is invalid: unparseable_verdict, no_margin")
    error: str | None = Field(None, description="judge failure: request error after retries, unreadable verdict")


class JudgeRun(Frozen):
    """What one `medprobe judge` did."""

    judged: int
    skipped: int = Field(description="answered samples the chosen kind cannot judge (option scores without options)")
    requests: int
    cached: int
    sent: int
    errors: int
    concurrency: str | None = Field(None, description="adaptive (medprobe.throttle, as `run`), pinned "
                                    "(--concurrency N) or backend (a local judge's own batching)")
    concurrency_peak: int | None = Field(None, description="the most judge requests the level allowed in flight")


def _kind_for(sample: Sample, spec: JudgeSpec, prompt: JudgePrompt | None) -> Kind | None:
    kind = spec.kind if spec.kind != "auto" else prompt.kind if prompt else "green" if (
        sample.answer_type is AnswerType.REPORT) else (
        "option-scores" if sample.answer_type is AnswerType.MULTIPLE_CHOICE and sample.options else "binary")
    return None if kind == "option-scores" and len(sample.options) < 2 else kind


def _prompts(spec: JudgeSpec) -> dict[Kind, JudgePrompt]:
    if spec.prompt is None:
        return {k: load_judge_prompt(name) for k, name in DEFAULT.items()}  # type: ignore[misc]
    prompt = load_judge_prompt(spec.prompt)
    if spec.kind not in ("auto", prompt.kind):
        raise ValueError(f"judge prompt {prompt.name!r} gives {prompt.kind} verdicts, not {spec.kind}; "
                         f"drop --kind or pass a {spec.kind} prompt.")
    return {prompt.kind: prompt}


def _judged(run_dir: Path) -> list[Record]:
    """The run's answered samples, probe variants excepted (they are compared with their parents)."""
    _, records = read_records(run_dir)
    return [r for r in records if r.answered and not r.sample.is_variant]


def judge(run_dir: Path, spec: JudgeSpec, progress: Progress | None = None) -> JudgeRun:
    """Judge every answered sample of `run_dir` (resumable); writes verdicts and the manifest entry."""
    from medprobe.runlock import RunLock

    with RunLock(run_dir):
        return _judge(run_dir, spec, progress)


def _judge(run_dir: Path, spec: JudgeSpec, progress: Progress | None) -> JudgeRun:
    prompts = _prompts(spec)
    records = _judged(run_dir)
    backend = create(spec.backend)  # a wrong model spec or missing key fails before anything is written
    groups: dict[Kind, list[tuple[Record, Sample]]] = {}
    skipped = 0
    given = next(iter(prompts.values())) if spec.prompt else None
    for r in records:
        kind = _kind_for(r.sample, spec, given)
        if kind is None or kind not in prompts:
            skipped += 1
            continue
        # the judge grades the answer, never the reasoning chain before it (which mentions every option)
        part = split_generation(r.final)  # type: ignore[arg-type]
        if not part.closed:  # cut inside its chain: there is no answer to judge
            skipped += 1
            continue
        text = prompts[kind].render(r.sample, part.answer or "")
        asked = Sample(id=r.sample.id, benchmark=r.sample.benchmark, split=r.sample.split, question=text,
                       answer=r.sample.answer, answer_type=AnswerType.OPEN)
        groups.setdefault(kind, []).append((r, asked))
    identity = {"model": spec.model, "prompts": {k: p.hash for k, p in prompts.items()}, "kind": spec.kind,
                "margin": spec.margin}
    store = RunStore(run_dir / JUDGE_DB)
    total, peaks = Counts(), []
    try:
        store.db.executescript(_TABLES)
        _reset_if_changed(store, identity)
        store.put_samples([asked for pairs in groups.values() for _, asked in pairs])
        _record_manifest(run_dir, spec, prompts, status="running")
        jobs = [Job(samples=[a for _, a in groups[k]], template=_template(prompts[k]), model=spec.model,
                    config=GenerationConfig(max_tokens=prompts[k].max_tokens, temperature=prompts[k].temperature))
                for k in groups]  # fmt: skip
        with asyncio.Runner() as runner:
            try:
                for job in jobs:
                    counts = runner.run(execute(job, backend, store, spec.settings, progress))
                    for field in ("total", "cached", "sent", "errors"):
                        setattr(total, field, getattr(total, field) + getattr(counts, field))
                    total.mode = counts.mode  # each kind's job has its own gate; every one runs in one mode
                    peaks += [counts.gate.controller.peak] if counts.gate is not None else []
            finally:
                runner.run(backend.aclose())
        verdicts = _verdicts(store, groups, prompts, spec)
        _write_verdicts(store, verdicts)
    except BaseException:
        _record_manifest(run_dir, spec, prompts, status="interrupted")
        store.close()
        raise
    store.close()
    run = JudgeRun(judged=len(verdicts), skipped=skipped, requests=total.total, cached=total.cached,
                   sent=total.sent, errors=sum(v.outcome is None for v in verdicts), concurrency=total.mode,
                   concurrency_peak=max(peaks, default=None))
    _record_manifest(run_dir, spec, prompts, status="complete", last=run)
    return run


def _template(prompt: JudgePrompt) -> PromptTemplate:
    """The rendered judge text travels as the sample's question; the template adds the system."""
    return PromptTemplate(name=f"judge:{prompt.name}", system=prompt.system, closed="{question}",
                          open="{question}", multiple_choice="{question}")


def _reset_if_changed(store: RunStore, identity: dict) -> None:
    """A new judge (model, prompt, kind) gets a fresh plan and verdicts; cached replies stay, so
    going back to an earlier judge sends nothing."""
    body = orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)
    row = store.db.execute("SELECT body FROM judge_meta WHERE name = 'identity'").fetchone()
    if row is None or bytes(row[0]) != body:
        store.db.executescript("BEGIN; DELETE FROM plan; DELETE FROM verdicts; COMMIT;")
        store.db.execute("INSERT OR REPLACE INTO judge_meta (name, body) VALUES ('identity', ?)", (body,))


def _verdicts(store: RunStore, groups, prompts: dict[Kind, JudgePrompt], spec: JudgeSpec) -> list[Verdict]:
    asked = [a for pairs in groups.values() for _, a in pairs]
    replies = {rec.sample.id: rec for rec in store.records(samples=asked)}
    out = []
    for kind, pairs in groups.items():
        prompt = prompts[kind]
        for record, a in pairs:
            reply = replies[a.id]
            base = dict(sample_id=a.id, judge_model=spec.model, prompt_name=prompt.name, prompt_hash=prompt.hash,
                        kind=kind, key=reply.keys[0] if reply.keys else None)  # fmt: skip
            if not reply.answered:
                out.append(Verdict(**base, error=reply.error or "judge not run yet (interrupted); re-run medprobe judge"))
                continue
            raw = reply.final.text or ""  # type: ignore[union-attr]
            out.append(_read(record.sample, raw, kind, spec.margin, base))
    return out


def _read(sample: Sample, raw: str, kind: Kind, margin: float, base: dict) -> Verdict:
    """A verdict from the judge's reply: unreadable -> invalid with the reason, never a rule's guess."""
    if kind == "green":  # a report's error counts: a graded verdict, its GREEN score in scores["green"]
        counts = judge_green.parse_green(raw)
        if counts.error:
            return Verdict(**base, raw=raw, outcome=Outcome.INVALID, reason="unparseable_verdict", error=counts.error)
        return Verdict(**base, raw=raw, outcome=judge_green.GRADED, scores=counts.scores())
    if kind == "binary":
        parsed = parse_binary(raw)
        if parsed.error:
            return Verdict(**base, raw=raw, outcome=Outcome.INVALID, reason="unparseable_verdict", error=parsed.error)
        return Verdict(**base, raw=raw, outcome=Outcome.CORRECT if parsed.correct else Outcome.WRONG)
    parsed = parse_option_scores(raw, LETTERS[: len(sample.options)], margin)
    if parsed.error:
        return Verdict(**base, raw=raw, outcome=Outcome.INVALID, scores=parsed.scores, reason="unparseable_verdict",
                       error=parsed.error)
    if parsed.chosen is None:
        return Verdict(**base, raw=raw, outcome=Outcome.INVALID, scores=parsed.scores, reason="no_margin")
    ok = parsed.chosen == sample.answer.strip()
    return Verdict(**base, raw=raw, outcome=Outcome.CORRECT if ok else Outcome.WRONG, scores=parsed.scores,
                   chosen=parsed.chosen)


def _write_verdicts(store: RunStore, verdicts: Sequence[Verdict]) -> None:
    rows = [(v.sample_id, v.model_dump_json().encode()) for v in verdicts]
    store.db.execute("BEGIN IMMEDIATE")
    try:
        store.db.execute("DELETE FROM verdicts")
        store.db.executemany("INSERT INTO verdicts (sample_id, body) VALUES (?, ?)", rows)
    except BaseException:
        store.db.execute("ROLLBACK")
        raise
    store.db.execute("COMMIT")


def read_verdicts(run_dir: Path) -> dict[str, Verdict]:
    """The stored verdicts by sample id ({} when the run was never judged)."""
    path = run_dir / JUDGE_DB
    if not path.is_file():
        return {}
    store = RunStore(path, read_only=True)  # score and card work on a read-only run folder
    try:
        if not store.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'verdicts'").fetchone():
            return {}
        return {sid: Verdict.model_validate_json(body) for sid, body in store.db.execute("SELECT sample_id, body FROM verdicts")}
    finally:
        store.close()


def _record_manifest(run_dir: Path, spec: JudgeSpec, prompts: dict[Kind, JudgePrompt], status: str,
                     last: JudgeRun | None = None) -> None:
    """The judge's configuration in manifest.json: model, public backend settings, prompts and hashes."""
    manifest = read_manifest(run_dir)
    entry = {
        "status": status,
        "model": spec.model,
        "backend": spec.backend.public(),
        "kind": spec.kind,
        "margin": spec.margin,
        "prompts": {k: {"name": p.name, "hash": p.hash, "prompt": p.model_dump()} for k, p in prompts.items()},
        "settings": spec.settings.model_dump(),
        "store": JUDGE_DB,
    }
    if last is not None:
        entry["last_execution"] = last.model_dump()
    write_json(run_dir / MANIFEST, manifest.model_copy(update={"judge": entry}).to_json())
