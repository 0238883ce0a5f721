"""UDP probe: measure a path (a relay, a shaped link) from outside it.

A paced sender stamps each datagram with a sequence number and keeps its send time; a sink in
its own process (so that neither waits for the other's Python lock) keeps each datagram's
receive time. Both use the host's monotonic clock, which processes share. The result gives
per-packet one-way delay, loss, duplicates and the received rate.
"""

from __future__ import annotations

import json
import math
import signal
import socket
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.errors import MeasurementError
from harness.farm.process import Child
from harness.measure import Measurement

UDP_IPV4_OVERHEAD_B = 28
SINK_START_TIMEOUT_S = 10.0
_HEADER = struct.Struct("!q")
_SPIN_BELOW_S = 0.0002  # closer than this to a send time, yield instead of sleeping
_RCVBUF_B = 8 * 1024 * 1024


@dataclass
class ProbeResult:
    """What one probe run saw.

    Attributes:
        sent: datagrams sent (sequence numbers 0..sent-1).
        payload_b: payload size of each.
        send_t: send time of each sequence number (monotonic s).
        recv: sequence number -> first receive time (monotonic s).
        duplicates: datagrams received more than once.
        recv_order: sequence numbers in the order they arrived (first copies only).
    """

    sent: int
    payload_b: int
    send_t: list[float]
    recv: dict[int, float]
    duplicates: int = 0
    recv_order: list[int] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.recv)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def lost_seqs(self) -> list[int]:
        return [i for i in range(self.sent) if i not in self.recv]

    def delays_ms(self) -> list[float]:
        """One-way delay of each received datagram, in ms (sequence order)."""
        return [(self.recv[i] - self.send_t[i]) * 1000.0 for i in sorted(self.recv)]

    def delay(self, name: str = "one_way_delay_ms") -> Measurement:
        m = Measurement(name, "ms", meta={"sent": self.sent, "received": self.received})
        for i in sorted(self.recv):
            m.add((self.recv[i] - self.send_t[i]) * 1000.0, t=self.send_t[i], seq=i)
        return m

    def rx_rate_bps(self, overhead_b: int = UDP_IPV4_OVERHEAD_B) -> float:
        """Received rate in IP bit/s, from the first to the last arrival.

        Raises:
            MeasurementError: fewer than two datagrams arrived.
        """
        times = sorted(self.recv.values())
        if len(times) < 2 or times[-1] <= times[0]:
            raise MeasurementError("fewer than two datagrams arrived: no rate")
        bits = (len(times) - 1) * (self.payload_b + overhead_b) * 8.0
        return bits / (times[-1] - times[0])

    def reordered(self) -> int:
        """Arrivals with a lower sequence number than one that arrived before them."""
        count, highest = 0, -1
        for seq in self.recv_order:
            if seq < highest:
                count += 1
            else:
                highest = seq
        return count


def binomial_interval(n: int, p: float, confidence: float = 0.99) -> tuple[int, int]:
    """The central interval of Binomial(n, p) holding at least `confidence` of its mass.

    Returns (lo, hi): P(X < lo) <= (1 - confidence) / 2 and P(X > hi) <= (1 - confidence) / 2.
    Exact (log-space sums), for judging a loss count against a profile's loss rate.
    """
    if not 0.0 <= p <= 1.0 or n < 0:
        raise MeasurementError(f"bad binomial parameters n={n}, p={p}")
    if p in (0.0, 1.0):
        k = round(n * p)
        return k, k
    tail = (1.0 - confidence) / 2.0
    log_p, log_q = math.log(p), math.log1p(-p)
    pmf = [
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * log_p
            + (n - k) * log_q
        )
        for k in range(n + 1)
    ]
    lo, acc = 0, 0.0
    while lo < n and acc + pmf[lo] <= tail:
        acc += pmf[lo]
        lo += 1
    hi, acc = n, 0.0
    while hi > 0 and acc + pmf[hi] <= tail:
        acc += pmf[hi]
        hi -= 1
    return lo, hi


def _sink_main(host: str, idle_s: float, deadline_s: float, expect: int) -> None:
    """Child process: print the port, receive until `expect` distinct datagrams, `idle_s` of
    silence once one arrived, or the deadline; then print what arrived as one JSON line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF_B)
    except OSError:
        pass
    sock.bind((host, 0))
    print(sock.getsockname()[1], flush=True)
    seqs = array("q")
    times = array("d")
    seen: set[int] = set()
    monotonic = time.monotonic
    end = monotonic() + deadline_s
    limit = expect * 2 + 1000 if expect > 0 else 10_000_000
    while len(seqs) < limit:
        now = monotonic()
        if now >= end:
            break
        sock.settimeout(min(end - now, idle_s if seqs else deadline_s))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            if seqs:
                break
            continue
        t = monotonic()
        if len(data) >= _HEADER.size:
            seq = _HEADER.unpack_from(data)[0]
            seqs.append(seq)
            times.append(t)
            seen.add(seq)
            if 0 < expect <= len(seen):
                break
    sock.close()
    print(json.dumps({"seqs": seqs.tolist(), "times": times.tolist()}), flush=True)


class UdpSink:
    """A receiver in its own process (`python -m harness.network.linkprobe`), on host:any-port.

    Args:
        host: where it binds (loopback in tests).
        idle_s: it stops after this long without a datagram (once one has arrived).
        deadline_s: it stops after this long in any case.
        expect: it stops once this many distinct sequence numbers have arrived (0: no limit).
        prefix: run it through this (e.g. ["ip", "netns", "exec", "lab"]).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        idle_s: float = 1.0,
        deadline_s: float = 60.0,
        expect: int = 0,
        prefix: Sequence[str] = (),
    ):
        self.deadline_s = deadline_s
        self._child = Child(
            "UDP sink",
            [
                *prefix,
                sys.executable,
                "-m",
                "harness.network.linkprobe",
                "sink",
                host,
                str(idle_s),
                str(deadline_s),
                str(expect),
            ],
            stdout=subprocess.PIPE,
            text=True,
        ).spawn()
        line = self._child.read_line(SINK_START_TIMEOUT_S) or ""
        if not line.isdigit():
            self.close()
            raise MeasurementError(f"UDP sink did not start within {SINK_START_TIMEOUT_S:g} s")
        self.address = (host, int(line))

    def collect(self) -> tuple[list[int], list[float]]:
        """Wait (bounded by the sink's own deadline) for what it received, in arrival order.

        Raises:
            MeasurementError: the sink died or did not report.
        """
        try:
            out, _ = self._child.communicate(self.deadline_s + 10.0)
        except subprocess.TimeoutExpired:
            self.close()
            raise MeasurementError("UDP sink did not report") from None
        try:
            data = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise MeasurementError(
                f"UDP sink exited {self._child.poll()} without a report"
            ) from None
        return data["seqs"], data["times"]

    def close(self) -> None:
        """Stop the sink process (never raises)."""
        self._child.stop(first=signal.SIGKILL)
        self._child.close_pipes()


def send_paced(
    target: tuple[str, int],
    count: int,
    rate_pps: float,
    payload_b: int = 1200,
    sock: socket.socket | None = None,
) -> list[float]:
    """Send `count` numbered datagrams at `rate_pps`; returns each one's send time (monotonic s)."""
    if payload_b < _HEADER.size:
        raise MeasurementError(f"payload must be >= {_HEADER.size} bytes")
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pad = b"\x00" * (payload_b - _HEADER.size)
    send_t = [0.0] * count
    interval = 1.0 / rate_pps
    monotonic = time.monotonic
    start = monotonic() + 0.01
    try:
        for i in range(count):
            due = start + i * interval
            while True:
                wait = due - monotonic()
                if wait <= 0:
                    break
                time.sleep(wait if wait > _SPIN_BELOW_S else 0)
            send_t[i] = monotonic()
            try:
                sock.sendto(_HEADER.pack(i) + pad, target)
            except OSError:  # a full buffer is a loss on the path, seen by the sink
                pass
    finally:
        if own:
            sock.close()
    return send_t


def probe(
    target: tuple[str, int] | None,
    count: int,
    rate_pps: float,
    payload_b: int = 1200,
    *,
    sink: UdpSink | None = None,
    idle_s: float = 1.0,
) -> ProbeResult:
    """Send through `target` (which forwards to the sink) and see what arrives.

    Args:
        target: where to send; None sends straight to the sink (the baseline).
        count: datagrams.
        rate_pps: pace.
        payload_b: payload size.
        sink: a started UdpSink the path delivers to (one is made, for the baseline, if None).
        idle_s: for a sink made here.
    """
    own = sink is None
    if sink is None:
        sink = UdpSink(idle_s=idle_s, deadline_s=count / rate_pps + 30.0, expect=count)
    try:
        send_t = send_paced(target or sink.address, count, rate_pps, payload_b)
        seqs, times = sink.collect()
    finally:
        if own:
            sink.close()
    recv: dict[int, float] = {}
    order: list[int] = []
    dups = 0
    for seq, t in zip(seqs, times, strict=True):
        if 0 <= seq < count and seq not in recv:
            recv[seq] = t
            order.append(seq)
        else:
            dups += 1
    return ProbeResult(count, payload_b, send_t, recv, dups, order)


def _send_main(host: str, port: int, count: int, rate_pps: float, payload_b: int) -> None:
    send_t = send_paced((host, port), count, rate_pps, payload_b)
    print(json.dumps({"sent": count, "first_t": send_t[0], "last_t": send_t[-1]}), flush=True)


def send_command(
    target: tuple[str, int],
    count: int,
    rate_pps: float,
    payload_b: int = 1200,
    prefix: Sequence[str] = (),
) -> list[str]:
    """The command that runs send_paced in a child (e.g. inside a namespace, with a prefix)."""
    return [
        *prefix,
        sys.executable,
        "-m",
        "harness.network.linkprobe",
        "send",
        target[0],
        str(target[1]),
        str(count),
        str(rate_pps),
        str(payload_b),
    ]


if __name__ == "__main__":
    if sys.argv[1] == "sink":
        _sink_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "send":
        _send_main(
            sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
        )
    else:
        sys.exit(
            "usage: python -m harness.network.linkprobe sink HOST IDLE_S DEADLINE_S EXPECT"
            " | send HOST PORT COUNT PPS BYTES"
        )
