"""Boot timing through a power switch: boot_to_adb_s and boot_completed_s.

The harness cuts the power, waits for the device to leave adb, powers it back and polls two
probes with a bounded interval: "is it on adb?" then "is sys.boot_completed 1?". Each figure
is the midpoint of the interval in which its probe turned true (from the start of the last
false poll to the end of the first true one), with half that interval as its uncertainty.
The probes are plain callables so any adb client plugs in, e.g. with adbutils:

    is_on_adb = lambda: any(d.serial == serial for d in adb.device_list())
    boot_completed = lambda: adb.device(serial).getprop("sys.boot_completed") == "1"

A probe must return quickly (give the adb client a short timeout); one that raises counts as
false (the device is still booting).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.errors import InstrumentError, MeasurementError
from harness.instruments.power_relay import CYCLE_OFF_S, PowerSwitch
from harness.measure import Measurement

log = logging.getLogger(__name__)

BOOT_TO_ADB_S = "boot_to_adb_s"
BOOT_COMPLETED_S = "boot_completed_s"
POLL_S = 0.1  # probe interval
OFFLINE_TIMEOUT_S = 10.0  # the device must leave adb this soon after power off
ADB_TIMEOUT_S = 120.0  # power on -> on adb
COMPLETED_TIMEOUT_S = 180.0  # power on -> sys.boot_completed

Probe = Callable[[], bool]


@dataclass(frozen=True)
class BootTiming:
    """One power-on, timed from the switch command (host monotonic seconds)."""

    t_power_on: float
    to_adb_s: float
    to_adb_uncertainty_s: float
    to_completed_s: float
    to_completed_uncertainty_s: float


def _probe(fn: Probe) -> bool:
    try:
        return bool(fn())
    except Exception as e:  # noqa: BLE001 -- a booting device makes adb calls fail: that is "not yet"
        log.debug("probe %s: %s", getattr(fn, "__name__", fn), e)
        return False


def wait_for(probe: Probe, timeout_s: float, poll_s: float = POLL_S) -> tuple[float, float] | None:
    """Poll until probe() is true; the host-time interval it turned true in, or None.

    Returns (start of the last false poll, end of the first true poll); every poll and sleep
    is bounded by the deadline.
    """
    deadline = time.monotonic() + timeout_s
    last_false = time.monotonic()
    while True:
        t0 = time.monotonic()
        ok = _probe(probe)
        t1 = time.monotonic()
        if ok:
            return last_false, t1
        last_false = t0
        if t1 >= deadline:
            return None
        time.sleep(max(0.0, min(poll_s, deadline - t1)))


def time_boot(
    switch: PowerSwitch,
    is_on_adb: Probe,
    boot_completed: Probe,
    *,
    off_s: float = CYCLE_OFF_S,
    poll_s: float = POLL_S,
    offline_timeout_s: float = OFFLINE_TIMEOUT_S,
    adb_timeout_s: float = ADB_TIMEOUT_S,
    completed_timeout_s: float = COMPLETED_TIMEOUT_S,
) -> BootTiming:
    """Power-cycle one device and time its boot.

    Raises:
        InstrumentError: the device stayed on adb after power off (switch not wired to it).
        MeasurementError: it did not come back on adb, or never completed booting, in time.
    """
    switch.off()
    t_off = time.monotonic()
    if wait_for(lambda: not _probe(is_on_adb), offline_timeout_s, poll_s) is None:
        raise InstrumentError(
            f"device still on adb {offline_timeout_s:g} s after power off: "
            "is the switch wired to this device (or does its battery keep it up)?"
        )
    time.sleep(max(0.0, t_off + off_s - time.monotonic()))
    t_on = time.monotonic()
    switch.on()
    adb = wait_for(is_on_adb, adb_timeout_s, poll_s)
    if adb is None:
        raise MeasurementError(
            f"{BOOT_TO_ADB_S}: not on adb within {adb_timeout_s:g} s of power on"
        )
    remaining = completed_timeout_s - (time.monotonic() - t_on)
    done = wait_for(boot_completed, max(0.0, remaining), poll_s)
    if done is None:
        raise MeasurementError(
            f"{BOOT_COMPLETED_S}: sys.boot_completed not 1 within "
            f"{completed_timeout_s:g} s of power on"
        )
    a_lo, a_hi = adb
    c_lo, c_hi = max(done[0], a_lo), done[1]  # boot completion cannot precede adb
    return BootTiming(
        t_power_on=t_on,
        to_adb_s=0.5 * (a_lo + a_hi) - t_on,
        to_adb_uncertainty_s=0.5 * (a_hi - a_lo),
        to_completed_s=0.5 * (c_lo + c_hi) - t_on,
        to_completed_uncertainty_s=0.5 * (c_hi - c_lo),
    )


def measure_boot(
    switch: PowerSwitch,
    is_on_adb: Probe,
    boot_completed: Probe,
    cycles: int = 1,
    **kwargs: float,
) -> tuple[Measurement, Measurement]:
    """boot_to_adb_s and boot_completed_s over `cycles` power cycles (kwargs as time_boot)."""
    to_adb = Measurement(BOOT_TO_ADB_S, "s")
    to_done = Measurement(BOOT_COMPLETED_S, "s")
    for i in range(cycles):
        b = time_boot(switch, is_on_adb, boot_completed, **kwargs)
        to_adb.add(b.to_adb_s, t=b.t_power_on, uncertainty=b.to_adb_uncertainty_s, cycle=i)
        to_done.add(
            b.to_completed_s, t=b.t_power_on, uncertainty=b.to_completed_uncertainty_s, cycle=i
        )
    return to_adb, to_done
