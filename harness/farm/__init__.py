"""Finding and leasing devices: private adb servers, twins started as processes."""

from harness.farm.adbserver import (
    AdbServer,
    adb_binary,
    free_port,
    free_port_block,
    host_query,
    parse_devices,
    port_free,
)
from harness.farm.twins import TwinInfo, TwinProcess

__all__ = [
    "AdbServer",
    "TwinInfo",
    "TwinProcess",
    "adb_binary",
    "free_port",
    "free_port_block",
    "host_query",
    "parse_devices",
    "port_free",
]
