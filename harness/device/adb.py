"""Device: one device on `adb devices`, driven through the real adb server with adbutils.

Every call takes a timeout with a short default. Shell calls return exit codes on every API
level (shell_v2 where the device has it, a marker echo where it does not) and repair the CRLF
output of an old adbd's PTY. Failures raise AdbError / AdbTimeoutError naming the command,
its output, its exit code and the serial.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import adbutils

from harness.errors import AdbError, AdbTimeoutError, DeviceError
from harness.farm.adbclient import adb_client
from harness.farm.hostprotocol import default_adb_port
from harness.farm.hostprotocol import read_length_prefixed as _read_length_prefixed
from harness.farm.hostprotocol import request as _request

log = logging.getLogger(__name__)

SHELL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
RECONNECT_ATTEMPTS = 3
RECONNECT_BACKOFF_S = 0.5
_V2_HEADER = struct.Struct("<BI")


@dataclass(frozen=True)
class ShellResult:
    cmd: str
    stdout: str
    stderr: str
    returncode: int
    duration_s: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class RetryLog:
    """Retries are bounded, logged and counted (they go into the report)."""

    counts: Counter = field(default_factory=Counter)
    events: list[dict] = field(default_factory=list)

    def record(self, what: str, attempt: int, reason: str) -> None:
        self.counts[what] += 1
        self.events.append(
            {"what": what, "attempt": attempt, "reason": reason, "t": time.monotonic()}
        )
        log.warning("retry %s (attempt %d): %s", what, attempt, reason)


class Device:
    """One device (tablet, emulator or twin) reached through an adb server.

    Args:
        serial: as `adb devices` lists it.
        host, port: the adb server (default: $ANDROID_ADB_SERVER_PORT or 5037 on localhost).
    """

    def __init__(self, serial: str, host: str = "127.0.0.1", port: int | None = None):
        self.serial = serial
        self.host = host
        self.port = port or default_adb_port()
        self.client = adb_client(host, self.port, SHELL_TIMEOUT_S)
        self.retries = RetryLog()
        self._props: dict[str, str] | None = None
        self._features: frozenset[str] | None = None

    def __repr__(self) -> str:
        return f"Device({self.serial!r})"

    # --- identity -----------------------------------------------------------------------
    @property
    def adbutils_device(self) -> adbutils.AdbDevice:
        return self.client.device(self.serial)

    def state(self, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
        """ "device", "offline", "unauthorized"... or "absent". (A raw query: adbutils would
        start a default adb server when this one is unreachable.)"""
        try:
            with self._open("host:devices", timeout_s, host_service=True) as s:
                text = _read_length_prefixed(s, self.serial)
        except (AdbError, OSError) as e:
            raise DeviceError(
                self.serial, f"adb server on {self.host}:{self.port} unreachable: {e}"
            ) from None
        for line in text.splitlines():
            serial, _, state = line.partition("\t")
            if serial == self.serial:
                return state.strip()
        return "absent"

    def getprops(self, refresh: bool = False, timeout_s: float = SHELL_TIMEOUT_S) -> dict[str, str]:
        from harness.device.parsers import parse_getprop

        if self._props is None or refresh:
            # raw v1 shell: the API level (and so whether CRLF needs repair) is not known yet;
            # getprop values never hold a CR, so dropping CRs is safe on every level
            raw = self.shell_bytes("getprop", timeout_s=timeout_s).replace(b"\r\n", b"\n")
            self._props = parse_getprop(raw)
        return self._props

    def getprop(self, key: str, timeout_s: float = SHELL_TIMEOUT_S) -> str:
        """One property (empty when unset); `key` is quoted: it never reaches the shell as code."""
        return self.shell(f"getprop {shlex.quote(key)}", timeout_s=timeout_s).stdout.strip()

    @property
    def api_level(self) -> int:
        value = self.getprops().get("ro.build.version.sdk", "")
        if not value.isdigit():
            raise DeviceError(self.serial, f"ro.build.version.sdk is {value!r}, not an API level")
        return int(value)

    @property
    def features(self) -> frozenset[str]:
        """Transport features both sides share (shell_v2, ...), from the adb server."""
        if self._features is None:
            with self._open(
                f"host-serial:{self.serial}:features",
                host_service=True,
                timeout_s=CONNECT_TIMEOUT_S,
            ) as s:
                text = _read_length_prefixed(s, self.serial)
            self._features = frozenset(f for f in text.split(",") if f)
        return self._features

    @property
    def has_shell_v2(self) -> bool:
        return "shell_v2" in self.features

    @property
    def pty_crlf(self) -> bool:
        """Old adbd (API <= 20) ran `shell:` under a PTY: LF came out as CRLF."""
        return self.api_level <= 20

    # --- raw streams --------------------------------------------------------------------
    def _open(self, service: str, timeout_s: float, host_service: bool = False) -> socket.socket:
        """A socket to the adb server, switched to this device and opened on `service`."""
        deadline = time.monotonic() + timeout_s
        try:
            s = socket.create_connection((self.host, self.port), timeout=max(0.1, timeout_s))
        except OSError as e:
            raise AdbError(
                service,
                serial=self.serial,
                msg=f"`{service}`: adb server on {self.host}:{self.port} unreachable: {e}",
            ) from None
        try:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            if not host_service:
                _request(s, f"host:transport:{self.serial}", self.serial, service)
            _request(s, service, self.serial, service)
            return s
        except TimeoutError:
            s.close()
            raise AdbTimeoutError(service, timeout_s, serial=self.serial) from None
        except BaseException:
            s.close()
            raise

    def stream(self, service: str, timeout_s: float = SHELL_TIMEOUT_S) -> socket.socket:
        """An open stream to a device service (caller closes it); reads time out after timeout_s."""
        return self._open(service, timeout_s)

    # --- shell --------------------------------------------------------------------------
    def shell(
        self, cmd: str, timeout_s: float = SHELL_TIMEOUT_S, check: bool = False
    ) -> ShellResult:
        """Run a shell command; exit code on every API level.

        Raises:
            AdbTimeoutError: past timeout_s (the stream is closed, which stops the command).
            AdbError: device gone; or, with check=True, a non-zero exit code.
        """
        t0 = time.monotonic()
        if self.has_shell_v2:
            out, err, code = self._shell_v2(cmd, timeout_s)
        else:
            out, err, code = self._shell_v1(cmd, timeout_s)
        result = ShellResult(
            cmd,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            code,
            time.monotonic() - t0,
        )
        if check and code != 0:
            raise AdbError(cmd, result.stdout, result.stderr, code, self.serial)
        return result

    def _shell_v2(self, cmd: str, timeout_s: float) -> tuple[bytes, bytes, int]:
        deadline = time.monotonic() + timeout_s
        out, err = bytearray(), bytearray()
        code: int | None = None
        with self._open(f"shell,v2,raw:{cmd}", timeout_s) as s:
            buf = bytearray()
            while True:
                chunk = _recv(s, deadline, cmd, timeout_s, self.serial)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 5:
                    ident, length = _V2_HEADER.unpack_from(buf)
                    if len(buf) < 5 + length:
                        break
                    data = bytes(buf[5 : 5 + length])
                    del buf[: 5 + length]
                    if ident == 1:
                        out += data
                    elif ident == 2:
                        err += data
                    elif ident == 3 and data:
                        code = data[0]
                if code is not None:
                    break
        if code is None:
            raise AdbError(
                cmd,
                out.decode(errors="replace"),
                err.decode(errors="replace"),
                None,
                self.serial,
                msg=f"`{cmd}`: stream closed without an exit code (device gone?)",
            )
        return bytes(out), bytes(err), code

    def _shell_v1(self, cmd: str, timeout_s: float) -> tuple[bytes, bytes, int]:
        marker = f"HILRC{secrets.token_hex(4)}:"
        # in its own `sh -c`, so that an `exit` in the command cannot skip the marker
        quoted = "'" + cmd.replace("'", "'\\''") + "'"
        data = self.shell_bytes(
            f"sh -c {quoted}; echo {marker}$?", timeout_s=timeout_s, service_name=cmd
        )
        if self.pty_crlf:
            data = data.replace(b"\r\n", b"\n")
        idx = data.rfind(marker.encode())
        if idx < 0:
            raise AdbError(
                cmd,
                data.decode(errors="replace"),
                "",
                None,
                self.serial,
                msg=f"`{cmd}`: no exit marker in the output (the command ended the shell?)",
            )
        tail = data[idx + len(marker) :].strip()
        try:
            code = int(tail.split()[0])
        except (ValueError, IndexError):
            raise AdbError(
                cmd,
                data.decode(errors="replace"),
                "",
                None,
                self.serial,
                msg=f"`{cmd}`: bad exit marker {tail[:20]!r}",
            ) from None
        return data[:idx], b"", code

    def shell_bytes(
        self, cmd: str, timeout_s: float = SHELL_TIMEOUT_S, service_name: str | None = None
    ) -> bytes:
        """Raw output of `shell:` (v1; stdout and stderr merged; CRLF-mangled on API <= 20)."""
        return self._read_to_end(f"shell:{cmd}", service_name or cmd, timeout_s)

    def exec_out(self, cmd: str, timeout_s: float = SHELL_TIMEOUT_S) -> bytes:
        """Raw stdout of `exec:` (API 21+). Raises AdbError where the device has no exec:."""
        return self._read_to_end(f"exec:{cmd}", cmd, timeout_s)

    def _read_to_end(self, service: str, name: str, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        out = bytearray()
        with self._open(service, timeout_s) as s:
            while True:
                chunk = _recv(s, deadline, name, timeout_s, self.serial)
                if not chunk:
                    return bytes(out)
                out += chunk

    # --- files ----------------------------------------------------------------------------
    def push(self, data: bytes | Path, remote: str, timeout_s: float = 30.0) -> None:
        src = data if isinstance(data, bytes) else Path(data).read_bytes()
        self._sync(lambda d: d.sync.push(src, remote), f"push {remote}", timeout_s)

    def pull_bytes(self, remote: str, timeout_s: float = 30.0) -> bytes:
        return self._sync(lambda d: d.sync.read_bytes(remote), f"pull {remote}", timeout_s)

    def _sync(self, action, what: str, timeout_s: float):
        client = adb_client(self.host, self.port, timeout_s)
        try:
            return action(client.device(self.serial))
        except adbutils.AdbTimeout:
            raise AdbTimeoutError(what, timeout_s, serial=self.serial) from None
        except (adbutils.AdbError, OSError) as e:
            raise AdbError(
                what, stderr=str(e), serial=self.serial, msg=f"{what} failed: {e}"
            ) from None

    # --- screenshots ----------------------------------------------------------------------
    def screenshot_png(self, timeout_s: float = SHELL_TIMEOUT_S) -> bytes:
        """A clean PNG on every API level: exec-out where the device has exec: (API 21+),
        else to a file and a sync pull (the PTY of older adbd mangles binary stdout)."""
        if self.api_level >= 21:
            return self.exec_out("screencap -p", timeout_s)
        path = "/data/local/tmp/hil-screencap.png"
        self.shell(f"screencap -p {path}", timeout_s=timeout_s, check=True)
        try:
            return self.pull_bytes(path, timeout_s)
        finally:
            self.shell(f"rm -f {path}", timeout_s=timeout_s)

    def screenshot(self, timeout_s: float = SHELL_TIMEOUT_S):
        """The screen as a BGR numpy array (host time taken after it arrived is the caller's)."""
        import cv2
        import numpy as np

        png = self.screenshot_png(timeout_s)
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DeviceError(
                self.serial, f"screenshot is not a PNG ({len(png)} bytes, starts {png[:8]!r})"
            )
        return img

    # --- connection -----------------------------------------------------------------------
    def wait_for(self, state: str = "device", timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last = "absent"
        while time.monotonic() < deadline:
            last = self.state()
            if last == state:
                return
            time.sleep(0.05)
        raise AdbTimeoutError(
            f"wait-for-{state}", timeout_s, serial=self.serial, stdout=f"last state {last}"
        )

    def reconnect(
        self, attempts: int = RECONNECT_ATTEMPTS, timeout_s: float = CONNECT_TIMEOUT_S
    ) -> None:
        """Bring back a network-adb device (`ip:port` serial) that dropped; bounded, counted.

        Raises:
            DeviceError: not a network serial, or still not `device` after the attempts.
        """
        if ":" not in self.serial:
            raise DeviceError(self.serial, "reconnect works only for network adb serials (ip:port)")
        reason = "?"
        for attempt in range(1, attempts + 1):
            try:
                if self.state() == "device":
                    return
                client = adb_client(self.host, self.port, timeout_s)
                msg = client.connect(self.serial, timeout=timeout_s)
                reason = msg
                self.wait_for("device", timeout_s)
                self.retries.record("reconnect", attempt, reason)
                return
            except (adbutils.AdbError, AdbError, OSError) as e:
                reason = str(e)
            self.retries.record("reconnect", attempt, reason)
            time.sleep(RECONNECT_BACKOFF_S * attempt)
        raise DeviceError(
            self.serial, f"still not connected after {attempts} reconnect attempts: {reason}"
        )


def _recv(s: socket.socket, deadline: float, cmd: str, timeout_s: float, serial: str) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AdbTimeoutError(cmd, timeout_s, serial=serial)
    s.settimeout(remaining)
    try:
        return s.recv(65536)
    except TimeoutError:
        raise AdbTimeoutError(cmd, timeout_s, serial=serial) from None
    except OSError as e:
        raise AdbError(cmd, serial=serial, msg=f"`{cmd}`: connection lost: {e}") from None
