"""The TCP impairment relay: two threads per direction of each connection (reader, writer). A
byte stream cannot lose, duplicate or reorder without corrupting the application's data, so the
TCP relay expresses delay, jitter (order-preserving), rate and outages (the stream stalls) only."""

from __future__ import annotations

import logging
import math
import queue
import socket
import threading
import time
from typing import Any

from harness.errors import NetworkShaperError
from harness.network.impairment.counters import DirectionCounters, RelayCounters
from harness.network.impairment.settings import (
    CONNECT_TIMEOUT_S,
    IDLE_WAIT_S,
    MAX_TCP_CONNECTIONS,
    SEND_TIMEOUT_S,
    STOP_TIMEOUT_S,
    TCP_CHUNK_MAX_B,
    TCP_CHUNK_MIN_B,
    TCP_CHUNK_S,
    TCP_QUEUE_CHUNKS,
    Address,
    RelaySettings,
    address_family,
)
from harness.network.link import LinkModel

log = logging.getLogger(__name__)


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


class TcpRelay(RelaySettings):
    """Forwards TCP connections from `listen` to `target`, delayed, rate-limited, stalled.

    Args: as UdpRelay (RelaySettings), without `pinned`. Loss, duplication, reordering and
    queue limits are not applied (a byte stream cannot carry them); RelayShaper refuses
    profiles that need them.
    """

    protocol = "tcp"

    def _init_state(self) -> None:
        self.fwd = _TcpDirection("forward", DirectionCounters("forward"))
        self.rev = _TcpDirection("reverse", DirectionCounters("reverse"))
        self.connections = 0
        self._pipes: list[tuple[_TcpPipe, _TcpPipe, socket.socket, socket.socket]] = []
        self._lock = threading.Lock()

    def start(self) -> Address:
        """Bind, listen and start accepting; returns the bound address.

        Raises:
            NetworkShaperError: cannot bind.
        """
        sock = socket.socket(address_family(self.listen[0]), socket.SOCK_STREAM)
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
