"""Clinical report metrics through `radeval` (github.com/jbdel/RadEval, PyPI radeval 2.2.x), an optional extra:
`pip install 'medprobe[report]'`.

radeval is one interface over F1RadGraph, F1CheXbert, RaTEScore, GREEN, RadCliQ-v1 and BERTScore. It is
imported only when a report preset asks for a clinical metric, and its models are downloaded from the
Hugging Face Hub on the user's machine the first time (GREEN is a 7B model and wants a GPU). Each metric is
computed on its own: one that cannot be (radeval missing, no weights, no network, no GPU memory) yields a
`TextMetric` with `unavailable="not available: ..."` naming the cause and the fix, and the others still run.
Nothing here ever reports a 0 for a metric it did not compute.

Keys (radeval `RadEval(metrics=[name], per_sample=True)` output key -> medprobe metric name):
radgraph / radgraph_partial -> radgraph_f1 (RadGraph-XL, partial reward; the mean of per-study F1),
f1chexbert / f1chexbert_5_micro_f1 -> chexbert_f1 (micro F1 over the 5 CheXpert competition labels, a corpus
statistic; per study, radeval gives label accuracy f1chexbert_sample_acc_5), ratescore, green,
radcliq / radcliq_v1 -> radcliq_v1 (lower is better), bertscore (distilbert-base-uncased, layer 5).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import NamedTuple

from medprobe.textmetrics.result import TextMetric

INSTALL = "pip install 'medprobe[report]'"


class ClinicalSpec(NamedTuple):
    radeval: str  # radeval's metric name
    per_study: str  # the per_sample output key
    corpus: str | None  # the detailed-mode key when the corpus value is not the mean of per-study values
    lower_is_better: bool = False


CLINICAL: dict[str, ClinicalSpec] = {
    "radgraph_f1": ClinicalSpec("radgraph", "radgraph_partial", None),
    "chexbert_f1": ClinicalSpec("f1chexbert", "f1chexbert_sample_acc_5", "f1chexbert_5_micro_f1"),
    "ratescore": ClinicalSpec("ratescore", "ratescore", None),
    "green": ClinicalSpec("green", "green", None),
    "radcliq_v1": ClinicalSpec("radcliq", "radcliq_v1", None, lower_is_better=True),
    "bertscore": ClinicalSpec("bertscore", "bertscore", None),
}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _radeval():
    """The radeval module, or the reason it cannot be imported."""
    try:
        return importlib.import_module("radeval"), None
    except ImportError as exc:
        return None, f"not available: radeval is not installed ({INSTALL}); {_first_line(exc)}"


def clinical(name: str, candidates: Sequence[str], references: Sequence[str]) -> TextMetric:
    """One clinical metric over the corpus (one reference text per study), or why it is not available."""
    spec = CLINICAL[name]
    source = f"radeval {spec.radeval}"
    module, reason = _radeval()
    if module is None:
        return TextMetric(name=name, unavailable=reason, source=source, lower_is_better=spec.lower_is_better)
    source = f"radeval {getattr(module, '__version__', '')} {spec.radeval}".replace("  ", " ")
    if not candidates:
        return TextMetric(name=name, unavailable="not available: no scored studies", source=source)
    try:
        evaluator = module.RadEval(metrics=[spec.radeval], per_sample=True, show_progress=False)
    except Exception as exc:  # noqa: BLE001 - radeval's models raise anything from OSError to CUDA errors
        return TextMetric(name=name, source=source, lower_is_better=spec.lower_is_better,
                          unavailable=f"not available: radeval could not load the {spec.radeval} model "
                          f"({_first_line(exc)}); it downloads weights from the Hugging Face Hub on first use: "
                          "run once with network, or point HF_HOME at a cache that holds them")
    try:
        per = evaluator(refs=list(references), hyps=list(candidates))[spec.per_study]
        values = tuple(float(v) for v in per)
        if spec.corpus is None:
            value = sum(values) / len(values)
        else:
            evaluator.per_sample, evaluator.detailed = False, True  # unrounded corpus statistic
            value = float(evaluator(refs=list(references), hyps=list(candidates))[spec.corpus])
    except Exception as exc:  # noqa: BLE001
        return TextMetric(name=name, source=source, lower_is_better=spec.lower_is_better,
                          unavailable=f"not available: radeval {spec.radeval} failed ({_first_line(exc)})")
    if len(values) != len(candidates):
        return TextMetric(name=name, source=source, lower_is_better=spec.lower_is_better,
                          unavailable=f"not available: radeval {spec.radeval} returned {len(values)} values "
                          f"for {len(candidates)} studies")
    return TextMetric(name=name, value=value, per_study=values, source=source, lower_is_better=spec.lower_is_better)
