"""The run manifest (manifest.json): a typed, versioned record of what a run asked, of whom, and how it ended.

Everything later (score, card, compare, report) reads it through `Manifest`, never as a raw dict. Schema 1
manifests (written by medprobe 0.1 before run health existed) are migrated on read by `migrate`.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

import orjson
from pydantic import Field

from medprobe.types import Frozen

MANIFEST_SCHEMA = 2


class RunStatus(StrEnum):
    RUNNING = "running"  # only while a process holds the run folder's lock
    COMPLETE = "complete"  # every planned request answered (or errors within --max-errors)
    PARTIAL = "partial"  # finished, but more samples ended in errors than --max-errors allows
    FAILED = "failed"  # stopped before any request was sent: preflight, bad configuration
    STOPPED = "stopped"  # stopped on purpose before the end: circuit breaker or budget (answers kept)
    INTERRUPTED = "interrupted"  # Ctrl-C, a signal, or an unexpected error during the run


class ExitCode(IntEnum):
    """`medprobe run`'s exit codes (the README's table is generated from the same meanings)."""

    OK = 0
    INTERNAL = 1
    FAILED = 2
    ERRORS = 3
    STOPPED = 4
    BUDGET = 5
    STORAGE = 6
    INTERRUPTED = 130


#: what to change for each permanent error kind (transient kinds: re-run the same command)
ADVICE = {
    "auth": "check the key in the variable named by --api-key-env (and that it may use this model)",
    "not_found": "check --model (the name the server serves) and --base-url",
    "bad_request": "the server rejects what is asked: check the generation settings and --image-max-side",
    "reply_too_large": "lower --max-tokens, or raise -O max_reply_bytes",
    "bad_input": "fix the sample's data (image path or file, the row's fields); the example names the sample",
    "unsupported": "this backend cannot answer these samples: choose another --model or --answer-mode",
    "backend_error": "an unexpected error inside the backend: report it with the example",
    "connection": "check that the server is up and --base-url points at it",
}


class ErrorTally(Frozen):
    """Failures of one kind: how many, whether a re-run can fix them, and one example message."""

    kind: str
    count: int
    transient: bool
    example: str = ""


class Coverage(Frozen):
    """How much of the benchmark a number stands on. Every view states it next to the headline."""

    rows: int | None = Field(None, description="rows in the source file/split before skipping")
    skipped: int = Field(0, description="rows skipped at load (each listed in the manifest's load_errors)")
    skipped_reasons: dict[str, int] = Field(default_factory=dict)
    samples: int = Field(0, description="clean samples planned (probe variants counted apart)")
    answered: int = Field(0, description="clean samples whose every turn produced a reply")
    invalid: int | None = Field(None, description="answered samples no rule of the default preset could read")
    errors: int = Field(0, description="clean samples that ended in an error")
    not_sent: int = Field(0, description="clean samples never attempted (the run was stopped or interrupted)")
    errors_by_kind: tuple[ErrorTally, ...] = ()
    variants: int = Field(0, description="probe variants planned")
    variants_answered: int = 0
    variants_failed: int = 0

    @property
    def complete(self) -> bool:
        """Every planned sample (and variant) answered and no row skipped."""
        return self.answered == self.samples and self.variants_answered == self.variants and not self.skipped

    def line(self) -> str:
        """One plain line: rows, skipped, planned, answered, invalid, errors by kind."""
        parts = []
        if self.rows is not None:
            parts.append(f"{self.rows} rows in the source")
        if self.skipped:
            why = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped_reasons.items(), key=lambda kv: -kv[1])[:3])
            parts.append(f"{self.skipped} skipped at load ({why})" if why else f"{self.skipped} skipped at load")
        parts.append(f"{self.samples} samples planned")
        parts.append(f"{self.answered} answered")
        if self.invalid is not None:
            parts.append(f"{self.invalid} invalid")
        if self.errors:
            kinds = ", ".join(f"{t.kind} {t.count}" for t in self.errors_by_kind)
            parts.append(f"{self.errors} error{'s' * (self.errors != 1)} ({kinds})")
        if self.not_sent:
            parts.append(f"{self.not_sent} not sent")
        if self.variants:
            parts.append(f"probe variants {self.variants_answered}/{self.variants} answered"
                         + (f", {self.variants_failed} failed" if self.variants_failed else ""))  # fmt: skip
        return "coverage: " + "; ".join(parts)

    def partial_note(self) -> str:
        """What to write next to a headline computed on part of the benchmark ('' when it is all of it)."""
        if self.answered == self.samples and not self.skipped:
            return ""
        total = self.samples + self.skipped
        return f"on {self.answered} of {total} samples"


class PromptInfo(Frozen):
    name: str
    hash: str | None = None
    template: dict[str, Any] | None = None


class Execution(Frozen):
    """What the last `medprobe run` process did (requests include every turn and probe variant)."""

    requests: int = 0
    cached: int = 0
    sent: int = 0
    errors: int = 0
    not_sent: int = 0
    concurrency: str | None = Field(None, description="adaptive, pinned (--concurrency N) or backend (a local "
                                    "backend's own batch parallelism)")
    concurrency_final: int | None = Field(None, description="requests allowed in flight when the run ended")
    concurrency_peak: int | None = None
    concurrency_changes: tuple[tuple[float, int], ...] = Field(
        (), description="the adaptive level over the run: (seconds since sending began, new level), the first 200")


class TokenTotals(Frozen):
    """Token usage of a set of requests, from each reply's `usage` (a server may report none)."""

    requests: int = 0
    with_usage: int = Field(0, description="requests whose reply reported usage")
    prompt_tokens: int = 0
    completion_tokens: int = Field(0, description="output tokens, reasoning_tokens included")
    reasoning_tokens: int = 0
    cost_usd: float | None = Field(None, description="at the --prices price; None without one")

    def line(self) -> str:
        text = (f"{self.requests} requests, {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion "
                f"tokens ({self.reasoning_tokens:,} reasoning)")  # fmt: skip
        if self.with_usage < self.requests:
            text += f", {self.requests - self.with_usage} without usage"
        return text + (f", ${self.cost_usd:.4f}" if self.cost_usd is not None else "")


class UsageReport(Frozen):
    """Tokens (and cost, with --prices) of the run folder and of the execution that wrote this manifest."""

    stored: TokenTotals = Field(description="every generation stored in this run folder, over all executions")
    execution: TokenTotals = Field(description="the requests this execution sent")
    price_input: float | None = Field(None, description="USD per million input tokens (--prices)")
    price_output: float | None = Field(None, description="USD per million output tokens (--prices)")
    max_cost_usd: float | None = Field(None, description="--max-cost: the most this execution may spend")


class Manifest(Frozen):
    """manifest.json. `identity` is what makes two runs the same run (so a re-run resumes, never mixes)."""

    schema_version: int = MANIFEST_SCHEMA
    medprobe_version: str
    command: str = Field(description="run or import")
    status: RunStatus
    stop_reason: str | None = Field(None, description="why the run is not complete, in plain words")
    stopped_by: str | None = Field(None, description="breaker or budget, when the status is stopped")
    created: str
    finished: str | None = None
    benchmark: dict[str, Any] = Field(description="provenance: benchmark, source, sha256 or revision, split, rows")
    load_errors: tuple[str, ...] = Field((), description="the first rows skipped at load, each with its reason")
    load_error_count: int = 0
    probe_skipped: tuple[str, ...] = Field((), description="parents no probe variant could be derived from, why")
    probe_skipped_count: int = 0
    images_not_fetched: tuple[str, ...] = Field((), description="--fetch-images: the first URLs that failed, why")
    images_not_fetched_count: int = 0
    default_preset: str = "strict"
    prompt: PromptInfo
    backend: dict[str, Any] = Field(description="provider, model and public settings (never a secret)")
    generation: dict[str, Any] | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="transport settings (not in the identity)")
    seed: int = 0
    turns: int = 1
    answer_mode: str = "generate"
    probes: tuple[str, ...] = ()
    max_errors: str | None = Field(None, description="--max-errors as given: a count or a percentage")
    identity: dict[str, Any] = Field(default_factory=dict)
    last_execution: Execution | None = None
    usage: UsageReport | None = Field(None, description="token totals (and cost) from the replies' usage")
    coverage: Coverage | None = None
    warnings: tuple[str, ...] = ()
    judge: dict[str, Any] | None = Field(None, description="`medprobe judge`'s configuration (judge.sqlite)")

    @property
    def model_name(self) -> str:
        return f"{self.backend.get('provider')}/{self.backend.get('model')}"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a manifest written by an earlier schema up to MANIFEST_SCHEMA (pure; the file is not rewritten)."""
    data = dict(data)
    version = int(data.get("schema_version", 1))
    if version < 2:
        # schema 1: a hand-built dict. Its status was 'complete' even when requests failed, so the
        # status is re-derived from the records by `score` (coverage); here it only becomes typed.
        status = data.get("status", "complete")
        data["status"] = status if status in RunStatus._value2member_map_ else "interrupted"
        data.pop("last_execution", None)  # counts were untyped; the next run rewrites them
        prompt = data.get("prompt") or {}
        data["prompt"] = {"name": prompt.get("name") or "?", "hash": prompt.get("hash"), "template": prompt.get("template")}
        data["load_errors"] = tuple(data.get("load_errors") or ())
        data["warnings"] = tuple(data.get("warnings") or ())
        data.setdefault("medprobe_version", "unknown")
        data.setdefault("command", "run")
        data.setdefault("created", "")
        data.setdefault("backend", {})
        data.setdefault("benchmark", {})
        data["identity"] = {"legacy": legacy_identity(data)}
        data["schema_version"] = MANIFEST_SCHEMA
    known = set(Manifest.model_fields)
    return {k: v for k, v in data.items() if k in known}


def legacy_identity(data: dict[str, Any]) -> dict[str, Any]:
    """The identity a schema-1 run had (what 0.1 compared), so re-running it resumes instead of refusing."""
    bench, backend = data.get("benchmark") or {}, data.get("backend") or {}
    generation = data.get("generation")
    if isinstance(generation, dict) and not generation.get("extra_body"):
        generation = {k: v for k, v in generation.items() if k != "extra_body"}  # added in schema 2
    return as_json({
        "benchmark": {k: bench.get(k) for k in ("benchmark", "source", "split", "filters")},
        "model": f"{backend.get('provider')}/{backend.get('model')}",
        "prompt_hash": (data.get("prompt") or {}).get("hash"),
        "generation": generation,
        "answer_mode": data.get("answer_mode", "generate"),
    })  # fmt: skip


def load(data: dict[str, Any]) -> Manifest:
    return Manifest.model_validate(migrate(data))


def as_json(value: Any) -> Any:
    """Compare values as stored JSON (tuples read back as lists)."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the identity fields that differ, with both values: 'seed: 0 -> 1'."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: {_short(a)} -> {_short(b)}")
    return out


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."
