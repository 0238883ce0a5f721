"""Latency figures measured with a WALT: screen draw, tap-to-draw, audio output, sync quality.

All figures are host-monotonic intervals: the harness stamps its request (draw, play) on the
host clock, the WALT stamps the physical event on its clock, and the synced RemoteClock maps
one onto the other. Every sample carries its uncertainty: the clock bounds' half width at that
moment (plus drift extrapolation) and, for the screen, the photodiode calibration's.

The photodiode does not see a step: the panel and sensor respond with a rise time, and the
firmware fires at fixed thresholds (110 counts going light, 90 going dark), so white->black is
detected later than black->white. `calibrate_photodiode` records the brightness curve ('U')
across one flip in each direction, fits the response, and measures how long after the light
started changing the firmware's threshold is crossed; `measure_screen_draw` subtracts that
delay so that its figure is request -> pixels changed (the twin's ground truth). The raw
request -> threshold figure (WALT's own convention) is kept in each sample's meta.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.errors import InstrumentError, MeasurementError
from harness.instruments.walt import Walt
from harness.measure import Measurement

log = logging.getLogger(__name__)

SCREEN_DRAW_MS = "screen_draw_ms"
WALT_SYNC_UNCERTAINTY_MS = "walt_sync_uncertainty_ms"
AUDIO_OUTPUT_MS = "audio_output_ms"
TAP_TO_DRAW_MS = "tap_to_draw_ms"

SCREEN_THRESH_HIGH = 110  # firmware v6: dark -> light fires above this (ADC counts)
SCREEN_THRESH_LOW = 90  # firmware v6: light -> dark fires below this
SETTLE_S = 0.3  # wait for a requested colour to be on the glass and steady
TRANSITION_TIMEOUT_S = 1.0  # a requested flip not seen within this is missed
GAP_S = (0.04, 0.06)  # pause after each detected flip (WALT app: 40 + random 20 ms)
CALIBRATION_REPEATS = 2  # brightness curves per direction
CURVE_LEAD_S = 0.05  # baseline recorded before the flip is requested
MIN_STEP_COUNTS = 50  # a curve whose light changes less than this saw no flip
FIT_LOW, FIT_HIGH = 0.15, 0.85  # part of the normalised step used for the exponential fit
CALIBRATION_FLOOR_MS = 0.1  # least uncertainty claimed for a calibrated delay
TAP_TIMEOUT_S = 10.0  # a tap and its drawing, one at a time
TEENSY_LOOP_MS = 0.05  # firmware loop period: both ends of a WALT-only interval
AUDIO_TIMEOUT_S = 1.0
AUDIO_GAP_S = 0.3  # let a beep end before re-arming
MAX_MISSES_IN_A_ROW = 3  # then the probe is not seeing the drawn region: stop

Request = Callable[[bool], object]
"""draw(white): make the probed region white (True) or black (False), e.g. through adb.

It may return the host time of the request if it knows better; otherwise the time taken just
before the call is used."""


def _request(fn: Callable[..., object], *args: object) -> float:
    t = time.monotonic()
    out = fn(*args)
    if isinstance(out, float):
        return out
    return t


def _quietly(what: str, fn: Callable[[], object]) -> None:
    try:
        fn()
    except InstrumentError as e:
        log.warning("%s failed during cleanup: %s", what, e)


# -- photodiode calibration ------------------------------------------------------------------


@dataclass(frozen=True)
class CurveFit:
    """One brightness curve across one flip."""

    to_white: bool
    start_us: float  # WALT time the light started to change (fitted)
    detect_us: float  # WALT time the firmware's threshold was crossed
    rise_ms: float  # 10-90 % time of the fitted first-order response
    dark_counts: float
    light_counts: float

    @property
    def delay_ms(self) -> float:
        return (self.detect_us - self.start_us) / 1000.0


def fit_curve(samples: list[tuple[int, int]], to_white: bool) -> CurveFit:
    """Where a flip starts and where the firmware detects it, from a 'U' brightness curve.

    The light is normalised between its steady levels before and after; the part between
    15 % and 85 % is fitted with a first-order response 1 - y = exp(-(t - t0) / tau), whose
    t0 is the start. The detection is the first crossing of the firmware's threshold,
    interpolated between samples.

    Raises:
        MeasurementError: no flip, wrong direction, or thresholds never crossed.
    """
    if len(samples) < 50:
        raise MeasurementError(f"brightness curve has {len(samples)} samples, need 50 or more")
    t = [float(s[0]) for s in samples]
    v = [float(s[1]) for s in samples]
    k = max(10, len(v) // 10)
    before = statistics.median(v[:k])
    after = statistics.median(v[-2 * k :])
    step = after - before
    if abs(step) < MIN_STEP_COUNTS or (step > 0) != to_white:
        want = "dark -> light" if to_white else "light -> dark"
        raise MeasurementError(
            f"no {want} flip in the brightness curve ({before:.0f} -> {after:.0f} counts); "
            "was the draw latency longer than the 0.47 s curve, or the probe not on the region?"
        )
    dark, light = (before, after) if to_white else (after, before)
    if not (dark < SCREEN_THRESH_LOW and light > SCREEN_THRESH_HIGH):
        raise MeasurementError(
            f"photodiode reads {dark:.0f} (dark) .. {light:.0f} (light) counts: the firmware "
            f"thresholds {SCREEN_THRESH_LOW}/{SCREEN_THRESH_HIGH} are not both crossed; "
            "set the screen to full brightness and seat the probe flat on the glass"
        )
    y = [(x - before) / step for x in v]
    mid = next(i for i, yi in enumerate(y) if yi >= 0.5)
    lo = mid
    while lo > 0 and y[lo - 1] >= FIT_LOW:
        lo -= 1
    hi = mid
    while hi + 1 < len(y) and y[hi + 1] <= FIT_HIGH:
        hi += 1
    idx = [i for i in range(lo, hi + 1) if FIT_LOW <= y[i] <= FIT_HIGH]
    if len(idx) >= 3:
        xs = [t[i] for i in idx]
        zs = [math.log(1.0 - y[i]) for i in idx]
        mx, mz = statistics.fmean(xs), statistics.fmean(zs)
        b = sum((x - mx) * (z - mz) for x, z in zip(xs, zs, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        if b >= 0:
            raise MeasurementError("brightness curve is not a rising response")
        start = mx - mz / b
        tau_us = -1.0 / b
    else:  # too fast to fit: the start is where the light passed 10 %, tau from 10 -> 50 %
        j10 = next(i for i, yi in enumerate(y) if yi >= 0.1)
        t10 = _cross(t, y, j10, 0.1)
        tau_us = max((_cross(t, y, mid, 0.5) - t10) / math.log(0.9 / 0.5), 1.0)
        start = t10 + tau_us * math.log(0.9)  # a first-order response reaches 10 % at 0.105 tau
    thresh = SCREEN_THRESH_HIGH if to_white else SCREEN_THRESH_LOW
    j = next(
        (
            i
            for i in range(1, len(v))
            if (v[i] > thresh if to_white else v[i] < thresh) and t[i] > start - tau_us
        ),
        None,
    )
    if j is None:
        raise MeasurementError(f"photodiode never crossed the firmware threshold {thresh}")
    frac = (thresh - v[j - 1]) / (v[j] - v[j - 1]) if v[j] != v[j - 1] else 1.0
    detect = t[j - 1] + (t[j] - t[j - 1]) * min(max(frac, 0.0), 1.0)
    return CurveFit(to_white, start, detect, tau_us * math.log(9.0) / 1000.0, dark, light)


def _cross(t: list[float], y: list[float], j: int, level: float) -> float:
    if j == 0 or y[j] == y[j - 1]:
        return t[j]
    return t[j - 1] + (t[j] - t[j - 1]) * (level - y[j - 1]) / (y[j] - y[j - 1])


@dataclass(frozen=True)
class PhotodiodeCalibration:
    """Detection delay of the WALT's screen photodiode, per direction, on one device."""

    delay_to_white_ms: float
    delay_to_black_ms: float
    rise_ms: float
    dark_counts: float
    light_counts: float
    uncertainty_ms: float
    fits: tuple[CurveFit, ...] = field(default=(), repr=False)

    def delay_ms(self, white: bool) -> float:
        return self.delay_to_white_ms if white else self.delay_to_black_ms

    def to_dict(self) -> dict[str, float]:
        return {
            "delay_to_white_ms": self.delay_to_white_ms,
            "delay_to_black_ms": self.delay_to_black_ms,
            "rise_ms": self.rise_ms,
            "dark_counts": self.dark_counts,
            "light_counts": self.light_counts,
            "uncertainty_ms": self.uncertainty_ms,
        }


def calibrate_photodiode(
    walt: Walt,
    draw: Request,
    *,
    repeats: int = CALIBRATION_REPEATS,
    settle_s: float = SETTLE_S,
) -> PhotodiodeCalibration:
    """Record brightness curves across flips both ways and measure the detection delays.

    The probe must sit on the region `draw` paints. Takes about 2 * repeats * (settle_s + 0.5) s.

    Raises:
        MeasurementError: a curve shows no usable flip.
        InstrumentError: the WALT failed (port closed).
    """
    fits: list[CurveFit] = []
    for _ in range(repeats):
        for to_white in (True, False):
            _request(draw, not to_white)
            time.sleep(settle_s)
            samples = walt.brightness_curve(lambda w=to_white: draw(w), lead_s=CURVE_LEAD_S)
            fits.append(fit_curve(samples, to_white))
    by_dir = {w: [f.delay_ms for f in fits if f.to_white == w] for w in (True, False)}
    spread = max(max(d) - min(d) for d in by_dir.values())
    cal = PhotodiodeCalibration(
        delay_to_white_ms=statistics.fmean(by_dir[True]),
        delay_to_black_ms=statistics.fmean(by_dir[False]),
        rise_ms=statistics.fmean(f.rise_ms for f in fits),
        dark_counts=statistics.fmean(f.dark_counts for f in fits),
        light_counts=statistics.fmean(f.light_counts for f in fits),
        uncertainty_ms=max(CALIBRATION_FLOOR_MS, spread / 2.0),
        fits=tuple(fits),
    )
    log.info("photodiode calibration: %s", cal.to_dict())
    return cal


# -- screen draw latency ---------------------------------------------------------------------


def measure_screen_draw(
    walt: Walt,
    draw: Request,
    n: int = 50,
    *,
    calibration: PhotodiodeCalibration | None = None,
    calibrate: bool = True,
    settle_s: float = SETTLE_S,
    timeout_s: float = TRANSITION_TIMEOUT_S,
    gap_s: tuple[float, float] = GAP_S,
    seed: int | None = None,
) -> Measurement:
    """screen_draw_ms: from the harness's draw request to the pixels changing under the probe.

    Alternates black -> white and white -> black, n transitions in all. The clock bounds are
    re-measured between transitions when older than RESYNC_INTERVAL_S (never while a flip is
    in flight: the firmware does not probe while it answers a sync).

    Args:
        walt: an open, synced WALT whose photodiode sits on the region `draw` paints.
        draw: draw(white) requests the colour through the device.
        n: number of transitions.
        calibration: photodiode delays; measured first when None and `calibrate` is True.
        calibrate: False reports the raw request -> threshold crossing (WALT's convention).
        settle_s: initial wait for black to be shown.
        timeout_s: a flip not detected within this is counted as missed.
        gap_s: (min, max) random pause after each flip.
        seed: seed of the pauses.

    Raises:
        MeasurementError: no transition was detected.
        InstrumentError: the WALT failed (port closed).
    """
    rng = random.Random(seed)
    walt.ensure_sync()
    if calibration is None and calibrate:
        calibration = calibrate_photodiode(walt, draw, settle_s=settle_s)
    m = Measurement(
        SCREEN_DRAW_MS, "ms", meta={"port": walt.port, "calibrated": calibration is not None}
    )
    if calibration is not None:
        m.meta["calibration"] = calibration.to_dict()
    missed = wrong = flicker = in_a_row = 0
    _request(draw, False)
    time.sleep(settle_s)
    walt.screen_auto(True)
    try:
        white = True
        for i in range(n):
            walt.ensure_sync()
            stale = walt.take_triggers("S")
            if stale:
                log.debug("screen: %d unrequested transition(s) before flip %d", len(stale), i)
            t_req = _request(draw, white)
            trig = walt.wait_trigger("S", timeout_s)
            if trig is None or trig.value != int(white):
                if trig is None:
                    missed += 1
                    walt.ping()  # a board that stopped answering fails here, at once
                else:
                    wrong += 1
                in_a_row += 1
                log.warning(
                    "screen: flip %d to %s not seen as such", i, "white" if white else "black"
                )
                if in_a_row >= MAX_MISSES_IN_A_ROW:
                    raise MeasurementError(
                        f"{SCREEN_DRAW_MS}: {in_a_row} flips in a row not seen by the WALT on "
                        f"{walt.port}: is its photodiode on the region being drawn?"
                    )
                time.sleep(settle_s)
                walt.take_triggers("S")
                white = not white
                continue
            in_a_row = 0
            flicker += trig.count > 1
            t_light = walt.to_host(trig.walt_us)
            raw_ms = (t_light - t_req) * 1e3
            delay_ms = calibration.delay_ms(white) if calibration else 0.0
            unc_ms = walt.uncertainty_s(trig.walt_us) * 1e3
            if calibration is not None:
                unc_ms += calibration.uncertainty_ms
            m.add(
                raw_ms - delay_ms,
                t=t_req,
                uncertainty=unc_ms,
                direction="black_to_white" if white else "white_to_black",
                raw_ms=raw_ms,
                count=trig.count,
                index=i,
            )
            white = not white
            time.sleep(rng.uniform(*gap_s))
    finally:
        if walt.is_open:
            _quietly("screen auto-send off", lambda: walt.screen_auto(False))
    m.meta.update(missed=missed, wrong_direction=wrong, flicker=flicker, drift_ppm=_drift(walt))
    if not m.samples:
        raise MeasurementError(
            f"{SCREEN_DRAW_MS}: none of {n} flips was seen by the WALT on {walt.port}"
        )
    return m


def _drift(walt: Walt) -> float | None:
    return walt.clock.drift_ppm if walt.clock is not None else None


# -- tap and audio ---------------------------------------------------------------------------


def measure_tap_to_draw(
    walt: Walt,
    n: int = 20,
    *,
    tap: Callable[[], object] | None = None,
    calibration: PhotodiodeCalibration | None = None,
    timeout_s: float = TAP_TIMEOUT_S,
) -> Measurement:
    """tap_to_draw_ms: from the stylus shock (accelerometer) to the screen flip it causes.

    Both ends are stamped by the WALT itself, so no clock sync enters the figure (the
    uncertainty is the firmware's loop period at each end). The app under test must flip the
    probed region on each tap. Tap-to-input-event needs the device's kernel timestamps,
    which the harness does not trust (DESIGN: device clocks are never trusted).

    Args:
        walt: an open WALT with its stylus and photodiode in place.
        n: taps to time.
        tap: called to make each tap (a robot, or the simulator); None waits for a human.
        calibration: photodiode delays to subtract (else WALT's threshold convention).
        timeout_s: a tap and its drawing must come within this.

    Raises:
        MeasurementError: no tap was timed.
        InstrumentError: the WALT failed (port closed).
    """
    m = Measurement(TAP_TO_DRAW_MS, "ms", meta={"port": walt.port, "calibrated": bool(calibration)})
    skipped = 0
    walt.read_shock()  # arms the accelerometer, discards an old shock
    walt.screen_auto(True)
    try:
        for i in range(n):
            walt.take_triggers("S")
            if tap is not None:
                tap()
            trig = walt.wait_trigger("S", timeout_s)
            if trig is None:
                walt.ping()  # a board that stopped answering fails here, at once
                raise MeasurementError(
                    f"{TAP_TO_DRAW_MS}: no screen flip within {timeout_s:g} s of tap {i}"
                )
            shock = walt.read_shock()  # and re-arm
            if shock is None or shock > trig.walt_us:
                skipped += 1
                log.warning("tap %d: no shock before the flip; skipped", i)
                continue
            t = walt.to_host(shock) if walt.clock is not None else None
            raw_ms = (trig.walt_us - shock) / 1000.0
            unc_ms = 2 * TEENSY_LOOP_MS
            delay_ms = 0.0
            if calibration is not None:
                delay_ms = calibration.delay_ms(trig.value == 1)
                unc_ms += calibration.uncertainty_ms
            m.add(raw_ms - delay_ms, t=t, uncertainty=unc_ms, raw_ms=raw_ms, index=i)
    finally:
        if walt.is_open:
            _quietly("screen auto-send off", lambda: walt.screen_auto(False))
    m.meta["skipped"] = skipped
    if not m.samples:
        raise MeasurementError(f"{TAP_TO_DRAW_MS}: no tap was timed on {walt.port}")
    return m


def measure_audio_output(
    walt: Walt,
    play: Callable[[], object],
    n: int = 10,
    *,
    timeout_s: float = AUDIO_TIMEOUT_S,
    gap_s: float = AUDIO_GAP_S,
) -> Measurement:
    """audio_output_ms: from the harness's play request to signal on the audio line.

    The WALT's audio input sits on the device's headphone jack; the firmware fires once the
    line exceeds 20 counts (about 65 mV) after 'A' arms it.

    Args:
        walt: an open, synced WALT wired to the device's audio output.
        play: play() starts a short tone on the device.
        n: tones to time.
        timeout_s: a tone not detected within this is missed.
        gap_s: pause for the tone to end before re-arming.

    Raises:
        MeasurementError: no tone was detected, or the line was already loud when armed.
        InstrumentError: the WALT failed (port closed).
    """
    m = Measurement(AUDIO_OUTPUT_MS, "ms", meta={"port": walt.port})
    missed = 0
    for i in range(n):
        walt.ensure_sync()
        walt.arm_audio()
        walt.take_triggers("A")
        t_req = _request(play)
        trig = walt.wait_trigger("A", timeout_s)
        if trig is None:
            missed += 1
            walt.ping()  # a board that stopped answering fails here, at once
            log.warning("audio: tone %d not detected within %g s", i, timeout_s)
            continue
        t_sound = walt.to_host(trig.walt_us)
        unc_ms = walt.uncertainty_s(trig.walt_us) * 1e3
        if t_sound < t_req - unc_ms * 1e-3:
            raise MeasurementError(
                f"{AUDIO_OUTPUT_MS}: the audio line was above threshold before the tone "
                f"({(t_req - t_sound) * 1e3:.1f} ms early): noise on the line?"
            )
        m.add((t_sound - t_req) * 1e3, t=t_req, uncertainty=unc_ms, index=i)
        time.sleep(gap_s)
    m.meta["missed"] = missed
    if not m.samples:
        raise MeasurementError(
            f"{AUDIO_OUTPUT_MS}: none of {n} tones reached the WALT on {walt.port}"
        )
    return m


def sync_uncertainty(walt: Walt) -> Measurement:
    """walt_sync_uncertainty_ms: half width of every clock-bounds measurement so far."""
    m = Measurement(WALT_SYNC_UNCERTAINTY_MS, "ms", meta={"port": walt.port})
    if walt.clock is not None:
        m.meta["drift_ppm"] = walt.clock.drift_ppm
        for p in walt.clock.points:
            m.add(p.half_width_us / 1000.0, t=p.t_host)
    return m
