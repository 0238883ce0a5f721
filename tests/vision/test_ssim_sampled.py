"""The sampled SSIM keeps every verdict: on the fidelity fixtures and a share through VP8 at
rates from starved to clean, the SSIM over every 2nd window of every 2nd row is within half of
SSIM_SAMPLE_MARGIN of the SSIM over every window, and compare() (sampled, then exact near the
floor) gives every frame and the p50 the same verdict against SSIM_FLOOR as the exact scoring."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.session.media import SHARE_KEEP, crop_share, timecode_layout
from harness.vision import synthesis as sy
from harness.vision.fidelity import comparison as cmp
from harness.vision.fidelity.similarity import SSIM_SIGMA, ssim_sum

SCREEN_W, SCREEN_H = 1280, 800  # a tablet; the share at half size, as the twins send it
SHARE_W, SHARE_H = 640, 400
FRAMES = 16
BITS_PER_PIXEL = (0.01, 0.03, 0.1, 0.3)  # SSIM from about 0.89 to 0.999


@pytest.fixture(scope="module")
def shares() -> dict[float, tuple[list[np.ndarray], list[np.ndarray]]]:
    """(references, received) of a half-size share through VP8, per bit rate."""
    clip = sy.ScreenClip(
        SCREEN_W, SCREEN_H, seed=7, layout=timecode_layout(SCREEN_W, SCREEN_H), scroll_px=4
    )
    refs = [sy.resize(clip.frame(i), SHARE_W, SHARE_H) for i in range(FRAMES)]
    out = {}
    for bpp in BITS_PER_PIXEL:
        rec = sy.transcode(refs, codec="libvpx", bit_rate=int(bpp * SHARE_W * SHARE_H * 30), fps=30)
        out[bpp] = (
            [crop_share(r, SHARE_KEEP) for r in refs],
            [crop_share(r, SHARE_KEEP) for r in rec],
        )
    return out


def _p50_ok(values: list[float]) -> bool:
    return float(np.percentile(values, 50)) >= cmp.SSIM_FLOOR


def test_sampled_ssim_is_within_half_the_margin(truth, image, shares):
    gaps = []
    for p in truth["ssim_pairs"]:
        a = cv2.cvtColor(image(p["reference"]), cv2.COLOR_BGR2GRAY)
        b = cv2.cvtColor(image(p["distorted"]), cv2.COLOR_BGR2GRAY)
        full = ssim_sum(a, b, 255.0, SSIM_SIGMA)
        part = ssim_sum(a, b, 255.0, SSIM_SIGMA, step=cmp.SSIM_SAMPLE_STEP)
        assert part[1] < full[1] / 3  # a sample, not every window
        gaps.append(abs(full[0] / full[1] - part[0] / part[1]))
    for refs, rec in shares.values():
        exact = cmp.compare(refs, rec, align="timecode", exact_ssim=True)
        assert all(e.ssim_exact and e.ssim is not None for e in exact.frames)
        # every frame sampled: the floor moved out of reach
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cmp, "SSIM_FLOOR", -10.0)
            sampled = cmp.compare(refs, rec, align="timecode")
        for e, s in zip(exact.frames, sampled.frames, strict=True):
            assert s.ssim_exact is False
            gaps.append(abs(e.ssim - s.ssim))
    print(f"sampled SSIM: largest gap {max(gaps):.5f} over {len(gaps)} frames")
    assert max(gaps) <= cmp.SSIM_SAMPLE_MARGIN / 2


def test_compare_keeps_every_verdict(shares):
    exact_near_floor = sampled_frames = 0
    p50_verdicts = set()
    for bpp, (refs, rec) in shares.items():
        exact = cmp.compare(refs, rec, align="timecode", exact_ssim=True)
        fast = cmp.compare(refs, rec, align="timecode")
        for e, f in zip(exact.frames, fast.frames, strict=True):
            assert (e.ref_index, e.psnr_db) == (f.ref_index, f.psnr_db)
            assert (e.ssim >= cmp.SSIM_FLOOR) == (f.ssim >= cmp.SSIM_FLOOR), (bpp, e.index)
            if f.ssim_exact:
                assert f.ssim == e.ssim
                exact_near_floor += 1
            else:
                assert abs(f.ssim - e.ssim) <= cmp.SSIM_SAMPLE_MARGIN
                assert abs(f.ssim - cmp.SSIM_FLOOR) > cmp.SSIM_SAMPLE_MARGIN
                sampled_frames += 1
        ok = _p50_ok([f.ssim for f in exact.frames])
        assert _p50_ok([f.ssim for f in fast.frames]) == ok, bpp
        p50_verdicts.add(ok)
    assert p50_verdicts == {True, False}  # the rates reach both sides of the budget
    assert sampled_frames > exact_near_floor  # most frames cost the sample only


def test_received_clip_fixture_keeps_its_verdicts(fixtures_dir):
    from harness.vision.video import read_frames

    refs = [f.image for f in read_frames(fixtures_dir / "clips/sent.mp4", gray=True)]
    rec = [f.image for f in read_frames(fixtures_dir / "clips/received.mp4", gray=True)]
    exact = cmp.compare(refs, rec, exact_ssim=True)
    fast = cmp.compare(refs, rec)
    for e, f in zip(exact.frames, fast.frames, strict=True):
        assert e.ref_index == f.ref_index
        assert abs(e.ssim - f.ssim) <= cmp.SSIM_SAMPLE_MARGIN / 2
        assert (e.ssim >= cmp.SSIM_FLOOR) == (f.ssim >= cmp.SSIM_FLOOR)


def test_the_floor_is_the_shipped_budgets_share_ssim_limit():
    """SSIM_FLOOR is where sampled values are scored again: it must be the share_ssim limit of
    every budget the project ships (a budget with another floor keeps the sampled values'
    SSIM_SAMPLE_MARGIN, not the exact rescoring at its own floor)."""
    from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets

    floors = {
        (b.name, lim.stat, lim.op, lim.value)
        for b in load_budgets(DEFAULT_PROFILES_DIR / "budgets.yaml").values()
        for lim in b.for_metric("share_ssim")
    }
    assert floors and {(op, v) for _, _, op, v in floors} == {(">=", cmp.SSIM_FLOOR)}, floors
