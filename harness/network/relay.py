"""The harness's userspace impairment relay (UDP and TCP) and RelayShaper.

Media that can be pointed at a HOST:PORT goes through the relay, which forwards it to the real
peer and applies a profile on the way: `forward` traffic (client -> target) gets the profile's
`up` direction by default, replies get `down`. It is how CI applies lossy profiles without
netem, and it covers the UDP that TCP-only proxies cannot.

UDP: one thread runs one loop (selectors + a timer heap): receive, decide (LinkModel), hold in
a delay line, then a serialisation queue at the profile's rate, then send. Each client address
gets its own upstream socket so replies find their way back. Rates count IP bytes (payload + 28
for IPv4/UDP, + 48 for IPv6), as a link does. A direction with nothing to do is forwarded
straight from the receive loop.

TCP: two threads per direction of each connection (reader, writer). A byte stream cannot lose,
duplicate or reorder without corrupting the application's data, so the TCP relay expresses
delay, jitter (order-preserving), rate and outages (the stream stalls) only.

Counters say what the relay did; the accuracy of its delays and rates is measured from outside
it in tests/network/test_relay_accuracy.py.
"""

from __future__ import annotations

import heapq
import logging
import math
import queue
import select
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import NetworkShaperError
from harness.farm.process import Child
from harness.network import profiles as P
from harness.network.link import DROP_BURST, DROP_RANDOM, LinkModel
from harness.network.profiles import NetworkProfile
from harness.network.shaper import Shaper

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
_RECV_BATCH = 128
_PINNED = "pinned"  # selector tag of a pinned relay's upstream socket
_SHORT_WAIT_S = 0.002  # below this the UDP loop waits with select() (us) instead of epoll (ms)
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


# ---------------------------------------------------------------------------------------------
# Counters


@dataclass
class DirectionCounters:
    """What the relay did to one direction (live; read a snapshot with .snapshot())."""

    direction: str
    received: int = 0
    received_bytes: int = 0
    forwarded: int = 0
    forwarded_bytes: int = 0
    dropped_random: int = 0
    dropped_burst: int = 0
    dropped_outage: int = 0
    dropped_queue: int = 0
    dropped_send: int = 0
    duplicated: int = 0
    reordered: int = 0
    hold_ms: list[float] = field(default_factory=list, repr=False)

    def hold(self, seconds: float) -> None:
        if len(self.hold_ms) < MAX_HOLD_SAMPLES:
            self.hold_ms.append(seconds * 1000.0)

    def snapshot(self) -> DirectionStats:
        holds = sorted(self.hold_ms)
        values = {k: v for k, v in asdict(self).items() if k != "hold_ms"}
        return DirectionStats(
            **values,
            hold_samples=len(holds),
            hold_ms_p50=_pct(holds, 50),
            hold_ms_p99=_pct(holds, 99),
            hold_ms_max=holds[-1] if holds else None,
            hold_ms_mean=sum(holds) / len(holds) if holds else None,
        )


@dataclass(frozen=True)
class DirectionStats:
    """A snapshot of DirectionCounters; hold_ms_* is the relay's own view of queue delay."""

    direction: str
    received: int
    received_bytes: int
    forwarded: int
    forwarded_bytes: int
    dropped_random: int
    dropped_burst: int
    dropped_outage: int
    dropped_queue: int
    dropped_send: int
    duplicated: int
    reordered: int
    hold_samples: int
    hold_ms_p50: float | None
    hold_ms_p99: float | None
    hold_ms_max: float | None
    hold_ms_mean: float | None

    @property
    def dropped(self) -> int:
        return (
            self.dropped_random
            + self.dropped_burst
            + self.dropped_outage
            + self.dropped_queue
            + self.dropped_send
        )


@dataclass(frozen=True)
class RelayCounters:
    """Counters of both directions: forward (client -> target) and reverse (replies)."""

    protocol: str
    profile: str
    seed: int
    forward: DirectionStats
    reverse: DirectionStats
    clients: int
    refused_clients: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["forward"]["dropped"] = self.forward.dropped
        out["reverse"]["dropped"] = self.reverse.dropped
        return out

    def describe(self) -> str:
        lines = [
            f"relay {self.protocol} profile {self.profile} seed {self.seed}:"
            f" {self.clients} client(s)"
            + (f", {self.refused_clients} refused" if self.refused_clients else "")
        ]
        for d in (self.forward, self.reverse):
            hold = (
                f", hold p50 {d.hold_ms_p50:.2f} ms p99 {d.hold_ms_p99:.2f} ms"
                if d.hold_ms_p50 is not None
                else ""
            )
            lines.append(
                f"  {d.direction:>7}: received {d.received} ({d.received_bytes} B),"
                f" forwarded {d.forwarded}"
                f" ({d.forwarded_bytes} B), dropped {d.dropped} (random {d.dropped_random}, burst"
                f" {d.dropped_burst}, outage {d.dropped_outage}, queue {d.dropped_queue}, send"
                f" {d.dropped_send}), duplicated {d.duplicated}, reordered {d.reordered}{hold}"
            )
        return "\n".join(lines)


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


# ---------------------------------------------------------------------------------------------
# UDP


class _UdpPipe:
    """One direction of the UDP relay: model, delay line, rate queue, counters."""

    def __init__(self, model: LinkModel, counters: DirectionCounters, t0: float, overhead_b: int):
        self.model = model
        self.c = counters
        self.t0 = t0
        self.transparent = model.transparent
        d = model.direction
        self.rate_bps = d.rate_bps
        self.limit = d.queue_packets if d.queue_packets is not None else DEFAULT_QUEUE_PACKETS
        self.overhead_b = overhead_b
        self.heap: list[tuple[float, int, bytes, socket.socket, Address | None, float]] = []
        self.rateq: deque[tuple[float, bytes, socket.socket, Address | None, float]] = deque()
        self.link_free = 0.0
        self.seq = 0

    def admit(self, now: float, data: bytes, sock: socket.socket, addr: Address | None) -> None:
        c = self.c
        c.received += 1
        c.received_bytes += len(data)
        if self.transparent:
            self.send(data, sock, addr, None, now)
            return
        model = self.model
        reason = model.drop(now - self.t0)
        if reason is not None:
            if reason == DROP_RANDOM:
                c.dropped_random += 1
            elif reason == DROP_BURST:
                c.dropped_burst += 1
            else:
                c.dropped_outage += 1
            return
        copies = model.copies()
        if copies > 1:
            c.duplicated += copies - 1
        for _ in range(copies):
            if len(self.heap) + len(self.rateq) >= self.limit:
                c.dropped_queue += 1
                continue
            delay, reordered = model.delay()
            if reordered:
                c.reordered += 1
            if delay <= 0:
                self.to_link(now, data, sock, addr, now)
            else:
                self.seq += 1
                heapq.heappush(self.heap, (now + delay, self.seq, data, sock, addr, now))

    def to_link(
        self, ready: float, data: bytes, sock: socket.socket, addr: Address | None, t_in: float
    ) -> None:
        """A packet leaves the delay line: send it, or queue it behind the rate limit."""
        if self.rate_bps is None:
            self.send(data, sock, addr, t_in, ready)
            return
        start = ready if ready > self.link_free else self.link_free
        done = start + (len(data) + self.overhead_b) * 8.0 / self.rate_bps
        self.link_free = done
        self.rateq.append((done, data, sock, addr, t_in))

    def release(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            ready, _, data, sock, addr, t_in = heapq.heappop(heap)
            self.to_link(ready, data, sock, addr, t_in)
        rateq = self.rateq
        while rateq and rateq[0][0] <= now:
            _, data, sock, addr, t_in = rateq.popleft()
            self.send(data, sock, addr, t_in, now)

    def next_due(self) -> float | None:
        due = self.heap[0][0] if self.heap else None
        if self.rateq and (due is None or self.rateq[0][0] < due):
            due = self.rateq[0][0]
        return due

    def send(
        self, data: bytes, sock: socket.socket, addr: Address | None, t_in: float | None, now: float
    ) -> None:
        c = self.c
        try:
            if addr is None:
                sock.send(data)
            else:
                sock.sendto(data, addr)
        except OSError:  # buffer full, peer gone (ICMP refused): the packet is lost
            c.dropped_send += 1
            return
        c.forwarded += 1
        c.forwarded_bytes += len(data)
        if t_in is not None:
            c.hold(time.monotonic() - t_in)


class UdpRelay:
    """Forwards UDP datagrams between clients of `listen` and `target`, impaired.

    Args:
        listen: (host, port) to bind; port 0 picks one (see .address after start()).
        target: (host, port) the datagrams go to.
        profile: the profile (None: no impairment).
        seed: seed of every random decision.
        forward: profile direction of client -> target traffic ("up" or "down").
        max_duration_s: it stops by itself after this long (every loop is bounded).
        pinned: one client only, with its upstream socket made at start(): `.upstream_address`
            is known before any datagram flows, so both ends of a peer-to-peer flow (WebRTC's
            ICE) can be told the relay's addresses in advance. The client is the one given to
            pin_client(), else the first sender; replies before it is known are dropped
            (counted as `dropped_send`), other senders are refused (`refused_clients`).
    """

    protocol = "udp"

    def __init__(
        self,
        listen: Address,
        target: Address,
        profile: NetworkProfile | None = None,
        *,
        seed: int = 0,
        forward: str = "up",
        max_duration_s: float = MAX_RUN_S,
        pinned: bool = False,
    ):
        _configure(self, listen, target, profile, seed, forward, max_duration_s)
        self.pinned = pinned
        self.upstream_address: Address | None = None
        self._pinned_up: socket.socket | None = None
        self._pinned_client: Address | None = None
        self.fwd_counters = DirectionCounters("forward")
        self.rev_counters = DirectionCounters("reverse")
        self.refused_clients = 0
        self.address: Address | None = None
        self._clients: dict[Address, socket.socket] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.error: BaseException | None = None

    def start(self) -> Address:
        """Bind and start forwarding; returns the bound address.

        Raises:
            NetworkShaperError: cannot bind or resolve.
        """
        family = _family(self.listen[0])
        try:
            target_info = socket.getaddrinfo(
                self.target[0], self.target[1], type=socket.SOCK_DGRAM
            )[0]
        except OSError as e:
            raise NetworkShaperError(
                f"udp relay: cannot resolve target {self.target}: {e}"
            ) from None
        self._target_family, self._target_addr = target_info[0], target_info[4]
        overhead = (
            UDP_IPV6_OVERHEAD_B if self._target_family == socket.AF_INET6 else UDP_IPV4_OVERHEAD_B
        )
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind(self.listen)
        except OSError as e:
            sock.close()
            raise NetworkShaperError(f"udp relay: cannot bind {self.listen}: {e}") from None
        _big_buffers(sock)
        sock.setblocking(False)
        self._sock = sock
        self.address = sock.getsockname()[:2]
        if self.pinned:
            self._pinned_up = self._upstream_socket()
            if self._pinned_up is None:
                sock.close()
                raise NetworkShaperError(f"udp relay: cannot reach {self.target}")
            self.upstream_address = self._pinned_up.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        t0 = time.monotonic()
        self._fwd = _UdpPipe(
            LinkModel(
                self.profile.direction(self.forward_dir),
                self.profile.outages,
                self.seed,
                self.forward_dir,
            ),
            self.fwd_counters,
            t0,
            overhead,
        )
        self._rev = _UdpPipe(
            LinkModel(
                self.profile.direction(self.reverse_dir),
                self.profile.outages,
                self.seed,
                self.reverse_dir,
            ),
            self.rev_counters,
            t0,
            overhead,
        )
        self._thread = threading.Thread(
            target=self._run, name=f"udp-relay-{self.address[1]}", daemon=True
        )
        self._thread.start()
        return self.address

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop forwarding and close every socket (never raises; packets still held are lost)."""
        self._stop.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("udp relay thread did not stop within %.1f s", timeout_s)
        for s in [self._sock, self._wake_r, self._wake_w, self._pinned_up, *self._clients.values()]:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    def pin_client(self, client: Address) -> None:
        """The one client of a pinned relay (its replies go there from now on)."""
        if not self.pinned:
            raise NetworkShaperError("pin_client() needs a relay made with pinned=True")
        self._pinned_client = (str(client[0]), int(client[1]))  # one assignment: thread-safe

    def counters(self) -> RelayCounters:
        return RelayCounters(
            self.protocol,
            self.profile.name,
            self.seed,
            self.fwd_counters.snapshot(),
            self.rev_counters.snapshot(),
            len(self._clients) + (self._pinned_client is not None),
            self.refused_clients,
        )

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # a dead relay must say why
            self.error = e
            log.exception("udp relay stopped on an error")

    def _loop(self) -> None:
        assert self._sock is not None and self._wake_r is not None
        sel = selectors.DefaultSelector()
        listen = self._sock
        sel.register(listen, selectors.EVENT_READ, None)
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        if self._pinned_up is not None:
            sel.register(self._pinned_up, selectors.EVENT_READ, _PINNED)
        fwd, rev = self._fwd, self._rev
        monotonic = time.monotonic
        try:
            end = monotonic() + self.max_duration_s
            while not self._stop.is_set():
                if monotonic() > end:
                    log.warning(
                        "udp relay stops after its maximum run of %.0f s", self.max_duration_s
                    )
                    self._stop.set()
                    break
                due = fwd.next_due()
                rdue = rev.next_due()
                if rdue is not None and (due is None or rdue < due):
                    due = rdue
                timeout = IDLE_WAIT_S
                if due is not None:
                    remaining = due - monotonic()
                    if remaining <= 0:
                        timeout = 0.0
                    elif remaining < _SHORT_WAIT_S:
                        self._short_wait(sel, remaining)
                        timeout = 0.0
                    else:  # epoll waits whole ms, rounded up: ask for one less
                        timeout = min(remaining - 0.001, IDLE_WAIT_S)
                for key, _ in sel.select(timeout):
                    if key.data is None:
                        self._read_listen(sel)
                    elif key.data == "wake":
                        _drain(self._wake_r)
                    else:
                        self._read_upstream(key.fileobj, key.data)
                now = monotonic()
                fwd.release(now)
                rev.release(now)
        finally:
            sel.close()

    @staticmethod
    def _short_wait(sel: selectors.BaseSelector, seconds: float) -> None:
        """Wait up to `seconds` with microsecond precision, waking early for input.

        epoll counts whole milliseconds; select() takes microseconds (file descriptors
        below FD_SETSIZE only; above, a plain sleep).
        """
        fds = [key.fd for key in sel.get_map().values()]
        try:
            select.select(fds, [], [], seconds)
        except ValueError:
            time.sleep(seconds)

    def _read_listen(self, sel: selectors.BaseSelector) -> None:
        listen = self._sock
        fwd = self._fwd
        clients = self._clients
        for _ in range(_RECV_BATCH):
            try:
                data, addr = listen.recvfrom(MAX_DATAGRAM_B)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            addr = addr[:2]
            if self._pinned_up is not None:
                if self._pinned_client is None:
                    self._pinned_client = addr
                if addr != self._pinned_client:
                    self.refused_clients += 1
                    continue
                up = self._pinned_up
            else:
                up = clients.get(addr)
                if up is None:
                    up = self._new_client(addr, sel)
                    if up is None:
                        continue
            fwd.admit(time.monotonic(), data, up, None)

    def _upstream_socket(self) -> socket.socket | None:
        """A socket connected to the target, bound on the listen host (None: unreachable)."""
        up = socket.socket(self._target_family, socket.SOCK_DGRAM)
        _big_buffers(up)
        up.setblocking(False)
        try:
            if self.pinned:  # its address is handed out: bind where the peers can reach it
                up.bind((self.listen[0], 0))
            up.connect(self._target_addr)
        except OSError as e:
            log.warning("udp relay: cannot reach %s: %s", self.target, e)
            up.close()
            return None
        return up

    def _new_client(self, addr: Address, sel: selectors.BaseSelector) -> socket.socket | None:
        if len(self._clients) >= MAX_UDP_CLIENTS:
            self.refused_clients += 1
            return None
        up = self._upstream_socket()
        if up is None:
            self.refused_clients += 1
            return None
        self._clients[addr] = up
        sel.register(up, selectors.EVENT_READ, addr)
        return up

    def _read_upstream(self, up: Any, addr: Address | str) -> None:
        rev = self._rev
        listen = self._sock
        for _ in range(_RECV_BATCH):
            try:
                data = up.recv(MAX_DATAGRAM_B)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable from the target, reported on the next recv
                continue
            to = self._pinned_client if addr is _PINNED else addr
            if to is None:  # a pinned relay's client is not known yet: nowhere to send it
                rev.c.received += 1
                rev.c.dropped_send += 1
                continue
            rev.admit(time.monotonic(), data, listen, to)


# ---------------------------------------------------------------------------------------------
# TCP


class _TcpDirection:
    """Shared state of one direction across connections: counters and a lock."""

    def __init__(self, label: str, counters: DirectionCounters):
        self.label = label
        self.c = counters
        self.lock = threading.Lock()


class _TcpPipe:
    """One direction of one TCP connection: a reader and a writer thread."""

    _EOF = object()

    def __init__(
        self,
        src: socket.socket,
        dst: socket.socket,
        model: LinkModel,
        shared: _TcpDirection,
        t0: float,
        stop: threading.Event,
        name: str,
    ):
        self.src = src
        self.dst = dst
        self.model = model
        self.shared = shared
        self.t0 = t0
        self.stop = stop
        self.rate_bps = model.direction.rate_bps
        self.chunk_b = TCP_CHUNK_MAX_B
        if self.rate_bps:
            self.chunk_b = int(
                min(TCP_CHUNK_MAX_B, max(TCP_CHUNK_MIN_B, self.rate_bps / 8 * TCP_CHUNK_S))
            )
        self.q: queue.Queue = queue.Queue(maxsize=TCP_QUEUE_CHUNKS)
        self.last_release = 0.0
        self.link_free = 0.0
        self.done = threading.Event()  # the writer has finished: nothing more goes out
        self.threads = [
            threading.Thread(target=self._run_reader, name=f"{name}-read", daemon=True),
            threading.Thread(target=self._run_writer, name=f"{name}-write", daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _run_reader(self) -> None:
        try:
            self._read()
        except OSError as e:
            log.debug("tcp relay %s read: %s", self.shared.label, e)
        except BaseException:
            log.exception("tcp relay %s reader failed", self.shared.label)
        finally:
            self._put(self._EOF)  # whatever ended the reading, the writer ends the stream

    def _run_writer(self) -> None:
        try:
            self._write()
        except OSError as e:
            log.debug("tcp relay %s write: %s", self.shared.label, e)
        except BaseException:
            log.exception("tcp relay %s writer failed", self.shared.label)
        finally:
            self.done.set()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set() and not self.done.is_set():
            try:
                self.q.put(item, timeout=IDLE_WAIT_S)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        self.src.settimeout(IDLE_WAIT_S)
        c, lock = self.shared.c, self.shared.lock
        while not self.stop.is_set() and not self.done.is_set():
            try:
                data = self.src.recv(self.chunk_b)
            except TimeoutError:
                continue
            now = time.monotonic()
            if not data:
                return
            with lock:
                c.received += 1
                c.received_bytes += len(data)
            release = max(now + self.model.stream_delay(), self.last_release)
            self.last_release = release
            if not self._put((release, data, now)):
                return

    def _wait_until(self, when: float) -> bool:
        """Sleep until `when` (monotonic); False if stopped first."""
        while True:
            remaining = when - time.monotonic()
            if remaining <= 0:
                return True
            if self.stop.wait(min(remaining, IDLE_WAIT_S)) or self.done.is_set():
                return False

    def _write(self) -> None:
        self.dst.settimeout(SEND_TIMEOUT_S)
        c, lock = self.shared.c, self.shared.lock
        outages = self.model.outages
        while not self.stop.is_set() and not self.done.is_set():
            try:
                item = self.q.get(timeout=IDLE_WAIT_S)
            except queue.Empty:
                continue
            if item is self._EOF:
                try:
                    self.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            release, data, t_in = item
            when = release
            if self.rate_bps:
                start = max(release, self.link_free)
                when = start + len(data) * 8.0 / self.rate_bps
                self.link_free = when
            if not self._wait_until(when):
                return
            if outages is not None:
                for _ in range(1000):  # bounded: a schedule has at most this many changes here
                    t = time.monotonic() - self.t0
                    if not outages.is_down(t):
                        break
                    back = outages.next_up(t)
                    if math.isinf(back):
                        back = t + IDLE_WAIT_S
                    if not self._wait_until(self.t0 + back):
                        return
            self.dst.sendall(data)
            with lock:
                c.forwarded += 1
                c.forwarded_bytes += len(data)
                c.hold(time.monotonic() - t_in)


class TcpRelay:
    """Forwards TCP connections from `listen` to `target`, delayed, rate-limited, stalled.

    Args: as UdpRelay. Loss, duplication, reordering and queue limits are not applied (a byte
    stream cannot carry them); RelayShaper refuses profiles that need them.
    """

    protocol = "tcp"

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
        _configure(self, listen, target, profile, seed, forward, max_duration_s)
        self.fwd = _TcpDirection("forward", DirectionCounters("forward"))
        self.rev = _TcpDirection("reverse", DirectionCounters("reverse"))
        self.address: Address | None = None
        self.refused_clients = 0
        self.connections = 0
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pipes: list[tuple[_TcpPipe, _TcpPipe, socket.socket, socket.socket]] = []
        self._lock = threading.Lock()

    def start(self) -> Address:
        """Bind, listen and start accepting; returns the bound address.

        Raises:
            NetworkShaperError: cannot bind.
        """
        sock = socket.socket(_family(self.listen[0]), socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(self.listen)
            sock.listen(16)
        except OSError as e:
            sock.close()
            raise NetworkShaperError(f"tcp relay: cannot listen on {self.listen}: {e}") from None
        sock.settimeout(IDLE_WAIT_S)
        self._sock = sock
        self.address = sock.getsockname()[:2]
        self._t0 = time.monotonic()
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"tcp-relay-{self.address[1]}", daemon=True
        )
        self._thread.start()
        return self.address

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop accepting, close every connection (never raises)."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            pipes = list(self._pipes)
        for a, b, s1, s2 in pipes:
            for t in (*a.threads, *b.threads):
                t.join(max(0.0, deadline - time.monotonic()))
            for s in (s1, s2):
                try:
                    s.close()
                except OSError:
                    pass
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        alive = [t.name for a, b, _, _ in pipes for t in (*a.threads, *b.threads) if t.is_alive()]
        if alive:
            log.error("tcp relay threads still running after %.1f s: %s", timeout_s, alive)

    def counters(self) -> RelayCounters:
        with self.fwd.lock:
            f = self.fwd.c.snapshot()
        with self.rev.lock:
            r = self.rev.c.snapshot()
        return RelayCounters(
            self.protocol,
            self.profile.name,
            self.seed,
            f,
            r,
            self.connections,
            self.refused_clients,
        )

    def _accept_loop(self) -> None:
        assert self._sock is not None
        end = time.monotonic() + self.max_duration_s
        while not self._stop.is_set():
            if time.monotonic() > end:
                log.warning("tcp relay stops after its maximum run of %.0f s", self.max_duration_s)
                self._stop.set()  # the connections' threads see it too
                break
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                self._reap()
                continue
            except OSError as e:
                if not self._stop.is_set():
                    log.error("tcp relay accept failed: %s", e)
                return
            self._reap()
            if len(self._pipes) >= MAX_TCP_CONNECTIONS:
                self.refused_clients += 1
                conn.close()
                continue
            try:
                up = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
            except OSError as e:
                log.warning("tcp relay: cannot reach %s: %s", self.target, e)
                self.refused_clients += 1
                conn.close()
                continue
            for s in (conn, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            n = self.connections = self.connections + 1
            fwd_model = LinkModel(
                self.profile.direction(self.forward_dir),
                self.profile.outages,
                self.seed + n,
                self.forward_dir,
            )
            rev_model = LinkModel(
                self.profile.direction(self.reverse_dir),
                self.profile.outages,
                self.seed + n,
                self.reverse_dir,
            )
            a = _TcpPipe(conn, up, fwd_model, self.fwd, self._t0, self._stop, f"tcp-{n}-fwd")
            b = _TcpPipe(up, conn, rev_model, self.rev, self._t0, self._stop, f"tcp-{n}-rev")
            with self._lock:
                self._pipes.append((a, b, conn, up))
            a.start()
            b.start()

    def _reap(self) -> None:
        """Close connections whose two directions are finished."""
        with self._lock:
            keep = []
            for a, b, s1, s2 in self._pipes:
                if (
                    a.done.is_set()
                    and b.done.is_set()
                    and not any(t.is_alive() for t in (*a.threads, *b.threads))
                ):
                    for s in (s1, s2):
                        try:
                            s.close()
                        except OSError:
                            pass
                else:
                    keep.append((a, b, s1, s2))
            self._pipes = keep


# ---------------------------------------------------------------------------------------------
# The shaper


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
        self.forward = _check_forward(forward)
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


def _configure(
    relay,
    listen: Address,
    target: Address,
    profile: NetworkProfile | None,
    seed: int,
    forward: str,
    max_duration_s: float,
) -> None:
    """The settings UdpRelay and TcpRelay share."""
    relay.listen = listen
    relay.target = target
    relay.max_duration_s = max_duration_s
    relay.profile = profile or _clean_profile()
    relay.seed = seed
    relay.forward_dir = _check_forward(forward)
    relay.reverse_dir = "down" if relay.forward_dir == "up" else "up"


def _clean_profile() -> NetworkProfile:
    return NetworkProfile("none", "no impairment", "harness")


def _check_forward(forward: str) -> str:
    if forward not in ("up", "down"):
        raise NetworkShaperError(f"forward must be 'up' or 'down', got {forward!r}")
    return forward


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _big_buffers(sock: socket.socket) -> None:
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER_B)
        except OSError:
            pass


def _drain(sock: socket.socket) -> None:
    for _ in range(64):
        try:
            if not sock.recv(4096):
                return
        except OSError:
            return


# ---------------------------------------------------------------------------------------------
# The relay in its own process


class RelayProcess:
    """`hil net relay` as a child process: its timing does not share a Python lock with yours.

    Args:
        profile: library name or FILE.yaml[#NAME].
        target: (host, port) to forward to.
        listen: (host, port); port 0 picks one (see .address after start()).
        protocol: "udp" or "tcp".
        seed: seed of every random decision.
        forward: profile direction of client -> target traffic.
        extra_args: more `hil net relay` arguments.
    """

    def __init__(
        self,
        profile: str,
        target: Address,
        *,
        listen: Address = ("127.0.0.1", 0),
        protocol: str = "udp",
        seed: int = 0,
        forward: str = "up",
        extra_args: tuple[str, ...] = (),
    ):
        import sys

        self.cmd = [
            sys.executable,
            "-m",
            "harness.cli",
            "net",
            "relay",
            "--listen",
            f"{listen[0]}:{listen[1]}",
            "--to",
            f"{target[0]}:{target[1]}",
            "--profile",
            str(profile),
            "--seed",
            str(seed),
            f"--{protocol}",
            "--forward",
            forward,
            "--json",
            *extra_args,
        ]
        self.child: Child | None = None
        self.address: Address | None = None
        self.final: dict[str, Any] | None = None

    def start(self, timeout_s: float = 15.0) -> Address:
        """Start it and wait (bounded) for its listening line.

        Raises:
            NetworkShaperError: it exited or said nothing in time.
        """
        import json
        import subprocess

        self.child = Child(
            "impairment relay", self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ).spawn()
        line = self.child.read_line(timeout_s)
        if not line:
            err = self._stop_now()
            raise NetworkShaperError(
                f"relay process did not start within {timeout_s:g} s: {err[-500:]}"
            )
        info = json.loads(line)
        self.address = (info["listen"][0], int(info["listen"][1]))
        return self.address

    @property
    def proc(self):
        """Its subprocess.Popen while it runs (None before start())."""
        return self.child.proc if self.child is not None else None

    def stop(self, timeout_s: float = 10.0) -> dict[str, Any] | None:
        """SIGINT, then its final counters (a dict as RelayCounters.to_dict()); never raises."""
        import json
        import signal
        import subprocess

        if self.child is None or self.child.proc is None:
            return self.final
        try:
            self.child.send_signal(signal.SIGINT)
            out, err = self.child.communicate(timeout_s)
        except subprocess.TimeoutExpired:
            self._stop_now()
            log.error("relay process did not stop within %.1f s; killed", timeout_s)
            return None
        except (OSError, ValueError) as e:
            log.error("relay process: %s", e)
            return None
        for line in out.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("event") == "stopped":
                self.final = item["counters"]
        if self.final is None:
            log.error("relay process gave no counters: %s", err[-500:])
        return self.final

    def _stop_now(self) -> str:
        """SIGKILL its group; what it wrote to stderr. Never raises."""
        import signal
        import subprocess

        assert self.child is not None
        self.child.stop(first=signal.SIGKILL)
        try:
            _, err = self.child.communicate(5.0)
        except (subprocess.TimeoutExpired, OSError, ValueError) as e:
            log.info("relay process: reading its stderr: %s", e)
            err = ""
        return err or ""

    def __enter__(self) -> RelayProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
