"""The relay's link model and its UDP/TCP forwarding, in process (behaviour, not accuracy)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from harness.errors import NetworkShaperError
from harness.network import profiles as P
from harness.network.impairment import RelayShaper, TcpRelay, parse_hostport
from harness.network.link import DROP_BURST, DROP_OUTAGE, DROP_RANDOM, LinkModel
from harness.network.linkprobe import UdpSink, binomial_interval, probe
from harness.network.profiles import (
    Direction,
    GilbertElliott,
    OutageSchedule,
    network_profiles,
    parse_network_profile,
)

DRAWS = 200_000
NO_OUTAGES = OutageSchedule()


def _prof(**body):
    return parse_network_profile("t", {"description": "d", "source": "s", **body})


def _drops(model: LinkModel, n: int) -> list[str | None]:
    return [model.drop(0.0) for _ in range(n)]


# --- LinkModel --------------------------------------------------------------------------------


def test_same_seed_same_drops_whatever_else_changes():
    a = LinkModel(Direction(loss_pct=5), NO_OUTAGES, seed=3, label="up")
    b = LinkModel(
        Direction(loss_pct=5, delay_ms=50, jitter_ms=20, duplicate_pct=10, reorder_pct=5),
        NO_OUTAGES,
        3,
        "up",
    )
    for _ in range(5000):  # draws on the other streams must not shift the loss stream
        b.copies()
        b.delay()
    assert _drops(a, 5000) == _drops(b, 5000)
    assert _drops(LinkModel(Direction(loss_pct=5), NO_OUTAGES, 4, "up"), 5000) != _drops(
        LinkModel(Direction(loss_pct=5), NO_OUTAGES, 3, "up"), 5000
    )
    assert _drops(LinkModel(Direction(loss_pct=5), NO_OUTAGES, 3, "down"), 5000) != _drops(
        LinkModel(Direction(loss_pct=5), NO_OUTAGES, 3, "up"), 5000
    )


def test_random_loss_rate():
    drops = _drops(LinkModel(Direction(loss_pct=5), NO_OUTAGES, 1, "up"), DRAWS)
    lo, hi = binomial_interval(DRAWS, 0.05, 0.99)
    assert lo <= drops.count(DROP_RANDOM) <= hi


def test_gilbert_elliott_mean_loss_and_burst_length():
    ge = GilbertElliott(p_pct=1, r_pct=40, bad_loss_pct=100, good_loss_pct=0)
    drops = _drops(LinkModel(Direction(loss_burst=ge), NO_OUTAGES, 1, "up"), DRAWS)
    lost = [d is not None for d in drops]
    assert sum(lost) / DRAWS * 100 == pytest.approx(ge.mean_loss_pct, rel=0.1)
    runs, current = [], 0
    for x in lost:
        if x:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert sum(runs) / len(runs) == pytest.approx(ge.mean_burst_packets, rel=0.1)  # 2.5 packets
    assert set(drops) == {None, DROP_BURST}


def test_gilbert_elliott_with_good_state_loss():
    ge = GilbertElliott(p_pct=2, r_pct=20, bad_loss_pct=50, good_loss_pct=1)
    drops = _drops(LinkModel(Direction(loss_burst=ge), NO_OUTAGES, 2, "up"), DRAWS)
    assert sum(d is not None for d in drops) / DRAWS * 100 == pytest.approx(
        ge.mean_loss_pct, rel=0.1
    )
    assert DROP_RANDOM in drops and DROP_BURST in drops


def test_delay_jitter_reorder_duplicate_and_outages():
    m = LinkModel(
        Direction(delay_ms=40, jitter_ms=10, reorder_pct=20, duplicate_pct=10),
        OutageSchedule(windows=((1.0, 0.5),)),
        5,
        "down",
    )
    delays = [m.delay() for _ in range(20_000)]
    kept = [d for d, r in delays if not r]
    assert min(kept) >= 0.030 and max(kept) <= 0.050
    assert sum(r for _, r in delays) / len(delays) == pytest.approx(0.2, abs=0.02)
    assert all(d == 0.0 for d, r in delays if r)
    assert sum(m.copies() == 2 for _ in range(20_000)) / 20_000 == pytest.approx(0.1, abs=0.015)
    assert [m.drop(t) for t in (0.9, 1.0, 1.4, 1.5)] == [None, DROP_OUTAGE, DROP_OUTAGE, None]
    assert LinkModel(Direction(), NO_OUTAGES, 0, "up").transparent
    assert not LinkModel(Direction(), OutageSchedule(windows=((1.0, 1.0),)), 0, "up").transparent


# --- UDP relay, in process ----------------------------------------------------------------------


def _udp_echo():
    """An echo server on loopback; returns (address, stop)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            sock.sendto(data, addr)
        sock.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def halt():
        stop.set()
        t.join(2)

    return sock.getsockname(), halt


def test_udp_both_directions_and_multiple_clients():
    echo, halt = _udp_echo()
    prof = _prof(delay_ms=5, up={"delay_ms": 10})
    try:
        with RelayShaper(prof, echo, seed=1) as relay:
            clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
            for i, c in enumerate(clients):
                c.settimeout(2)
                t = time.monotonic()
                c.sendto(f"hello {i}".encode(), relay.address)
                assert c.recv(100) == f"hello {i}".encode()
                assert time.monotonic() - t >= 0.015  # 10 ms up + 5 ms down
                c.close()
        counters = relay.counters()  # final, after the relay thread stopped
        assert counters.clients == 3
        assert counters.forward.forwarded == counters.reverse.forwarded == 3
        assert counters.forward.hold_ms_p50 >= 10.0 and counters.reverse.hold_ms_p50 >= 5.0
    finally:
        halt()


def test_udp_duplicates_reorders_and_counts(tmp_path):
    prof = _prof(delay_ms=20, reorder_pct=10, duplicate_pct=5)
    sink = UdpSink(idle_s=0.5, deadline_s=30.0, expect=0)
    try:
        with RelayShaper(prof, sink.address, seed=2) as relay:
            result = probe(relay.address, 2000, 2000, 200, sink=sink)
            time.sleep(0.05)
        counters = relay.counters().forward
    finally:
        sink.close()
    assert counters.received == 2000
    assert counters.duplicated == result.duplicates > 50
    assert counters.reordered > 100 and result.reordered() > 100
    assert counters.forwarded == 2000 + counters.duplicated


def test_udp_outage_schedule_drops_while_down():
    prof = _prof(outages=[{"at_s": 0.3, "duration_s": 0.4}])
    sink = UdpSink(idle_s=0.5, deadline_s=30.0, expect=1000)
    try:
        with RelayShaper(prof, sink.address, seed=0) as relay:
            result = probe(relay.address, 1000, 1000, 100, sink=sink)  # 1 s of traffic
        counters = relay.counters().forward
    finally:
        sink.close()
    assert counters.dropped_outage == result.lost
    assert 300 <= result.lost <= 500
    lost = result.lost_seqs
    assert lost == list(range(lost[0], lost[-1] + 1))  # one contiguous gap


def test_udp_queue_limit_tail_drops_behind_the_rate():
    prof = _prof(rate_kbit=1000, queue_packets=10)
    sink = UdpSink(idle_s=0.5, deadline_s=30.0, expect=0)
    try:
        with RelayShaper(prof, sink.address, seed=0) as relay:
            probe(relay.address, 300, 3000, 1200, sink=sink)  # 3x what 1 Mbit/s carries
        counters = relay.counters().forward
    finally:
        sink.close()
    assert counters.dropped_queue > 100
    assert counters.forwarded + counters.dropped_queue == 300


def test_udp_target_gone_is_counted_not_fatal():
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    addr = dead.getsockname()
    dead.close()  # nothing listens there: ICMP port unreachable
    with RelayShaper(_prof(), addr) as relay:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            s.sendto(b"x" * 10, relay.address)
            time.sleep(0.005)
        s.close()
        time.sleep(0.1)
        assert relay.relay.error is None
    c = relay.counters().forward
    assert c.received == 20 and c.forwarded + c.dropped_send == 20


# --- TCP relay ----------------------------------------------------------------------------------


def _tcp_server(handler):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(5)
    result = {}

    def run():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            handler(conn, result)
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return srv.getsockname(), t, result


def _drain(conn, result):
    total, first, last = 0, None, None
    while True:
        data = conn.recv(65536)
        if not data:
            break
        now = time.monotonic()
        first = first or now
        last = now
        total += len(data)
    result.update(total=total, first=first, last=last)


def test_tcp_rate_and_delay_byte_exact():
    received = bytearray()
    arrivals = []

    def keep(conn, result):
        while data := conn.recv(65536):
            arrivals.append((time.monotonic(), len(data)))
            received.extend(data)
        conn.sendall(b"done")

    addr, t, _ = _tcp_server(keep)
    payload = bytes(range(256)) * 4096  # 1 MiB
    rate_bps = 8e6
    prof = _prof(delay_ms=20, rate_kbit=rate_bps / 1000)
    with RelayShaper(prof, addr, protocol="tcp") as relay:
        c = socket.create_connection(relay.address, timeout=10)
        start = time.monotonic()
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        assert c.recv(10) == b"done"
        elapsed = time.monotonic() - start
        c.close()
        t.join(10)
    assert bytes(received) == payload
    assert elapsed >= len(payload) * 8 / rate_bps + 0.040 - 0.005  # serialisation + delay both ways
    measured_bps = (len(payload) - arrivals[0][1]) * 8 / (arrivals[-1][0] - arrivals[0][0])
    assert measured_bps == pytest.approx(rate_bps, rel=0.1)
    counters = relay.counters()
    assert (
        counters.forward.forwarded_bytes == len(payload) and counters.reverse.forwarded_bytes == 4
    )


def test_tcp_outage_stalls_the_stream_until_the_link_is_back():
    addr, t, result = _tcp_server(_drain)
    prof = _prof(outages=[{"at_s": 0.0, "duration_s": 0.6}])
    with RelayShaper(prof, addr, protocol="tcp") as relay:
        start = time.monotonic()
        c = socket.create_connection(relay.address, timeout=10)
        c.sendall(b"x" * 1000)
        c.close()
        t.join(10)
    assert result["total"] == 1000
    assert result["first"] - start >= 0.55


def test_tcp_refuses_what_a_byte_stream_cannot_carry():
    with pytest.raises(
        NetworkShaperError, match="relay shaper .* cannot express profile 'lossy-5': loss"
    ):
        RelayShaper(network_profiles()["lossy-5"], ("127.0.0.1", 9), protocol="tcp")
    approx = RelayShaper(
        network_profiles()["lossy-5"], ("127.0.0.1", 9), protocol="tcp", approximate=True
    )
    assert approx.report.approximations[0].startswith(P.LOSS)
    assert approx.relay.address is None  # nothing started


def test_udp_relay_expresses_every_feature():
    for prof in network_profiles().values():
        assert RelayShaper(prof, ("127.0.0.1", 9)).report.approximations == []


def test_bad_relay_arguments():
    with pytest.raises(NetworkShaperError, match="protocol"):
        RelayShaper(_prof(), ("127.0.0.1", 9), protocol="sctp")
    with pytest.raises(NetworkShaperError, match="HOST:PORT"):
        parse_hostport("localhost")
    assert parse_hostport("[::1]:5000") == ("::1", 5000)
    with pytest.raises(NetworkShaperError, match="forward"):
        TcpRelay(("127.0.0.1", 0), ("127.0.0.1", 9), forward="sideways")
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        shaper = RelayShaper(_prof(), ("127.0.0.1", 9), listen=taken.getsockname())
        with pytest.raises(NetworkShaperError, match="cannot bind"):
            shaper.apply()
        assert not shaper.applied
    finally:
        taken.close()
