"""Work done while requests are in flight, so that `medprobe run` ends soon after its last answer.

The send phase mostly waits on the network (bench/throughput.py: the client uses well under a core).
Two things use that time:

* `ScoringStore` is the run's RunStore that also scores each answer under every preset as it is
  stored, into a `ScoreCache`. The stored records stay the source of truth: the end of the run reads
  them back (`store.read_records(parsed=store.written)`, which reuses a generation only when the stored
  bytes are the ones written) and takes a cached score only for that very generation and sample.
* `warm_up` imports, in a background thread, the modules only the end of a run needs (numpy, results,
  views), which `medprobe.pipeline` leaves out of start-up.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from medprobe import scoring
from medprobe.scoring._base import Preset
from medprobe.store import RunStore
from medprobe.types import Generation, Record, Sample, Score

#: what `pipeline.conclude` imports; `warm_up` imports them while the first requests are in flight. numpy
#: imports numpy.random (bootstrap draws) and numpy.ma (np.unique of strings) on first use: ~0.25 s at the end
CONCLUDE_MODULES = ("numpy", "numpy.random", "numpy.ma", "medprobe.results", "medprobe.summary",
                    "medprobe.judge_report", "medprobe.probes")


def warm_up() -> threading.Thread:
    """Import the end-of-run modules and every preset in a daemon thread (a failure is left for the end of
    the run to raise where it always did)."""

    def work() -> None:
        try:
            for name in CONCLUDE_MODULES:
                importlib.import_module(name)
            for name in scoring.names():
                scoring.get(name)
        except Exception:  # noqa: BLE001 - the same import runs again at the end, and raises there
            pass

    thread = threading.Thread(target=work, name="medprobe-warm-up", daemon=True)
    thread.start()
    return thread


class ScoreCache:
    """Scores by (preset, sample id, final request key), each kept with the sample and generation it scored."""

    def __init__(self) -> None:
        self._scores: dict[tuple[str, str, str], tuple[Sample, Generation, Score]] = {}

    def __len__(self) -> int:
        return len(self._scores)

    def add(self, preset: Preset, sample: Sample, key: str, generation: Generation) -> None:
        self._scores[(preset.name, sample.id, key)] = (sample, generation, preset.score_generation(sample, generation))

    def score(self, preset: Preset, record: Record) -> Score:
        """`preset.score_generation(record.sample, record.final)`, from the cache when it scored exactly these."""
        if record.keys:
            hit = self._scores.get((preset.name, record.sample.id, record.keys[-1]))
            if hit is not None and hit[0] is record.sample and hit[1] is record.final:
                return hit[2]
        return preset.score_generation(record.sample, record.final)


class ScoringStore(RunStore):
    """A writable RunStore that scores every answer to a sample's last turn as it is stored."""

    def __init__(self, path: Path | str, samples: Sequence[Sample], turns: int, cache: ScoreCache):
        super().__init__(path)
        self._last_turn = turns - 1
        self._by_id = {s.id: s for s in samples if not s.is_variant}  # probes score their variants themselves
        self._waiting: dict[str, list[Sample]] = {}  # final-turn key -> samples asking it
        self._cache = cache
        self._presets: list[Preset] | None = None

    def put_plan(self, entries: Iterable[tuple[str, int, str]]) -> None:
        entries = list(entries)
        super().put_plan(entries)
        for sample_id, turn, key in entries:
            if turn == self._last_turn and (sample := self._by_id.get(sample_id)) is not None:
                self._waiting.setdefault(key, []).append(sample)

    def put_generation(self, key: str, generation: Generation, request: dict | None = None) -> None:
        super().put_generation(key, generation, request)
        if not generation.ok or key not in self._waiting or self.written.get(key, (None, None))[1] is not generation:
            return
        if self._presets is None:
            self._presets = [scoring.get(name) for name in scoring.names()]
        try:
            for sample in self._waiting[key]:
                for preset in self._presets:
                    if preset.applies(sample):
                        self._cache.add(preset, sample, key, generation)
        except Exception:  # noqa: BLE001 - scoring must never stop sending; the end of the run re-scores and raises
            pass
