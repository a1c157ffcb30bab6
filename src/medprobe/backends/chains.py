"""Reasoning chains in the local backends (hf, vllm): keep the delimiters when decoding, count the chain's
tokens, and restore an opening delimiter the chat template left in the prompt.

A server's reply reaches scoring with its `<think>...</think>` (or in `reasoning_content`); a local
backend must hand over the same text, so that medprobe.reasoning splits it the same way:

* `decode(skip_special_tokens=True)` drops tokens the tokenizer marks special. Qwen3 marks `<think>` as an
  added, non-special token, so it survives; a tokenizer that marks it special would lose the chain's
  boundary. Such delimiter ids are kept (`Delimiters.keep`) while every other special token is still dropped.
* Templates of thinking models (Qwen3-Thinking, DeepSeek-R1) end the prompt with `<think>`: the reply starts
  inside the chain. The backend prepends that delimiter to the reply, so a chain cut by `max_tokens` reads as
  unfinished instead of as an answer (`reasoning.chain_opened_by`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from medprobe.reasoning import DELIMITERS, chain_opened_by

_OPENING = {o for o, _ in DELIMITERS}
_CLOSING = {c for _, c in DELIMITERS}


@dataclass(frozen=True)
class Delimiters:
    """Token ids of the reasoning delimiters that are single tokens in one tokenizer."""

    opening: frozenset[int]
    closing: frozenset[int]
    keep: frozenset[int]  # delimiter ids the tokenizer marks special (decode would drop them)
    special: frozenset[int]  # every id `skip_special_tokens=True` drops

    @classmethod
    def of(cls, tokenizer) -> Delimiters:
        added = dict(getattr(tokenizer, "added_tokens_decoder", None) or {})
        special = set(getattr(tokenizer, "all_special_ids", ()) or ()) | {i for i, t in added.items() if getattr(t, "special", False)}
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        opening = frozenset(vocab[d] for d in _OPENING if d in vocab)
        closing = frozenset(vocab[d] for d in _CLOSING if d in vocab)
        return cls(opening, closing, frozenset((opening | closing) & special), frozenset(special))

    def decode(self, tokenizer, ids: Sequence[int]) -> str:
        """`tokenizer.decode(ids, skip_special_tokens=True)`, keeping the delimiter tokens."""
        if not self.keep:
            return tokenizer.decode(ids, skip_special_tokens=True)
        drop = self.special - self.keep
        return tokenizer.decode([i for i in ids if i not in drop], skip_special_tokens=False)

    def chain_tokens(self, ids: Sequence[int], opened: bool) -> int | None:
        """Tokens spent on the chain: up to the last closing delimiter; all of them when the chain never
        closed; None when the reply holds no chain (or its delimiters are not single tokens)."""
        last = max((k for k, t in enumerate(ids) if t in self.closing), default=None)
        if last is not None:
            return last + 1
        if opened or any(t in self.opening for t in ids):
            return len(ids)
        return None


def restore_opening(prompt: str, text: str) -> tuple[str, bool]:
    """(reply with the prompt's open delimiter prepended, whether the prompt opened a chain)."""
    opened = chain_opened_by(prompt)
    if opened is None or text.lstrip().startswith(opened):
        return text, opened is not None
    return opened + text, True
