"""Network profiles and the shapers that apply them (docs/network.md).

One profile library (harness/network/profiles.yaml, plus user files), four shapers:
EmulatorConsoleShaper (emulator console), NetemShaper (tc netem + htb), WifiShaper (the
device's Wi-Fi switch), RelayShaper (the harness's userspace relay). Names are imported on
first use so that `hil --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NetworkProfile": "harness.network.profiles",
    "Direction": "harness.network.profiles",
    "GilbertElliott": "harness.network.profiles",
    "OutageSchedule": "harness.network.profiles",
    "load_network_profile": "harness.network.profiles",
    "network_profiles": "harness.network.profiles",
    "Shaper": "harness.network.shaper",
    "ShapingReport": "harness.network.shaper",
    "EmulatorConsoleShaper": "harness.network.console",
    "NetemShaper": "harness.network.netem",
    "CommandRunner": "harness.network.runner",
    "WifiShaper": "harness.network.wifi",
    "RelayShaper": "harness.network.impairment",
    "RelayProcess": "harness.network.impairment",
    "RelayCounters": "harness.network.impairment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harness.network' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
