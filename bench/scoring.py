"""Rule-scoring speed and memory.

1. Scoring speed: 100k stored records (real VQA-RAD questions and gold answers, varied predictions)
   scored under each preset that scores VQA-RAD (a run leaves the others out); prints records/s, the
   median of --repeat timings, and the ratio to the target: 100k records/s for typical outputs, 200k for
   unique ones (no cache helps). The load average is printed with each figure, and the best timing next to the
   median: the machine may be shared.
2. Memory: `medprobe run` of a 100k-row benchmark end to end (scripted model), peak RSS of that
   process vs the 1 GiB target (images are references, never held).

    python bench/scoring.py --records 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from _common import children_peak_rss_mib, medprobe, write_benchmark

from medprobe import scoring
from medprobe.types import AnswerType, Sample

PREDICTIONS = ["Yes", "no", "Yes, there is a mass.", "No evidence of fracture.", "The image shows the liver.",
               "right lung", "It is an MRI of the brain", "I cannot tell from this image.", "", "B"]


def vqa_rad_rows() -> list[dict]:
    path = resources.files("medprobe") / "data" / "vqa_rad_demo" / "vqa_rad_demo.json"
    return json.loads(path.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=3, help="timings per preset; the median is printed")
    p.add_argument("--skip-run", action="store_true", help="skip the memory measurement (a 100k-row run)")
    a = p.parse_args()
    rows = vqa_rad_rows()
    rng = random.Random(0)
    pairs = []
    for i in range(a.records):
        row = rows[i % len(rows)]
        kind = AnswerType.CLOSED if row["answer_type"].strip() == "CLOSED" else AnswerType.OPEN
        sample = Sample(id=str(i), benchmark="vqa-rad", question=row["question"], answer=row["answer"], answer_type=kind)
        pairs.append((sample, rng.choice(PREDICTIONS + [row["answer"]])))
    # "typical": model outputs repeat (short closed answers); "unique": every output text differs,
    # so no parser cache helps (long free-text answers)
    skipped = [n for n in scoring.names() if not any(scoring.get(n).applies(s) for s, _ in pairs[:200])]
    print(f"presets that do not score VQA-RAD (left out, as a run leaves them out): {', '.join(skipped)}")
    for label, target in (("typical", 100_000), ("unique", 200_000)):
        for name in (n for n in scoring.names() if n not in skipped):
            preset, rates, cpu_rates = scoring.get(name), [], []
            for r in range(a.repeat):
                # unique: every output text differs, in every repetition too (so no cache helps)
                data = pairs if label == "typical" else [(s, f"{t} (finding {i}-{r})") for i, (s, t) in enumerate(pairs)]
                start, cpu = time.perf_counter(), time.process_time()
                for sample, text in data:
                    preset.score(sample, text)
                rates.append(a.records / (time.perf_counter() - start))
                # CPU time too: on a shared machine wall time counts the other jobs' turns
                cpu_rates.append(a.records / max(time.process_time() - cpu, 1e-9))
            rate, cpu_rate = statistics.median(rates), statistics.median(cpu_rates)
            print(f"scoring {label:<7} preset={name:<14} {rate:>10,.0f} records/s  ratio to {target // 1000}k/s "
                  f"{rate / target:.2f}  per CPU-second {cpu_rate:>10,.0f} ratio {cpu_rate / target:.2f}  "
                  f"(best of {a.repeat} {max(rates):,.0f}; load average {os.getloadavg()[0]:.2f})")
    if a.skip_run:
        return
    with tempfile.TemporaryDirectory() as tmp:
        bench = write_benchmark(Path(tmp), a.records)
        wall, _ = medprobe("run", str(bench), "--model", "scripted/constant:yes", "--out", str(Path(tmp) / "run"))
    rss = children_peak_rss_mib()
    print(f"run of a {a.records}-row benchmark: {wall:.1f} s, peak RSS {rss:.0f} MiB, ratio to 1 GiB limit {rss / 1024:.2f}")


if __name__ == "__main__":
    main()
