"""The API 17 twin asks for every new adb key: one "Allow" does not let the next new key in;
only --accept-new-keys accepts without asking. Two adb servers with their own homes are two
hosts with two keys."""

from __future__ import annotations

import time

import pytest

from harness.farm import AdbServer
from harness.twin.truth import read_truth

ASK_WINDOW_S = 3.0  # how long the second host is watched staying unauthorized


def _fingerprints(tp, event: str) -> list[str]:
    return [e["key"] for e in read_truth(tp.twins[0].truth) if e["event"] == event]


@pytest.fixture
def other_host(tmp_path):
    """A second adb server with its own home: another host, another adb key (started lazily by
    the test, after the twin; stopped by its PID at teardown)."""
    server = AdbServer(home=tmp_path / "other-host")
    yield server
    server.stop()


def test_after_one_allow_a_new_key_must_ask_again(adb_server, start_twin, other_host):
    tp = start_twin("fire-hdx-7-2013", accept_new_keys=False)
    serial = f"127.0.0.1:{tp.port}"
    assert adb_server.states()[serial] == "unauthorized"
    assert tp.control("accept_keys")["accepted"] == 1  # the first host: allowed
    adb_server.wait_for(serial, "device")
    other_host.start()
    other_host.connect(serial, state="unauthorized")  # the second host: asks
    deadline = time.monotonic() + ASK_WINDOW_S
    while time.monotonic() < deadline:  # and keeps asking until someone answers
        assert other_host.states()[serial] == "unauthorized"
        time.sleep(0.2)
    offered = _fingerprints(tp, "auth_key_offered")
    allowed = _fingerprints(tp, "auth_key_allowed")
    assert len(set(offered)) == 2 and len(allowed) == 1
    new_key = next(k for k in offered if k not in allowed)
    assert tp.control("refuse_keys")["refused"] == 1  # "Cancel"
    assert new_key in _fingerprints(tp, "auth_key_refused")
    assert other_host.states()[serial] == "unauthorized"
    assert other_host.adb("-s", serial, "shell", "echo hi").returncode != 0
    assert adb_server.states()[serial] == "device"  # the allowed host is not affected


def test_accept_new_keys_accepts_every_host_without_asking(adb_server, start_twin, other_host):
    tp = start_twin("fire-hdx-7-2013", accept_new_keys=True)
    serial = f"127.0.0.1:{tp.port}"
    assert adb_server.states()[serial] == "device"
    other_host.start()
    other_host.connect(serial, state="device")
    assert len(set(_fingerprints(tp, "auth_key_allowed"))) == 2
