"""Typed, frozen data that crosses every seam of medprobe.

Sample -> Request -> Generation -> Answer -> Score, bundled per sample in a Record.
Everything here is immutable and JSON-serialisable, so a run directory can be re-read and
re-scored without the model (generation is stored before scoring).
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from enum import StrEnum
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Scalar = str | int | float | bool | None


_SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(text: str) -> str:
    """A lone UTF-16 surrogate cannot be stored as UTF-8 (JSON, SQLite): it becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


class Frozen(BaseModel):
    """Base of every seam type: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AnswerType(StrEnum):
    """How a question is answered; drives the parser and the closed/open/MC breakdown."""

    CLOSED = "closed"
    OPEN = "open"
    MULTIPLE_CHOICE = "multiple_choice"
    #: free text judged against a reference text (a radiology report or one of its sections): lexical and
    #: clinical text metrics, not right/wrong (medprobe.textmetrics)
    REPORT = "report"


class ImageView(Frozen):
    """How a DICOM file/series or NIfTI volume becomes one 8-bit image (see `medprobe.medimage`).

    Every field enters the image's hash, so changing the window changes the request key.
    """

    window: str | None = Field(None, description="lung, mediastinum, soft_tissue, bone, brain, dicom (the file's "
                               "VOI LUT), minmax, or 'CENTER,WIDTH'; None: the file's VOI LUT, else min-max")
    slice: str | None = Field(None, description="'middle' (default), an index (negative counts from the end) "
                              "or a fraction with a dot ('0.25')")
    montage: int | None = Field(None, ge=1, le=64, description="tile k evenly spaced slices instead of one")
    plane: str | None = Field(None, description="NIfTI: axial (default), coronal or sagittal, after RAS reorientation")


class ImageRef(Frozen):
    """A reference to one image; pixels are loaded lazily by `medprobe.imaging`.

    Exactly one of `path`, `url`, `data` is set. `root` is the dataset root a relative
    `path` is resolved against (and must stay inside unless the user allows otherwise).
    """

    # in-memory bytes (parquet rows, probe-corrupted images) travel through JSON as base64
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")

    path: str | None = Field(None, description="file path, relative to `root` when root is set")
    root: str | None = Field(None, description="dataset root that `path` is relative to")
    url: str | None = Field(None, description="http(s) or data: URL")
    data: bytes | None = Field(None, description="encoded image bytes held in memory (e.g. from a parquet row)")
    name: str | None = Field(None, description="human-readable name for messages and reports")
    view: ImageView | None = Field(None, description="rendering of a DICOM/NIfTI source; None for plain images")

    def describe(self) -> str:
        return self.name or self.path or (self.url[:60] if self.url else "<in-memory image>")


class VariantTag(Frozen):
    """Which probe made a sample from which parent: medprobe's own fields, kept out of `Sample.metadata`
    so no dataset column (a user's `parent_id`, `probe` or `severity`) can collide with them."""

    parent_id: str = Field(description="id of the clean sample this variant perturbs")
    probe: str = Field(description="probe name; enters Request.probe, so the variant's key differs from its parent's")
    variant: str = Field(description="which variant of the probe, e.g. 'blank', 'jpeg@3', 'rot1'")
    detail: dict[str, Scalar] = Field(
        default_factory=dict, description="the probe's own facts about the variant (corruption, severity, twin_group)"
    )


#: `Sample.metadata` key set (True) on samples of a split whose answers are not released (MMMU test): the
#: gold is a placeholder, so no preset scores them (`scoring._base.Preset.applies` / `score`)
GOLD_HIDDEN = "gold_hidden"

#: metadata keys probe variants carried before `Sample.variant_of` existed (read back by `_legacy_variant`)
_LEGACY_TAG_KEYS = ("parent_id", "probe", "variant")
_LEGACY_DETAIL_KEYS = ("corruption", "severity", "rotation", "twin_group", "option", "substituted", "mismatch_from",
                       "mismatch_same_group", "demonstrations", "shots", "temperature")  # fmt: skip


#: how every version since `variant_of` ends a stored clean sample, and how it writes a variant's tag
#: (model_dump_json: fields in order, `variant_of` last; metadata values are scalars, so neither byte string
#: can come from a metadata column)
_CLEAN = b',"variant_of":null}'
_VARIANT = b',"variant_of":{"parent_id":'


def stored_variant(body: bytes) -> bool:
    """A stored sample body that a version since `variant_of` wrote for a probe variant (no parsing)."""
    return _VARIANT in body


def _legacy_variant(data: Any) -> Any:
    """A variant stored by an earlier version (tag in metadata) gets its `variant_of`. Only for JSON without a
    `variant_of` key (every later version writes one, null or not) whose id is exactly PARENT~PROBE:VARIANT of
    those metadata values, so a user column named parent_id is never taken for a tag."""
    if not isinstance(data, dict) or "variant_of" in data:
        return data
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in _LEGACY_TAG_KEYS):
        return data
    if data.get("id") != f"{meta['parent_id']}~{meta['probe']}:{meta['variant']}":
        return data
    detail = {k: meta[k] for k in _LEGACY_DETAIL_KEYS if k in meta}
    rest = {k: v for k, v in meta.items() if k not in _LEGACY_TAG_KEYS and k not in detail}
    tag = {**{k: meta[k] for k in _LEGACY_TAG_KEYS}, "detail": detail}
    return {**data, "metadata": rest, "variant_of": tag}


class Sample(Frozen):
    """One benchmark item (or a probe's variant of one: then `variant_of` is set)."""

    id: str = Field(description="unique within the benchmark")
    benchmark: str
    split: str = "test"
    question: str
    images: tuple[ImageRef, ...] = ()
    options: tuple[str, ...] = Field((), description="option texts; letters A, B, ... are implied by position")
    answer: str = Field(description="gold answer; for multiple choice the gold letter")
    answer_type: AnswerType = Field(description="category used for scoring and the closed/open breakdown")
    prompt_type: AnswerType | None = Field(
        None,
        description=(
            "category known from the question alone, used to pick the prompt. None means answer_type "
            "itself came from question metadata. Set it when answer_type was derived from the gold "
            "(PathVQA: closed = gold in yes/no), so prompts never peek at the gold answer."
        ),
    )
    metadata: dict[str, Scalar] = Field(
        default_factory=dict, description="modality, organ, question_type, language, ... (treated as read-only)"
    )
    trial: int = Field(0, description="repeat index of a probe variant; enters the request key")
    generation: dict[str, Scalar | dict[str, Any]] = Field(
        default_factory=dict, description="GenerationConfig overrides for this sample (a probe's temperature; "
        "extra_body, merged into the run's)"
    )
    history: tuple[Message, ...] = Field(
        (), description="earlier turns sent before the question (in-context demonstrations with their images)"
    )
    variant_of: VariantTag | None = Field(None, description="set on probe variants only (see medprobe.probes)")

    @classmethod
    def from_stored(cls, body: bytes | str) -> Sample:
        """A sample read back from records.sqlite, migrated when an earlier version wrote it (`_legacy_variant`).
        Not a model validator: any validator on Sample makes pydantic turn every JSON body into Python dicts
        first, which made reading a run with probes (~170,000 samples for 10,000 questions) 20-40% slower."""
        body = body.encode() if isinstance(body, str) else body
        if body.endswith(_CLEAN) or _VARIANT in body:
            return cls.model_validate_json(body)  # written with `variant_of`: cannot be legacy
        return cls.model_validate_json(orjson.dumps(_legacy_variant(orjson.loads(body))))

    @property
    def prompt_kind(self) -> AnswerType:
        return self.prompt_type or self.answer_type

    @property
    def is_variant(self) -> bool:
        """A probe's variant (compared with its parent), never a headline sample."""
        return self.variant_of is not None


class Part(Frozen):
    """One content part of a chat message: text or an image."""

    type: Literal["text", "image"]
    text: str | None = None
    image: ImageRef | None = None


class Message(Frozen):
    role: Literal["system", "user", "assistant"]
    content: tuple[Part, ...]


class GenerationConfig(Frozen):
    """Generation settings: part of the request key (transport settings are not)."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    image_max_side: int | None = Field(None, description="downscale images so the longer side is at most this")
    extra_body: dict[str, Any] = Field(
        default_factory=dict,
        description="fields passed through into the request body (chat_template_kwargs, reasoning_effort, top_k, ...)",
    )


class Scoring(Frozen):
    """Ask for the likelihood of fixed choices instead of free text (answer modes that need logprobs).

    `next-token`: log-probability of each choice's first token as the reply's first token
    (MediConfusion's "greedy" mode). `option-likelihood`: mean per-token log-likelihood of each
    choice's full text as the reply, i.e. the log of the geometric mean of its token probabilities
    (MediConfusion's "prefix" mode; its argmax is OmniMedVQA's lowest-loss option).
    """

    mode: Literal["next-token", "option-likelihood"]
    choices: tuple[str, ...] = Field(description="texts scored as the assistant reply")
    labels: tuple[str, ...] = Field(description="what each choice is called in answers and scores (A, B, ... or yes/no)")


class Request(Frozen):
    """One call to a model. `key` is the cache and resume key."""

    sample_id: str
    model: str
    messages: tuple[Message, ...]
    config: GenerationConfig = GenerationConfig()
    image_hashes: tuple[str, ...] = Field((), description="sha256 of each image's bytes, in message order")
    turn: int = 0
    probe: str | None = None
    trial: int = 0
    scoring: Scoring | None = Field(None, description="score fixed choices instead of generating (see Scoring)")
    backend_options: dict[str, Scalar] = Field(
        default_factory=dict, description="backend options that change answers (dtype, revision, a baseline's seed)"
    )

    def canonical(self) -> dict[str, Any]:
        """What identifies this request: model, messages (images by hash), settings, probe, trial."""
        hashes = iter(self.image_hashes)
        messages = [
            {
                "role": m.role,
                "content": [
                    {"type": "text", "text": p.text} if p.type == "text" else {"type": "image", "sha256": next(hashes)}
                    for p in m.content
                ],
            }
            for m in self.messages
        ]
        canonical = {
            "model": self.model,
            "messages": messages,
            # fields added after schema 1 enter only when set, so keys of earlier runs stay valid
            "config": self.config.model_dump(exclude={"extra_body"} if not self.config.extra_body else None),
            "probe": self.probe,
            "trial": self.trial,
        }
        if self.scoring is not None:  # only when set, so generate-mode keys stay as they were
            canonical["scoring"] = self.scoring.model_dump()
        if self.backend_options:
            canonical["backend_options"] = self.backend_options
        return canonical

    @cached_property
    def key(self) -> str:
        return hashlib.sha256(orjson.dumps(self.canonical(), option=orjson.OPT_SORT_KEYS)).hexdigest()

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Request:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("key", None)  # a cached key belongs to the original's fields, not the copy's
        return copy


class ErrorKind(StrEnum):
    """Why a request or sample failed, decided from exception types and HTTP status codes, never from
    message text. `TRANSIENT_KINDS` are worth a re-run; the others need the user to change something."""

    CONNECTION = "connection"  # refused, reset, DNS failure, dropped mid-reply
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"  # HTTP 429
    SERVER = "server_error"  # HTTP 5xx, 408/409/425
    BAD_REPLY = "bad_reply"  # 2xx whose body is not an answer: not JSON, no choices, content null/not text
    REPLY_TOO_LARGE = "reply_too_large"  # body over the reply cap
    AUTH = "auth"  # HTTP 401/403: the key is missing, wrong or lacks access
    NOT_FOUND = "not_found"  # HTTP 404: wrong model name or base URL
    BAD_REQUEST = "bad_request"  # other 4xx: the server rejects what is asked
    BAD_INPUT = "bad_input"  # the sample itself: an unreadable, missing or refused image, an unusable row
    UNSUPPORTED = "unsupported"  # the backend cannot answer this kind of request (or sample)
    BACKEND = "backend_error"  # a bug or unexpected exception inside a backend


#: kinds a re-run of the same command can fix (the server or network misbehaved, not the request)
TRANSIENT_KINDS = frozenset(
    {ErrorKind.CONNECTION, ErrorKind.TIMEOUT, ErrorKind.RATE_LIMITED, ErrorKind.SERVER, ErrorKind.BAD_REPLY}
)


class TokenLogprob(Frozen):
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


class Usage(Frozen):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = Field(None, description="part of completion_tokens spent on a reasoning chain")


class Generation(Frozen):
    """What a backend returned for one request, or why it could not."""

    text: str | None = None
    logprobs: tuple[TokenLogprob, ...] | None = None
    usage: Usage | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None
    error: str | None = Field(None, description="set when the request failed after all retries")
    error_kind: ErrorKind | None = Field(None, description="the failure's kind (set with `error`)")
    attempts: int = 1
    reasoning: str | None = Field(None, description="the reasoning chain, kept apart from `text` (the answer part)")
    truncated_from: int | None = Field(
        None, description="length in characters of the reply before it was cut to the stored-text cap; None = whole"
    )
    option_scores: dict[str, float] | None = Field(
        None, description="per-choice log-likelihood by label, for requests with `scoring` (text is the argmax label)"
    )

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class Answer(Frozen):
    """A parsed answer: a value and the method that found it, or invalid with a reason."""

    value: str | None
    parser: str
    method: str | None = Field(None, description="which rule of the parser matched, e.g. 'answer_tag', 'boxed'")
    valid: bool = True
    fallback: bool = Field(
        False, description="the value is the option most similar to the reply (an official nearest-option rule), "
        "not one the reply named: counted per row as `fallback`"
    )
    reason: str | None = Field(None, description="why the answer is invalid")


class Outcome(StrEnum):
    CORRECT = "correct"
    WRONG = "wrong"
    INVALID = "invalid"
    #: a valid free-text answer measured by text metrics (AnswerType.REPORT): neither right nor wrong; its
    #: metrics are in `Score.extra` and the corpus rows (medprobe.scoring.report)
    SCORED = "scored"


class Score(Frozen):
    """One sample scored under one preset."""

    outcome: Outcome
    value: float = Field(description="1/0 for accuracy-style rules; a fraction for recall/F1 style rules")
    preset: str
    parser: str
    answer: Answer
    extra: dict[str, float] = Field(default_factory=dict, description="secondary per-sample values, e.g. token_f1")


class Record(Frozen):
    """A sample with every turn's generation: the unit stored, re-scored and reported."""

    sample: Sample
    keys: tuple[str, ...] = ()
    generations: tuple[Generation, ...] = ()
    turns: int = Field(1, description="turns the prompt protocol asks for; fewer generations = incomplete")

    @property
    def answered(self) -> bool:
        """Every turn produced a reply (an incomplete multi-turn record is never scored on turn 1)."""
        return len(self.generations) == self.turns and all(g.ok for g in self.generations)

    @property
    def final(self) -> Generation | None:
        return self.generations[-1] if self.generations else None

    @property
    def error(self) -> str | None:
        return next((g.error for g in self.generations if g.error), None)

    @property
    def error_kind(self) -> ErrorKind | None:
        """The first failed turn's kind (BACKEND for an error stored without a kind by an older version)."""
        failed = next((g for g in self.generations if g.error), None)
        return None if failed is None else failed.error_kind or ErrorKind.BACKEND
