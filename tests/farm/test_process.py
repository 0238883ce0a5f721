"""harness.farm.process (children of a run), the pinned adbutils client and the host-protocol
codec: each against real child processes and real loopback sockets."""

from __future__ import annotations

import signal
import socket
import sys
import textwrap
import threading
import time

import adbutils
import pytest

from harness.errors import AdbError
from harness.farm.adbclient import adb_client
from harness.farm.adbserver import free_port, port_free
from harness.farm.hostprotocol import default_adb_port, host_query
from harness.farm.process import LEDGER_ENV, Child, alive, register, start_time
from harness.farm.reaper import read_ledger

# a child that prints its ready line, starts a grandchild in its group, and ignores SIGTERM
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grand = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("noise", flush=True)
    print(f"ready {grand.pid}", flush=True)
    time.sleep(60)
    """
)


def _wait(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_child_is_recorded_waited_for_and_its_whole_group_stopped(tmp_path, monkeypatch):
    ledger = tmp_path / "ledger"
    ledger.write_text("")
    monkeypatch.setenv(LEDGER_ENV, str(ledger))
    import subprocess

    child = Child("stubborn", [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE).spawn()
    try:
        procs, _ = read_ledger(ledger)
        assert procs == [(child.pid, start_time(child.pid), True)]  # recorded before any wait
        line = child.wait_ready(lambda s: s.startswith("ready "), timeout_s=20.0)
        assert line is not None
        grand = int(line.split()[1])
        assert alive(grand, None)
        t0 = time.monotonic()
        code = child.stop(grace_s=0.5)  # SIGTERM ignored: SIGKILL to the group after 0.5 s
        assert code == -signal.SIGKILL
        assert time.monotonic() - t0 < 5.0
        assert _wait(lambda: not alive(grand, None), 5.0), "grandchild survived the group stop"
        assert child.stop() == -signal.SIGKILL  # a second stop is harmless
    finally:
        child.stop(first=signal.SIGKILL, grace_s=1.0)
        child.close_pipes()


def test_ready_line_wait_is_bounded_and_an_exit_is_seen_at_once():
    import subprocess

    silent = Child(
        "silent", [sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE
    ).spawn()
    try:
        t0 = time.monotonic()
        assert silent.read_line(0.5) is None
        assert 0.4 < time.monotonic() - t0 < 5.0
    finally:
        silent.stop(grace_s=2.0)
        silent.close_pipes()
    quitter = Child(
        "quitter", [sys.executable, "-c", "print('partial', end='')"], stdout=subprocess.PIPE
    ).spawn()
    t0 = time.monotonic()
    assert quitter.wait_ready(lambda s: True, timeout_s=20.0) is None
    assert quitter.eof and time.monotonic() - t0 < 15.0
    assert quitter.stop() == 0
    quitter.close_pipes()


def test_a_ledger_that_is_gone_is_not_recreated(tmp_path):
    ledger = tmp_path / "ledger"
    assert not register(12345, ledger)
    assert not ledger.exists()


def test_pinned_client_refuses_instead_of_starting_an_adb_server(monkeypatch):
    dead, env_port = free_port(), free_port()
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(env_port))
    with pytest.raises(adbutils.AdbError):
        adb_client("127.0.0.1", dead, 2.0).list()
    with pytest.raises(adbutils.AdbError):
        adb_client("127.0.0.1", dead, 2.0).device("x").shell("echo hi", timeout=1)
    assert port_free(env_port) and port_free(dead)  # nothing was started on either port
    with pytest.raises(ValueError):
        adb_client("127.0.0.1", 0)


def test_default_adb_port(monkeypatch):
    monkeypatch.delenv("ANDROID_ADB_SERVER_PORT", raising=False)
    assert default_adb_port() == 5037
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "5555")
    assert default_adb_port() == 5555
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "70000")
    with pytest.raises(AdbError, match="ANDROID_ADB_SERVER_PORT"):
        default_adb_port()


@pytest.mark.parametrize(
    "answer",
    [b"OK", b"OKAY00", b"OKAY0005ab", b"FAIL0010no"],
    ids=["status", "size", "body", "fail"],
)
def test_host_query_short_answer_is_one_adb_error(answer):
    """A server that hangs up mid-answer (the old farm codec read recv(4) unchecked)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        with srv:
            srv.settimeout(5)
            conn, _ = srv.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(answer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with pytest.raises(AdbError, match="host:version"):
        host_query(srv.getsockname()[1], "host:version", timeout_s=5.0)
    t.join(5)
