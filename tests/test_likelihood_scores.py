"""Stored likelihood scores survive JSON: a choice absent from a server's top logprobs is a finite floor."""

import math

from medprobe.backends.likelihood import FLOOR, from_top_logprobs, scored
from medprobe.types import Generation, Scoring


def test_absent_choice_is_stored_as_a_finite_floor_and_round_trips():
    scoring = Scoring(mode="next-token", choices=("yes", "no"), labels=("yes", "no"))
    scores = from_top_logprobs(scoring, {" no": -0.5, "maybe": -1.0})
    assert scores[0] == -math.inf and scores[1] == -0.5
    gen = scored(scoring, scores)
    assert gen.text == "no" and gen.option_scores == {"yes": FLOOR, "no": -0.5}
    assert Generation.model_validate_json(gen.model_dump_json()).option_scores == gen.option_scores


def test_a_capitalised_first_token_is_its_choice_not_a_tie():
    # "No" as the reply's first token must score the choice "no"; matched case-sensitively, both choices got
    # the floor and the tie went to "yes"
    scoring = Scoring(mode="next-token", choices=("yes", "no"), labels=("yes", "no"))
    scores = from_top_logprobs(scoring, {"No": -0.1, " Yes": -2.5, "no": -3.0})
    assert scores == [-2.5, -0.1]
    assert scored(scoring, scores).text == "no"
