"""Benchmark: the impairment relay with a zero profile, against a plain Python UDP forwarder.

    .venv/bin/python benchmarks/network_relay_bench.py [--packets N] [--json]

Both forwarders run as child processes. For the throughput runs they are pinned to CPU 0 (the
relay's loop is one thread: one core), the sender and the sink to the other CPUs. Reported:
- saturation throughput: datagrams of 1,200 bytes offered as fast as one Python sender can,
  forwarded per second as the sink counts them (and the loss that came with it);
- at 20,000 packets/s offered for 2 s: the share that arrived;
- one-way delay at 2,000 packets/s (p50/p99), unpinned, in several trials (the median trial is
  reported; a shared machine's scheduling noise lands in p99), and what each forwarder adds:
  its path's p50/p99 minus the direct path's p50, measured the same way (conservative: the
  direct path's own tail is left in).
Targets (issue 7): >= 20,000 packets/s on one core; added delay p99 < 1 ms. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.farm.process import Child  # noqa: E402
from harness.network.impairment import RelayProcess  # noqa: E402
from harness.network.linkprobe import UdpSink, probe, send_paced  # noqa: E402

PAYLOAD_B = 1200
TARGET_PPS = 20_000
TARGET_P99_MS = 1.0
FORWARDER_CPU = 0
PLAIN_READY_S = 10.0  # the plain forwarder's port line (a Python start)
PLAIN_STOP_S = 5.0
_PLAIN_FORWARDER = """
import socket, sys
listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
listen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
listen.bind(("127.0.0.1", 0))
up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
up.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
up.connect(("127.0.0.1", int(sys.argv[1])))
print(listen.getsockname()[1], flush=True)
listen.settimeout(float(sys.argv[2]))
recv, send = listen.recv, up.send
try:
    for _ in range(50_000_000):
        try:
            send(recv(65535))
        except OSError:
            pass
except TimeoutError:
    pass
"""


def _pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a process (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


class Plain:
    """The peer: `recv` then `send` in a Python loop, nothing else."""

    def __init__(self, target: tuple[str, int], idle_s: float):
        # its own process group, registered with the run's reaper, stopped by its PID
        self.child = Child(
            "plain UDP forwarder",
            [sys.executable, "-c", _PLAIN_FORWARDER, str(target[1]), str(idle_s)],
            stdout=subprocess.PIPE,
            text=True,
        ).spawn()
        self.proc = self.child.proc
        port = self.child.read_line(PLAIN_READY_S)
        if port is None:
            self.stop()
            raise SystemExit(f"the plain forwarder printed no port within {PLAIN_READY_S:g} s")
        self.address = ("127.0.0.1", int(port))

    def stop(self) -> None:
        self.child.stop(signal.SIGKILL, PLAIN_STOP_S)
        self.child.close_pipes()


def _zero_profile(tmp: Path) -> str:
    path = tmp / "zero.yaml"
    path.write_text('name: zero\ndescription: "no impairment"\nsource: "benchmark"\n')
    return str(path)


def _start(kind: str, target: tuple[str, int], tmp: Path, pin: bool = True):
    if kind == "relay":
        fwd = RelayProcess(_zero_profile(tmp), target)
        fwd.start()
        pid = fwd.proc.pid
    else:
        fwd = Plain(target, idle_s=30.0)
        pid = fwd.proc.pid
    if pin:
        _pin(pid, {FORWARDER_CPU})
    return fwd


def _stop(fwd) -> None:
    fwd.stop()


def saturation(kind: str, count: int, tmp: Path) -> dict:
    sink = UdpSink(idle_s=1.0, deadline_s=120.0, expect=count)
    fwd = _start(kind, sink.address, tmp)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        pad = b"\x00" * (PAYLOAD_B - 8)
        t0 = time.monotonic()
        for i in range(count):
            try:
                sock.sendto(i.to_bytes(8, "big") + pad, fwd.address)
            except OSError:
                pass
        offered_s = time.monotonic() - t0
        seqs, times = sink.collect()
    finally:
        _stop(fwd)
        sink.close()
    n = len(set(seqs))
    span = (max(times) - min(times)) if len(times) > 1 else float("nan")
    return {
        "offered": count,
        "offered_pps": count / offered_s,
        "received": n,
        "loss_pct": 100.0 * (count - n) / count,
        "forwarded_pps": (len(times) - 1) / span,
    }


def at_rate(kind: str, pps: float, seconds: float, tmp: Path) -> dict:
    count = int(pps * seconds)
    sink = UdpSink(idle_s=1.0, deadline_s=seconds + 30.0, expect=count)
    fwd = _start(kind, sink.address, tmp)
    try:
        send_t = send_paced(fwd.address, count, pps, PAYLOAD_B)
        seqs, _ = sink.collect()
    finally:
        _stop(fwd)
        sink.close()
    achieved = count / (send_t[-1] - send_t[0])
    return {"offered_pps": achieved, "delivered_pct": 100.0 * len(set(seqs)) / count}


def delay(kind: str | None, count: int, pps: float, tmp: Path) -> list[float]:
    if kind is None:
        return probe(None, count, pps, PAYLOAD_B).delays_ms()
    sink = UdpSink(idle_s=1.0, deadline_s=count / pps + 30.0, expect=count)
    fwd = _start(kind, sink.address, tmp, pin=False)
    try:
        return probe(fwd.address, count, pps, PAYLOAD_B, sink=sink).delays_ms()
    finally:
        _stop(fwd)
        sink.close()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--packets", type=int, default=200_000, help="datagrams for the saturation run"
    )
    parser.add_argument("--delay-packets", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=3, help="delay trials (median reported)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    others = set(range(os.cpu_count() or 1)) - {FORWARDER_CPU} or {FORWARDER_CPU}
    everyone = set(range(os.cpu_count() or 1))
    results: dict = {"cpus": os.cpu_count(), "payload_b": PAYLOAD_B, "trials": args.trials}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for kind in ("relay", "plain"):
            os.sched_setaffinity(0, others)
            results[kind] = {
                "saturation": saturation(kind, args.packets, tmp),
                f"at_{TARGET_PPS}_pps": at_rate(kind, TARGET_PPS, 2.0, tmp),
            }
        os.sched_setaffinity(0, everyone)
        trials: dict[str, list[tuple[float, float]]] = {"direct": [], "relay": [], "plain": []}
        for _ in range(args.trials):  # interleaved, so that load changes hit all three alike
            for kind in ("direct", "relay", "plain"):
                d_ms = delay(None if kind == "direct" else kind, args.delay_packets, 2000, tmp)
                trials[kind].append((statistics.median(d_ms), _pct(d_ms, 99)))
        for kind, values in trials.items():
            p50 = statistics.median(v[0] for v in values)
            p99 = statistics.median(v[1] for v in values)
            results.setdefault(kind, {}).update(
                {"delay_p50_ms": p50, "delay_p99_ms": p99, "trials_p99_ms": [v[1] for v in values]}
            )
        for kind in ("relay", "plain"):
            r = results[kind]
            r["added_p50_ms"] = r["delay_p50_ms"] - results["direct"]["delay_p50_ms"]
            # the direct path's typical cost is taken off; its tail is not (conservative)
            r["added_p99_ms"] = r["delay_p99_ms"] - results["direct"]["delay_p50_ms"]
    relay, plain = results["relay"], results["plain"]
    results["ratio_relay_to_plain_pps"] = (
        relay["saturation"]["forwarded_pps"] / plain["saturation"]["forwarded_pps"]
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"UDP {PAYLOAD_B} B datagrams; forwarders pinned to CPU {FORWARDER_CPU};"
        f" {results['cpus']} CPUs"
    )
    dr = results["direct"]
    print(
        f"direct path: delay p50 {dr['delay_p50_ms']:.3f} ms p99 {dr['delay_p99_ms']:.3f} ms"
        f" (trials p99: {', '.join(f'{x:.3f}' for x in dr['trials_p99_ms'])})"
    )
    for kind in ("relay", "plain"):
        r = results[kind]
        s = r["saturation"]
        print(
            f"{kind:6} saturation: {s['forwarded_pps']:9.0f} pkt/s forwarded"
            f" (offered {s['offered_pps']:.0f} pkt/s,"
            f" loss {s['loss_pct']:.2f}%)"
        )
        a = r[f"at_{TARGET_PPS}_pps"]
        print(
            f"{kind:6} at {a['offered_pps']:.0f} pkt/s offered: {a['delivered_pct']:.2f}% delivered"
        )
        print(
            f"{kind:6} delay p50 {r['delay_p50_ms']:.3f} ms p99 {r['delay_p99_ms']:.3f} ms;"
            f" added p50 {r['added_p50_ms']:.3f} ms p99 {r['added_p99_ms']:.3f} ms"
            f" (trials p99: {', '.join(f'{x:.3f}' for x in r['trials_p99_ms'])})"
        )
    print(f"relay/plain throughput ratio: {results['ratio_relay_to_plain_pps']:.2f}")
    ok_pps = relay["saturation"]["forwarded_pps"] >= TARGET_PPS
    ok_p99 = relay["added_p99_ms"] < TARGET_P99_MS
    print(
        f"targets: >= {TARGET_PPS} pkt/s: {'met' if ok_pps else 'NOT met'};"
        f" added p99 < {TARGET_P99_MS:g} ms: {'met' if ok_p99 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
