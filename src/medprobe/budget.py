"""Hosted-API budgets: token estimates before sending, token totals from replies' `usage`, prices, and
the --max-cost guard that stops a run before it spends more than the cap.

Price file (--prices FILE, JSON or TOML): a table of models, each with its input and output price in
US dollars per million tokens. A model is looked up by its full --model spec first, then by its name:

    {"gpt-4o": {"input": 2.50, "output": 10.00}, "openai/gpt-4o-mini": {"input": 0.15, "output": 0.60}}

    ["gpt-4o"]
    input = 2.50
    output = 10.00

Reasoning tokens are billed as output: servers count them inside `completion_tokens`.
"""

from __future__ import annotations

import asyncio
import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError

from medprobe.manifest import TokenTotals, UsageReport
from medprobe.types import Frozen, Generation, Record, Request

#: OpenAI's rule of thumb for English text ("a token is about 4 characters")
CHARS_PER_TOKEN = 4
#: an image's prompt tokens before any reply has said: above OpenAI's high-detail cost of a 768 x 1536
#: image (85 + 170 x 6 tiles = 1,105) and Anthropic's ~1,600 cap, so a first estimate errs high
IMAGE_TOKENS = 1600
#: per-message overhead (role and separators, as in OpenAI's token-counting cookbook)
MESSAGE_TOKENS = 4
#: the learned actual/estimate ratio is applied with this margin, so a cost estimate stays on the high side
MARGIN = 1.1
FORMAT = '{"MODEL": {"input": USD per million input tokens, "output": USD per million output tokens}}'


class Price(Frozen):
    """A model's price in US dollars per million tokens."""

    input: float = Field(ge=0, description="USD per million prompt (input) tokens")
    output: float = Field(ge=0, description="USD per million completion (output) tokens, reasoning included")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


def load_prices(path: Path | str) -> dict[str, Price]:
    """The price table of a JSON or TOML file (format in this module's docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read --prices {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--prices {path} does not parse ({exc}); expected {FORMAT}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"--prices {path} holds no price table; expected {FORMAT}")
    table = {}
    for model, entry in data.items():
        try:
            table[str(model)] = Price.model_validate(entry)
        except ValidationError as exc:
            where = ".".join([str(model), *(str(p) for p in exc.errors()[0]["loc"])])
            raise ValueError(f"--prices {path}: {where}: {exc.errors()[0]['msg']}; expected {FORMAT}") from None
    return table


def price_for(prices: Mapping[str, Price], model: str) -> Price:
    """The price of `model` (PROVIDER/NAME): its full spec first, then its NAME."""
    name = model.partition("/")[2] or model
    for key in (model, name):
        if key in prices:
            return prices[key]
    known = ", ".join(sorted(prices)[:10])
    raise ValueError(f"--prices has no price for {name!r} (it lists: {known}); add "
                     f'"{name}": {{"input": USD per million tokens, "output": USD per million tokens}}')  # fmt: skip


class Estimator:
    """Tokens a request will use, before it is sent: its text at CHARS_PER_TOKEN, IMAGE_TOKENS per image,
    scaled by the highest actual/estimate ratio replies have reported; the completion at `max_tokens`,
    the most the server may return."""

    def __init__(self) -> None:
        self.ratio: float | None = None

    def prompt(self, requests: Sequence[Request]) -> int:
        scale = 1.0 if self.ratio is None else self.ratio * MARGIN
        return sum(math.ceil(_base(r) * scale) for r in requests)

    def tokens(self, requests: Sequence[Request]) -> int:
        return self.prompt(requests) + sum(r.config.max_tokens for r in requests)

    def learn(self, requests: Sequence[Request], generations: Sequence[Generation]) -> None:
        for request, gen in zip(requests, generations, strict=False):
            if gen.usage is not None and gen.usage.prompt_tokens:
                ratio = gen.usage.prompt_tokens / max(1, _base(request))
                self.ratio = ratio if self.ratio is None else max(self.ratio, ratio)


def _base(request: Request) -> int:
    chars = images = 0
    for message in request.messages:
        for part in message.content:
            if part.type == "text":
                chars += len(part.text or "")
            else:
                images += 1
    return math.ceil(chars / CHARS_PER_TOKEN) + IMAGE_TOKENS * images + MESSAGE_TOKENS * len(request.messages)


class Spend:
    """--max-cost: every request reserves its conservative cost before it is sent and settles at its
    reply's usage. Requests that would take spent + reserved past the cap wait for the requests in
    flight to settle; when none is left, what still does not fit is refused and the run stops."""

    def __init__(self, price: Price, cap: float, estimator: Estimator):
        self.price, self.cap, self.estimator = price, cap, estimator
        self.spent = 0.0
        self.reserved = 0.0
        self.refused: float | None = None  # the estimate of the first request refused
        self._settled = asyncio.Event()

    def estimate(self, requests: Sequence[Request]) -> float:
        return self.price.cost(self.estimator.prompt(requests), sum(r.config.max_tokens for r in requests))

    async def admit(self, requests: Sequence[Request]) -> tuple[int, float]:
        """(n, reservation): the first n of `requests` may be sent (a local backend's batch may be cut
        short); n == 0 when not even the first fits, with nothing left in flight to free room."""
        costs = [self.estimate([r]) for r in requests]
        while self.refused is None:  # once one is refused, the run stops: nothing more is admitted
            room, n, total = self.cap - self.spent - self.reserved, 0, 0.0
            while n < len(costs) and total + costs[n] <= room:
                total += costs[n]
                n += 1
            if n == len(costs) or self.reserved <= 0:
                break
            self._settled.clear()
            await self._settled.wait()
        else:
            return 0, 0.0
        if n < len(costs):
            self.refused = costs[n]
        self.reserved += total
        return n, total

    def settle(self, reservation: float, generations: Sequence[Generation]) -> None:
        """Replace the reservation by the actual cost: the reply's usage at the price; a reply without
        usage counts at its reservation; a failed request (no reply) at nothing."""
        self.reserved = max(0.0, self.reserved - reservation)
        share = reservation / max(1, len(generations))
        for gen in generations:
            if gen.usage is not None and gen.usage.prompt_tokens is not None:
                self.spent += self.price.cost(gen.usage.prompt_tokens, gen.usage.completion_tokens or 0)
            elif gen.ok:
                self.spent += share
        self._settled.set()

    def reason(self) -> str:
        return (f"budget: spent ${self.spent:.4f} of --max-cost ${self.cap:.4f}; the next request (up to "
                f"${self.refused or 0:.4f}) could exceed it. Raise --max-cost and re-run the same command to "
                "continue; the answers so far are kept")  # fmt: skip


@dataclass
class Tally:
    """Running token totals (mutable: it is added to once per reply)."""

    requests: int = 0
    with_usage: int = 0
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0

    def add(self, gen: Generation) -> None:
        self.requests += 1
        usage = gen.usage
        if usage is None or (usage.prompt_tokens is None and usage.completion_tokens is None):
            return
        self.with_usage += 1
        self.prompt += usage.prompt_tokens or 0
        self.completion += usage.completion_tokens or 0
        self.reasoning += usage.reasoning_tokens or 0

    def totals(self, price: Price | None) -> TokenTotals:
        cost = price.cost(self.prompt, self.completion) if price is not None else None
        return TokenTotals(requests=self.requests, with_usage=self.with_usage, prompt_tokens=self.prompt,
                           completion_tokens=self.completion, reasoning_tokens=self.reasoning, cost_usd=cost)  # fmt: skip


def stored_tally(records: Iterable[Record]) -> Tally:
    """Every generation stored for the records, each once (identical requests share one)."""
    tally, seen = Tally(), set()
    for record in records:
        for key, gen in zip(record.keys, record.generations, strict=False):
            if key in seen or gen.attempts == 0:  # attempts 0: never sent (a bad image found while planning)
                continue
            seen.add(key)
            tally.add(gen)
    return tally


def usage_report(records: Iterable[Record], execution: Tally, price: Price | None,
                 max_cost: float | None = None) -> UsageReport:  # fmt: skip
    """Manifest.usage: the run folder's stored generations and this execution's sent requests."""
    return UsageReport(stored=stored_tally(records).totals(price), execution=execution.totals(price),
                       price_input=price.input if price else None, price_output=price.output if price else None,
                       max_cost_usd=max_cost)  # fmt: skip
