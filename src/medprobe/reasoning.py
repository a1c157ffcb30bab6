"""Reasoning chains: split a reply into the chain and the answer that follows it (pure functions).

Reasoning models write a chain before they answer. It reaches medprobe in two ways, and both are kept:
inline in the text (`<think>...</think>`, `<thinking>...</thinking>`, Kimi's `◁think▷...◁/think▷`), or
apart, in the server's `message.reasoning_content` / `reasoning` field (vLLM and SGLang reasoning parsers),
stored as `Generation.reasoning`. `Generation.text` stays as the server returned it; scoring applies
`split` and scores only the answer part, so every parser and preset reads the same answer.

Rules (the cases peer toolkits get wrong: VLMEvalKit #989, lm-eval #3216, evalscope #649, lighteval #869):

* The answer is the text outside every chain; the chain is the text inside (delimiters removed).
* A closing delimiter with no opening one ends a chain that started before the reply: chat templates
  (Qwen3-Thinking, DeepSeek-R1) put the opening `<think>` in the prompt, so the reply starts inside it.
* Nested or repeated chains are counted by depth; a stray closing delimiter turns the text since the
  previous chain into chain too.
* A chain that never closes (cut by `max_tokens`) is `unfinished_reasoning`; so is a chain followed by
  nothing when the reply was cut (`finish_reason` "length"). Nothing after a finished chain is
  `no_answer_after_reasoning` (lighteval #869: "a missing `</think>` should count as an incomplete answer").

Delimiters are matched case-sensitively, as models emit them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from medprobe.types import Generation

#: (opening, closing) delimiter pairs; any closing delimiter closes any open chain
DELIMITERS: tuple[tuple[str, str], ...] = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("◁think▷", "◁/think▷"),  # Kimi-VL-Thinking
)
_OPENING = frozenset(o for o, _ in DELIMITERS)
_CLOSING = frozenset(c for _, c in DELIMITERS)
_DELIMITER = re.compile("|".join(re.escape(d) for d in sorted(_OPENING | _CLOSING, key=len, reverse=True)))

UNFINISHED = "unfinished_reasoning"
NO_ANSWER = "no_answer_after_reasoning"


class Split(NamedTuple):
    """A reply split into its chain and its answer.

    A NamedTuple rather than a pydantic model: one is built per scored record, and this is the hot path
    of scoring (bench/scoring.py).
    """

    reasoning: str | None  # the chain (server field first, then inline chains); None = the reply has no chain
    answer: str  # the text after the chain, stripped; the text itself (verbatim) when there is no chain
    closed: bool  # False when the chain never closed (no closing delimiter, or cut before any answer)

    @property
    def invalid_reason(self) -> str | None:
        """`unfinished_reasoning`, `no_answer_after_reasoning`, or None when the answer part can be scored."""
        if not self.closed:
            return UNFINISHED
        if self.reasoning is not None and not self.answer:
            return NO_ANSWER
        return None


def may_hold_chain(text: str) -> bool:
    """False when `text` certainly holds no delimiter (every delimiter contains "think" or "◁"): scoring's
    fast path, two substring tests."""
    return "think" in text or "◁" in text


@lru_cache(maxsize=8192)
def split_text(text: str) -> Split:
    """Split the inline chain(s) off one reply text."""
    if not may_hold_chain(text):
        return Split(None, text, True)
    chain: list[str] = []
    answer: list[str] = []
    pending: list[str] = []  # text outside chains since the last chain ended
    depth = pos = 0
    found = False
    for m in _DELIMITER.finditer(text):
        found = True
        piece = text[pos : m.start()]
        (chain if depth else pending).append(piece)
        if m.group() in _OPENING:
            if depth == 0:
                answer += pending
                pending = []
            depth += 1
        elif depth:
            depth -= 1
        else:  # closing with no opening: the reply started inside a chain (or a stray tag ends one)
            chain += pending
            pending = []
        pos = m.end()
    if not found:
        return Split(None, text, True)
    (chain if depth else pending).append(text[pos:])
    answer += pending
    return Split(_join(chain), _join(answer), depth == 0)


def _join(pieces: list[str]) -> str:
    return "\n".join(p for p in (x.strip() for x in pieces) if p)


def split(text: str | None, reasoning: str | None = None, finish_reason: str | None = None) -> Split:
    """Combine the server's reasoning field with the inline chain of `text`.

    `finish_reason` "length" with a chain and no answer means the reply was cut inside the chain
    (vLLM's reasoning parser puts an unclosed chain wholly into `reasoning_content`)."""
    inline = split_text(text) if text and may_hold_chain(text) else Split(None, text or "", True)
    chain = reasoning or None
    if chain is None and inline.reasoning is None:
        return inline
    if inline.reasoning is not None:
        chain = inline.reasoning if chain is None else f"{chain}\n{inline.reasoning}"
    answer = inline.answer.strip()
    closed = inline.closed and not (not answer and finish_reason == "length")
    return Split(chain, answer, closed)


def split_generation(generation: Generation) -> Split:
    """(reasoning, answer, closed) of a stored generation: the view of what the model thought and answered."""
    return split(generation.text, generation.reasoning, generation.finish_reason)


def chain_opened_by(prompt: str) -> str | None:
    """The opening delimiter a rendered prompt ends with (the template opened the chain), else None.

    Local backends prepend it to the decoded reply, so a chain cut by `max_tokens` reads as unfinished
    instead of as an answer."""
    tail = prompt.rstrip()
    return next((o for o in _OPENING if tail.endswith(o)), None)


def delimiter_texts() -> tuple[str, ...]:
    """Every delimiter string (local backends keep these tokens when decoding)."""
    return tuple(sorted(_OPENING | _CLOSING))


def answer_start(tokens: Sequence[str]) -> int:
    """Index of the first token after the last closing delimiter of the reply's tokens (0: no chain), so
    token-level figures (logprob confidence) read the answer, not the chain."""
    joined = "".join(tokens)
    end = max((joined.rfind(c) + len(c) for c in _CLOSING if c in joined), default=0)
    if not end:
        return 0
    pos = 0
    for i, token in enumerate(tokens):
        pos += len(token)
        if pos >= end:
            return i + 1
    return len(tokens)
