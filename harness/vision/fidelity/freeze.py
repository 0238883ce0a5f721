"""Freezes: an interval between rendered frames of at least max(3 x mean, mean + 150 ms) over the
previous 30 intervals (the WebRTC stats definition, freezeCount)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FREEZE_MIN_EXTRA_S = 0.150  # WebRTC: a freeze is >= max(3 x mean, mean + 150 ms)
FREEZE_MEAN_FACTOR = 3.0
FREEZE_WINDOW_FRAMES = 30  # the mean is over the previous 30 rendered-frame intervals


@dataclass(frozen=True)
class Freeze:
    """A freeze: a gap between rendered frames of at least max(3 x mean, mean + 150 ms).

    Attributes:
        start_s: time of the last frame before the gap.
        duration_s: the gap.
        threshold_s: the limit it exceeded.
    """

    start_s: float
    duration_s: float
    threshold_s: float


def freezes(render_times_s: Sequence[float]) -> list[Freeze]:
    """Freezes among rendered (new) frames, by the WebRTC stats definition (freezeCount).

    The mean interval is over the previous FREEZE_WINDOW_FRAMES intervals (at least one).
    """
    t = np.asarray(render_times_s, dtype=float)
    out: list[Freeze] = []
    for j in range(1, len(t) - 1):
        d = t[j + 1] - t[j]
        prev = np.diff(t[max(0, j - FREEZE_WINDOW_FRAMES) : j + 1])
        mean = float(prev.mean())
        limit = max(FREEZE_MEAN_FACTOR * mean, mean + FREEZE_MIN_EXTRA_S)
        if d >= limit:
            out.append(Freeze(float(t[j]), float(d), limit))
    return out
