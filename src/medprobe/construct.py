"""`Answer` and `Score` built without validation: the rule-scoring hot path.

Rule scoring builds an Answer and a Score per record, and validating the two costs as much as many
rules do (bench/scoring.py). Parsers and presets build them from values they typed themselves, so
here they are made as pydantic's own `BaseModel.model_construct` makes a model (set `__dict__`,
`__pydantic_fields_set__`, `__pydantic_extra__`, `__pydantic_private__`), without its per-call loop
over the fields, which costs more than validating. tests/test_construct.py checks that each object
equals, dumps and hashes exactly as its validated twin.

Callers pass the field types the models declare (str, float, an Outcome, a dict of floats): nothing
here coerces, so `value=1` where a float is declared would dump as `1`, not `1.0`.
"""

from __future__ import annotations

from pydantic import BaseModel

from medprobe.types import Answer, Outcome, Score

_new = object.__new__
# the setters of the four instance slots every pydantic model has (cheaper to call than object.__setattr__)
_dict, _fields_set, _extra, _private = (BaseModel.__dict__[name].__set__ for name in
                                        ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))  # fmt: skip

_ANSWER_FIELDS = ("value", "parser", "method", "valid", "fallback", "reason")
_SCORE_FIELDS = ("outcome", "value", "preset", "parser", "answer", "extra")


def _check(cls: type, fields: tuple[str, ...]) -> None:
    # what the shortcut relies on; a new field, or a model with hooks, must fail here, not mis-build
    if tuple(cls.model_fields) != fields or cls.__pydantic_post_init__ or cls.__pydantic_root_model__:
        raise TypeError(f"medprobe.construct is out of date with {cls.__name__}: update its fields")


_check(Answer, _ANSWER_FIELDS)
_check(Score, _SCORE_FIELDS)

# fields set as a validated call with the usual arguments sets them (read only by exclude_unset dumps)
_ANSWER_SET = {"value", "parser", "method"}
_INVALID_SET = {"value", "parser", "valid", "reason"}
_SCORE_SET = {"outcome", "value", "preset", "parser", "answer", "extra"}


def answer(value: str | None, parser: str, method: str | None = None, valid: bool = True, fallback: bool = False,
           reason: str | None = None) -> Answer:
    """`Answer(...)` with the same arguments, unvalidated."""
    a = _new(Answer)
    _dict(a, {"value": value, "parser": parser, "method": method, "valid": valid, "fallback": fallback, "reason": reason})
    _fields_set(a, _ANSWER_SET if valid else _INVALID_SET)
    _extra(a, None)
    _private(a, None)
    return a


def score(outcome: Outcome, value: float, preset: str, parser: str, answer: Answer,
          extra: dict[str, float] | None = None) -> Score:
    """`Score(...)` with the same arguments, unvalidated; `extra` is taken as given (not copied)."""
    s = _new(Score)
    _dict(s, {"outcome": outcome, "value": value, "preset": preset, "parser": parser, "answer": answer,
              "extra": {} if extra is None else extra})  # fmt: skip
    _fields_set(s, _SCORE_SET)
    _extra(s, None)
    _private(s, None)
    return s
