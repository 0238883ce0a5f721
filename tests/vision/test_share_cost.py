"""The share analysis' savings keep its report: each code read once (compare(received_reads=)),
checked against the report that reads every code again; the reference's half of SSIM made once
(similarity.SsimReference), checked against ssim_sum and a float64 SSIM, with its validity rule."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.session import media
from harness.vision import synthesis as sy
from harness.vision.fidelity import comparison as cmp
from harness.vision.fidelity.similarity import SSIM_SIGMA, SsimReference, ssim_sum
from harness.vision.image import to_gray

SCREEN_W, SCREEN_H = 1280, 800
SHARE = (640, 400)
FIRST = 500


@pytest.fixture(scope="module")
def share():
    """(screen, reference frame numbers, received frames) of a 15 fps share of a 30 fps code
    through VP8, the last frame shown twice (a freeze)."""
    clip = sy.ScreenClip(
        SCREEN_W, SCREEN_H, seed=5, layout=media.timecode_layout(SCREEN_W, SCREEN_H)
    )
    screen = clip.content(0)
    every = [FIRST + i for i in range(24)]
    shown = every[::2] + [every[-1]]
    refs = media.share_reference(screen, SHARE, every)
    rec = sy.transcode([refs[n - FIRST] for n in shown], codec="libvpx", bit_rate=600_000, fps=15)
    frames = [SimpleNamespace(image=img, t_arrival=10.0 + i / 15) for i, img in enumerate(rec)]
    return screen, every, frames


def test_codes_read_once_give_the_same_report(share, monkeypatch):
    screen, every, frames = share
    again = media.share_fidelity(media.share_reference(screen, SHARE, every), frames, "right")
    reads = media.share_reads(frames, (SCREEN_W, SCREEN_H))
    assert all(r.ok for r in reads)
    calls = []
    real = cmp.decode_fast
    monkeypatch.setattr(cmp, "decode_fast", lambda *a, **k: calls.append(1) or real(*a, **k))
    once = media.share_fidelity(media.share_reference(screen, SHARE, every), frames, "right", reads)
    assert once.frames == again.frames and once.dropped == again.dropped
    assert [f.aligned_by for f in once.frames] == ["timecode"] * len(frames)
    assert calls == []  # no code read again
    # a frame whose read failed is read here, as without the reads
    reads[3] = SimpleNamespace(ok=False, frame_no=None)
    partly = media.share_fidelity(
        media.share_reference(screen, SHARE, every), frames, "right", reads
    )
    assert partly.frames == again.frames and len(calls) == 1
    with pytest.raises(MeasurementError, match="2 received reads for 13 received frames"):
        media.share_fidelity(
            media.share_reference(screen, SHARE, every), frames, "right", reads[:2]
        )


# float32 rounding: ssim_sum (one blur of x^2 + y^2, GaussianBlur) is itself up to 8.8e-6 from a
# float64 SSIM (the JPEG fixture); the cached half (blur(x^2) + blur(y^2), two 1-D passes) is held
# within these, and no further from float64 than ssim_sum is (or FLOAT32_FLOOR): 500 times below
# SSIM_SAMPLE_MARGIN, the tolerance a reported SSIM carries
CACHED_VS_SSIM_SUM = 5e-6
CACHED_VS_FLOAT64 = 1e-5
FLOAT32_FLOOR = 2e-6


def _ssim64(a: np.ndarray, b: np.ndarray, windows: np.ndarray, step: int) -> float:
    """The SSIM index in float64, averaged over the windows ssim_sum samples."""
    x, y = a.astype(np.float64), b.astype(np.float64)

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    sel = np.zeros(a.shape, bool)
    sel[5:-5:step, 5:-5:step] = True
    return float(s[sel & windows].mean())


def _pairs(share, truth, image):
    """(reference, received) gray pairs: the share through VP8 (cropped as scored) and the
    fidelity fixtures' distortions."""
    screen, every, frames = share
    refs = media.share_reference(screen, SHARE, every)
    for i, f in enumerate(frames[:6]):
        ref = media.crop_share(refs.luma[2 * i], media.SHARE_KEEP, "right")
        yield (
            np.ascontiguousarray(ref),
            np.ascontiguousarray(media.crop_share(to_gray(f.image), media.SHARE_KEEP, "right")),
        )
    for p in truth["ssim_pairs"]:
        yield to_gray(image(p["reference"])), to_gray(image(p["distorted"]))


def test_cached_reference_ssim_equals_ssim_sum(share, truth, image):
    worst_sum = worst_64 = 0.0
    for a, b in _pairs(share, truth, image):
        code = np.ones(a.shape, bool)
        code[: a.shape[0] // 8, : a.shape[1] // 8] = False  # a block left out, as the code's
        for windows in (None, code):
            cached = SsimReference(a, windows)
            for step in (1, 2):
                total, count, _ = ssim_sum(a, b, 255.0, SSIM_SIGMA, mask=windows, step=step)
                c_total, c_count = cached.ssim_sum(b, step)
                assert c_count == count  # the same windows
                worst_sum = max(worst_sum, abs(c_total / c_count - total / count))
                truth64 = _ssim64(
                    a, b, np.ones(a.shape, bool) if windows is None else windows, step
                )
                worst_64 = max(worst_64, abs(c_total / c_count - truth64))
    print(f"cached SSIM: within {worst_sum:.2e} of ssim_sum, {worst_64:.2e} of float64")
    assert worst_sum < CACHED_VS_SSIM_SUM and worst_64 < CACHED_VS_FLOAT64


def test_cached_reference_is_valid_only_where_the_windows_read(share):
    screen, every, frames = share
    refs = media.share_reference(screen, SHARE, every)
    a = refs.luma[0]
    windows = np.ones(a.shape, bool)
    windows[:60, :80] = False  # no window centred here: the pixels up to 5 px inside unread
    cached = SsimReference(a, windows)
    b = to_gray(frames[0].image)
    before = cached.ssim_sum(b, 2)
    inside = a.copy()
    inside[:55, :75] ^= 0xFF  # 6 px or more from every scored window's centre: unread
    assert cached.covers(inside)
    for y, x in ((55, 74), (54, 75), (300, 300)):  # 5 px from (60, 74), (54, 80); anywhere
        read = a.copy()
        read[y, x] ^= 1
        assert not cached.covers(read), (y, x)
    read_too = read
    assert not cached.covers(a[:-1])  # another shape
    reused = a.copy()
    mine = SsimReference(reused, windows)
    reused[300, 300] ^= 1  # the caller's array changed in place: no longer the same
    assert not mine.covers(reused) and mine.covers(a)
    cached.rebase(read_too)  # replaced: the same as made afresh for that reference
    fresh = SsimReference(read_too, windows)
    assert cached.ssim_sum(b, 2) == fresh.ssim_sum(b, 2) != before
    assert cached.ssim_sum(b, 1) == fresh.ssim_sum(b, 1)
    with pytest.raises(ValueError, match="reference"):
        cached.rebase(a[:-1])


def test_score_mask_blurs_a_static_reference_once_and_follows_a_change(share):
    """The share's references differ only in the code, outside the scored windows: one
    reference half for every frame; a reference that changes where windows read replaces it."""
    screen, every, frames = share
    refs = media.share_reference(screen, SHARE, every)
    reads = media.share_reads(frames, (SCREEN_W, SCREEN_H))
    counts = []
    real = cmp._ScoreMask.scores

    def spy(self, ref, rec):
        out = real(self, ref, rec)
        counts.append(self.rebased)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cmp._ScoreMask, "scores", spy)
        rep = media.share_fidelity(refs, frames, "right", reads)
    assert len(counts) == len(frames) and counts[-1] == 1
    # a scrolling reference: every frame's reference differs where windows read
    gray = [to_gray(f.image) for f in frames[:5]]
    moving = [np.roll(to_gray(refs[0]), 3 * i, axis=0) for i in range(5)]
    mask = cmp._ScoreMask(np.ones(gray[0].shape, bool), exact=True)
    for i in range(5):
        s, _, _ = mask.scores(moving[i], gray[i])
        total, count, _ = ssim_sum(moving[i], gray[i], 255.0, SSIM_SIGMA, mask=mask.inner)
        assert abs(s - total / count) < CACHED_VS_SSIM_SUM
    assert mask.rebased == 5
    assert all(f.ssim is not None and f.ssim > 0.9 for f in rep.frames)


@pytest.mark.parametrize("channels", [3, 4])
def test_reference_luma_from_the_code_alone_is_byte_exact(channels):
    """ScaledStamps.frame_luma after its first frame: the edge kept, the inside from the gray
    code alone; the same bytes as cv2's luma of frame() for codes of every bit pattern (the
    share's layout: cells of 25 px at odd offsets, a half-size share)."""
    from harness.vision.timecode import ScaledStamps

    rng = np.random.default_rng(11 + channels)
    picture = rng.integers(0, 256, (SCREEN_H, SCREEN_W, channels), np.uint8)
    stamps = ScaledStamps(picture, media.timecode_layout(SCREEN_W, SCREEN_H), SHARE)
    code = cv2.COLOR_BGRA2GRAY if channels == 4 else cv2.COLOR_BGR2GRAY
    numbers = [0, 1, 2, 3, 7, 255, 4_000_000, 2**24 - 1] + rng.integers(0, 2**24, 24).tolist()
    for i, n in enumerate(numbers):
        t_ms = int(rng.integers(0, 2**32)) if i % 2 else 0
        assert np.array_equal(stamps.frame_luma(n, t_ms), cv2.cvtColor(stamps.frame(n, t_ms), code))
    assert stamps._inner is not None  # every frame after the first from the code alone


def test_lazy_frames_keep_only_the_newest_and_make_again():
    from harness.vision.image import LazyFrames

    made = []
    frames = LazyFrames(6, lambda i: made.append(i) or np.full((4, 4), i, np.uint8), keep=2)
    assert frames.keep == 2 and [frames[i][0, 0] for i in (0, 1, 1, 2, 0)] == [0, 1, 1, 2, 0]
    assert made == [0, 1, 2, 0] and frames.made == 4  # 0 was dropped for 2, made again
    with pytest.raises(ValueError, match="keep must be at least 1"):
        LazyFrames(2, lambda i: np.zeros((4, 4), np.uint8), keep=0)


def test_share_keeps_few_references_and_the_same_report(share):
    """share_fidelity holds SHARE_LUMA_KEEP reference lumas at a time (not one per code shown),
    makes each shown one once, and reports as when every one is kept."""
    screen, every, frames = share
    refs = media.share_reference(screen, SHARE, every)
    assert refs.luma.keep == media.SHARE_LUMA_KEEP
    kept = media.share_fidelity(refs, frames, "right")
    assert refs.luma.made == len({f.ref_index for f in kept.frames})  # none made twice
    assert len(refs.luma._made) <= media.SHARE_LUMA_KEEP
    every_kept = media.share_reference(screen, SHARE, every)
    every_kept.luma = LazyFramesAll(every_kept.luma)
    assert media.share_fidelity(every_kept, frames, "right").frames == kept.frames


class LazyFramesAll:
    """The same frames, every one kept (no `keep`)."""

    def __init__(self, frames) -> None:
        from harness.vision.image import LazyFrames

        self.inner = LazyFrames(len(frames), lambda i: frames[i])
        self.frame_nos = frames.frame_nos

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]
