"""The run's devices (moved: finding and leasing devices is the farm's job).

Kept so that `harness.plugin.run` imports keep working; see harness.farm.devices.
"""

from harness.farm.devices import DeviceSpec, HilRun, parse_twin_option

__all__ = ["DeviceSpec", "HilRun", "parse_twin_option"]
