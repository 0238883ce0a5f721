"""The share's quality plot: SSIM per frame above SSIMULACRA2 per second, stretches shaded."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from harness.measure import Measurement
from harness.profiles.budget import Budget, Limit
from harness.report.extras import attach_plots
from harness.report.plots import _SHADES, quality_series_png

BUDGET = Budget(
    "default",
    "budgets.yaml",
    (Limit("share_ssimulacra2", "p50", ">=", 50.0, ""), Limit("share_ssim", "mean", ">=", 0.9, "")),
)


def _decode(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def test_two_panels_over_the_same_time_with_the_stretch_shaded():
    t = list(np.arange(100.0, 110.0, 0.1))
    ssim = [0.99] * len(t)
    s2 = [80.0, 78.0, 20.0, 21.0, 79.0, 80.0, 81.0, 80.0, 79.0, 80.0]
    png = quality_series_png(
        (t, ssim, "share_ssim", [("mean >= 0.9", 0.9)]),
        (list(np.arange(100.0, 110.0)), s2, "share_ssimulacra2", [("p50 >= 50", 50.0)]),
        "share quality",
        [(102.0, 2.0, "blank")],
    )
    img = _decode(png)
    assert img.shape == (460, 640, 3)
    # the shaded stretch: the blank colour fills a column band at 2-4 s of the 10 s axis, in both
    # panels; outside it (at 7 s) the background is white
    blank = np.array(_SHADES["blank"], np.uint8)
    x_in = int(64 + (640 - 64 - 20) * 0.3)
    x_out = int(64 + (640 - 64 - 20) * 0.7)
    column_in, column_out = img[40:410, x_in], img[40:410, x_out]
    assert (np.abs(column_in.astype(int) - blank).sum(axis=1) == 0).mean() > 0.5
    assert (np.abs(column_out.astype(int) - blank).sum(axis=1) == 0).mean() == 0


def test_attach_plots_draws_the_series_beside_another_measurement():
    ssim, s2 = Measurement("share_ssim", ""), Measurement("share_ssimulacra2", "")
    for k in range(30):
        ssim.add(0.99, t=50.0 + k / 15)
    for k in range(2):
        s2.add(75.0, t=50.0 + k)
    extras: list = []
    attach_plots(extras, s2, BUDGET, "share", kinds=("series",), beside=ssim, shaded=[])
    attach_plots(extras, s2, BUDGET, "share", kinds=("series",))
    both, alone = extras
    assert both["name"] == "share_ssimulacra2 and share_ssim over time"
    assert alone["name"] == "share_ssimulacra2 over time"
    assert _decode(base64.b64decode(both["content"])).shape[0] == 460
    assert _decode(base64.b64decode(alone["content"])).shape[0] == 360
