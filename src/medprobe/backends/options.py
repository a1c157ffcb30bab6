"""`--backend-option KEY=VALUE` parsing and checking, shared by the local backends."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

Value = str | int | float | bool | None


def parse_value(text: str) -> Value:
    """'8' -> 8, '0.9' -> 0.9, 'true' -> True, 'none' -> None, anything else stays a string."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(items: Iterable[str]) -> dict[str, Value]:
    options: dict[str, Value] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--backend-option expects KEY=VALUE, e.g. batch_size=8; got {item!r}")
        options[key.strip().replace("-", "_")] = parse_value(value)
    return options


def check_known(backend: str, options: Mapping[str, Value], known: Mapping[str, str]) -> None:
    """A clear error for a misspelt option, listing what the backend understands."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        listing = "; ".join(f"{k}: {v}" for k, v in known.items())
        raise ValueError(f"Unknown option(s) for the {backend} backend: {', '.join(unknown)}. Known: {listing}.")


#: options that shape how requests are sent or where a model runs, never what it answers: they stay out of
#: the run identity and the request key (every other option enters both)
TRANSPORT_OPTIONS = frozenset({
    "max_connections", "replica_fail_threshold", "replica_cooldown_s", "max_reply_bytes", "batch_size", "actors",
    "gpu_memory_utilization", "tensor_parallel_size", "num_gpus", "ray_address",
})  # fmt: skip


def answer_options(options: Mapping[str, Value]) -> dict[str, Value]:
    """The backend options that can change an answer (dtype, revision, device, a baseline's seed, ...)."""
    return {k: v for k, v in sorted(options.items()) if k not in TRANSPORT_OPTIONS}


def parse_extra_body(json_text: str | None, items: Iterable[str]) -> dict[str, object]:
    """`--extra-body JSON` then each `-B KEY=VALUE` on top: fields passed through into the request body.

    VALUE is read as JSON when it parses (`-B top_k=20`, `-B enable=true`, `-B 'stop=["x"]'`), else kept as a
    string (`-B reasoning_effort=high`); a dotted KEY nests (`-B chat_template_kwargs.enable_thinking=false`)."""
    body: dict[str, object] = {}
    if json_text:
        try:
            body = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--extra-body is not JSON ({exc.msg} at character {exc.pos}); e.g. "
                             """--extra-body '{"chat_template_kwargs": {"enable_thinking": false}}'""") from None
        if not isinstance(body, dict):
            raise ValueError("--extra-body must be a JSON object, e.g. '{\"top_k\": 20}'")
    for item in items:
        key, sep, text = item.partition("=")
        path = [k.strip() for k in key.split(".")]
        if not sep or not all(path):
            raise ValueError(f"-B expects KEY=VALUE, e.g. -B reasoning_effort=high or "
                             f"-B chat_template_kwargs.enable_thinking=false; got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = body
        for part in path[:-1]:
            child = node.get(part)
            node[part] = child = child if isinstance(child, dict) else {}
            node = child
        node[path[-1]] = value
    return body
