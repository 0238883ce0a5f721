"""A private adb server (the binary shipped in the adbutils wheel) on its own port and HOME."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import adbutils

from harness.errors import AdbError, AdbTimeoutError, HarnessError
from harness.farm.adbclient import PinnedAdbClient, adb_client
from harness.farm.hostprotocol import host_query, parse_devices
from harness.farm.process import Child

log = logging.getLogger(__name__)

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
DEVICE_TIMEOUT_S = 10.0
_POLL_S = 0.05
EMULATOR_PORTS = range(5555, 5586, 2)


def adb_binary() -> str:
    """Path of the adb binary inside the adbutils wheel ($HIL_ADB overrides it)."""
    override = os.environ.get("HIL_ADB")
    if override:
        return override
    path = Path(adbutils.__file__).parent / "binaries" / "adb"
    if not path.is_file():
        raise HarnessError(f"no adb binary at {path}: reinstall adbutils or set HIL_ADB")
    return str(path)


def port_free(port: int) -> bool:
    """True when a loopback TCP port can be bound now (TIME_WAIT leftovers do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(pair: bool = False, avoid: range = EMULATOR_PORTS) -> int:
    """A free loopback TCP port; with pair=True, port - 1 is free too (for a twin's console)."""
    for _ in range(200):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in avoid or (port - 1) in avoid or port < 1025:
            continue
        if not pair:
            return port
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port - 1))
            except OSError:
                continue
        return port
    raise HarnessError("no free loopback port found")


def free_port_block(count: int, avoid: range = EMULATOR_PORTS) -> int:
    """A base port P such that P - 1 .. P + 2 * count - 2 are all free (twins at P, P + 2, ...)."""
    for _ in range(200):
        base = free_port(pair=True, avoid=avoid)
        ports = range(base - 1, base + 2 * count - 1)
        if any(p in avoid for p in ports):
            continue
        socks = []
        try:
            for port in ports:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise HarnessError(f"no block of {2 * count} free loopback ports found")


class AdbServer:
    """`adb server nodaemon` on a private port with a private HOME (keys, console token).

    Started and stopped by its own PID, so test sessions never collide or leak a server.
    """

    def __init__(self, port: int | None = None, home: Path | None = None, reaper=None):
        # the run's reaper stops the server if the run dies: this one's ledger, else the run's
        self.reaper = reaper
        self.port = port or free_port()
        self._own_home = home is None  # a home it made itself, it removes at stop()
        self.home = Path(home or tempfile.mkdtemp(prefix="hil-adb-home-"))
        self.child: Child | None = None
        self.log_path = self.home / "adb-server.log"
        self.retries = 0

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {"HOME": str(self.home), "ANDROID_ADB_SERVER_PORT": str(self.port), "ADB_MDNS": "0"}
        )
        env.pop("ANDROID_SERIAL", None)
        return env

    def start(self, timeout_s: float = START_TIMEOUT_S) -> AdbServer:
        (self.home / ".android").mkdir(parents=True, exist_ok=True)
        name = f"adb server on port {self.port}"
        with open(self.log_path, "ab") as logf:
            self.child = Child(
                name,
                [adb_binary(), "-P", str(self.port), "server", "nodaemon"],
                env=self.env,
                stdout=logf,
                stderr=subprocess.STDOUT,
                ledger=self.reaper.ledger if self.reaper is not None else None,
            ).spawn()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.child.poll()
            if code is not None:
                self.child = None
                raise HarnessError(f"{name} exited with {code}: {self._log_tail()}")
            try:
                host_query(self.port, "host:version", timeout_s=1.0)
                log.info("%s (pid %d, HOME %s)", name, self.child.pid, self.home)
                return self
            except (OSError, AdbError):
                time.sleep(_POLL_S)
        tail = self._log_tail()
        self.stop()
        raise HarnessError(f"{name} did not answer within {timeout_s:g} s: {tail}")

    @property
    def proc(self) -> subprocess.Popen | None:
        """The server's process while it runs (started by start())."""
        return self.child.proc if self.child is not None else None

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace").strip().splitlines()[-1][:300]
        except (OSError, IndexError):
            return "(no log)"

    def client(self, timeout_s: float = 10.0) -> PinnedAdbClient:
        """An adbutils client of this server (pinned: it never starts another server)."""
        return adb_client("127.0.0.1", self.port, timeout_s)

    def adb(
        self, *args: str, timeout_s: float = 30.0, input: bytes | None = None
    ) -> subprocess.CompletedProcess:
        """Run the adb CLI against this server. Raises AdbTimeoutError past timeout_s."""
        cmd = [adb_binary(), "-P", str(self.port), *args]
        try:
            return subprocess.run(
                cmd, env=self.env, capture_output=True, timeout=timeout_s, input=input
            )
        except subprocess.TimeoutExpired as e:
            raise AdbTimeoutError(
                " ".join(args), timeout_s, stdout=(e.stdout or b"").decode(errors="replace")
            ) from None

    def states(self) -> dict[str, str]:
        """serial -> state ("device", "offline", "unauthorized", ...) as the server sees them."""
        return parse_devices(host_query(self.port, "host:devices", timeout_s=5.0))

    def wait_for(
        self,
        serial: str,
        state: str | tuple[str, ...] = "device",
        timeout_s: float = DEVICE_TIMEOUT_S,
    ) -> str:
        """Wait (bounded) until serial is in state (or one of states); returns the state.

        Raises:
            AdbTimeoutError: naming the last state seen.
        """
        wanted = (state,) if isinstance(state, str) else state
        deadline = time.monotonic() + timeout_s
        last = "absent"
        while time.monotonic() < deadline:
            last = self.states().get(serial, "absent")
            if last in wanted:
                return last
            time.sleep(_POLL_S)
        raise AdbTimeoutError(
            f"wait-for-{'|'.join(wanted)}", timeout_s, serial=serial, stdout=f"last state: {last}"
        )

    def wait_gone(self, serial: str, timeout_s: float = DEVICE_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.states().get(serial) in (None, "offline"):
                return
            time.sleep(_POLL_S)
        raise AdbTimeoutError("wait-for-disconnect", timeout_s, serial=serial)

    def connect(
        self,
        host_port: str,
        timeout_s: float = DEVICE_TIMEOUT_S,
        state: str | tuple[str, ...] = "device",
    ) -> str:
        """`adb connect` then wait for the state; returns the serial."""
        try:
            msg = self.client(timeout_s=timeout_s).connect(host_port, timeout=timeout_s)
        except adbutils.AdbError as e:
            raise AdbError(f"connect {host_port}", stderr=str(e), serial=host_port) from None
        # "failed to authenticate": the device shows its "Allow USB debugging?" dialog; the
        # transport stays and turns `device` once allowed (or stays `unauthorized`).
        if "connected" not in msg and "failed to authenticate" not in msg:
            raise AdbError(f"connect {host_port}", stdout=msg, serial=host_port)
        self.wait_for(host_port, state, timeout_s)
        return host_port

    def stop(self) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL). Never raises."""
        child, self.child = self.child, None
        if child is not None:
            child.stop(grace_s=STOP_TIMEOUT_S)
        if self._own_home:
            shutil.rmtree(self.home, onerror=lambda _f, p, e: log.info("removing %s: %s", p, e[1]))

    def __enter__(self) -> AdbServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
