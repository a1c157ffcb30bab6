"""`medprobe compare`: exact McNemar equals scipy's exact binomial test; the paired bootstrap interval
contains the observed difference and is narrower than the unpaired one on correlated data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from runfolders import closed_samples, make_run
from scipy.stats import binomtest
from typer.testing import CliRunner

from medprobe.cli import app
from medprobe.compare import compare, mcnemar_exact, paired_bootstrap, unpaired_bootstrap

# 40 items, gold "yes": both right 20, A only 9, B only 3, both not 8.
# B's "not correct" answers include invalid ones ("maybe"), which count as not correct.
PATTERN = [(1, 1)] * 20 + [(1, 0)] * 9 + [(0, 1)] * 3 + [(0, 0)] * 8


def _reply(ok: int, i: int, invalid_when_wrong: bool) -> str:
    if ok:
        return "Yes."
    return "maybe" if invalid_when_wrong and i % 2 else "No."


@pytest.fixture
def runs(tmp_path):
    samples = closed_samples(len(PATTERN))
    a = make_run(tmp_path / "a", samples, [_reply(x, i, False) for i, (x, _) in enumerate(PATTERN)], model="a")
    b = make_run(tmp_path / "b", samples, [_reply(y, i, True) for i, (_, y) in enumerate(PATTERN)], model="b")
    return a, b


def test_mcnemar_equals_scipy_exact_binomial_test(runs):
    result = compare(*runs)
    assert (result.n, result.b, result.c, result.both_correct, result.both_wrong) == (40, 9, 3, 20, 8)
    assert result.mcnemar_p == pytest.approx(binomtest(9, 12, 0.5).pvalue, rel=1e-12)
    assert result.accuracy_a == pytest.approx(29 / 40) and result.accuracy_b == pytest.approx(23 / 40)
    assert result.difference == pytest.approx(6 / 40)
    assert result.preset == "strict" and "invalid answers count as not correct" in result.rule


@pytest.mark.parametrize("b, c", [(0, 0), (5, 5), (0, 7), (13, 2), (1, 30), (60, 45)])
def test_mcnemar_formula_matches_scipy(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_paired_interval_contains_difference_and_is_narrower_than_unpaired(runs):
    result = compare(*runs)
    assert result.paired_ci.low <= result.difference <= result.paired_ci.high
    paired = result.paired_ci.high - result.paired_ci.low
    assert paired < result.unpaired_ci.high - result.unpaired_ci.low
    assert compare(*runs) == result  # seeded


def test_paired_bootstrap_on_strongly_correlated_data():
    rng = np.random.default_rng(0)
    a = (rng.random(500) < 0.7).astype(float)
    b = a.copy()
    flip = rng.choice(500, 30, replace=False)
    b[flip] = 1 - b[flip]
    lo, hi = paired_bootstrap(a, b, 0, "x")
    ulo, uhi = unpaired_bootstrap(a, b, 0, "x")
    assert lo <= a.mean() - b.mean() <= hi and (hi - lo) < 0.5 * (uhi - ulo)


def test_errors_and_items_only_in_one_run_are_left_out(tmp_path):
    samples = closed_samples(6)
    a = make_run(tmp_path / "a", samples, ["yes", "yes", None, "no", "yes", "yes"], model="a")
    b = make_run(tmp_path / "b", samples[:5], ["yes", "no", "yes", "no", "no"], model="b")
    result = compare(a, b)
    assert (result.n, result.errors_left_out, result.only_a, result.only_b) == (4, 1, 1, 0)
    assert (result.b, result.c) == (2, 0)


def test_refuses_different_benchmarks_splits_and_disjoint_items(tmp_path):
    a = make_run(tmp_path / "a", closed_samples(3), ["yes"] * 3)
    other = make_run(tmp_path / "o", closed_samples(3, benchmark="other"), ["yes"] * 3)
    val = make_run(tmp_path / "v", closed_samples(3, split="val"), ["yes"] * 3)
    with pytest.raises(ValueError, match="different benchmarks or splits"):
        compare(a, other)
    with pytest.raises(ValueError, match="different benchmarks or splits"):
        compare(a, val)
    disjoint = [s.model_copy(update={"id": "x" + s.id}) for s in closed_samples(3)]
    d = make_run(tmp_path / "d", disjoint, ["yes"] * 3)
    with pytest.raises(ValueError, match="share no items"):
        compare(a, d)
    result = CliRunner().invoke(app, ["compare", str(a), str(other)])
    assert result.exit_code == 2 and "different benchmarks" in result.output


def test_cli_table_and_json(runs):
    out = CliRunner().invoke(app, ["compare", str(runs[0]), str(runs[1])])
    assert out.exit_code == 0, out.output
    assert "McNemar p" in out.output and "b = 9" in out.output and "paired" in out.output
    data = json.loads(CliRunner().invoke(app, ["compare", str(runs[0]), str(runs[1]), "--json"]).stdout)
    assert data["b"] == 9 and data["c"] == 3 and data["mcnemar_p"] == pytest.approx(binomtest(9, 12).pvalue)
    other = json.loads(CliRunner().invoke(app, ["compare", *map(str, runs), "--json", "--preset", "llava-med"]).stdout)
    assert other["preset"] == "llava-med"


def _strict_json(text: str):
    """json.loads that refuses NaN and Infinity (Python's json accepts them; JSON does not)."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_nothing_to_compare_is_valid_json_and_exits_2(tmp_path):
    samples = closed_samples(3)
    a = make_run(tmp_path / "a", samples, ["yes", "no", "yes"], model="a")
    b = make_run(tmp_path / "b", samples, [None, None, None], model="b")  # every request failed
    done = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    assert done.exit_code == 2  # before: exit 0 and NaN in the output
    data = _strict_json(done.stdout)
    assert data["n"] == 0 and data["errors_left_out"] == 3
    assert data["accuracy_a"] is None and data["difference"] is None and data["paired_ci"] == {"low": None, "high": None}
    assert "no item answered in both" in done.stderr and "3 shared item(s) with a failed request" in done.stderr
    table = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert table.exit_code == 2 and "n/a" in table.stdout


def test_json_of_a_comparison_is_strict_json(runs):
    done = CliRunner().invoke(app, ["compare", *map(str, runs), "--json"])
    assert done.exit_code == 0 and _strict_json(done.stdout)["n"] == 40
