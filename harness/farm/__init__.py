"""Finding and leasing devices: private adb servers, twins started as processes and their typed
control client, child processes of a run and its reaper (docs/architecture.md)."""

from harness.farm.adbserver import (
    AdbServer,
    adb_binary,
    free_port,
    free_port_block,
    host_query,
    parse_devices,
    port_free,
)
from harness.farm.control import TwinControl, TwinControlError
from harness.farm.twins import TwinInfo, TwinProcess

__all__ = [
    "AdbServer",
    "TwinControl",
    "TwinControlError",
    "TwinInfo",
    "TwinProcess",
    "adb_binary",
    "free_port",
    "free_port_block",
    "host_query",
    "parse_devices",
    "port_free",
]
