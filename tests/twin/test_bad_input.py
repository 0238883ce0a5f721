"""Bad input on the twin's adb port: it answers like adbd or drops that one connection,
logs why, and keeps serving the others."""

from __future__ import annotations

import socket
import struct
import time

import adbutils
import pytest

from harness.twin import protocol as p
from harness.twin.truth import read_truth

_READ_TIMEOUT_S = 5.0


@pytest.fixture
def twin(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    return tp, adb_server.client().device(f"127.0.0.1:{tp.port}")


def _raw(port: int, payload: bytes) -> bytes:
    """Send bytes straight to the twin's adb port; return what comes back until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=_READ_TIMEOUT_S) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _closed_reasons(truth_path) -> list[str]:
    deadline = time.monotonic() + _READ_TIMEOUT_S
    while time.monotonic() < deadline:
        reasons = [e["reason"] for e in read_truth(truth_path, "transport_closed")]
        if reasons:
            return reasons
        time.sleep(0.05)
    return []


@pytest.mark.parametrize(
    "payload,reason",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"),
        (p.packet(p.A_CNXN, 0x01000001, 4096, b"host::")[:10], "truncated packet"),
        (
            struct.pack("<6I", p.A_CNXN, 0x01000001, 4096, 100 << 20, 0, p.A_CNXN ^ 0xFFFFFFFF),
            "over the 4096-byte maximum",
        ),
        (struct.pack("<6I", 0x12345678, 0, 0, 0, 0, 0x12345678 ^ 0xFFFFFFFF), "unknown command"),
        (p.packet(p.A_OPEN, 1, 0, b"shell:id\0"), "before the connection was authorised"),
    ],
    ids=["garbage", "truncated", "huge-payload", "unknown-command", "open-before-cnxn"],
)
def test_bad_transport_input_drops_only_that_connection(twin, payload, reason):
    tp, device = twin
    assert _raw(tp.port, payload) == b""
    reasons = _closed_reasons(tp.twins[0].truth)
    assert any(reason in r for r in reasons), reasons
    assert device.shell("echo still-serving").strip() == "still-serving"


def test_open_of_unknown_service_is_refused_like_adbd(twin):
    tp, device = twin
    with pytest.raises(adbutils.AdbError, match="closed"):
        conn = device.open_transport()
        conn.send_command("no-such-service:x")
        conn.check_okay()
    assert any(
        e["service"] == "no-such-service:x" for e in read_truth(tp.twins[0].truth, "open_refused")
    )
    assert device.shell("echo ok").strip() == "ok"


def test_sync_path_over_1024_bytes_fails_like_adbd(twin):
    tp, device = twin
    conn = device.open_transport()
    conn.send_command("sync:")
    conn.check_okay()
    path = "/sdcard/" + "x" * 1100
    conn.conn.sendall(b"STAT" + struct.pack("<I", len(path)) + path.encode())
    assert conn.read(4) == b"FAIL"
    (length,) = struct.unpack("<I", conn.read(4))
    assert conn.read(length) == b"path too long"
    conn.close()
    assert device.sync.stat("/sdcard").mode != 0


def test_shell_syntax_error_and_unknown_command_answer_like_android(adb_server, twin):
    tp, device = twin
    result = adb_server.adb("-s", f"127.0.0.1:{tp.port}", "shell", "echo 'unterminated")
    # mksh's words and status (checked against Debian's mksh in tests/twin/test_shell_grammar.py)
    assert result.returncode == 1 and result.stderr == b"/system/bin/sh: no closing quote\n"
    result = device.shell2("frobnicate --now")
    assert result.returncode == 127 and "/system/bin/sh: frobnicate: not found" in result.output
