"""fit_geometry stops once two starts refine to one fit: the fit of every start refined, for
fewer refinements, on a half-size share through VP8."""

from __future__ import annotations

import cv2
import numpy as np

from harness.session.media import SHARE_KEEP, crop_share, timecode_layout
from harness.vision import synthesis as sy
from harness.vision.fidelity import alignment


def _share() -> tuple[np.ndarray, np.ndarray]:
    clip = sy.ScreenClip(1280, 800, seed=5, layout=timecode_layout(1280, 800))
    ref = sy.resize(clip.frame(0), 640, 400)
    rec = sy.transcode([ref] * 4, codec="libvpx", bit_rate=400_000, fps=15)[-1]
    return (
        cv2.cvtColor(crop_share(ref, SHARE_KEEP), cv2.COLOR_BGR2GRAY),
        cv2.cvtColor(crop_share(rec, SHARE_KEEP), cv2.COLOR_BGR2GRAY),
    )


def test_two_agreeing_starts_end_the_search(monkeypatch):
    ref, rec = _share()
    starts: list[np.ndarray] = []
    refine = alignment._ecc_refine

    def counting(r, c, m0):
        starts.append(m0)
        return refine(r, c, m0)

    monkeypatch.setattr(alignment, "_ecc_refine", counting)
    # the live share's flat screens refine to ~0.9 (below ECC_GOOD); this one to 0.99+
    monkeypatch.setattr(alignment, "ECC_GOOD", 1.01)
    fast = alignment.fit_geometry(ref, rec)
    n_fast, agree_px = len(starts), alignment.AGREE_PX
    monkeypatch.setattr(alignment, "AGREE_PX", -1.0)  # every start refined
    starts.clear()
    full = alignment.fit_geometry(ref, rec)
    assert n_fast < len(starts)
    gap = np.abs(
        alignment._corners(fast.matrix, ref.shape) - alignment._corners(full.matrix, ref.shape)
    )
    assert gap.max() <= agree_px
    assert abs(fast.ecc - full.ecc) <= 1e-3
