"""The device layer's own adb host-protocol framing, against a loopback peer that misbehaves the way
the real adb server does when a device vanishes under a request (it hangs up mid-answer).

Integration with the real adb server lives in test_device_integration.py; these cases are the
races that the real server produces only sometimes (CI saw a bare ConnectionError once)."""

from __future__ import annotations

import socket
import threading

import pytest

from harness.device.adb import Device
from harness.errors import AdbError, AdbTimeoutError

SERIAL = "127.0.0.1:5555"


def _peer(answer: bytes | None, hold_s: float = 0.0):
    """A one-shot loopback server: reads a request, sends `answer` (None: nothing), then hangs up
    (after hold_s). Returns (port, thread)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    stop = threading.Event()

    def run():
        with srv:
            srv.settimeout(5)
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                    if answer:
                        conn.sendall(answer)
                except OSError:
                    return
                stop.wait(hold_s)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return srv.getsockname()[1], t, stop


@pytest.mark.parametrize(
    "answer",
    [None, b"OK", b"FAIL", b"FAIL00"],
    ids=[
        "hangs-up-before-status",
        "hangs-up-mid-status",
        "hangs-up-before-length",
        "hangs-up-mid-message",
    ],
)
def test_hang_up_is_one_adb_error_naming_command_and_serial(answer):
    port, t, _ = _peer(answer)
    dev = Device(SERIAL, host="127.0.0.1", port=port)
    with pytest.raises(AdbError) as e:
        dev.shell_bytes("echo gone?", timeout_s=3)
    assert not isinstance(e.value, AdbTimeoutError)
    assert e.value.serial == SERIAL and "echo gone?" in str(e.value) and SERIAL in str(e.value)
    t.join(5)


def test_silent_peer_is_a_timeout_naming_command_and_serial():
    port, t, stop = _peer(None, hold_s=5)
    dev = Device(SERIAL, host="127.0.0.1", port=port)
    with pytest.raises(AdbTimeoutError) as e:
        dev.shell_bytes("echo anyone?", timeout_s=0.3)
    assert "echo anyone?" in str(e.value) and SERIAL in str(e.value) and e.value.timeout_s == 0.3
    stop.set()
    t.join(5)
