"""The twin's lab bench: a simulated WALT whose photodiode watches the twin's screen, and a
simulated USB relay that powers the twin (off: gone from adb like an unplugged tablet; on:
boots back, adb first, sys.boot_completed last). Both on pseudo-terminals, for the real drivers
in harness.instruments."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

ADB_AFTER_S = 2.0
BOOT_COMPLETED_AFTER_S = 4.0


class TwinLab:
    def __init__(
        self,
        twin: Twin,
        walt: bool = False,
        relay: bool = False,
        adb_after_s: float = ADB_AFTER_S,
        boot_completed_after_s: float = BOOT_COMPLETED_AFTER_S,
    ):
        if boot_completed_after_s < adb_after_s:
            raise ValueError("sys.boot_completed comes last: boot_completed_after_s < adb_after_s")
        self.twin = twin
        self.want_walt, self.want_relay = walt, relay
        self.adb_after_s, self.boot_completed_after_s = adb_after_s, boot_completed_after_s
        self.walt = None
        self.relay = None
        self.signal = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._boot: asyncio.Task | None = None

    def start(self) -> dict[str, str]:
        """Open the ptys; returns {"walt": path, "relay": path} for what was asked."""
        from harness.twin.instruments.relay_sim import RelaySim
        from harness.twin.instruments.steps import StepSignal
        from harness.twin.instruments.walt_sim import WaltSim

        self.loop = asyncio.get_running_loop()
        out = {}
        if self.want_walt:
            self.signal = StepSignal(self.twin.screen.probe_luminance())
            self.twin.screen.luma_signal = self.signal
            self.walt = WaltSim(
                brightness_source=self.signal, record=self.twin.truth.record
            ).start()
            out["walt"] = self.walt.path
        if self.want_relay:
            self.relay = RelaySim(
                on_power=self._on_power, initially_on=True, record=self.twin.truth.record
            ).start()
            out["relay"] = self.relay.path
        return out

    def _on_power(self, on: bool) -> None:
        """Relay contacts switched (the sim's worker thread): hand it to the twin's loop."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._power, on)

    def _power(self, on: bool) -> None:
        if self._boot is not None:
            self._boot.cancel()
        self._boot = asyncio.ensure_future(
            self.twin.power(on, self.adb_after_s, self.boot_completed_after_s)
        )

    def stop(self) -> None:
        """Close the ptys. Never raises."""
        for sim in (self.walt, self.relay):
            if sim is not None:
                try:
                    sim.stop()
                except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                    log.info("stopping %s: %s", sim, e)
