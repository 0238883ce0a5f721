"""Privacy checks on what the agent received: private content in share frames, by OpenCV;
secure (FLAG_SECURE) windows, from `dumpsys window`, whose black frames are the app's choice.

The reference is the harness's own capture of the tablet showing the private app; its content
area, scaled to the share's size, is searched in every frame the agent received (normalised
cross-correlation). A frame scoring above LEAK_SCORE shows the private content. The threshold is
low on purpose: a codec's first frames after a scene change are soft (scores of 0.7-0.85 seen),
and a privacy check must not miss a leak; a masked frame scores near 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from harness.errors import HarnessError, MeasurementError

log = logging.getLogger(__name__)

LEAK_SCORE = 0.6
SECURE_POLL_S = 1.0  # dumpsys window, for frames a FLAG_SECURE window hid (one call a second)


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


SHARE_LAG_S = 0.5  # a hidden window's black frames reach the agent up to this much later


class SecureWatch:
    """Polls `dumpsys window windows` for a FLAG_SECURE window in front; the intervals it was
    (from the request of the first secure answer to the arrival of the last)."""

    def __init__(self, device):
        self.device = device
        self.intervals: list[tuple[float, float]] = []
        self.polls = 0
        self.errors = 0
        self._open: float | None = None
        self._last = 0.0

    def poll(self) -> bool:
        """One poll (bounded by the shell's timeout); a failed poll is counted, not raised."""
        import time

        from harness.vision.stretches import window_is_secure

        t_req = time.monotonic()
        try:
            out = self.device.shell("dumpsys window windows", timeout_s=5).stdout
        except HarnessError as e:
            self.errors += 1
            log.warning("secure-window poll %d failed (counted, not retried): %s", self.errors, e)
            return False
        self.polls += 1
        secure = window_is_secure(out)
        if secure:
            self._open = t_req if self._open is None else self._open
            self._last = time.monotonic()
        elif self._open is not None:
            self.intervals.append((self._open, t_req))
            self._open = None
        return secure

    def watch(self, seconds: float, every_s: float = SECURE_POLL_S) -> None:
        """Poll every `every_s` for `seconds` (at most seconds / every_s + 1 polls)."""
        import time

        deadline = time.monotonic() + seconds
        for _ in range(int(seconds / every_s) + 2):
            self.poll()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(every_s, left))

    def closed(self, lag_s: float = 0.0) -> list[tuple[float, float]]:
        """The intervals, the one still open closed at its last answer; each stretched by
        `lag_s` (a share lags the screen: a black frame that late is still the window's)."""
        out = list(self.intervals)
        if self._open is not None:
            out.append((self._open, self._last))
        return [(a, b + lag_s) for a, b in out]
