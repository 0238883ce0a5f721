"""The onset detector on generated frames (pure numpy, fast): no false onset over more than
10 minutes of placeholder and spinner animations; every agent mode (a cut to a talking head, a
still frame with slight noise, a slow fade-in) found within the stated latency."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from harness.twin.support import FADE_IN_S, _agent_picture, _plain_frame
from harness.vision.onset import OnsetDetector, cells, structure

W, H = 256, 192
FPS = 15.0
SCENARIO_S = 110.0  # each of six placeholder animations: 6 x 110 s = 11 minutes
DARK = (28, 28, 30)
QUEUED = (255, 176, 0)
ASSIGNED = (0, 170, 90)


_NOISE = np.random.default_rng(11).normal(0, 3.0, (8, H, W, 3)).astype(np.float32)


def _noisy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor-like noise (sigma 3 grey levels), one of a bank of noise fields (fast)."""
    return np.clip(img + _NOISE[rng.integers(len(_NOISE))], 0, 255).astype(np.uint8)


def _fill(colour) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:] = colour
    return img


def _spinner(img: np.ndarray, t: float, r: int = 18) -> None:
    a = (t * 360.0) % 360
    cv2.ellipse(img, (W // 2, H // 2), (r, r), a, 0, 270, (255, 255, 255), 4, cv2.LINE_AA)


def _placeholder(kind: str, t: float) -> np.ndarray:
    """One frame of a waiting animation, t seconds in (RGB)."""
    if kind == "state colours":  # queued -> assigned -> dark, cycling every 12 s
        return _fill([QUEUED, ASSIGNED, DARK][int(t // 4) % 3])
    if kind == "spinner":
        img = _fill(DARK)
        _spinner(img, t)
        return img
    if kind == "connecting dots":
        img = _fill((46, 50, 58))
        text = "Connecting" + "." * (int(t * 2) % 4)
        cv2.putText(img, text, (W // 6, H // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (230, 230, 230), 1)
        return img
    if kind == "progress bar":
        img = _fill((240, 240, 240))
        frac = (t % 20.0) / 20.0
        cv2.rectangle(img, (8, H - 14), (8 + int((W - 16) * frac), H - 8), (0, 120, 215), -1)
        return img
    if kind == "breathing colour":
        level = 0.5 + 0.5 * math.sin(2 * math.pi * t / 3.0)
        return _fill(tuple(int(c * (0.7 + 0.3 * level)) for c in QUEUED))
    if kind == "logo and spinner":  # a static brand logo (structured) with a spinner below it
        img = _fill((250, 250, 250))
        cv2.circle(img, (W // 2, H // 3), 30, (255, 153, 0), -1, cv2.LINE_AA)
        cv2.putText(
            img, "Support", (W // 3, H // 3 + 55), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (40, 40, 40), 2
        )
        a = (t * 360.0) % 360
        cv2.ellipse(img, (W // 2, H - 30), (10, 10), a, 0, 270, (120, 120, 120), 3, cv2.LINE_AA)
        return img
    raise AssertionError(kind)


KINDS = [
    "state colours",
    "spinner",
    "connecting dots",
    "progress bar",
    "breathing colour",
    "logo and spinner",
]


def test_no_false_onset_over_ten_minutes_of_placeholder_animations():
    rng = np.random.default_rng(7)
    frames = 0
    for kind in KINDS:
        det = OnsetDetector()
        n = int(SCENARIO_S * FPS)
        for i in range(n):
            t = i / FPS
            assert not det.update(_noisy(_placeholder(kind, t), rng), t), (
                f"false onset in {kind!r} at {t:.2f} s (change {det.onset})"
            )
        frames += n
    assert frames / FPS >= 600.0  # at least 10 minutes of video


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["talking", "still", "fade"])
def test_every_agent_mode_is_found_within_the_stated_latency(kind, mode):
    """After a placeholder, the agent's video: the onset is its first frame (a cut) or within the
    stated latency of a fade-in, and confirmed CONFIRM frames later."""
    rng = np.random.default_rng(3)
    base = _agent_picture(W, H)
    det = OnsetDetector()
    t_agent = 20.0
    for i in range(int(t_agent * FPS)):
        det.update(_noisy(_placeholder(kind, i / FPS), rng), i / FPS)
    assert det.onset is None
    k = 0
    while not det.update(
        _plain_frame(mode, base, _placeholder(kind, t_agent), k / FPS, rng), t_agent + k / FPS
    ):
        k += 1
        assert k < 3 * FPS, f"{mode} after {kind}: no onset within 3 s"
    latency = det.onset.t - t_agent
    bound = OnsetDetector.stated_latency_s(FADE_IN_S if mode == "fade" else 0.0)
    assert 0.0 <= latency <= bound + 1e-9, (mode, kind, latency, bound)
    assert det.onset.confirmed_index - det.onset.index == det.confirm - 1


def test_cells_and_structure_on_known_pictures():
    img = _fill(DARK)
    assert structure(cells(img)) == 0.0
    img[: H // 2, : W // 2] = 255  # a quarter of the pane differs from the rest
    assert structure(cells(img)) == pytest.approx(0.25, abs=0.03)
    assert cells(np.zeros((5, 7, 3), np.uint8)).shape == (5, 7, 3)  # tiny crops: a pixel per cell
