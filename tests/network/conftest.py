"""Fixtures for the network tests: test-private network namespaces, a device twin's console.

Every namespace, process and file these fixtures make is removed at teardown, even when the
test fails. Traffic stays on loopback or inside the namespaces.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.farm.process import Child

IP_TIMEOUT_S = 10.0
TWIN_START_TIMEOUT_S = 20.0
TWIN_STOP_TIMEOUT_S = 5.0
_COUNTER = itertools.count()


def run(
    cmd: list[str], check: bool = True, timeout: float = IP_TIMEOUT_S
) -> subprocess.CompletedProcess:
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {cp.returncode}: {cp.stderr.strip()}")
    return cp


def netns_available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns, tc)"
    if not shutil.which("ip") or not shutil.which("tc"):
        return "ip/tc not installed"
    name = f"hilprobe{os.getpid()}"
    cp = subprocess.run(
        ["ip", "netns", "add", name], capture_output=True, text=True, timeout=IP_TIMEOUT_S
    )
    if cp.returncode != 0:
        return f"`ip netns add` failed: {cp.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=IP_TIMEOUT_S)
    return None


@dataclass
class NetnsPair:
    """Two namespaces joined by a veth pair: a (dev_a, ip_a) <-> b (dev_b, ip_b)."""

    a: str
    b: str
    dev_a: str
    dev_b: str
    ip_a: str
    ip_b: str

    def exec_a(self) -> list[str]:
        return ["ip", "netns", "exec", self.a]

    def exec_b(self) -> list[str]:
        return ["ip", "netns", "exec", self.b]

    def qdiscs(self, ns: str, dev: str) -> str:
        return run(["ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", dev]).stdout

    def links(self, ns: str) -> str:
        return run(["ip", "-n", ns, "-o", "link", "show"]).stdout


@pytest.fixture
def netns_pair():
    """A fresh namespace pair, deleted at teardown whatever happened."""
    why = netns_available()
    if why:
        pytest.skip(f"network namespaces unavailable: {why}")
    n = next(_COUNTER)
    tag = f"{os.getpid()}x{n}"
    pair = NetnsPair(
        f"hil-a-{tag}",
        f"hil-b-{tag}",
        f"hva{tag}"[:15],
        f"hvb{tag}"[:15],
        f"10.199.{n % 250}.1",
        f"10.199.{n % 250}.2",
    )
    try:
        run(["ip", "netns", "add", pair.a])
        run(["ip", "netns", "add", pair.b])
        run(
            [
                "ip",
                "-n",
                pair.a,
                "link",
                "add",
                pair.dev_a,
                "type",
                "veth",
                "peer",
                "name",
                pair.dev_b,
                "netns",
                pair.b,
            ]
        )
        for ns, dev, ip in ((pair.a, pair.dev_a, pair.ip_a), (pair.b, pair.dev_b, pair.ip_b)):
            run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        yield pair
    finally:
        for ns in (pair.a, pair.b):
            _kill_namespace_processes(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=IP_TIMEOUT_S)
        left = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, timeout=IP_TIMEOUT_S
        ).stdout
        assert pair.a not in left and pair.b not in left, f"namespaces left behind: {left}"


def _kill_namespace_processes(ns: str) -> None:
    cp = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=IP_TIMEOUT_S
    )
    for pid in cp.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


# ---------------------------------------------------------------------------------------------
# The device twin's emulator console


@dataclass
class TwinConsole:
    port: int  # console port (twin adb port - 1)
    token_file: Path
    truth: Path
    proc: subprocess.Popen


def _free_port_pair() -> int:
    """An adb port P, outside the emulator range, with P and P - 1 free (console = P - 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in range(5554, 5587):
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port - 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


@pytest.fixture
def twin_console(tmp_path):
    """A device twin (`python -m harness.twin twin up`) with a test-private HOME and token."""
    home = tmp_path / "home"
    home.mkdir()
    port = _free_port_pair()
    env = {**os.environ, "HOME": str(home)}
    cmd = [
        sys.executable,
        "-m",
        "harness.twin",
        "twin",
        "up",
        "--profile",
        "fire-hdx-7-2013",
        "--port",
        str(port),
        "--state-dir",
        str(tmp_path / "twin"),
    ]
    with open(tmp_path / "twin.log", "wb") as log:
        # its own process group, registered with the run's reaper, stopped by its PID below
        twin = Child("twin (console)", cmd, env=env, stdout=subprocess.PIPE, stderr=log).spawn()
    try:
        line = twin.read_line(TWIN_START_TIMEOUT_S)
        if not line:
            pytest.fail(f"twin did not start: {(tmp_path / 'twin.log').read_text()[-800:]}")
        info = json.loads(line)
        assert info["ready"], info
        yield TwinConsole(
            info["console_port"],
            home / ".emulator_console_auth_token",
            Path(info["truth"]),
            twin.proc,
        )
    finally:
        twin.stop(grace_s=TWIN_STOP_TIMEOUT_S)
        twin.close_pipes()


@pytest.fixture
def child_line():
    """child_line(proc, expected, timeout_s) -> the first stdout line containing `expected`."""
    return wait_for_line


def wait_for_line(proc: subprocess.Popen, expected: str, timeout_s: float = 20.0) -> str:
    """Read a child's stdout until a line contains `expected` (bounded)."""
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select(
            [proc.stdout], [], [], max(0.0, min(0.5, deadline - time.monotonic()))
        )
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            line = line.decode() if isinstance(line, bytes) else line
            seen.append(line)
            if expected in line:
                return line
        elif proc.poll() is not None:
            break
    err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise AssertionError(
        f"no {expected!r} from child within {timeout_s:g} s; saw {seen!r}; stderr {err!r}"
    )
