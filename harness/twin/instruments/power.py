"""A tablet's power as the relay sees it: off = unplugged from adb; on = boots back.

A reference model for tests and for wiring the twin: `on_power(on)` is the callback a
RelaySim calls; `is_on_adb()` and `boot_completed()` answer as `adb devices` and
`getprop sys.boot_completed` would. The real twin replaces this with its process: stop it on
off, start it on on, with the same timing (adb first, sys.boot_completed last).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from harness.twin.instruments.serialsim import TruthSink

log = logging.getLogger(__name__)

ADB_AFTER_S = 0.5  # power on -> device visible on adb
BOOT_COMPLETED_AFTER_S = 1.0  # power on -> sys.boot_completed=1 (always after adb)


class TabletPower:
    """Boot timing of one simulated tablet, driven by its power supply.

    Args:
        adb_after_s: from power on to the device answering on adb.
        boot_completed_after_s: from power on to sys.boot_completed=1; must be later.
        powered: whether the tablet is powered (and booted) at start.
        record: optional ground-truth sink, called as record(event, t, **fields).

    Raises:
        ValueError: boot_completed would come before adb.
    """

    def __init__(
        self,
        adb_after_s: float = ADB_AFTER_S,
        boot_completed_after_s: float = BOOT_COMPLETED_AFTER_S,
        *,
        powered: bool = True,
        record: TruthSink | None = None,
    ):
        if boot_completed_after_s < adb_after_s:
            raise ValueError("sys.boot_completed comes last: boot_completed_after_s < adb_after_s")
        self.adb_after_s = adb_after_s
        self.boot_completed_after_s = boot_completed_after_s
        self._record = record
        self._lock = threading.Lock()
        self._powered = powered
        self._t_on = float("-inf") if powered else None
        self.truth: list[dict[str, Any]] = []

    def on_power(self, on: bool) -> None:
        """The relay switched the supply (the RelaySim callback)."""
        t = time.monotonic()
        with self._lock:
            if on == self._powered:
                return
            self._powered = on
            self._t_on = t if on else None
        self._note("power_on" if on else "power_off", t)
        if on:
            self._note("adb_up", t + self.adb_after_s, scheduled=True)
            self._note("boot_completed", t + self.boot_completed_after_s, scheduled=True)

    @property
    def powered(self) -> bool:
        return self._powered

    def is_on_adb(self) -> bool:
        """True once the booting tablet shows up on adb; False while off."""
        return self._since_on() >= self.adb_after_s

    def boot_completed(self) -> bool:
        """True once sys.boot_completed would read 1."""
        return self._since_on() >= self.boot_completed_after_s

    def _since_on(self) -> float:
        with self._lock:
            t_on = self._t_on
        return float("-inf") if t_on is None else time.monotonic() - t_on

    def _note(self, event: str, t: float, **fields: Any) -> None:
        self.truth.append({"t": t, "event": event, **fields})
        if self._record is not None:
            try:
                self._record(f"tablet_{event}", t, **fields)
            except Exception:  # a broken sink must not stop the tablet
                log.exception("tablet: ground-truth sink failed")
