"""RemoteClock and the 32-bit unwrap: pure arithmetic against known truths."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.instruments.clock import WRAP_US, RemoteClock, SyncPoint, unwrap_us


@pytest.mark.parametrize(
    ("raw", "near", "expected"),
    [
        (5, 7.0, 5),
        (-5, 2**31 * 2 - 3.0, WRAP_US - 5),  # printed signed (%ld) just before the wrap
        (10, WRAP_US + 12.0, WRAP_US + 10),  # after the 71.6 min wrap
        (2**31 + 1, 2**31 + 0.0, 2**31 + 1),
        (-(2**31) + 1, 2**31 + 0.0, 2**31 + 1),
    ],
)
def test_unwrap_picks_the_timestamp_nearest_the_expectation(raw: int, near: float, expected: int):
    assert unwrap_us(raw, near) == expected


def _clock_with_truth(
    drift_ppm: float, lag0_us: float
) -> tuple[RemoteClock, Callable[[float], float]]:
    """A clock and the true lag function of a WALT running drift_ppm fast."""
    k = -drift_ppm * 1e-6 / (1 + drift_ppm * 1e-6)

    def true_lag(r: float) -> float:
        return lag0_us + k * r

    return RemoteClock(base_s=100.0), true_lag


def test_one_point_gives_the_midpoint_and_the_prior_drift_bound():
    clock, lag = _clock_with_truth(0.0, 300.0)
    clock.add(SyncPoint(1_000.0, 100.0, 500.0, 0.0))
    assert clock.lag_us(1_000.0) == 300.0
    assert clock.to_host(1_000.0) == pytest.approx(100.0 + 1_300e-6)
    assert clock.uncertainty_us(1_000.0) == pytest.approx(200.0)
    # one second later the prior (1000 ppm) adds 1 ms of possible drift
    assert clock.uncertainty_us(1_001_000.0) == pytest.approx(1_200.0)


def test_two_points_fit_the_drift_and_convert_both_ways():
    clock, lag = _clock_with_truth(400.0, 250.0)
    for r in (0.0, 2_000_000.0, 4_000_000.0):
        clock.add(SyncPoint(r, lag(r) - 150.0, lag(r) + 150.0, 0.0))
    assert clock.drift_ppm == pytest.approx(400.0, rel=1e-6)
    r = 6_000_000.0
    assert clock.to_host(r) == pytest.approx(100.0 + (r + lag(r)) * 1e-6, abs=1e-9)
    assert clock.to_walt(clock.to_host(r)) == pytest.approx(r, abs=1e-3)
    # extrapolating 2 s beyond the last point: half width + 2 s * (300 us / 4 s)
    assert clock.uncertainty_us(r) == pytest.approx(150.0 + 2_000_000.0 * 300.0 / 4_000_000.0)


def test_shift_base_keeps_every_conversion():
    clock, lag = _clock_with_truth(-250.0, 800.0)
    clock.add(SyncPoint(0.0, 600.0, 1_000.0, 0.0))
    clock.add(SyncPoint(3_000_000.0, lag(3e6) - 200.0, lag(3e6) + 200.0, 0.0))
    before = [clock.to_host(r) for r in (0.0, 1e6, 5e6)]
    clock.shift_base(600.0)
    assert clock.points[0].min_lag_us == 0.0
    assert [clock.to_host(r) for r in (0.0, 1e6, 5e6)] == pytest.approx(before, abs=1e-9)


def test_empty_bounds_are_refused():
    clock = RemoteClock(0.0)
    with pytest.raises(ValueError):
        clock.add(SyncPoint(0.0, 10.0, 5.0, 0.0))
