"""`hil farm stf`: twins started as child processes, an STF-compatible API in front of them.

The twins run in the farm's own process group (a signal for the group stops them all) and are
stopped by their PIDs when the farm stops. Everything binds loopback. When ready, the farm
prints one JSON line: {"ready": true, "url": ..., "port": ..., "devices": [{serial, ...}]}.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness.errors import ProfileError
from harness.profiles import load_profile
from harness.twin.stf.farm import DEFAULT_LEASE_S, PROVIDER, FarmDevice, StfFarm

log = logging.getLogger(__name__)

TWIN_READY_TIMEOUT_S = 30.0  # plus TWIN_READY_PER_TWIN_S for each twin of a process
TWIN_READY_PER_TWIN_S = 2.0
TWIN_STOP_TIMEOUT_S = 5.0
TICK_S = 0.2
_EMULATOR_PORTS = range(5554, 5586)
_SPEC = re.compile(r"^(?P<profile>[A-Za-z0-9_.\-/]+?)(?:x(?P<count>\d+))?$")


def parse_twins(value: str) -> tuple[str, int]:
    """ "fire-hdx-7-2013x3" -> ("fire-hdx-7-2013", 3)."""
    m = _SPEC.match(value)
    if not m or int(m.group("count") or 1) < 1:
        raise ProfileError("--twins", value, "expected PROFILE or PROFILExN (N >= 1)")
    return m.group("profile"), int(m.group("count") or 1)


def port_block(count: int) -> int:
    """A base port P outside the emulator range with P - 1 .. P + 2 * count - 2 free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        ports = range(base - 1, base + 2 * count - 1)
        if base < 1025 or any(p in _EMULATOR_PORTS for p in ports) or ports[-1] > 65535:
            continue
        socks = []
        try:
            for p in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError("no free block of loopback ports for the farm's twins")


class FarmRunner:
    """Starts the twins, then the farm's API; stops both."""

    def __init__(
        self,
        twins: list[str],
        tokens: list[str],
        port: int = 0,
        state_dir: Path | None = None,
        profiles_dir: Path | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        offline_after_connect_s: float = 0.0,
        provider: str = PROVIDER,
    ):
        if not tokens or not all(tokens):
            raise ProfileError("--token", "-", "an STF farm needs access tokens, none empty")
        self.specs = [parse_twins(t) for t in twins]
        self.profiles = {name: load_profile(name, profiles_dir) for name, _ in self.specs}
        self.tokens = tokens
        self.port = port
        self.profiles_dir = profiles_dir
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="hil-stf-farm-"))
        self.lease_s = lease_s
        self.offline_after_connect_s = offline_after_connect_s
        self.provider = provider
        self.procs: list[subprocess.Popen] = []
        self._serials: dict[int, list[str]] = {}  # twin pid -> its devices
        self.farm: StfFarm | None = None

    def start(self) -> dict:
        """Start every twin (bounded wait for its ready lines) and the API; the ready line."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        devices: list[FarmDevice] = []
        for i, (name, count) in enumerate(self.specs):
            base = port_block(count)
            tdir = self.state_dir / f"t{i}"  # short: the control socket is AF_UNIX
            cmd = [sys.executable, "-m", "harness.twin", "twin", "up", "--profile", name]
            cmd += ["--port", str(base), "--count", str(count), "--state-dir", str(tdir)]
            cmd += ["--accept-new-keys"]
            if self.profiles_dir:
                cmd += ["--profiles-dir", str(self.profiles_dir)]
            tdir.mkdir(parents=True, exist_ok=True)
            with open(tdir / "twin.log", "ab") as logf:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=logf, stdin=subprocess.DEVNULL
                )
            self.procs.append(proc)
            for line in self._ready_lines(proc, count, name):
                serial = f"TWIN{line['port']:05d}"
                self._serials.setdefault(proc.pid, []).append(serial)
                devices.append(
                    FarmDevice(serial, line["port"], self.profiles[name], provider=self.provider)
                )
        self.farm = StfFarm(
            devices,
            self.tokens,
            truth_path=self.state_dir / "stf.jsonl",
            default_lease_s=self.lease_s,
            offline_after_connect_s=self.offline_after_connect_s,
        )
        port = self.farm.start(self.port)
        return {
            "ready": True,
            "url": f"http://127.0.0.1:{port}",
            "port": port,
            "pid": os.getpid(),
            "state_dir": str(self.state_dir),
            "truth": str(self.state_dir / "stf.jsonl"),
            "devices": [
                {
                    "serial": d.serial,
                    "twin_port": d.twin_port,
                    "profile": d.profile.name,
                    "model": d.profile.model,
                }
                for d in devices
            ],
        }

    @staticmethod
    def _ready_lines(proc: subprocess.Popen, count: int, name: str) -> list[dict]:
        out: list[dict] = []
        buf = b""
        timeout_s = TWIN_READY_TIMEOUT_S + TWIN_READY_PER_TWIN_S * count
        deadline = time.monotonic() + timeout_s
        while len(out) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OSError(f"twins of {name}: not ready within {timeout_s:g} s")
            ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.5))
            if not ready:
                if proc.poll() is not None:
                    raise OSError(f"twins of {name} exited with {proc.returncode}")
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise OSError(f"twins of {name} exited with {proc.wait(TWIN_STOP_TIMEOUT_S)}")
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = json.loads(raw)
                if not line.get("ready"):
                    raise OSError(f"twins of {name}: {line.get('error')}")
                out.append(line)
        return out

    def tick(self) -> None:
        """Expire leases; a twin process that died takes its devices out of the farm."""
        if self.farm is None:
            return
        self.farm.expire()
        for proc in self.procs:
            if proc.poll() is None or proc.pid not in self._serials:
                continue
            log.warning(
                "twin pid %d exited (%s): its devices leave the farm", proc.pid, proc.returncode
            )
            for serial in self._serials.pop(proc.pid):
                self.farm.fault({"op": "leave", "serial": serial})

    def stop(self) -> None:
        """Stop the API and every twin by PID. Never raises."""
        if self.farm is not None:
            self.farm.stop()
        for proc in self.procs:
            try:
                if proc.poll() is None:
                    proc.terminate()
            except OSError:
                pass
        for proc in self.procs:
            try:
                proc.wait(TWIN_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                try:
                    proc.kill()
                    proc.wait(TWIN_STOP_TIMEOUT_S)
                except Exception as e:  # noqa: BLE001 -- cleanup never raises
                    log.warning("twin pid %d did not stop: %s", proc.pid, e)
            finally:
                if proc.stdout:
                    proc.stdout.close()
        self.procs = []


def serve(runner: FarmRunner, max_s: float | None = None) -> int:
    """Start, print the ready line, serve until SIGTERM/SIGINT (or max_s), stop."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        info = runner.start()
    except (OSError, ProfileError) as e:
        print(json.dumps({"ready": False, "error": str(e)}), flush=True)
        runner.stop()
        return 2
    print(json.dumps(info), flush=True)
    end = time.monotonic() + (max_s if max_s else 30 * 86_400.0)
    try:
        while not stop.wait(TICK_S) and time.monotonic() < end:
            runner.tick()
    finally:
        runner.stop()
    return 0
