"""Onset of live agent video in a pane: the pane leaves its placeholder and shows a picture.

For an agent the harness does not control (a human in a console, a third-party bot), there is
no timecode to decode. The detector watches the pane's crops, frame by frame:

- Each crop is reduced to a grid of cell means (GRID cells, RGB), which averages away capture
  noise and codec grain.
- A crop is *flat* when fewer than STRUCT_FRAC of its cells differ from the crop's median
  colour by more than CELL_DIFF grey levels: a colour fill, a fill with a spinner, a progress
  bar, a line of "waiting..." text. Flat crops are placeholders (and are learned as such).
- The first crop and every flat crop are learned as placeholder states (at most MAX_STATES).
  A structured crop whose cells stay within CELL_DIFF of a learned state on all but
  STRUCT_FRAC of the pane is that placeholder again (a static logo, its noise).
- A *candidate* is a structured crop that differs from every learned state on at least
  STRUCT_FRAC of its cells. CONFIRM consecutive candidates are the onset; its time is the
  first candidate's arrival.

Uncertainty (stated, and proven in tests/session against the twin's truth): the onset lies
between the previous capture's request and the first candidate's arrival (one capture
interval), plus the detector's latency: none for a cut to the picture; for a fade-in from the
placeholder of duration F, the picture is recognised once STRUCT_FRAC of the cells differ by
CELL_DIFF: at most FADE_LATENCY_FRACTION * F for a picture whose contrast against its own
background is >= MIN_CONTRAST grey levels on a fifth of the pane (a head and shoulders in
front of a wall). Pure numpy; never touches a device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GRID = (12, 16)  # rows, columns of cells
CELL_DIFF = 24.0  # grey levels (max over channels) for a cell to count as different
STRUCT_FRAC = 0.08  # fraction of the pane's cells that must differ
CONFIRM = 3  # consecutive candidate frames
MAX_STATES = 32  # learned placeholder states kept
FADE_LATENCY_FRACTION = 0.4  # of a fade-in's duration (see the module docstring)
MIN_CONTRAST = 80.0  # grey levels
_STATE_DEDUP = 4.0  # grey levels: a flat state this close to a known one is not stored again


def cells(crop: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Mean colour per grid cell (rows, cols, channels) as float32; crops smaller than the grid
    use one pixel per cell."""
    img = np.asarray(crop)
    if img.ndim == 2:
        img = img[..., None]
    img = img[..., :3].astype(np.float32)
    h, w = img.shape[:2]
    rows, cols = min(grid[0], h), min(grid[1], w)
    if h % rows == 0 and w % cols == 0:  # exact blocks: a reshape
        return img.reshape(rows, h // rows, cols, w // cols, -1).mean(axis=(1, 3))
    ys = np.linspace(0, h, rows + 1).astype(int)
    xs = np.linspace(0, w, cols + 1).astype(int)
    # block means by cumulative sums (any size, no resampling library)
    integral = np.zeros((h + 1, w + 1, img.shape[2]), np.float64)
    integral[1:, 1:] = img.cumsum(0).cumsum(1)
    a = integral[ys[1:]][:, xs[1:]] - integral[ys[:-1]][:, xs[1:]]
    a -= integral[ys[1:]][:, xs[:-1]] - integral[ys[:-1]][:, xs[:-1]]
    area = np.outer(np.diff(ys), np.diff(xs))[..., None]
    return (a / area).astype(np.float32)


def structure(g: np.ndarray) -> float:
    """Fraction of cells whose colour differs from the grid's median colour by > CELL_DIFF."""
    median = np.median(g.reshape(-1, g.shape[-1]), axis=0)
    return float((np.abs(g - median).max(axis=-1) > CELL_DIFF).mean())


def changed_fraction(g: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of cells differing from a reference grid by > CELL_DIFF."""
    return float((np.abs(g - ref).max(axis=-1) > CELL_DIFF).mean())


@dataclass
class Onset:
    """The detected onset: the first candidate frame's index and time, and the confirmation."""

    index: int
    t: float
    confirmed_index: int
    confirmed_t: float
    change: float  # fraction of cells differing from the nearest placeholder state


@dataclass
class OnsetDetector:
    """Feed pane crops in capture order with update(); .onset is set once confirmed."""

    confirm: int = CONFIRM
    struct_frac: float = STRUCT_FRAC
    states: list[np.ndarray] = field(default_factory=list)
    onset: Onset | None = None
    frames: int = 0
    _run: list[tuple[int, float, float]] = field(default_factory=list)

    def placeholder_distance(self, g: np.ndarray) -> float:
        """Changed fraction against the nearest learned placeholder state (1.0 if none)."""
        return min((changed_fraction(g, s) for s in self.states), default=1.0)

    def _learn(self, g: np.ndarray) -> None:
        if any(float(np.abs(g - s).max()) <= _STATE_DEDUP for s in self.states):
            return
        self.states.append(g)
        if len(self.states) > MAX_STATES:
            self.states.pop(1)  # keep the first state (the pane as it appeared)

    def is_candidate(self, crop: np.ndarray) -> bool:
        """True when the crop shows a picture that is none of the placeholders (learns flats)."""
        g = cells(crop)
        if not self.states:
            self._learn(g)
            return False
        if structure(g) < self.struct_frac:
            self._learn(g)
            return False
        return self.placeholder_distance(g) >= self.struct_frac

    def update(self, crop: np.ndarray, t: float) -> bool:
        """One captured crop at host time t (its arrival). Returns True once the onset is confirmed."""
        if self.onset is not None:
            return True
        index = self.frames
        self.frames += 1
        if not self.is_candidate(crop):
            self._run.clear()
            return False
        self._run.append((index, t, self.placeholder_distance(cells(crop))))
        if len(self._run) >= self.confirm:
            first = self._run[0]
            self.onset = Onset(first[0], first[1], index, t, first[2])
            return True
        return False

    @staticmethod
    def stated_latency_s(fade_in_s: float = 0.0) -> float:
        """The detector's latency bound for a picture that fades in over fade_in_s (0: a cut)."""
        return FADE_LATENCY_FRACTION * max(0.0, fade_in_s)
