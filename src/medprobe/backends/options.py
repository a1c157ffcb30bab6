"""`--backend-option KEY=VALUE` parsing and checking, shared by the local backends."""

from __future__ import annotations

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
