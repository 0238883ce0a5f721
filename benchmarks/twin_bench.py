"""Twin throughput and latency through the real adb server (figures for the README).

Run: .venv/bin/python benchmarks/twin_bench.py [--rounds N] [--mib M]

Shell round trip: p50/p95 of `getprop ro.product.model` over adbutils' connection (open the
transport, send the service, read to EOF), against the adb server's own `host:version` round
trip measured the same way in the same run (the floor any device adds to). adbutils' close()
sleeps 10 ms after each connection (adbutils issue 169), and a device opened by serial asks
the server's version (one more connection) before each service: the device is opened by
transport id, the sleep is excluded from both figures and the full `AdbDevice.shell()` call
time is reported beside them.
Push/pull: MB/s of an M MiB random file with adbutils sync and with the adb CLI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.farm import AdbServer, TwinProcess  # noqa: E402


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--mib", type=int, default=32)
    ap.add_argument("--profile", default="android-emulator-api34")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, AdbServer(home=Path(tmp) / "home") as adb:
        tp = TwinProcess(args.profile, adb=adb, state_dir=Path(tmp) / "twin")
        try:
            tp.start()
            serial = f"127.0.0.1:{tp.port}"
            client = adb.client()
            listing = adb.adb("devices", "-l").stdout.decode()
            line = next(ln for ln in listing.splitlines() if ln.startswith(serial))
            # by transport id: adbutils then skips its per-call host:version query
            d = client.device(transport_id=int(line.rsplit("transport_id:", 1)[1]))
            for _ in range(20):  # warm up
                d.shell("getprop ro.product.model")
                client.server_version()
            shell_ms, server_ms, call_ms = [], [], []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                c = d.open_transport()
                c.send_command("shell:getprop ro.product.model")
                c.check_okay()
                out = c.read_until_close()
                shell_ms.append((time.perf_counter() - t0) * 1e3)
                c.close()
                assert out.strip(), "empty getprop"
                t0 = time.perf_counter()
                c = client.make_connection()
                c.send_command("host:version")
                c.check_okay()
                c.read_string_block()
                server_ms.append((time.perf_counter() - t0) * 1e3)
                c.close()
                t0 = time.perf_counter()
                d.shell("getprop ro.product.model")
                call_ms.append((time.perf_counter() - t0) * 1e3)
            data = os.urandom(args.mib << 20)
            src = Path(tmp) / "blob"
            src.write_bytes(data)
            rates = {}
            t0 = time.perf_counter()
            d.sync.push(src, "/data/local/tmp/blob")
            rates["push adbutils"] = len(data) / (time.perf_counter() - t0) / 1e6
            t0 = time.perf_counter()
            back = d.sync.read_bytes("/data/local/tmp/blob")
            rates["pull adbutils"] = len(data) / (time.perf_counter() - t0) / 1e6
            assert back == data, "pull is not byte-exact"
            t0 = time.perf_counter()
            adb.adb("-s", serial, "push", str(src), "/sdcard/blob", timeout_s=120)
            rates["push adb CLI"] = len(data) / (time.perf_counter() - t0) / 1e6
            t0 = time.perf_counter()
            adb.adb("-s", serial, "pull", "/sdcard/blob", str(src) + ".back", timeout_s=120)
            rates["pull adb CLI"] = len(data) / (time.perf_counter() - t0) / 1e6
            assert Path(str(src) + ".back").read_bytes() == data
        finally:
            tp.stop()
    print(f"twin benchmark ({args.profile}, {args.rounds} rounds, {args.mib} MiB)")
    print(
        f"  shell round trip (getprop via adbutils): p50 {statistics.median(shell_ms):.2f} ms, p95 {_p(shell_ms, 0.95):.2f} ms"
    )
    print(
        f"  adb server alone (host:version):         p50 {statistics.median(server_ms):.2f} ms, p95 {_p(server_ms, 0.95):.2f} ms"
    )
    print(
        f"  ratio shell / server-only p50:           {statistics.median(shell_ms) / statistics.median(server_ms):.1f}x"
    )
    print(f"  AdbDevice.shell() call incl. close sleep: p50 {statistics.median(call_ms):.2f} ms")
    for name, rate in rates.items():
        print(f"  {name:<16} {rate:7.1f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
