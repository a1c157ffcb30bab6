"""The radeval adapter's contract: lazy import, per-metric results, and "not available" instead of 0."""

from __future__ import annotations

import sys
import types

import pytest

from medprobe.textmetrics import clinical

HYPS = ["No acute process.", "Small left effusion."]
REFS = ["No acute cardiopulmonary process.", "Left pleural effusion."]
#: recorded per_sample outputs (radeval 2.2.1 key names)
RECORDED = {"radgraph": {"radgraph_simple": [0.5, 0.4], "radgraph_partial": [0.6, 0.2], "radgraph_complete": [0.1, 0.0]},
            "ratescore": {"ratescore": [0.7, 0.5]}, "bertscore": {"bertscore": [0.9, 0.8]},
            "radcliq": {"radcliq_v1": [1.5, 2.5]}, "green": {"green": [1.0, 0.5]},
            "f1chexbert": {"f1chexbert_sample_acc_5": [1.0, 0.8]}}
DETAILED = {"f1chexbert": {"f1chexbert_5_micro_f1": 0.625}}


def fake_radeval(broken: set[str] = frozenset()) -> types.ModuleType:
    module = types.ModuleType("radeval")
    module.__version__ = "2.2.1"

    class RadEval:
        def __init__(self, metrics, per_sample=False, show_progress=True, **_):
            (self.name,) = metrics
            if self.name in broken:
                raise OSError("We couldn't connect to 'https://huggingface.co' to load this model")
            self.per_sample, self.detailed = per_sample, False

        def __call__(self, refs, hyps):
            assert refs == REFS and hyps == HYPS
            return RECORDED[self.name] if self.per_sample else DETAILED[self.name]

    module.RadEval = RadEval
    return module


@pytest.fixture
def radeval(monkeypatch):
    def install(broken=frozenset()):
        monkeypatch.setitem(sys.modules, "radeval", fake_radeval(set(broken)))
    return install


def test_each_metric_from_recorded_outputs(radeval):
    radeval()
    radgraph = clinical.clinical("radgraph_f1", HYPS, REFS)
    assert radgraph.ok and radgraph.per_study == (0.6, 0.2) and radgraph.value == pytest.approx(0.4)
    assert clinical.clinical("radcliq_v1", HYPS, REFS).lower_is_better
    chexbert = clinical.clinical("chexbert_f1", HYPS, REFS)
    assert chexbert.value == 0.625 and chexbert.per_study == (1.0, 0.8)  # corpus micro F1, not the mean
    assert "radeval 2.2.1" in clinical.clinical("green", HYPS, REFS).source


def test_a_metric_whose_model_cannot_load_is_not_available_and_the_others_run(radeval):
    radeval(broken={"green"})
    green = clinical.clinical("green", HYPS, REFS)
    assert not green.ok and green.value is None
    assert green.unavailable.startswith("not available:") and "huggingface" in green.unavailable.lower()
    assert "HF_HOME" in green.unavailable
    assert clinical.clinical("ratescore", HYPS, REFS).value == pytest.approx(0.6)


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "radeval", None)  # import radeval raises ImportError
    for name in clinical.CLINICAL:
        m = clinical.clinical(name, HYPS, REFS)
        assert m.value is None and "pip install 'medprobe[report]'" in m.unavailable


def test_radeval_is_imported_lazily():
    import subprocess

    code = ("import sys, medprobe.textmetrics.clinical, medprobe.scoring.report_sets; "
            "print('radeval' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
