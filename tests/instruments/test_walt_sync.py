"""Clock sync against the simulated WALT: offset within 1 ms of the truth, drift corrected.

Each run draws a different power-on clock, drift (300..1500 ppm either way, an exaggerated
crystal so that 1 s of drift is visible) and asymmetric link latencies. The truth is the
simulator's own mapping of its clock to host time (`WaltSim.walt_to_host`).
"""

from __future__ import annotations

import random
import time

from harness.instruments.clock import RemoteClock
from harness.instruments.walt import Walt

RUNS = 10
TOLERANCE_MS = 1.0
WAIT_S = 0.5


def _err_ms(clock: RemoteClock, sim, walt_us: float) -> float:
    return (clock.to_host(walt_us) - sim.walt_to_host(walt_us)) * 1e3


def test_sync_offset_within_1_ms_over_10_runs_with_drift_corrected(make_walt_sim):
    rng = random.Random(8)
    rows = []
    for run in range(RUNS):
        drift_ppm = (-1) ** run * (300 + 1200 * run / (RUNS - 1))
        sim = make_walt_sim(
            seed=run,
            clock_start_us=rng.randrange(2**32),
            drift_ppm=drift_ppm,
            link_out_s=rng.uniform(0.1e-3, 0.8e-3),
            link_in_s=rng.uniform(0.1e-3, 0.8e-3),
            link_jitter_s=rng.uniform(0.05e-3, 0.3e-3),
        )
        with Walt.open(sim.path) as walt:
            clock = walt.clock
            first = clock.last
            # the truth lies inside the measured bounds (the method's guarantee)
            true_lag = clock.local_us(sim.walt_to_host(first.walt_us)) - first.walt_us
            assert first.min_lag_us - 1 <= true_lag <= first.max_lag_us + 1
            err_sync = _err_ms(clock, sim, first.walt_us)

            uncorrected = RemoteClock(clock.base_s)
            uncorrected.add(first)
            time.sleep(WAIT_S)
            walt.check_drift()
            time.sleep(WAIT_S)
            now_us = walt.time_now()
            err_later = _err_ms(clock, sim, now_us)
            err_uncorrected = _err_ms(uncorrected, sim, now_us)
            rows.append(
                (
                    run,
                    drift_ppm,
                    clock.drift_ppm,
                    err_sync,
                    err_later,
                    err_uncorrected,
                    first.half_width_us / 1e3,
                    clock.uncertainty_us(now_us) / 1e3,
                )
            )
            assert abs(err_later) <= clock.uncertainty_us(now_us) / 1e3 + 0.05
        sim.stop()

    print("\nrun drift_ppm found_ppm err_sync_ms err_later_ms uncorrected_ms halfwidth_ms unc_ms")
    for row in rows:
        print("{:3d} {:9.0f} {:9.0f} {:11.3f} {:12.3f} {:14.3f} {:12.3f} {:6.3f}".format(*row))
    assert max(abs(r[3]) for r in rows) < TOLERANCE_MS
    assert max(abs(r[4]) for r in rows) < TOLERANCE_MS
    assert max(abs(r[1] - r[2]) for r in rows) < 200  # drift found to within 200 ppm
    # without the drift correction the same runs miss by more than the tolerance
    assert max(abs(r[5]) for r in rows) > TOLERANCE_MS


def test_ensure_sync_remeasures_only_stale_bounds(make_walt_sim):
    sim = make_walt_sim(drift_ppm=200)
    with Walt.open(sim.path) as walt:
        walt.ensure_sync(max_age_s=10.0)
        assert len(walt.clock.points) == 1
        walt.ensure_sync(max_age_s=0.0)
        assert len(walt.clock.points) == 2
        assert len(sim.events("zero")) == 1  # bounds re-measured without re-zeroing


def test_a_walt_reset_mid_run_is_detected_and_the_clock_zeroed_again(make_walt_sim):
    sim = make_walt_sim(drift_ppm=100)
    with Walt.open(sim.path) as walt:
        time.sleep(0.2)
        walt.command("Z")  # behind the clock's back: as if the WALT had rebooted
        walt.ensure_sync(max_age_s=0.0)
        assert len(sim.events("zero")) == 3  # open, the "reboot", the re-zero
        r = walt.time_now()
        assert abs(_err_ms(walt.clock, sim, r)) < TOLERANCE_MS
