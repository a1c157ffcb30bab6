"""The report metric sets of ReXrank, MedEvalKit and MultiMedEval, each with the rules of its own script.

Each preset lists its metrics (`metrics`); one that cannot be computed on this machine (radeval or a
model missing, an optional scorer package absent) is a row marked "not available: ...", never a 0.
Clinical metrics come through radeval (medprobe.textmetrics.clinical, extra `medprobe[report]`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from medprobe.scoring.report import Column, ReportPreset, mean_column
from medprobe.textmetrics import clinical, prep_tokens
from medprobe.textmetrics.sentence import nltk_bleu, tm_bleu, tm_rouge
from medprobe.types import AnswerType


def clinical_column(name: str, cands: Sequence[str], refs: Sequence[str], zero_invalid: bool = False) -> Column:
    m = clinical.clinical(name, cands, refs)
    if not m.ok:
        return Column(name, m.source, unavailable=m.unavailable)
    if clinical.CLINICAL[name].corpus is not None:
        return Column(name, m.source, value=m.value, per_study=np.array(m.per_study))
    return mean_column(name, m.source, np.array(m.per_study), zero_invalid)


def missing(name: str, why: str) -> Column:
    return Column(name, "", unavailable=f"not available: {why}")


def _optional(module: str, install: str):
    try:
        return importlib.import_module(module), None
    except ImportError:
        return None, f"needs the `{module}` package ({install})"


class ReXrank(ReportPreset):
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.REPORT: "bleu2"}
    name = "rexrank"
    on_request = True  # its clinical metrics load models (radeval): `--preset` asks for it
    description = ("ReXrank leaderboard metrics: BLEU-2, BERTScore, SembScore, RadGraph F1, RadCliQ-v1, RaTEScore, "
                   "GREEN (clinical ones via radeval)")
    reproduces = ("ReXrank (Zhang et al. 2024, arXiv:2411.15122; rajpurkarlab.github.io/ReXrank), metrics from "
                  "CXR-Report-Metric run_eval.py: BLEU-2 per report (fast_bleu, smoothing 1, prep_reports tokens), "
                  "averaged over studies")
    metrics = ("bleu2", "bertscore", "semb_score", "radgraph_f1", "radcliq_v1", "ratescore", "green")

    def study_values(self, candidate: str, reference: str) -> dict[str, float]:
        return {"bleu2": nltk_bleu(prep_tokens(candidate), [prep_tokens(reference)], (0.5, 0.5), smoothing=1)}

    def columns(self, candidates: Sequence[str], references: Sequence[str], invalid: int) -> list[Column]:
        bleu2 = [self.study_values(c, r)["bleu2"] for c, r in zip(candidates, references)]
        cols = [mean_column("bleu2", "CXR-Report-Metric add_bleu_col (fast_bleu BLEU-2)", np.array(bleu2))]
        for name in self.metrics[1:]:
            if name == "semb_score":
                cols.append(missing(name, "SembScore (CheXbert embedding cosine, CXR-Report-Metric) is not in "
                                    "radeval; run CXR-Report-Metric for it"))
            else:
                cols.append(clinical_column(name, candidates, references))
        return cols



class MedEvalKitReport(ReportPreset):
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.REPORT: "bleu4"}
    name = "medevalkit-report"
    on_request = True  # its clinical metrics load models (radeval): `--preset` asks for it
    description = ("MedEvalKit report metrics: sentence BLEU-1..4 (NLTK), ROUGE-1/2/L (rouge), METEOR (NLTK), "
                   "CIDEr (cidereval), RaTEScore, GREEN; means over every study, an invalid report counting 0")
    reproduces = ("MedEvalKit utils/Metrics_Compute/cal_report_metrics.py (github.com/alibaba-damo-academy/"
                  "MedEvalKit): prep_reports tokens, sentence_bleu without smoothing, sums divided by len(datas)")
    metrics = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge1", "rouge2", "rougeL", "meteor", "cider", "ratescore",
               "green")
    _WEIGHTS: ClassVar[dict[str, tuple[float, ...]]] = {
        "bleu1": (1.0,), "bleu2": (0.5, 0.5), "bleu3": (1 / 3, 1 / 3, 1 / 3), "bleu4": (0.25,) * 4}

    def study_values(self, candidate: str, reference: str) -> dict[str, float]:
        # MedEvalKit's gold is f"Findings: {findings} Impression: {impression}."; medprobe scores the
        # benchmark's reference section as given (the loader states which section it is)
        h, r = prep_tokens(candidate.lower()), [prep_tokens(reference.lower())]
        return {name: nltk_bleu(h, r, w, smoothing=0) for name, w in self._WEIGHTS.items()}

    def columns(self, candidates: Sequence[str], references: Sequence[str], invalid: int) -> list[Column]:
        per = [self.study_values(c, r) for c, r in zip(candidates, references)]
        source = "MedEvalKit cal_report_metrics.py (NLTK sentence_bleu)"
        cols = [mean_column(k, source, np.array([p[k] for p in per]), zero_invalid=True) for k in self._WEIGHTS]
        rouge, why = _optional("rouge", "pip install rouge")
        for key in ("rouge1", "rouge2", "rougeL"):
            if rouge is None:
                cols.append(missing(key, why))
                continue
            name = {"rouge1": "rouge-1", "rouge2": "rouge-2", "rougeL": "rouge-l"}[key]
            scorer = rouge.Rouge()
            values = [scorer.get_scores(c.lower(), r.lower())[0][name]["f"] for c, r in zip(candidates, references)]
            cols.append(mean_column(key, "rouge (pltrdy) Rouge().get_scores", np.array(values), zero_invalid=True))
        cols.append(missing("meteor", "MedEvalKit's METEOR is NLTK single_meteor_score, which needs nltk and its "
                            "WordNet data (pip install nltk; python -m nltk.downloader wordnet); not wired here"))
        cols.append(missing("cider", "MedEvalKit's CIDEr is cidereval.cider (pip install cidereval); not wired here"))
        cols += [clinical_column(name, candidates, references) for name in ("ratescore", "green")]
        return cols



class MultiMedEvalReport(ReportPreset):
    value_names: ClassVar[dict[AnswerType, str]] = {AnswerType.REPORT: "rougeL"}
    name = "multimedeval-report"
    on_request = True  # its clinical metrics load models (radeval): `--preset` asks for it
    description = ("MultiMedEval report metrics: per-report BLEU-1/4 and ROUGE-L/1 (torchmetrics), F1-RadGraph, "
                   "BERTScore; CheXbert similarity and RadCliQ-v0 not available")
    reproduces = ("MultiMedEval taskFamilies.py ReportComparison (github.com/corentin-ryr/MultiMedEval): "
                  "torchmetrics BLEUScore/ROUGEScore per report, averaged; an empty reply becomes 'Invalid Response'")
    metrics = ("bleu1", "bleu4", "rougeL", "rouge1", "radgraph_f1", "bertscore", "chexbert_similarity", "radcliq_v0",
               "meteor")

    def study_values(self, candidate: str, reference: str) -> dict[str, float]:
        return {"bleu1": tm_bleu(candidate, reference, 1), "bleu4": tm_bleu(candidate, reference, 4),
                "rougeL": tm_rouge(candidate, reference, "rougeL"), "rouge1": tm_rouge(candidate, reference, "rouge1")}

    def columns(self, candidates: Sequence[str], references: Sequence[str], invalid: int) -> list[Column]:
        per = [self.study_values(c, r) for c, r in zip(candidates, references)]
        source = "MultiMedEval ReportComparison (torchmetrics)"
        cols = [mean_column(k, source, np.array([p[k] for p in per])) for k in ("bleu1", "bleu4", "rougeL", "rouge1")]
        cols += [clinical_column(name, candidates, references) for name in ("radgraph_f1", "bertscore")]
        cols.append(missing("chexbert_similarity", "MultiMedEval's CheXbert vector similarity is not in radeval"))
        cols.append(missing("radcliq_v0", "MultiMedEval's RadCliQ-v0 is not in radeval (it has RadCliQ-v1)"))
        cols.append(missing("meteor", "MultiMedEval's METEOR is NLTK meteor_score with WordNet data; not wired here"))
        return cols

