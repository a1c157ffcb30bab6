"""Answer modes that read likelihoods instead of free text.

* ``next-token``: the log-probability of each choice's first token as the first token of the reply
  (MediConfusion's "greedy" mode: compare P("A") with P("B") right after the prompt).
* ``option-likelihood``: the mean per-token log-likelihood of each choice's whole text as the
  assistant reply, i.e. the log of the geometric mean of its token probabilities (MediConfusion's
  "prefix" mode). Its argmax is the option with the lowest mean loss, OmniMedVQA's protocol.

A request in these modes carries `Request.scoring`; the backend returns the argmax label as the
text (so every parser and preset scores it unchanged) and every choice's score in
`Generation.option_scores`. Open questions have no fixed choices and are generated as usual.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from medprobe.prompts import LETTERS
from medprobe.types import AnswerType, Generation, Sample, Scoring, TokenLogprob, Usage

ANSWER_MODES = ("generate", "next-token", "option-likelihood")
#: labels and texts scored for closed (yes/no) questions
YES_NO = ("yes", "no")
#: the stored score of a choice with no probability (e.g. absent from a server's top logprobs)
FLOOR = -1e9


def scoring_for(sample: Sample, mode: str) -> Scoring | None:
    """What to score for `sample` in `mode`; None means generate (generate mode, open questions)."""
    if mode == "generate":
        return None
    if mode not in ANSWER_MODES:
        raise ValueError(f"Unknown answer mode {mode!r}; choose one of {', '.join(ANSWER_MODES)}.")
    kind = sample.prompt_kind
    if kind == AnswerType.MULTIPLE_CHOICE and sample.options:
        labels = tuple(LETTERS[i] for i in range(len(sample.options)))
        # next-token compares the letters the prompt asks for; option-likelihood scores the option texts
        choices = labels if mode == "next-token" else tuple(sample.options)
        return Scoring(mode=mode, choices=choices, labels=labels)  # type: ignore[arg-type]
    if kind == AnswerType.CLOSED:
        return Scoring(mode=mode, choices=YES_NO, labels=YES_NO)  # type: ignore[arg-type]
    return None


def check_supported(backend: object, mode: str) -> None:
    """Fail before any request when `backend` cannot give likelihoods for `mode`."""
    if mode == "generate":
        return
    modes = getattr(backend, "answer_modes", ("generate",))
    if mode not in modes:
        name = getattr(backend, "name", type(backend).__name__)
        raise ValueError(
            f"The {name} backend cannot run --answer-mode {mode}: it supports {', '.join(modes)}. "
            "Likelihood modes need token log-probabilities: use hf/MODEL or vllm/MODEL "
            "(next-token also works on an openai server that returns logprobs)."
        )


def scored(
    scoring: Scoring,
    scores: Sequence[float],
    usage: Usage | None = None,
    latency: float = 0.0,
    logprobs: tuple[TokenLogprob, ...] | None = None,
) -> Generation:
    """A Generation whose text is the best-scoring label (first wins a tie) and which keeps every score
    (and, from a server's next-token reply, the token logprobs it came from)."""
    # JSON has no infinity (orjson writes null, which then fails to load): an impossible choice is stored as FLOOR
    by_label = {label: float(s) if math.isfinite(s) else FLOOR for label, s in zip(scoring.labels, scores, strict=True)}
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    return Generation(
        text=scoring.labels[best], option_scores=by_label, usage=usage, latency_s=latency, finish_reason="scored",
        logprobs=logprobs,
    )


def from_top_logprobs(scoring: Scoring, top: Mapping[str, float]) -> list[float]:
    """next-token scores from a server's top logprobs of the first reply token: a choice absent from
    the top-k gets -inf (it is less likely than every listed token; stored as FLOOR). Leading spaces and case
    are ignored: "No", " no" and "NO" are all the choice "no" (the best of them counts), so a capitalised
    first token is never lost to a tie."""
    best: dict[str, float] = {}
    for token, logprob in top.items():
        key = token.strip().casefold()
        best[key] = max(best.get(key, -math.inf), logprob)
    return [best.get(choice.strip().casefold(), -math.inf) for choice in scoring.choices]
