"""ScaledStamps: the share's reference frames, made by re-scaling only the code's block, are
byte for byte the frames made by stamping and scaling the whole screen."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.vision.timecode import ScaledStamps, TimecodeLayout, decode_fast, stamp


def _screen(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(w * h)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cv2.putText(img, "Timecode", (w // 10, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 3)
    return img


def _whole(screen, layout, size, n, t_ms):
    img = screen.copy()
    stamp(img, n, t_ms, layout)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize(
    "screen_size,share_size,anchor,cell",
    [
        ((1280, 800), (640, 400), "center", 25),  # the share at half size: the fast path
        ((1920, 1200), (640, 400), "center", 37),  # a third: fast, odd cell and offsets
        ((1280, 800), (640, 400), "top-left", 16),
        ((1280, 800), (1280, 800), "bottom-right", 16),  # unscaled
        ((1280, 800), (853, 533), "center", 25),  # not a whole factor: the whole-frame path
    ],
)
def test_scaled_stamps_equal_stamping_and_scaling_the_whole_screen(
    screen_size, share_size, anchor, cell
):
    screen = _screen(*screen_size)
    layout = TimecodeLayout.for_size(*screen_size, anchor=anchor, cell_px=cell)
    stamps = ScaledStamps(screen, layout, share_size)
    whole_factor = screen_size[0] % share_size[0] == 0
    assert bool(stamps.k) == whole_factor
    for n, t_ms in [(0, 0), (1, 5), (123456, 987654321)]:
        ours = stamps.frame(n, t_ms)
        assert ours.shape == (share_size[1], share_size[0], 3)
        assert np.array_equal(ours, _whole(screen, layout, share_size, n, t_ms))
    read = decode_fast(stamps.frame(4242), layout.scaled_to(*share_size))
    assert read.ok and read.frame_no == 4242


def test_frames_do_not_share_memory():
    screen = _screen(1280, 800)
    layout = TimecodeLayout.for_size(1280, 800, anchor="center", cell_px=25)
    stamps = ScaledStamps(screen, layout, (640, 400))
    a, b = stamps.frame(1), stamps.frame(2)
    assert not np.shares_memory(a, b) and not np.array_equal(a, b)
    assert np.array_equal(a, _whole(screen, layout, (640, 400), 1, 0))
