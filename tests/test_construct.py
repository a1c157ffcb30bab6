"""medprobe.construct builds Answer and Score without validation: each must be indistinguishable from the
validated object with the same fields (equality, hash, JSON, repr, copies), or scores would drift."""

from __future__ import annotations

import pytest

from medprobe import construct
from medprobe.types import Answer, Outcome, Score

ANSWERS = [
    dict(value="yes", parser="yes_no", method="first_word"),
    dict(value=None, parser="open", valid=False, reason="refusal"),
    dict(value="B", parser="medevalkit-rules", method="nearest_option_fallback", fallback=True),
    dict(value="", parser="llava-med-recall", method="word_recall"),
]


@pytest.mark.parametrize("fields", ANSWERS)
def test_built_answer_is_its_validated_twin(fields):
    built, validated = construct.answer(**fields), Answer(**fields)
    assert built == validated and validated == built
    assert hash(built) == hash(validated)
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_dump() == validated.model_dump()
    assert repr(built) == repr(validated)
    for slot in ("__pydantic_extra__", "__pydantic_private__"):
        assert getattr(built, slot) == getattr(validated, slot)
    assert built.model_copy(update={"value": "no"}) == validated.model_copy(update={"value": "no"})
    with pytest.raises(Exception):  # frozen like any Answer
        built.value = "x"  # type: ignore[misc]


@pytest.mark.parametrize("extra", [None, {}, {"token_f1": 0.5, "f1": 1.0}])
def test_built_score_is_its_validated_twin(extra):
    answer = Answer(value="liver", parser="open", method="full_text")
    args = dict(outcome=Outcome.WRONG, value=0.0, preset="strict", parser="open", answer=answer)
    built = construct.score(**args, extra=extra)
    validated = Score(**args, **({} if extra is None else {"extra": extra}))
    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert repr(built) == repr(validated)
    assert built.model_copy(update={"value": 1.0}).value == 1.0 and built.value == 0.0


def test_a_model_with_other_fields_is_refused():
    class Changed(Answer):
        note: str = ""

    with pytest.raises(TypeError, match="out of date"):
        construct._check(Changed, construct._ANSWER_FIELDS)
