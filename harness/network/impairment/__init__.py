"""The harness's userspace impairment relay (UDP and TCP) and RelayShaper.

Media that can be pointed at a HOST:PORT goes through the relay, which forwards it to the real
peer and applies a profile on the way: `forward` traffic (client -> target) gets the profile's
`up` direction by default, replies get `down`. It is how CI applies lossy profiles without
netem, and it covers the UDP that TCP-only proxies cannot.

Rooms: settings (limits, addresses, the settings both relays share), counters (what a relay
did), udp (UdpRelay), tcp (TcpRelay), shaper (RelayShaper: the Shaper contract), process
(RelayProcess: the relay as a child process).

Counters say what the relay did; the accuracy of its delays and rates is measured from outside
it in tests/network/test_relay_accuracy.py.
"""

from harness.network.impairment.counters import DirectionCounters, DirectionStats, RelayCounters
from harness.network.impairment.process import RelayProcess
from harness.network.impairment.settings import (
    TCP_CAPABILITIES,
    UDP_CAPABILITIES,
    Address,
    parse_hostport,
)
from harness.network.impairment.shaper import RelayShaper
from harness.network.impairment.tcp import TcpRelay
from harness.network.impairment.udp import UdpRelay

__all__ = [
    "TCP_CAPABILITIES",
    "UDP_CAPABILITIES",
    "Address",
    "DirectionCounters",
    "DirectionStats",
    "RelayCounters",
    "RelayProcess",
    "RelayShaper",
    "TcpRelay",
    "UdpRelay",
    "parse_hostport",
]
