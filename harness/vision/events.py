"""Events: when did the screen change into a given state (connect time, UI transitions).

A state is a detector that scores a frame (0..1) and a threshold. The event is the first frame
of the first run of `hold_frames` consecutive frames that all score at or above the threshold,
so that an animation passing through the state, or a compression artefact, does not trigger it.
Its time is that frame's; the state began after the previous frame, which bounds the error to
one frame interval.

Detectors: a UI element by template matching (TemplateState), a region looking like a
reference picture (ReferenceState, by SSIM), a readable timecode (TimecodeState: the agent's
video is shown), and a region that changed from a baseline (ChangeState).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.vision.image import check_image, to_gray
from harness.vision.timecode import TimecodeLayout, decode

Region = tuple[int, int, int, int]  # x, y, width, height in pixels
DEFAULT_HOLD_FRAMES = 3
_REFERENCE_SHORT_SIDE_PX = 96  # ReferenceState compares thumbnails of this size
_CHANGE_LEVELS = 30  # ChangeState: a pixel changed if it moved by more than this (8-bit)


def crop(frame: np.ndarray, region: Region | None, what: str = "frame") -> np.ndarray:
    """The region of a frame (the whole frame for None).

    Raises:
        MeasurementError: the region is empty or not inside the frame.
    """
    if region is None:
        return frame
    x, y, w, h = (int(v) for v in region)
    fh, fw = frame.shape[:2]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > fw or y + h > fh:
        raise MeasurementError(f"{what}: region {region} is not inside the {fw}x{fh} frame")
    return frame[y : y + h, x : x + w]


@dataclass(frozen=True)
class Match:
    """Where a template matched: score (normalised correlation), box and scale."""

    score: float
    x: int
    y: int
    w: int
    h: int
    scale: float


def find_template(
    frame: np.ndarray,
    template: np.ndarray,
    *,
    region: Region | None = None,
    scales: Iterable[float] = (1.0,),
) -> Match | None:
    """Best match of a UI element in a frame (normalised cross-correlation, on luma).

    Args:
        frame: the screen.
        template: the element's picture.
        region: where to look (default everywhere).
        scales: template scales to try (a scaled share or another density).

    Returns:
        The best match (coordinates in the frame), or None when the template does not fit.

    Raises:
        MeasurementError: bad frame or template, or a region outside the frame.
    """
    check_image(frame, "frame")
    check_image(template, "template")
    hay = to_gray(crop(frame, region))
    tpl0 = to_gray(template)
    ox, oy = (region[0], region[1]) if region else (0, 0)
    best: Match | None = None
    for s in scales:
        tpl = tpl0 if s == 1.0 else cv2.resize(tpl0, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        th, tw = tpl.shape[:2]
        if th < 3 or tw < 3 or th > hay.shape[0] or tw > hay.shape[1]:
            continue
        if float(tpl.std()) < 1e-3:
            continue  # a flat template correlates with nothing
        res = cv2.matchTemplate(hay, tpl, cv2.TM_CCOEFF_NORMED)
        res = np.nan_to_num(res, nan=-1.0, posinf=-1.0, neginf=-1.0)
        _, score, _, loc = cv2.minMaxLoc(res)
        if best is None or score > best.score:
            best = Match(float(score), loc[0] + ox, loc[1] + oy, tw, th, float(s))
    return best


class TemplateState:
    """The state "this UI element is visible": template match score >= threshold."""

    def __init__(
        self,
        template: np.ndarray,
        *,
        region: Region | None = None,
        threshold: float = 0.8,
        scales: Iterable[float] = (1.0,),
    ):
        check_image(template, "template")
        self.template, self.region, self.threshold = template, region, float(threshold)
        self.scales = tuple(scales)

    def __call__(self, frame: np.ndarray) -> float:
        m = find_template(frame, self.template, region=self.region, scales=self.scales)
        return 0.0 if m is None else max(0.0, m.score)


class ReferenceState:
    """The state "this region looks like the reference picture": SSIM of thumbnails."""

    def __init__(
        self, reference: np.ndarray, *, region: Region | None = None, threshold: float = 0.8
    ):
        check_image(reference, "reference picture")
        self.region, self.threshold = region, float(threshold)
        self._ref = self._thumb(to_gray(reference))

    @staticmethod
    def _thumb(gray: np.ndarray) -> np.ndarray:
        s = _REFERENCE_SHORT_SIDE_PX / min(gray.shape[:2])
        if s < 1:
            gray = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        return gray

    def __call__(self, frame: np.ndarray) -> float:
        from harness.vision.fidelity import ssim

        part = to_gray(crop(frame, self.region))
        thumb = self._thumb(part)
        if thumb.shape != self._ref.shape:
            thumb = cv2.resize(part, self._ref.shape[::-1], interpolation=cv2.INTER_AREA)
        return max(0.0, float(ssim(self._ref, thumb)))


class TimecodeState:
    """The state "a timecode is readable" (e.g. the agent's timecoded video is on screen)."""

    threshold = 0.5

    def __init__(self, layout: TimecodeLayout | None = None, *, region: Region | None = None):
        self.layout, self.region = layout, region
        self.last_frame_no: int | None = None

    def __call__(self, frame: np.ndarray) -> float:
        part = crop(frame, self.region)
        read = decode(part, self.layout, robust=self.layout is None)
        self.last_frame_no = read.frame_no
        return 1.0 if read.ok else 0.0


class ChangeState:
    """The state "the region differs from the baseline": the fraction of pixels that moved by
    more than _CHANGE_LEVELS (after a 5x5 blur against compression noise), scaled so that
    `min_fraction` scores 1."""

    threshold = 1.0

    def __init__(
        self, baseline: np.ndarray, *, region: Region | None = None, min_fraction: float = 0.2
    ):
        check_image(baseline, "baseline frame")
        self.region, self.min_fraction = region, float(min_fraction)
        self._base = cv2.GaussianBlur(to_gray(crop(baseline, region, "baseline")), (5, 5), 0)

    def __call__(self, frame: np.ndarray) -> float:
        part = cv2.GaussianBlur(to_gray(crop(frame, self.region)), (5, 5), 0)
        if part.shape != self._base.shape:
            raise MeasurementError(
                f"ChangeState: frame region {part.shape} differs from the baseline's "
                f"{self._base.shape}"
            )
        changed = (
            float(np.count_nonzero(cv2.absdiff(part, self._base) > _CHANGE_LEVELS)) / part.size
        )
        return min(1.0, changed / self.min_fraction)


@dataclass(frozen=True)
class Event:
    """The first frame of a state.

    Attributes:
        index: the frame's index in the sequence.
        t_s: its time.
        prev_t_s: the previous frame's time (the state began after it), None for frame 0.
        score: the detector's score on that frame.
    """

    index: int
    t_s: float
    prev_t_s: float | None
    score: float

    @property
    def uncertainty_s(self) -> float:
        """Half the interval the change happened in."""
        return 0.0 if self.prev_t_s is None else 0.5 * (self.t_s - self.prev_t_s)


def _timed(frames: Iterable, fps: float) -> Iterable[tuple[float, np.ndarray]]:
    for i, item in enumerate(frames):
        if isinstance(item, np.ndarray):
            yield i / fps, item
        elif hasattr(item, "image") and hasattr(item, "t_s"):
            yield float(item.t_s), item.image
        else:
            t, img = item
            yield float(t), img


def first_state(
    frames: Iterable,
    detector: Callable[[np.ndarray], float],
    *,
    threshold: float | None = None,
    hold_frames: int = DEFAULT_HOLD_FRAMES,
    fps: float = 30.0,
) -> Event | None:
    """The first frame from which the screen stays in a state for `hold_frames` frames.

    Args:
        frames: arrays (timed i / fps), (t_s, array) pairs, or VideoFrame objects.
        detector: frame -> score (e.g. TemplateState, ReferenceState, TimecodeState).
        threshold: score at or above which the state holds (default detector.threshold).
        hold_frames: consecutive frames that must hold (debounce against animations).
        fps: frame rate for bare arrays.

    Returns:
        The event, or None when the state never holds for long enough.

    Raises:
        MeasurementError: a bad frame (named by index), or no threshold.
    """
    if threshold is None:
        threshold = getattr(detector, "threshold", None)
        if threshold is None:
            raise MeasurementError("first_state: no threshold given and the detector has none")
    hold_frames = max(1, int(hold_frames))
    run_start: tuple[int, float, float | None, float] | None = None
    run = 0
    prev_t: float | None = None
    for i, (t, img) in enumerate(_timed(frames, fps)):
        check_image(img, f"frame {i}")
        score = float(detector(img))
        if score >= threshold:
            if run == 0:
                run_start = (i, t, prev_t, score)
            run += 1
            if run >= hold_frames:
                return Event(*run_start)  # type: ignore[misc]
        else:
            run = 0
        prev_t = t
    return None


def scores(
    frames: Iterable, detector: Callable[[np.ndarray], float], *, fps: float = 30.0
) -> list[tuple[float, float]]:
    """(t_s, score) of every frame: to plot or debug a detector."""
    out = []
    for i, (t, img) in enumerate(_timed(frames, fps)):
        check_image(img, f"frame {i}")
        out.append((t, float(detector(img))))
    return out
