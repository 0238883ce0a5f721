"""An STF-compatible farm (DeviceFarmer STF REST API v1) in front of device twins."""

from harness.twin.stf.farm import FarmDevice, StfFarm
from harness.twin.stf.runner import FarmRunner, parse_twins

__all__ = ["FarmDevice", "FarmRunner", "StfFarm", "parse_twins"]
