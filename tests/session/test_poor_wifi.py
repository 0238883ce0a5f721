"""Poor Wi-Fi on the twin: console delay lengthens connect time as the ground truth says;
a Wi-Fi drop mid-session recovers (time measured) or ends cleanly with a message."""

from __future__ import annotations

import pytest

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.network import load_network_profile
from harness.network.console import EmulatorConsoleShaper
from harness.session import SessionDriver
from harness.session.driver import AGENT_VIDEO_DESC
from harness.twin.truth import read_truth


@pytest.fixture
def emulator(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    return tp, dev, SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))


_CRITICAL_PATH = (
    "request",
    "backend answered",
)  # the "assigned" message overlaps the agent's answer time


def _delays_between(truth, t0: float, t1: float) -> float:
    """Console delay the twin applied on the connect's critical path (from its ground truth)."""
    return (
        sum(
            e["delay_ms"]
            for e in truth
            if e["event"] == "delay_applied" and t0 <= e["t"] <= t1 and e["what"] in _CRITICAL_PATH
        )
        / 1000.0
    )


def test_connect_time_grows_with_the_console_delay_as_the_truth_says(adb_server, emulator):
    tp, dev, drv = emulator
    results = {}
    for name in ("good-wifi", "very-bad-network"):
        tp.client().backend(answer_waits=[1.0])
        profile = load_network_profile(name)
        with EmulatorConsoleShaper(
            profile,
            tp.twins[0].console_port,
            token_file=adb_server.home / ".emulator_console_auth_token",
            approximate=True,
        ) as shaper:
            r = drv.connect(timeout_s=30)
            drv.end()
        truth = read_truth(tp.twins[0].truth)
        pressed = [e["t"] for e in truth if e["event"] == "mayday_pressed"][-1]
        shown = [e["t"] for e in truth if e["event"] == "agent_video_started"][-1]
        assert 0.0 <= r.connect_time_s - (shown - pressed) <= r.uncertainty_s
        results[name] = (r, _delays_between(truth, pressed, shown), shaper.report)
    fast, slow = results["good-wifi"], results["very-bad-network"]
    assert 0.9 < slow[1] < 1.1  # request up and "answered" down, ~500 ms each
    grown = slow[0].connect_time_s - fast[0].connect_time_s
    assert abs(grown - (slow[1] - fast[1])) <= slow[0].uncertainty_s + fast[0].uncertainty_s
    assert any(
        "loss" in w for w in slow[2].approximations
    )  # the console cannot drop packets: said, not hidden


def test_wifi_drop_mid_session_recovers_and_the_recovery_time_matches_the_truth(emulator):
    tp, dev, drv = emulator
    tp.client().backend(answer_waits=[0.5])
    drv.connect(timeout_s=20)
    rec = drv.wifi_recovery(drop_s=2.0)
    truth = read_truth(tp.twins[0].truth)
    t_wifi = [e["t"] for e in truth if e["event"] == "wifi" and e["enabled"]][-1]
    t_moving = next(
        e["t"]
        for e in truth
        if e["event"] == "agent_frame_shown" and e["frame_no"] > rec.frozen_frame
    )
    assert 0.0 <= rec.recovery_s - (t_moving - t_wifi) <= rec.uncertainty_s
    assert any(e["event"] == "session_recovered" for e in truth)
    drv.end()


def test_long_wifi_drop_ends_the_session_with_a_message(emulator):
    tp, dev, drv = emulator
    tp.client().backend(answer_waits=[0.5])
    tp.client().support(reconnect_grace_s=2.0)
    drv.connect(timeout_s=20)
    dev.shell("svc wifi disable", check=True)
    message = drv.ui.wait_for(text="Connection lost: check your Wi-Fi and try again", timeout_s=6)
    assert message is not None
    dev.shell("svc wifi enable", check=True)
    drv.dismiss_message()
    assert drv.ui.find(description=AGENT_VIDEO_DESC) is None


def test_support_traffic_pointed_through_the_relay_carries_its_delay(adb_server, start_twin):
    """A second twin whose support app reaches the backend through the harness's TCP relay."""
    from harness.network.impairment import RelayShaper

    world = start_twin("android-emulator-api34")  # hosts the support backend
    backend = world.client().backend(answer_s=1.0).address
    with RelayShaper(load_network_profile("3g"), backend, protocol="tcp", seed=1) as relay:
        host, port = relay.address
        tp = start_twin("android-emulator-api34", extra_args=("--backend", f"{host}:{port}"))
        dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
        drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
        r = drv.connect(timeout_s=30)
        drv.end()
        counters = relay.counters()
    truth = read_truth(tp.twins[0].truth)
    pressed = [e["t"] for e in truth if e["event"] == "mayday_pressed"][-1]
    shown = [e["t"] for e in truth if e["event"] == "agent_video_started"][-1]
    assert 0.0 <= r.connect_time_s - (shown - pressed) <= r.uncertainty_s
    # request up + "answered" down each cross the relay's 100 ms: > 1 s answer + 0.2 s
    assert shown - pressed >= 1.2
    assert counters.clients >= 1 and counters.forward.received > 0 and counters.reverse.received > 0
