"""The UDP impairment relay: one thread runs one loop (selectors + a timer heap): receive,
decide (LinkModel), hold in a delay line, then a serialisation queue at the profile's rate, then
send. Each client address gets its own upstream socket so replies find their way back. Rates count
IP bytes (payload + 28 for IPv4/UDP, + 48 for IPv6), as a link does. A direction with nothing to
do is forwarded straight from the receive loop."""

from __future__ import annotations

import heapq
import logging
import select
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any

from harness.errors import NetworkShaperError
from harness.network.impairment.counters import DirectionCounters, RelayCounters
from harness.network.impairment.settings import (
    DEFAULT_QUEUE_PACKETS,
    IDLE_WAIT_S,
    MAX_DATAGRAM_B,
    MAX_RUN_S,
    MAX_UDP_CLIENTS,
    PINNED,
    RECV_BATCH,
    SHORT_WAIT_S,
    STOP_TIMEOUT_S,
    UDP_IPV4_OVERHEAD_B,
    UDP_IPV6_OVERHEAD_B,
    Address,
    RelaySettings,
    address_family,
    big_buffers,
    drain,
)
from harness.network.link import DROP_BURST, DROP_RANDOM, LinkModel
from harness.network.profiles import NetworkProfile

log = logging.getLogger(__name__)


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


class UdpRelay(RelaySettings):
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
        super().__init__(
            listen, target, profile, seed=seed, forward=forward, max_duration_s=max_duration_s
        )
        self.pinned = pinned
        self.upstream_address: Address | None = None
        self._pinned_up: socket.socket | None = None
        self._pinned_client: Address | None = None
        self.fwd_counters = DirectionCounters("forward")
        self.rev_counters = DirectionCounters("reverse")
        self._clients: dict[Address, socket.socket] = {}
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self.error: BaseException | None = None

    def start(self) -> Address:
        """Bind and start forwarding; returns the bound address.

        Raises:
            NetworkShaperError: cannot bind or resolve.
        """
        family = address_family(self.listen[0])
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
        big_buffers(sock)
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
            sel.register(self._pinned_up, selectors.EVENT_READ, PINNED)
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
                    elif remaining < SHORT_WAIT_S:
                        self._short_wait(sel, remaining)
                        timeout = 0.0
                    else:  # epoll waits whole ms, rounded up: ask for one less
                        timeout = min(remaining - 0.001, IDLE_WAIT_S)
                for key, _ in sel.select(timeout):
                    if key.data is None:
                        self._read_listen(sel)
                    elif key.data == "wake":
                        drain(self._wake_r)
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
        for _ in range(RECV_BATCH):
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
        big_buffers(up)
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
        for _ in range(RECV_BATCH):
            try:
                data = up.recv(MAX_DATAGRAM_B)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable from the target, reported on the next recv
                continue
            to = self._pinned_client if addr is PINNED else addr
            if to is None:  # a pinned relay's client is not known yet: nowhere to send it
                rev.c.received += 1
                rev.c.dropped_send += 1
                continue
            rev.admit(time.monotonic(), data, listen, to)
