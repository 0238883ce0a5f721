"""The impairment relay's limits, address parsing and RelaySettings, the base of the UDP and TCP
relays (what both are given and the state both keep)."""

from __future__ import annotations

import logging
import socket
import threading

from harness.errors import NetworkShaperError
from harness.network import profiles as P
from harness.network.profiles import NetworkProfile

log = logging.getLogger(__name__)

DEFAULT_QUEUE_PACKETS = 1000  # netem's default limit
MAX_DATAGRAM_B = 65535
MAX_UDP_CLIENTS = 64
MAX_TCP_CONNECTIONS = 64
SOCKET_BUFFER_B = 4 * 1024 * 1024
UDP_IPV4_OVERHEAD_B = 28
UDP_IPV6_OVERHEAD_B = 48
MAX_HOLD_SAMPLES = 200_000
IDLE_WAIT_S = 0.2  # longest a loop blocks before looking at its stop flag
MAX_RUN_S = 86_400.0  # a relay stops by itself after this long
STOP_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 5.0
SEND_TIMEOUT_S = 10.0
RECV_BATCH = 128
PINNED = "pinned"  # selector tag of a pinned relay's upstream socket
SHORT_WAIT_S = 0.002  # below this the UDP loop waits with select() (us) instead of epoll (ms)
TCP_CHUNK_MAX_B = 65536
TCP_CHUNK_MIN_B = 1024
TCP_CHUNK_S = 0.005  # at a rate limit, read about this much transfer time per chunk
TCP_QUEUE_CHUNKS = 256


Address = tuple[str, int]

TCP_CAPABILITIES = {
    P.DELAY: "delay line",
    P.JITTER: "uniform delay per chunk, order kept",
    P.ASYMMETRIC_DELAY: "one model per direction",
    P.RATE: "serialisation of the stream",
    P.OUTAGE_SCHEDULE: "stall while down",
    P.OFFLINE: "stall everything",
}
UDP_CAPABILITIES = {
    **TCP_CAPABILITIES,
    P.JITTER: "uniform delay per packet",
    P.RATE: "serialisation queue (IP bytes)",
    P.OUTAGE_SCHEDULE: "drop while down",
    P.OFFLINE: "drop everything",
    P.LOSS: "seeded Bernoulli loss",
    P.BURST_LOSS: "seeded Gilbert-Elliott",
    P.REORDER: "sent at once, ahead of the delayed ones",
    P.DUPLICATE: "second copy",
    P.QUEUE_LIMIT: "tail drop past N packets held",
}


def parse_hostport(text: str) -> Address:
    """`HOST:PORT` or `[V6]:PORT` -> (host, port).

    Raises:
        NetworkShaperError: not of that form.
    """
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise NetworkShaperError(f"{text!r} is not HOST:PORT")
    return host, int(port)


class RelaySettings:
    """What UdpRelay and TcpRelay are given and the state both keep: the bound address once
    started, refused clients, the stop flag, the forwarding thread and the listening socket.

    Raises:
        NetworkShaperError: forward is neither "up" nor "down".
    """

    protocol = ""

    def __init__(
        self,
        listen: Address,
        target: Address,
        profile: NetworkProfile | None = None,
        *,
        seed: int = 0,
        forward: str = "up",
        max_duration_s: float = MAX_RUN_S,
    ):
        self.listen = listen
        self.target = target
        self.max_duration_s = max_duration_s
        self.profile = profile or clean_profile()
        self.seed = seed
        self.forward_dir = check_forward(forward)
        self.reverse_dir = "down" if self.forward_dir == "up" else "up"
        self.address: Address | None = None
        self.refused_clients = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._init_state()

    def _init_state(self) -> None:
        """The state of one kind of relay (called last by __init__)."""


def clean_profile() -> NetworkProfile:
    return NetworkProfile("none", "no impairment", "harness")


def check_forward(forward: str) -> str:
    if forward not in ("up", "down"):
        raise NetworkShaperError(f"forward must be 'up' or 'down', got {forward!r}")
    return forward


def address_family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def big_buffers(sock: socket.socket) -> None:
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER_B)
        except OSError:
            pass


def drain(sock: socket.socket) -> None:
    for _ in range(64):
        try:
            if not sock.recv(4096):
                return
        except OSError:
            return
