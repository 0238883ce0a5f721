"""Serial instruments: screen draw latency by photodiode, and power-cycle recovery."""

from __future__ import annotations

import time

import pytest

from harness.instruments.boot import BOOT_COMPLETED_S, BOOT_TO_ADB_S, time_boot
from harness.instruments.power_relay import LcusRelay
from harness.instruments.walt import Walt
from harness.instruments.walt_latency import measure_screen_draw

WALT_APP = "com.mayday.hil.walt"
TRANSITIONS = 20
DRAW_SEED = 1  # the order of black/white transitions, the same every run
POLL_TIMEOUT_S = 2.0  # one adb state / getprop poll while the device boots
POWER_OFF_S = 1.0  # the relay keeps the power off this long


@pytest.mark.budget("screen_draw_ms")
def test_screen_draw_latency_by_photodiode(device, hil_device, measure):
    if not hil_device.walt_port:
        pytest.skip(f"{device.serial}: no WALT (pass --walt PORT, or --twin-lab for twins)")
    device.shell(f"am start -n {WALT_APP}/.Main", check=True)

    def draw(white: bool) -> float:
        t = time.monotonic()
        device.shell(
            f"am broadcast -a com.mayday.hil.DRAW --ez white {str(white).lower()}", check=True
        )
        return t

    with Walt.open(hil_device.walt_port) as walt:
        m = measure_screen_draw(walt, draw, n=TRANSITIONS, seed=DRAW_SEED)
    m.meta["device"] = device.serial
    measure.measurements.append(m)
    measure.check(m)


@pytest.mark.budget("boot_to_adb_s")
def test_power_cycle_recovery(device, hil_device, hil_state, measure):
    if not hil_device.relay_port:
        pytest.skip(f"{device.serial}: no power relay (pass --relay PORT, or --twin-lab for twins)")
    client = device.client

    def on_adb() -> bool:
        state = device.state(timeout_s=POLL_TIMEOUT_S)
        if state != "device" and ":" in device.serial:
            # a farm reconnects network devices
            client.connect(device.serial, timeout=POLL_TIMEOUT_S)
        return state == "device"

    def completed() -> bool:
        return device.getprop("sys.boot_completed", timeout_s=POLL_TIMEOUT_S) == "1"

    with LcusRelay(hil_device.relay_port) as relay:
        timing = time_boot(relay, on_adb, completed, off_s=POWER_OFF_S)
    to_adb = measure(BOOT_TO_ADB_S, "s")
    to_adb.add(timing.to_adb_s, uncertainty=timing.to_adb_uncertainty_s)
    to_completed = measure(BOOT_COMPLETED_S, "s")
    to_completed.add(timing.to_completed_s, uncertainty=timing.to_completed_uncertainty_s)
    measure.check(to_adb)
    measure.check(to_completed)
