"""The share's references made only where shown: the same report as every reference made and
read, for about half of the references (a 15 fps share of a 30 fps code)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.session import media
from harness.vision import synthesis as sy
from harness.vision.fidelity import compare
from harness.vision.image import LazyFrames

SCREEN_W, SCREEN_H = 1280, 800
SHARE = (640, 400)


def test_lazy_references_give_the_same_report():
    clip = sy.ScreenClip(
        SCREEN_W, SCREEN_H, seed=3, layout=media.timecode_layout(SCREEN_W, SCREEN_H)
    )
    screen = clip.content(0)  # the static screen; the references re-stamp its code
    first = 500
    every = [first + i for i in range(0, 40)]
    shown = every[::2] + [every[-1]]  # 15 fps of 30, the last one twice (a freeze)
    refs_all = [media.share_reference(screen, SHARE, [n])[0] for n in every]
    rec = sy.transcode(
        [refs_all[n - first] for n in shown], codec="libvpx", bit_rate=600_000, fps=15
    )
    frames = [SimpleNamespace(image=img, t_arrival=10.0 + i / 15) for i, img in enumerate(rec)]
    eager = compare(
        [media.crop_share(r, media.SHARE_KEEP, "right") for r in refs_all],
        [media.crop_share(f.image, media.SHARE_KEEP, "right") for f in frames],
        received_times_s=[f.t_arrival for f in frames],
        align="timecode",
    )
    refs = media.share_reference(screen, SHARE, every)
    lazy = media.share_fidelity(refs, frames, "right")
    assert [f.ref_index for f in lazy.frames] == [n - first for n in shown]
    assert lazy.frames == eager.frames
    assert lazy.dropped == eager.dropped and len(lazy.dropped) == len(every) // 2 - 1
    assert [f.duration_s for f in lazy.freezes] == [f.duration_s for f in eager.freezes]
    assert refs.luma.made == len(set(shown))  # only the references shown were made,
    assert refs.made == 0  # as luma only
    assert np.array_equal(refs[3], refs_all[3])


def test_lazy_frames_index_and_errors():
    made = []
    frames = LazyFrames(3, lambda i: made.append(i) or np.full((16, 16), i, np.uint8))
    assert len(frames) == 3 and frames[-1][0, 0] == 2 and frames[2] is frames[-1]
    assert [f[0, 0] for f in frames[0:2]] == [0, 1] and made == [2, 0, 1]
    with pytest.raises(IndexError):
        frames[3]
    noise = np.random.default_rng(1).integers(0, 255, (32, 32), np.uint8)
    bad = LazyFrames(2, lambda i: noise[: 32 - i])  # frame 1 is a row short
    with pytest.raises(MeasurementError, match="reference frame 1 is 32x31, frame 0 is 32x32"):
        compare(bad, [noise] * 2, align="ssim")
    with pytest.raises(MeasurementError, match="2 reference frame numbers for 3"):
        compare(frames, [np.zeros((16, 16), np.uint8)], reference_frame_nos=[1, 2])


@pytest.mark.parametrize("size", [(640, 400), (500, 300)])  # half size (the block alone), other
@pytest.mark.parametrize("channels", [3, 4])
def test_reference_luma_is_the_luma_of_the_reference(size, channels):
    import cv2

    from harness.vision.timecode import ScaledStamps

    rng = np.random.default_rng(channels)
    picture = rng.integers(0, 256, (SCREEN_H, SCREEN_W, channels), np.uint8)
    stamps = ScaledStamps(picture, media.timecode_layout(SCREEN_W, SCREEN_H), size)
    code = cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY
    for n in (7, 4_000_000):
        assert np.array_equal(stamps.frame_luma(n, 99), cv2.cvtColor(stamps.frame(n, 99), code))
    refs = media.share_reference(picture, size, [5, 6])
    assert np.array_equal(refs.luma[1], cv2.cvtColor(refs[1], code))
