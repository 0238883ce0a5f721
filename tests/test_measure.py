"""Measurements, statistics and budget verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import BudgetExceeded, MeasurementError
from harness.measure import Measurement, check, stats_of
from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets


def test_stats_match_numpy_definitions():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    s = stats_of(values)
    assert (s.n, s.min, s.max) == (8, 1.0, 9.0)
    assert s.mean == pytest.approx(np.mean(values))
    assert s.p50 == pytest.approx(3.5) and s.p95 == pytest.approx(np.percentile(values, 95))
    assert s.std == pytest.approx(np.std(values, ddof=1))


def test_empty_or_nan_samples_cannot_be_summarised():
    with pytest.raises(MeasurementError, match="no samples"):
        Measurement("connect_time_s", "s").stats()
    with pytest.raises(MeasurementError, match="not finite"):
        stats_of([1.0, float("nan")])


def test_verdict_passes_and_fails_with_measured_value_and_limit():
    budget = load_budgets(DEFAULT_PROFILES_DIR / "budgets.yaml")["fire-hdx"]
    ok = Measurement("connect_time_s", "s")
    for v in (5.0, 7.0, 9.0, 8.0):
        ok.add(v, uncertainty=0.033)
    verdict = check(ok, budget)
    assert verdict.passed
    verdict.raise_if_failed()

    slow = Measurement("connect_time_s", "s")
    for v in (5.0, 7.0, 9.0, 16.5):
        slow.add(v, uncertainty=0.033)
    verdict = check(slow, budget)
    assert not verdict.passed
    with pytest.raises(BudgetExceeded) as err:
        verdict.raise_if_failed()
    assert isinstance(err.value, AssertionError)
    msg = str(err.value)
    assert "connect_time_s p95 = 15.37 s (limit <= 15 s): OVER BUDGET" in msg
    assert "connect_time_s mean = 9.375 s (limit <= 9 s): OVER BUDGET" in msg
    assert "uncertainty +/- 0.033" in msg
    assert verdict.to_dict()["passed"] is False


def test_a_limit_broken_only_within_the_uncertainty_is_inconclusive_not_a_product_failure():
    budget = load_budgets(DEFAULT_PROFILES_DIR / "budgets.yaml")["fire-hdx"]
    m = Measurement("connect_time_s", "s")
    for v in (8.0, 9.0, 10.0):
        m.add(v, uncertainty=1.5)  # mean 9.0 ok; p95 9.9 ok; now push the mean just over
    m.add(9.6, uncertainty=1.5)
    verdict = check(m, budget)
    assert not verdict.passed and verdict.inconclusive
    with pytest.raises(
        MeasurementError, match=r"inconclusive: .*INCONCLUSIVE \(within uncertainty\)"
    ):
        verdict.raise_if_failed()
