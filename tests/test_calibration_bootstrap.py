"""The calibration bootstrap computes every metric on all resamples at once: each row must equal the
metric called on that row alone (ties, one-class rows and tiny samples included)."""

from __future__ import annotations

import numpy as np
import pytest

from medprobe import calibration_metrics as cm


@pytest.mark.parametrize("n", [1, 2, 7, 65, 200])
@pytest.mark.parametrize("kind", ["ties", "continuous", "one_class"])
def test_every_resampled_row_equals_the_metric_on_that_row(n, kind):
    rng = np.random.default_rng(n)
    rows = 40
    conf = rng.integers(0, 6, (rows, n)) / 5 if kind == "ties" else rng.random((rows, n))
    correct = np.ones((rows, n)) if kind == "one_class" else rng.integers(0, 2, (rows, n)).astype(float)
    got = cm.resampled_metrics(conf, correct)
    for name, fn in cm.METRICS.items():
        want = np.array([fn(c, y) for c, y in zip(conf, correct, strict=True)])
        np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-12, equal_nan=True, err_msg=name)


def test_bootstrap_intervals_are_those_of_one_resample_at_a_time():
    rng = np.random.default_rng(3)
    conf, correct = rng.integers(0, 11, 50) / 10, rng.integers(0, 2, 50)
    got = cm.bootstrap_all(conf, correct, np.random.default_rng(9), 200)
    draws = np.random.default_rng(9)
    values = {name: [] for name in cm.METRICS}
    for _ in range(200):
        idx = draws.integers(0, 50, 50)
        for name, fn in cm.METRICS.items():
            values[name].append(fn(conf[idx], correct[idx]))
    for name, v in values.items():
        arr = np.array(v)
        assert got[name] == pytest.approx(tuple(np.quantile(arr[~np.isnan(arr)], [0.025, 0.975])), abs=1e-12), name
