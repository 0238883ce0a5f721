"""Latency figures from the simulated WALT against the fake world's ground truth."""

from __future__ import annotations

import math
import random

import pytest

from harness.errors import MeasurementError
from harness.instruments.walt import Walt
from harness.instruments.walt_latency import (
    SCREEN_DRAW_MS,
    SCREEN_THRESH_HIGH,
    SCREEN_THRESH_LOW,
    WALT_SYNC_UNCERTAINTY_MS,
    calibrate_photodiode,
    fit_curve,
    measure_audio_output,
    measure_screen_draw,
    measure_tap_to_draw,
    sync_uncertainty,
)

TRANSITIONS = 50
DRAW_TOLERANCE_MS = 2.0


def test_screen_draw_matches_ground_truth_within_2_ms_over_50_transitions(make_walt_sim, screen):
    sim = make_walt_sim(
        brightness_source=screen.light, drift_ppm=300, clock_start_us=1_234_567, seed=3
    )
    with Walt.open(sim.path) as walt:
        m = measure_screen_draw(walt, screen.draw, n=TRANSITIONS, seed=3)
        sync = sync_uncertainty(walt)
    assert m.name == SCREEN_DRAW_MS and m.unit == "ms"
    assert len(m.samples) == TRANSITIONS and m.meta["missed"] == 0
    errors = [s.value - screen.truth_ms(s.t) for s in m.samples]
    worst = max(abs(e) for e in errors)
    print(
        f"\n{TRANSITIONS} transitions: max |error| {worst:.3f} ms, "
        f"mean {sum(errors) / len(errors):+.3f} ms, "
        f"claimed uncertainty <= {m.uncertainty:.3f} ms; calibration {m.meta['calibration']}"
    )
    assert worst < DRAW_TOLERANCE_MS
    assert all(abs(e) <= s.uncertainty for e, s in zip(errors, m.samples, strict=True))
    directions = {s.meta["direction"] for s in m.samples}
    assert directions == {"black_to_white", "white_to_black"}
    # the clock was re-measured during the run, and the drift found
    assert sync.name == WALT_SYNC_UNCERTAINTY_MS and len(sync.samples) >= 2
    assert abs(m.meta["drift_ppm"] - 300) < 100


def test_raw_threshold_figure_is_late_white_to_black(make_walt_sim, screen):
    """WALT's own convention (request -> threshold) includes the panel's response."""
    sim = make_walt_sim(brightness_source=screen.light, seed=4)
    with Walt.open(sim.path) as walt:
        m = measure_screen_draw(walt, screen.draw, n=6, calibrate=False)
    late = [
        s.value - screen.truth_ms(s.t) for s in m.samples if s.meta["direction"] == "white_to_black"
    ]
    tau_ms = sim.config.pd_tau_s * 1e3
    expected = -tau_ms * math.log(
        (SCREEN_THRESH_LOW - sim.config.pd_dark_counts)
        / (sim.config.pd_white_counts - sim.config.pd_dark_counts)
    )
    assert all(abs(e - expected) < 0.5 for e in late)  # ~4.5 ms: beyond the 2 ms tolerance


def test_tap_to_draw_needs_no_clock_sync(make_walt_sim, screen, stylus):
    sim = make_walt_sim(brightness_source=screen.light, shock_source=stylus.shock, seed=5)
    with Walt.open(sim.path) as walt:
        cal = calibrate_photodiode(walt, screen.draw, repeats=1)
        m = measure_tap_to_draw(walt, n=5, tap=stylus.tap, calibration=cal)
    assert len(m.samples) == 5
    for s, (t_shock, t_px) in zip(m.samples, stylus.taps, strict=True):
        assert abs(s.value - (t_px - t_shock) * 1e3) < 1.0


def test_audio_output_latency(make_walt_sim, speaker):
    sim = make_walt_sim(audio_source=speaker.line, seed=6)
    with Walt.open(sim.path) as walt:
        m = measure_audio_output(walt, speaker.play, n=5, gap_s=0.08)
    assert len(m.samples) == 5
    for s, (t_req, t_sound) in zip(m.samples, speaker.played, strict=True):
        error = s.value - (t_sound - t_req) * 1e3
        assert abs(error) < 1.0 and abs(error) <= s.uncertainty


def _curve(to_white: bool, t0_us: float, tau_us: float, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    dark, light = 20.0, 700.0
    out = []
    for i in range(1000):
        t = i * 470.0
        y = 0.0 if t < t0_us else 1.0 - math.exp(-(t - t0_us) / tau_us)
        if not to_white:
            y = 1.0 - y
        out.append((int(t), round(dark + (light - dark) * y + rng.gauss(0, 2))))
    return out


@pytest.mark.parametrize("to_white", [True, False])
@pytest.mark.parametrize("tau_us", [500.0, 2000.0, 5000.0])
def test_fit_curve_finds_the_start_of_a_first_order_response(to_white: bool, tau_us: float):
    fit = fit_curve(_curve(to_white, 100_000.0, tau_us), to_white)
    # a fast panel has only a sample or two on its edge: half a sample period of doubt
    assert fit.start_us == pytest.approx(100_000.0, abs=max(235.0, 0.1 * tau_us))
    thresh = SCREEN_THRESH_HIGH if to_white else SCREEN_THRESH_LOW
    y = (thresh - 20.0) / 680.0
    expected = -tau_us * math.log(1 - y if to_white else y)
    assert fit.detect_us - 100_000.0 == pytest.approx(expected, abs=max(150.0, 0.05 * expected))


def test_fit_curve_refuses_a_curve_without_a_flip():
    flat = [(i * 470, 20) for i in range(1000)]
    with pytest.raises(MeasurementError, match="no dark -> light flip"):
        fit_curve(flat, True)
    dim = [(t, round(20 + (v - 20) * 0.1)) for t, v in _curve(True, 100_000.0, 1000.0)]
    with pytest.raises(MeasurementError, match="thresholds 90/110"):
        fit_curve(dim, True)


def test_probe_off_the_drawn_region_ends_in_a_measurement_error(make_walt_sim, screen):
    sim = make_walt_sim(seed=9)  # the photodiode sees a constant dark region
    with Walt.open(sim.path) as walt:
        with pytest.raises(MeasurementError, match="3 flips in a row not seen"):
            measure_screen_draw(
                walt, screen.draw, n=10, calibrate=False, timeout_s=0.2, settle_s=0.05
            )
        assert walt.is_open  # the instrument is fine; the setup is not
