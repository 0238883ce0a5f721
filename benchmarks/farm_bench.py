"""Leasing from an STF farm of twins: lease-to-ready per device, wall time, harness CPU per session.

Run: .venv/bin/python benchmarks/farm_bench.py [--sizes 2,4,8,16] [--profile NAME]

For each farm size N: `hil farm stf` with N twins; the harness leases all N (list, claim,
remoteConnect, `adb connect` on a private adb server, health check) and drives one device
session per device at once (one thread per device, as one xdist worker per device would):
capability probe, 3 screenshots decoded and compared (SSIM of the first and last: the kind of
analysis a session does); then releases. Figures:
- lease-to-ready per device (claim -> `device` state), p50/max; the peer in the same run is a
  plain `adb connect` of the same twin's own port (no farm, no remote port) to `device`;
- wall time of the run (lease all, sessions, release all);
- shell round trip (`getprop`) through the farm's remote adb port, against the same twin's own
  port (the peer) in the same run: what the farm's forwarding adds to every device call;
- CPU seconds per device-session of the harness (this process + its adb server), apart from the
  farm's (API + remote ports) and the twins' CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.device.adb import Device  # noqa: E402
from harness.device.probe import probe  # noqa: E402
from harness.farm import AdbServer  # noqa: E402
from harness.farm.process import Child  # noqa: E402
from harness.farm.stf import StfClient, StfLeaser  # noqa: E402

TOKEN = "bench-token"
READY_TIMEOUT_S = 120.0
FARM_STOP_S = 15.0  # SIGTERM to the farm's group, then SIGKILL
TICK_S = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """utime + stime of a process and its reaped children (seconds); 0 if gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11:15]) / TICK_S


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _start_farm(n: int, profile: str, state: Path) -> tuple[Child, dict]:
    """`hil farm stf` with n twins: its own process group, registered with the run's reaper."""
    farm = Child(
        f"farm of {n}",
        [sys.executable, "-m", "harness.cli", "farm", "stf", "--twins", f"{profile}x{n}"]
        + ["--token", TOKEN, "--state-dir", str(state)],
        stdout=subprocess.PIPE,
    ).spawn()
    line = farm.read_line(READY_TIMEOUT_S)
    if line is None:
        _stop(farm)
        raise SystemExit(f"farm of {n} not ready")
    info = json.loads(line)
    if not info.get("ready"):
        _stop(farm)
        raise SystemExit(f"farm of {n}: {info.get('error')}")
    return farm, info


def _stop(farm: Child) -> None:
    farm.stop(grace_s=FARM_STOP_S)
    farm.close_pipes()


def _session(serial: str, adb_port: int) -> float:
    import cv2
    import numpy as np

    from harness.vision.fidelity import ssim

    dev = Device(serial, port=adb_port)
    probe(dev)
    frames = [
        cv2.imdecode(np.frombuffer(dev.screenshot_png(), np.uint8), cv2.IMREAD_COLOR)
        for _ in range(3)
    ]
    return float(ssim(frames[0], frames[-1]))


def _round_trips(adb: AdbServer, info: dict, rounds: int = 30) -> tuple[float, float]:
    """p50 getprop round trip through a fresh lease's remote port and the twin's own port."""
    leaser = StfLeaser(StfClient(info["url"], TOKEN), adb, count=1, lease_s=600)
    lease = leaser.acquire()[0]
    twin = next(d for d in info["devices"] if d["serial"] == lease.serial)
    direct = adb.connect(f"127.0.0.1:{twin['twin_port']}")
    out = []
    try:
        for serial in (lease.remote_url, direct):
            dev = Device(serial, port=adb.port)
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                dev.getprop("ro.product.model")
                times.append(1000 * (time.perf_counter() - t0))
            out.append(statistics.median(times))
    finally:
        leaser.release_all()
        adb.client(timeout_s=5).disconnect(direct)
    return out[0], out[1]


def bench(n: int, profile: str, tmp: Path) -> dict:
    farm, info = _start_farm(n, profile, tmp / f"farm{n}")
    twin_pids = _children(farm.proc.pid)
    adb = AdbServer(home=tmp / f"home{n}").start()
    try:
        # peer: a plain adb connect of each twin's own port (no farm in between)
        peer = []
        for d in info["devices"]:
            t0 = time.perf_counter()
            adb.connect(f"127.0.0.1:{d['twin_port']}")
            peer.append(time.perf_counter() - t0)
            adb.client(timeout_s=5).disconnect(f"127.0.0.1:{d['twin_port']}")
        farm_cpu0 = _cpu_s(farm.proc.pid)
        twins_cpu0 = sum(_cpu_s(p) for p in twin_pids)
        me0, adb0 = _self_cpu_s(), _cpu_s(adb.proc.pid)
        t0 = time.perf_counter()
        leaser = StfLeaser(StfClient(info["url"], TOKEN), adb, count=n, lease_s=600)
        leases = leaser.acquire()
        with ThreadPoolExecutor(max_workers=n) as pool:
            same = list(pool.map(lambda lease: _session(lease.remote_url, adb.port), leases))
        assert all(v > 0.5 for v in same), same  # the screens were really read
        leaser.release_all()
        wall = time.perf_counter() - t0
        harness_cpu = (_self_cpu_s() - me0) + (_cpu_s(adb.proc.pid) - adb0)
        farm_cpu = _cpu_s(farm.proc.pid) - farm_cpu0
        twins_cpu = sum(_cpu_s(p) for p in twin_pids) - twins_cpu0
        remote_ms, direct_ms = _round_trips(adb, info)  # after the CPU figures
        ready = sorted(leaser.timings.values())
        return {
            "devices": n,
            "leased": len(leases),
            "lease_to_ready_p50_s": statistics.median(ready),
            "lease_to_ready_max_s": ready[-1],
            "peer_adb_connect_p50_s": statistics.median(peer),
            "wall_s": wall,
            "getprop_remote_p50_ms": remote_ms,
            "getprop_direct_p50_ms": direct_ms,
            "harness_cpu_per_session_s": harness_cpu / n,
            "farm_cpu_s": farm_cpu,
            "twins_cpu_per_session_s": twins_cpu / n,
            "retries": leaser.retries,
        }
    finally:
        adb.stop()
        _stop(farm)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2,4,8,16")
    ap.add_argument("--profile", default="android-emulator-api34")
    args = ap.parse_args()
    import cv2  # noqa: F401  (imported before any figure: not part of a session's CPU)

    import harness.vision.fidelity  # noqa: F401

    rows = []
    with tempfile.TemporaryDirectory(prefix="hil-fb-") as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            row = bench(n, args.profile, Path(tmp))
            rows.append(row)
            print(
                f"N={n:2d}: lease-to-ready p50 {row['lease_to_ready_p50_s'] * 1000:.0f} ms "
                f"(max {row['lease_to_ready_max_s'] * 1000:.0f} ms; plain adb connect "
                f"{row['peer_adb_connect_p50_s'] * 1000:.0f} ms), wall {row['wall_s']:.1f} s, "
                f"getprop remote {row['getprop_remote_p50_ms']:.1f} ms (direct "
                f"{row['getprop_direct_p50_ms']:.1f} ms), "
                f"harness CPU {row['harness_cpu_per_session_s']:.2f} s/session, "
                f"twins {row['twins_cpu_per_session_s']:.2f} s/session, farm {row['farm_cpu_s']:.2f} s"
                + (f", retries {row['retries']}" if row["retries"] else ""),
                flush=True,
            )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
