"""Simulated serial instruments on pseudo-terminals: a WALT latency probe and a USB power relay.

The harness drives them through pyserial exactly as it drives real hardware: it opens the pty
slave path (`sim.path`) like /dev/ttyACM0. Each simulator records what it really did on the
host's monotonic clock (its ground truth). See docs/walt.md and docs/instruments.md.
"""

from harness.twin.instruments.power import TabletPower
from harness.twin.instruments.relay_sim import RelaySim
from harness.twin.instruments.serialsim import PtyPort, SerialSim
from harness.twin.instruments.steps import StepSignal
from harness.twin.instruments.walt_sim import WaltSim, WaltSimConfig

__all__ = [
    "PtyPort",
    "RelaySim",
    "SerialSim",
    "StepSignal",
    "TabletPower",
    "WaltSim",
    "WaltSimConfig",
]
