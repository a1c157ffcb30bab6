import numpy as np
import pytest

from medprobe.stats import bootstrap_ci


def test_binary_shortcut_matches_index_resampling():
    """The binomial draw must give the same interval as resampling indices (within MC noise)."""
    values = np.array([1] * 70 + [0] * 30, float)
    low, high = bootstrap_ci(values, seed=0, name="acc", n_resamples=20000)
    rng = np.random.default_rng(1)
    means = values[rng.integers(0, 100, (20000, 100))].mean(axis=1)
    ref_low, ref_high = np.quantile(means, [0.025, 0.975])
    assert low == pytest.approx(ref_low, abs=0.011) and high == pytest.approx(ref_high, abs=0.011)
    assert low < 0.7 < high


def test_seeded_and_named():
    values = np.random.default_rng(3).random(50)
    assert bootstrap_ci(values, 0, "a") == bootstrap_ci(values, 0, "a")
    assert bootstrap_ci(values, 0, "a") != bootstrap_ci(values, 1, "a")
    assert bootstrap_ci(values, 0, "a") != bootstrap_ci(values, 0, "b")


def test_continuous_values_and_edge_cases():
    values = np.linspace(0, 1, 101)
    low, high = bootstrap_ci(values, 0, "recall")
    assert 0.4 < low < 0.5 < high < 0.6
    assert np.isnan(bootstrap_ci(np.array([]), 0, "x")[0])
    assert bootstrap_ci(np.ones(10), 0, "x") == (1.0, 1.0)
