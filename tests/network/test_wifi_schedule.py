"""WifiShaper: schedule logic, link safety and restore with a recording shell (no device), then
for real against a twin through the real adb server (its ground truth vs the shaper's events).
"""

from __future__ import annotations

import threading
import time

import pytest

from harness.errors import NetworkShaperError
from harness.network import profiles as P
from harness.network.profiles import network_profiles, parse_network_profile
from harness.network.wifi import WifiShaper, adb_over_network

TIMING_TOLERANCE_S = 0.15


class RecordingShell:
    """Answers like Android's `svc wifi` (silence on success) and records when it was asked."""

    def __init__(self, serial: str = "emulator-5554", fail_on: str | None = None):
        self.serial = serial
        self.calls: list[tuple[float, str, float]] = []
        self.fail_on = fail_on
        self.lock = threading.Lock()

    def shell(self, cmd: str, timeout: float) -> str:
        with self.lock:
            self.calls.append((time.monotonic(), cmd, timeout))
        if self.fail_on and self.fail_on in cmd:
            raise TimeoutError(f"`{cmd}` timed out")
        return ""

    def commands(self) -> list[str]:
        return [c for _, c, _ in self.calls]


def _flap(up_s=0.3, down_s=0.2, cycles=2):
    return parse_network_profile(
        "flap",
        {
            "description": "d",
            "source": "s",
            "outages": {"up_s": up_s, "down_s": down_s, "cycles": cycles},
        },
    )


def test_follows_the_schedule_then_restores():
    dev = RecordingShell()
    shaper = WifiShaper(_flap(), dev)
    assert shaper.plan() == [(0.3, False), (0.5, True), (0.8, False), (1.0, True)]
    with shaper:
        t0 = shaper.t0
        deadline = time.monotonic() + 3.0
        while len(dev.calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert dev.commands() == [
        "svc wifi disable",
        "svc wifi enable",
        "svc wifi disable",
        "svc wifi enable",
        "svc wifi enable",
    ]  # the last one is the restore on exit
    for (t, _, timeout), (planned, _) in zip(dev.calls, shaper.plan(), strict=False):
        assert t - t0 == pytest.approx(planned, abs=TIMING_TOLERANCE_S)
        assert 0 < timeout <= 10
    assert [e.enabled for e in shaper.events] == [False, True, False, True, True]
    assert all(e.ok for e in shaper.events)


def test_clearing_early_stops_the_schedule_and_enables_wifi():
    dev = RecordingShell()
    shaper = WifiShaper(_flap(up_s=0.1, down_s=5.0, cycles=None), dev)
    with shaper:
        deadline = time.monotonic() + 2.0
        while not dev.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dev.commands() == ["svc wifi disable"]
    assert dev.commands() == ["svc wifi disable", "svc wifi enable"]
    time.sleep(0.3)
    assert len(dev.calls) == 2  # nothing after clear
    assert not shaper._thread


def test_offline_switches_off_at_once_and_on_at_exit():
    dev = RecordingShell()
    with WifiShaper(network_profiles()["offline"], dev):
        assert dev.commands() == ["svc wifi disable"]  # done when apply() returns
    assert dev.commands() == ["svc wifi disable", "svc wifi enable"]


def test_long_schedules_are_bounded():
    shaper = WifiShaper(network_profiles()["flapping"], RecordingShell(), max_duration_s=100)
    assert shaper.plan() == [
        (20.0, False),
        (25.0, True),
        (45.0, False),
        (50.0, True),
        (70.0, False),
        (75.0, True),
        (95.0, False),
        (100.0, True),
    ]


@pytest.mark.parametrize(
    "serial, over_wifi",
    [
        ("192.168.1.5:5555", True),
        ("tablet.lab:5555", True),
        ("[fe80::1]:5555", True),
        ("127.0.0.1:5555", False),
        ("localhost:5557", False),
        ("emulator-5554", False),
        ("G000H40563460R4N", False),
        (None, False),
    ],
)
def test_adb_over_network_detection(serial, over_wifi):
    assert adb_over_network(serial) is over_wifi


def test_over_wifi_each_outage_is_timed_by_the_device():
    dev = RecordingShell(serial="192.168.1.5:5555")
    shaper = WifiShaper(_flap(up_s=0.1, down_s=1.2, cycles=1), dev)
    assert "device-timed" in shaper.report.expressed[P.OUTAGE_SCHEDULE]
    with shaper:
        deadline = time.monotonic() + 2.0
        while not dev.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(1.4)  # past the end of the outage: the host sends no enable of its own
    cmds = dev.commands()
    assert (
        cmds[0]
        == "sh -c 'trap \"\" HUP; svc wifi disable; sleep 2; svc wifi enable' >/dev/null 2>&1 &"
    )
    assert cmds[1:] == ["svc wifi enable"]  # only the restore


def test_offline_over_wifi_is_refused_before_touching_the_device():
    dev = RecordingShell(serial="192.168.1.5:5555")
    with pytest.raises(NetworkShaperError, match="adb runs over the Wi-Fi"):
        WifiShaper(network_profiles()["offline"], dev)
    assert dev.calls == []


def test_refuses_delay_loss_and_rate_unless_approximating():
    dev = RecordingShell()
    with pytest.raises(
        NetworkShaperError, match=r"wifi shaper .* cannot express profile 'very-bad-network'"
    ):
        WifiShaper(network_profiles()["very-bad-network"], dev)
    shaper = WifiShaper(network_profiles()["very-bad-network"], dev, approximate=True)
    assert {w.split(" ")[0] for w in shaper.report.approximations} == {P.DELAY, P.LOSS, P.RATE}
    assert shaper.plan() == []
    assert dev.calls == []


def test_a_failing_switch_is_an_error_at_apply_and_logged_at_clear():
    dev = RecordingShell(fail_on="disable")
    shaper = WifiShaper(network_profiles()["offline"], dev)
    with pytest.raises(NetworkShaperError, match="svc wifi disable. failed"):
        shaper.apply()
    assert dev.commands() == ["svc wifi disable", "svc wifi enable"]  # restored even so
    dev2 = RecordingShell(fail_on="enable")
    shaper2 = WifiShaper(network_profiles()["offline"], dev2)
    shaper2.apply()
    shaper2.clear()  # never raises
    assert shaper2.report.errors and "svc wifi enable" in shaper2.report.errors[0]


# --- against a twin, through the real adb server -------------------------------------------------


def test_outages_on_a_twin_match_its_ground_truth(adb_server, start_twin):
    from harness.device.adb import Device
    from harness.twin.truth import read_truth

    tp = start_twin("fire-hdx-7-2013")  # Fire OS 3, API 17: shell v1, adb connected on loopback
    info = tp.twins[0]
    device = Device(info.serial, port=adb_server.port)
    shaper = WifiShaper(_flap(up_s=0.5, down_s=0.5, cycles=2), device)
    assert not shaper.adb_over_wifi  # a twin on 127.0.0.1: the host drives each switch
    with shaper:
        deadline = time.monotonic() + 10.0
        while len(shaper.events) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [e.enabled for e in shaper.events] == [False, True, False, True, True]
    assert all(e.ok for e in shaper.events), shaper.events
    truth = read_truth(info.truth, "wifi")
    assert [t["enabled"] for t in truth] == [
        False,
        True,
        False,
        True,
    ]  # the last enable was a no-op
    for event, fact in zip(shaper.events, truth, strict=False):
        # the twin switched after the schedule asked and before the shell command returned
        assert event.planned_t - 0.001 <= fact["t"] <= event.t + 0.001
