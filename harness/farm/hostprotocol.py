"""The adb host protocol (client side of the adb server's smart socket), on raw sockets.

One codec for every caller that talks to an adb server itself (harness.device.adb, the farm's
readiness and device-list queries): a request is a 4-hex-digit length and the service; the
answer is OKAY, or FAIL and a length-prefixed message. Host services answer one more
length-prefixed body. A short read or a hang-up mid-answer is an AdbError naming the command and
the serial, never a bare ConnectionError.

adbutils starts a default adb server when it cannot connect; these raw queries never do, which
is why readiness polls and state queries use them (see reference/adb-wire-facts.md).
"""

from __future__ import annotations

import os
import socket

from harness.errors import AdbError

DEFAULT_ADB_PORT = 5037
ADB_PORT_ENV = "ANDROID_ADB_SERVER_PORT"
QUERY_TIMEOUT_S = 2.0
_GONE_MARKERS = ("not found", "offline", "no devices", "unauthorized", "closed")


def default_adb_port() -> int:
    """The adb server port when none is given: $ANDROID_ADB_SERVER_PORT, else 5037.

    Raises:
        AdbError: the variable is set but is not a TCP port.
    """
    value = os.environ.get(ADB_PORT_ENV, "").strip()
    if not value:
        return DEFAULT_ADB_PORT
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise AdbError(ADB_PORT_ENV, msg=f"${ADB_PORT_ENV}={value!r} is not a TCP port (1..65535)")
    return int(value)


def recv_exact(s: socket.socket, n: int, serial: str = "", cmd: str = "adb host protocol") -> bytes:
    """Exactly n bytes; a closed or reset connection is an AdbError naming the command and serial
    (the adb server drops a request whose device went offline under it).

    Raises:
        TimeoutError: the socket's timeout passed (the caller knows the whole deadline).
        AdbError: the connection closed or failed.
    """
    out = b""
    while len(out) < n:
        try:
            chunk = s.recv(n - len(out))
        except TimeoutError:
            raise  # the caller knows the whole timeout and reports it
        except OSError as e:
            raise AdbError(cmd, serial=serial, msg=f"`{cmd}`: connection lost: {e}") from None
        if not chunk:
            raise AdbError(
                cmd,
                serial=serial,
                msg=f"`{cmd}`: device unavailable: adb server closed the connection",
            )
        out += chunk
    return out


def read_length_prefixed(s: socket.socket, serial: str = "", cmd: str = "adb host protocol") -> str:
    """One body: 4 hex digits of length, then that many bytes (decoded as UTF-8)."""
    raw = recv_exact(s, 4, serial, cmd)
    try:
        n = int(raw, 16)
    except ValueError:
        raise AdbError(cmd, serial=serial, msg=f"`{cmd}`: bad length {raw!r}") from None
    return recv_exact(s, n, serial, cmd).decode("utf-8", "replace")


def request(s: socket.socket, service: str, serial: str = "", cmd: str | None = None) -> None:
    """Send one request and read its status.

    Raises:
        AdbError: FAIL (the server's message; "device unavailable" when the device is gone), a
            status that is neither OKAY nor FAIL, or a hang-up.
        TimeoutError: the socket's timeout passed.
    """
    cmd = cmd or service
    raw = service.encode()
    s.sendall(b"%04x" % len(raw) + raw)
    status = recv_exact(s, 4, serial, cmd)
    if status == b"OKAY":
        return
    if status == b"FAIL":
        msg = read_length_prefixed(s, serial, cmd)
        gone = any(m in msg for m in _GONE_MARKERS)
        raise AdbError(
            cmd,
            stderr=msg,
            serial=serial,
            msg=f"`{cmd}`: {'device unavailable: ' if gone else ''}{msg}",
        )
    raise AdbError(cmd, serial=serial, msg=f"`{cmd}`: adb server answered {status!r}")


def host_query(
    port: int, service: str, timeout_s: float = QUERY_TIMEOUT_S, host: str = "127.0.0.1"
) -> str:
    """One host service (e.g. "host:version", "host:devices") from an adb server; its body.

    Raises:
        OSError: no server answered on host:port (refused, unreachable, timed out).
        AdbError: it answered, but not as an adb server does.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        request(s, service, cmd=f"{service} on adb server {host}:{port}")
        return read_length_prefixed(s, cmd=f"{service} on adb server {host}:{port}")


def parse_devices(text: str) -> dict[str, str]:
    """The body of `host:devices`: "serial\\tstate" lines -> {serial: state}."""
    out = {}
    for line in text.splitlines():
        serial, _, state = line.partition("\t")
        if serial and state:
            out[serial] = state.strip()
    return out
