"""A piecewise-constant signal of host time: what a sensor of a simulated instrument looks at.

The simulated WALT samples its sources at past host times (it catches up in batches, as a
sampling ADC would have seen them), so a source must answer for any time in the recent past.
A StepSignal does that cheaply: whoever changes the world (the twin's framebuffer, a test's
fake screen or speaker) calls `set(t, value)` with the host time the change really happened,
which may lie slightly in the future (a frame scheduled for the next vsync).
"""

from __future__ import annotations

import bisect
import threading
import time

HISTORY_S = 10.0  # how far back a signal remembers its changes


class StepSignal:
    """value(t) = the value of the last change at or before host time t.

    Thread-safe; `__call__` is what the simulators call (host monotonic seconds -> value).

    Args:
        initial: the value before any change.
        history_s: changes older than this (relative to the newest) are forgotten.
    """

    def __init__(self, initial: float = 0.0, history_s: float = HISTORY_S):
        self._times: list[float] = []
        self._values: list[float] = []
        self._initial = float(initial)
        self._history_s = history_s
        self._lock = threading.Lock()

    def set(self, t: float | None, value: float) -> float:
        """Record that the signal takes `value` from host time `t` (now if None); returns t.

        Changes may arrive out of order; a change at the same time replaces the earlier one.
        """
        t = time.monotonic() if t is None else float(t)
        with self._lock:
            i = bisect.bisect_right(self._times, t)
            if i > 0 and self._times[i - 1] == t:
                self._values[i - 1] = float(value)
            else:
                self._times.insert(i, t)
                self._values.insert(i, float(value))
            self._prune()
        return t

    def pulse(self, t: float, value: float, width_s: float, rest: float = 0.0) -> None:
        """A rectangular pulse: `value` during [t, t + width_s), then `rest`."""
        self.set(t, value)
        self.set(t + width_s, rest)

    def __call__(self, t: float) -> float:
        with self._lock:
            i = bisect.bisect_right(self._times, t)
            return self._values[i - 1] if i else self._initial

    def changes(self) -> list[tuple[float, float]]:
        """(host time, value) of every remembered change, oldest first."""
        with self._lock:
            return list(zip(self._times, self._values, strict=True))

    def _prune(self) -> None:
        if not self._times:
            return
        horizon = self._times[-1] - self._history_s
        k = bisect.bisect_left(self._times, horizon)
        if k > 1:  # keep one change before the horizon so old times still answer right
            self._initial = self._values[k - 2]
            del self._times[: k - 1]
            del self._values[: k - 1]
