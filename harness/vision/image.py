"""Checks on image arrays, shared by every vision module (numpy only; to_gray calls OpenCV's
converter, imported when first used).

Every function that takes a frame validates it here first, so that a wrong shape or dtype ends
in a MeasurementError that names the frame, its shape and dtype, never in a traceback from deep
inside OpenCV.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from harness.errors import MeasurementError

_CHANNELS = (1, 3, 4)
# ITU-R BT.601 luma weights for B, G, R (the order OpenCV and PyAV's "bgr24" use).
LUMA_WEIGHTS_BGR = (0.114, 0.587, 0.299)


def check_image(
    frame: object, what: str = "frame", *, min_size: tuple[int, int] = (1, 1)
) -> np.ndarray:
    """Validate an 8-bit image: (H, W) gray or (H, W, C) with C in 1, 3 (BGR), 4 (BGRA).

    Args:
        frame: the array to check.
        what: how to name it in an error ("frame 12", "reference frame"...).
        min_size: smallest (width, height) accepted.

    Returns:
        The same array (not copied).

    Raises:
        MeasurementError: not an array, wrong dtype, wrong number of dimensions or channels, or
            smaller than min_size; the message names `what`, the shape and the dtype.
    """
    if not isinstance(frame, np.ndarray):
        raise MeasurementError(f"{what}: expected a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise MeasurementError(
            f"{what}: expected dtype uint8, got {frame.dtype} (shape {frame.shape})"
        )
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in _CHANNELS):
        raise MeasurementError(
            f"{what}: expected shape (H, W) or (H, W, 1|3|4), got {frame.shape} ({frame.dtype})"
        )
    h, w = frame.shape[:2]
    if w < min_size[0] or h < min_size[1]:
        raise MeasurementError(
            f"{what}: {w}x{h} is smaller than the {min_size[0]}x{min_size[1]} needed "
            f"(shape {frame.shape}, {frame.dtype})"
        )
    return frame


def check_same_shape(a: np.ndarray, b: np.ndarray, what_a: str, what_b: str) -> None:
    """Raise MeasurementError unless two images have the same shape."""
    if a.shape != b.shape:
        raise MeasurementError(f"{what_a} has shape {a.shape} but {what_b} has shape {b.shape}")


def gray_of(frame: np.ndarray) -> np.ndarray:
    """Luma of a checked image as uint8 (no copy for a gray image); numpy only."""
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    b, g, r = LUMA_WEIGHTS_BGR
    y = frame[:, :, 0] * b + frame[:, :, 1] * g + frame[:, :, 2] * r
    return np.clip(y + 0.5, 0, 255).astype(np.uint8)


class LazyFrames(Sequence):
    """A sequence of frames each made by `make(i)` when first asked for (then kept): its
    consumers pay only for the frames they look at (a timecode-aligned comparison looks at the
    reference frames that were shown, half of them for a share at 15 fps of a 30 fps code).

    `keep`: keep only the newest `keep` frames made (a frame asked for again after that is made
    again): a pass over the frames in order then reuses the same memory instead of holding every
    frame (new memory costs page faults: about 0.2 ms for a 640x400 frame)."""

    def __init__(self, n: int, make: Callable[[int], np.ndarray], keep: int | None = None) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"LazyFrames: keep must be at least 1, got {keep}")
        self._n, self._make, self._keep = int(n), make, keep
        self._made: dict[int, np.ndarray] = {}
        self._count = 0
        self.frame_nos: list[int] | None = None  # the code stamped in each, when known
        self.luma: LazyFrames | None = None  # the same frames' luma, when made apart

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # int -> frame; slice -> list of frames
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        j = i + self._n if i < 0 else i
        if not 0 <= j < self._n:
            raise IndexError(f"LazyFrames: index {i} out of range for {self._n} frames")
        f = self._made.get(j)
        if f is None:
            f = self._made[j] = self._make(j)
            self._count += 1
            if self._keep is not None and len(self._made) > self._keep:
                del self._made[next(iter(self._made))]  # the oldest made
        return f

    @property
    def keep(self) -> int | None:
        """How many of the newest frames made are kept (None: every one)."""
        return self._keep

    @property
    def made(self) -> int:
        """How many frames were made so far (a frame made again counts again)."""
        return self._count


def to_gray(img: np.ndarray) -> np.ndarray:
    """OpenCV's luma (BT.601) of a uint8 BGR / BGRA image; a gray one as it is."""
    if img.ndim == 2:
        return img
    if img.shape[2] == 1:
        return img[:, :, 0]
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
