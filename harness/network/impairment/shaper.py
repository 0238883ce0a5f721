"""RelayShaper: the impairment relay behind the Shaper contract (harness.network.shaper)."""

from __future__ import annotations

from harness.errors import NetworkShaperError
from harness.network.impairment.counters import RelayCounters
from harness.network.impairment.settings import (
    TCP_CAPABILITIES,
    UDP_CAPABILITIES,
    Address,
    check_forward,
)
from harness.network.impairment.tcp import TcpRelay
from harness.network.impairment.udp import UdpRelay
from harness.network.profiles import NetworkProfile
from harness.network.shaper import Shaper


class RelayShaper(Shaper):
    """A profile applied by the userspace relay: point the media at .address.

    Args:
        profile: the profile.
        target: (host, port) the relay forwards to.
        listen: (host, port) to listen on (port 0: any; see .address).
        protocol: "udp" or "tcp".
        seed: seed of every random decision (same seed, same drops).
        forward: profile direction of client -> target traffic.
        approximate: TCP only: leave out loss, duplication, reordering and queue limits with a
            warning instead of refusing.

    Raises:
        NetworkShaperError: bad protocol or a profile TCP cannot carry. Nothing was started.
    """

    kind = "relay"

    def __init__(
        self,
        profile: NetworkProfile,
        target: Address,
        *,
        listen: Address = ("127.0.0.1", 0),
        protocol: str = "udp",
        seed: int = 0,
        forward: str = "up",
        approximate: bool = False,
    ):
        if protocol not in ("udp", "tcp"):
            raise NetworkShaperError(f"relay protocol must be 'udp' or 'tcp', got {protocol!r}")
        self.protocol = protocol
        self.target_addr = target
        self.listen = listen
        self.seed = seed
        self.forward = check_forward(forward)
        super().__init__(
            profile,
            f"{protocol} {listen[0]}:{listen[1]} -> {target[0]}:{target[1]}",
            approximate=approximate,
        )
        cls = UdpRelay if protocol == "udp" else TcpRelay
        self.relay: UdpRelay | TcpRelay = cls(
            listen, target, self.profile, seed=seed, forward=self.forward
        )
        self.final_counters: RelayCounters | None = None

    def capabilities(self) -> dict[str, str]:
        return dict(UDP_CAPABILITIES if self.protocol == "udp" else TCP_CAPABILITIES)

    @property
    def address(self) -> Address:
        """Where to point the media (valid once applied)."""
        if self.relay.address is None:
            raise NetworkShaperError("relay is not running: apply() first")
        return self.relay.address

    def counters(self) -> RelayCounters:
        return self.final_counters or self.relay.counters()

    def _apply(self) -> None:
        addr = self.relay.start()
        self.target = (
            f"{self.protocol} {addr[0]}:{addr[1]} -> {self.target_addr[0]}:{self.target_addr[1]}"
        )
        self.report.target = self.target
        self.report.note(f"relay listening on {addr[0]}:{addr[1]}")

    def _clear(self) -> None:
        self.relay.stop()
        self.final_counters = self.relay.counters()
        self.report.note(self.final_counters.describe())
