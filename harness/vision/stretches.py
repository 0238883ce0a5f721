"""Stretches the agent sees nothing useful: blank frames, a loading animation, a secure window.

Per received frame (luma, thumbnailed to THUMB_SHORT_SIDE_PX for speed):
- "blank": uniform: at least UNIFORM_SHARE of the pixels within UNIFORM_TOLERANCE of the most
  common level, the top and bottom BAR_SHARE of the frame (status and navigation bars) left
  out (a black, white or single-colour frame);
- "loading": nearly blank (at least SPINNER_UNIFORM_SHARE uniform) and changed from the
  previous frame, but only in a small region (at most SPINNER_MAX_AREA of the frame): a spinner
  or a progress bar on an empty screen (HeadSpin flags a loading animation over 1 s); every
  frame of the run must change, so a blinking cursor on a page of text is no loading stretch;
- "hidden by the app": a blank frame while the device reported its focused window secure
  (FLAG_SECURE: Android sends such windows black to any capture); it is what the app asked for,
  neither a freeze nor a fidelity failure, and `content_mask` leaves these frames out of both;
  blank frames that run straight into hidden ones count as hidden (the device is polled, so
  its first secure answer comes a little after the window turned secure);
- otherwise "content".
A stretch is a run of one kind lasting at least MIN_STRETCH_S (the run's first frame to the
first frame after it); reported with count, longest and when.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from harness.vision.image import check_image, gray_of

MIN_STRETCH_S = 1.0
THUMB_SHORT_SIDE_PX = 120
UNIFORM_TOLERANCE = 10  # luma levels around the most common one
UNIFORM_SHARE = 0.995  # a page of text is 0.96-0.975 uniform at the thumbnail's size
SPINNER_UNIFORM_SHARE = 0.985  # nearly empty; a page of text is not
BAR_SHARE = 0.08  # the top and bottom bars (status, navigation) are left out of uniformity
SPINNER_MAX_AREA = 0.10
CHANGE_LEVEL = 12  # a pixel changed when its luma moved more than this
BLANK, LOADING, HIDDEN, CONTENT = "blank", "loading", "hidden by the app", "content"
FLAG_SECURE = 0x2000  # android.view.WindowManager.LayoutParams.FLAG_SECURE


def _thumb(frame: np.ndarray) -> np.ndarray:
    g = gray_of(frame)
    s = THUMB_SHORT_SIDE_PX / min(g.shape[:2])
    return cv2.resize(g, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else g


def _uniform_share(thumb: np.ndarray) -> float:
    hist = np.bincount(thumb.ravel(), minlength=256)
    mode = int(np.argmax(hist))
    lo, hi = max(0, mode - UNIFORM_TOLERANCE), min(255, mode + UNIFORM_TOLERANCE)
    return float(hist[lo : hi + 1].sum()) / thumb.size


def _in(t: float, intervals: Sequence[tuple[float, float]]) -> bool:
    return any(a <= t <= b for a, b in intervals)


def classify(
    frames: Sequence[np.ndarray],
    times_s: Sequence[float],
    *,
    hidden: Sequence[tuple[float, float]] = (),
) -> list[str]:
    """The kind of each frame: blank, loading, hidden by the app, or content.

    Args:
        frames: received frames in order (uint8 gray or BGR, any size).
        times_s: their times.
        hidden: (start, end) host times the device reported a secure window in front.
    """
    kinds: list[str] = []
    prev: np.ndarray | None = None
    for i, (f, t) in enumerate(zip(frames, times_s, strict=True)):
        thumb = _thumb(check_image(f, f"frame {i}", min_size=(8, 8)))
        bar = int(thumb.shape[0] * BAR_SHARE)
        share = _uniform_share(thumb[bar : thumb.shape[0] - bar])
        area = 0.0
        if prev is not None and prev.shape == thumb.shape:
            area = float((cv2.absdiff(thumb, prev) > CHANGE_LEVEL).mean())
        kind = CONTENT
        if share >= UNIFORM_SHARE and _in(t, hidden):
            kind = HIDDEN
        elif share >= SPINNER_UNIFORM_SHARE and 0 < area <= SPINNER_MAX_AREA:
            kind = LOADING
        elif share >= UNIFORM_SHARE:
            kind = BLANK
        kinds.append(kind)
        prev = thumb
    # the device is polled: blank frames running straight into hidden ones are the same window
    for order in (range(1, len(kinds)), range(len(kinds) - 2, -1, -1)):
        for i in order:
            j = i - 1 if order.step == 1 else i + 1
            if kinds[i] == BLANK and kinds[j] == HIDDEN:
                kinds[i] = HIDDEN
    return kinds


@dataclass(frozen=True)
class Stretch:
    """A run of frames of one kind: when it started, how long it lasted, how many frames."""

    kind: str
    start_s: float
    duration_s: float
    frames: int


def stretches(
    kinds: Sequence[str], times_s: Sequence[float], *, min_s: float = MIN_STRETCH_S
) -> list[Stretch]:
    """Runs of blank, loading or hidden frames lasting at least min_s. A run's duration is from
    its first frame to the next frame of another kind (or its last frame at the end)."""
    out: list[Stretch] = []
    i, n = 0, len(kinds)
    while i < n:
        j = i
        while j + 1 < n and kinds[j + 1] == kinds[i]:
            j += 1
        if kinds[i] != CONTENT:
            end = times_s[j + 1] if j + 1 < n else times_s[j]
            if end - times_s[i] >= min_s:
                out.append(Stretch(kinds[i], float(times_s[i]), float(end - times_s[i]), j - i + 1))
        i = j + 1
    return out


def summary(found: Sequence[Stretch]) -> dict[str, dict]:
    """Per kind: count, longest (s) and when (start times)."""
    out: dict[str, dict] = {}
    for kind in (BLANK, LOADING, HIDDEN):
        mine = [s for s in found if s.kind == kind]
        out[kind] = {
            "count": len(mine),
            "longest_s": round(max((s.duration_s for s in mine), default=0.0), 3),
            "when_s": [round(s.start_s, 3) for s in mine],
        }
    return out


def content_mask(kinds: Sequence[str]) -> list[bool]:
    """False for frames a secure window hid: leave them out of fidelity and freeze figures."""
    return [k != HIDDEN for k in kinds]


def window_is_secure(dumpsys_window: str) -> bool:
    """Whether the focused window carries FLAG_SECURE, from `dumpsys window windows` output:
    the focused window's `fl=` field, as flag names (`SECURE`) or a hex mask (`fl=#2002100`)."""
    focus = re.search(r"mCurrentFocus=Window\{\S+ \S+ (\S+?)\}", dumpsys_window)
    if not focus:
        return False
    blocks = re.split(r"\n  Window #\d+ ", dumpsys_window)
    for block in blocks:
        if focus.group(1) not in block.split("\n", 1)[0]:
            continue
        m = re.search(r"\bfl=(#?[0-9a-fA-F]+\b|[A-Z_ ]+?)(?= [a-z]+=|\}|\n)", block)
        if not m:
            continue
        value = m.group(1)
        if value.startswith("#"):
            return bool(int(value[1:], 16) & FLAG_SECURE)
        return "SECURE" in value.split()
    return False
