"""Privacy checks on what the agent received: private content in share frames, by OpenCV.

The reference is the harness's own capture of the tablet showing the private app; its content
area, scaled to the share's size, is searched in every frame the agent received (normalised
cross-correlation). A frame scoring above LEAK_SCORE shows the private content. The threshold is
low on purpose: a codec's first frames after a scene change are soft (scores of 0.7-0.85 seen),
and a privacy check must not miss a leak; a masked frame scores near 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from harness.errors import MeasurementError

LEAK_SCORE = 0.6


@dataclass(frozen=True)
class LeakCheck:
    frames: int
    leaked: list[int]  # indices of frames that show the private content
    best_score: float

    @property
    def clean(self) -> bool:
        return not self.leaked


def private_template(
    screen_bgr: np.ndarray, region: tuple[int, int, int, int], share_size: tuple[int, int]
) -> np.ndarray:
    """The private region of a full-resolution screenshot, scaled as the share scales the screen.

    Args:
        screen_bgr: the tablet's screen showing the private app.
        region: (x1, y1, x2, y2) of the private content on screen (e.g. the app's body view).
        share_size: (width, height) of the share frames.
    """
    h, w = screen_bgr.shape[:2]
    sx, sy = share_size[0] / w, share_size[1] / h
    small = cv2.resize(screen_bgr, share_size, interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = (
        int(round(region[0] * sx)),
        int(round(region[1] * sy)),
        int(round(region[2] * sx)),
        int(round(region[3] * sy)),
    )
    tpl = small[y1:y2, x1:x2]
    if tpl.size == 0 or tpl.shape[0] < 4 or tpl.shape[1] < 4:
        raise MeasurementError(f"private region {region} is too small at share size {share_size}")
    if float(tpl.std()) < 2.0:
        raise MeasurementError(f"private region {region} is flat (no content to look for)")
    return tpl


def check_frames(
    frames: list[np.ndarray], template: np.ndarray, threshold: float = LEAK_SCORE
) -> LeakCheck:
    """Which received frames contain the private template."""
    leaked, best = [], -1.0
    t_gray = cv2.cvtColor(template, cv2.COLOR_BGR2GRAY)
    for i, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if gray.shape[0] < t_gray.shape[0] or gray.shape[1] < t_gray.shape[1]:
            raise MeasurementError(
                f"received frame {i} ({gray.shape[1]}x{gray.shape[0]}) is smaller than the template"
            )
        score = float(cv2.matchTemplate(gray, t_gray, cv2.TM_CCOEFF_NORMED).max())
        best = max(best, score)
        if score >= threshold:
            leaked.append(i)
    return LeakCheck(len(frames), leaked, best)
