"""Scripted answers: for tests, for demos, and for scoring outputs produced elsewhere.

`--model scripted/PATH` answers from a JSONL/JSON/CSV file with an id column (`id` or
`sample_id`) and a text column (`text`, `prediction` or `answer`); `scripted/constant:TEXT`
always answers TEXT; `scripted/fn:NAME` calls a function registered with `register_function`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from medprobe.backends._base import BackendConfig, PermanentError
from medprobe.types import Generation, Request

ScriptFn = Callable[[Request], "str | Generation"]
_FUNCTIONS: dict[str, ScriptFn] = {}
ID_FIELDS = ("id", "sample_id", "question_id")
TEXT_FIELDS = ("text", "prediction", "answer")


def register_function(name: str, fn: ScriptFn) -> None:
    """Make `scripted/fn:NAME` answer with fn(request)."""
    _FUNCTIONS[name] = fn


def _read_answers(path: Path) -> dict[str, str]:
    from medprobe.benchmarks._formats import read_file

    if not path.is_file():
        raise ValueError(f"scripted answers file not found: {path}. Use scripted/PATH.jsonl, scripted/constant:TEXT or scripted/fn:NAME.")
    answers = {}
    for raw in read_file(path):
        row = raw.data
        if row is None:
            raise ValueError(f"scripted answers {raw.where}: {raw.error}")
        id_field = next((f for f in ID_FIELDS if f in row), None)
        text_field = next((f for f in TEXT_FIELDS if f in row), None)
        if id_field is None or text_field is None:
            raise ValueError(f"scripted answers {raw.where} needs an id field {ID_FIELDS} and a text field {TEXT_FIELDS}.")
        answers[str(row[id_field])] = str(row[text_field])
    return answers


class ScriptedBackend:
    name = "scripted"
    batch_size = 512

    def __init__(self, config: BackendConfig):
        spec = config.model
        self.fn: ScriptFn
        if spec.startswith("constant:"):
            constant = spec.removeprefix("constant:")
            self.fn = lambda _request: constant
        elif spec.startswith("fn:"):
            name = spec.removeprefix("fn:")
            if name not in _FUNCTIONS:
                raise ValueError(f"No scripted function {name!r}; register it with medprobe.backends.scripted.register_function.")
            self.fn = _FUNCTIONS[name]
        else:
            answers = _read_answers(Path(spec))
            self.fn = lambda request: _lookup(answers, request)

    async def generate(self, requests: Sequence[Request]) -> list[Generation]:
        out = []
        for request in requests:
            start = time.perf_counter()
            result = self.fn(request)
            if isinstance(result, Generation):
                out.append(result)
            else:
                out.append(Generation(text=result, latency_s=time.perf_counter() - start))
        return out

    async def aclose(self) -> None:
        return None


def _lookup(answers: dict[str, str], request: Request) -> str:
    try:
        return answers[request.sample_id]
    except KeyError:
        raise PermanentError(f"no scripted answer for sample {request.sample_id}") from None
