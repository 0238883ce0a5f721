"""Serial instruments over pyserial: a WALT-compatible latency probe and a USB power relay.

See docs/walt.md (the WALT protocol and clock sync) and docs/instruments.md (relay, CLI,
real hardware). Names are imported lazily so that `hil --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "boot": (
        "BOOT_COMPLETED_S",
        "BOOT_TO_ADB_S",
        "BootTiming",
        "measure_boot",
        "time_boot",
        "wait_for",
    ),
    "clock": ("RemoteClock", "SyncPoint"),
    "walt_latency": (
        "AUDIO_OUTPUT_MS",
        "SCREEN_DRAW_MS",
        "TAP_TO_DRAW_MS",
        "WALT_SYNC_UNCERTAINTY_MS",
        "PhotodiodeCalibration",
        "calibrate_photodiode",
        "measure_audio_output",
        "measure_screen_draw",
        "measure_tap_to_draw",
        "sync_uncertainty",
    ),
    "power_relay": ("LcusRelay", "PowerSwitch", "lcus_frame", "open_switch"),
    "serialport": ("PortInfo", "SerialLink", "find_ports"),
    "walt": ("DriftCheck", "Trigger", "Walt", "find_walt"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
