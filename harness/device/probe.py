"""Probe a device's capabilities over adb (the thin loop around the pure parsers)."""

from __future__ import annotations

from harness.device.adb import SHELL_TIMEOUT_S, Device
from harness.device.capabilities import (
    Capabilities,
    api_level_of,
    capabilities_from,
    probe_commands,
)
from harness.device.parsers import ShellOutputError, parse_getprop
from harness.errors import DeviceError


def probe(device: Device, timeout_s: float = SHELL_TIMEOUT_S) -> Capabilities:
    """Run the probe commands of the device's API level and parse what they print.

    Raises:
        DeviceError: an output that is not what its command prints (names the command).
        AdbError / AdbTimeoutError: the device went away or a command hung.
    """
    outputs: dict[str, str] = {}
    getprop = device.shell("getprop", timeout_s=timeout_s).stdout
    try:
        api = api_level_of(parse_getprop(getprop))
    except ShellOutputError as e:
        raise DeviceError(device.serial, str(e)) from None
    for cmd in probe_commands(api):
        outputs[cmd] = (
            getprop if cmd == "getprop" else device.shell(cmd, timeout_s=timeout_s).stdout
        )
    try:
        return capabilities_from(outputs)
    except ShellOutputError as e:
        raise DeviceError(device.serial, str(e)) from None
