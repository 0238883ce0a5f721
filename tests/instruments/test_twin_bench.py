"""The real instrument drivers against the twin's simulated WALT and power relay."""

from __future__ import annotations

import pytest

from harness.device.adb import Device
from harness.farm import port_free
from harness.instruments.boot import time_boot
from harness.instruments.power_relay import LcusRelay
from harness.instruments.walt import Walt
from harness.instruments.walt_latency import measure_screen_draw
from harness.twin.truth import read_truth

WALT_APP = "com.mayday.hil.walt"


def test_screen_draw_latency_from_the_photodiode_equals_the_truth(adb_server, start_twin):
    tp = start_twin("fire-hdx-7-2013", extra_args=("--walt",))
    info = tp.twins[0]
    dev = Device(f"127.0.0.1:{info.port}", port=adb_server.port)
    dev.shell(f"am start -n {WALT_APP}/.Main", check=True)
    requests: list[float] = []

    def draw(white: bool) -> float:
        import time

        t = time.monotonic()
        requests.append(t)
        dev.shell(
            f"am broadcast -a com.mayday.hil.DRAW --ez white {str(white).lower()}", check=True
        )
        return t

    with Walt.open(info.walt) as walt:
        m = measure_screen_draw(walt, draw, n=50, seed=1)
    truth = read_truth(info.truth, "pixels_changed")
    assert len(m.samples) == 50
    errors = []
    for s in m.samples:
        t_req = s.t
        changed = min((t for t in (e["t"] for e in truth) if t > t_req), default=None)
        assert changed is not None
        true_ms = (changed - t_req) * 1000.0
        errors.append(abs(s.value - true_ms))
    assert max(errors) <= 2.0, max(errors)


def test_power_cycle_boot_times_match_the_truth(adb_server, start_twin):
    port = next((p for p in range(5583, 5555, -2) if port_free(p) and port_free(p - 1)), None)
    if port is None:
        pytest.skip("no free emulator port pair")
    tp = start_twin(
        "android-emulator-api34",
        port=port,
        extra_args=("--relay", "--adb-after-s", "1.5", "--boot-completed-after-s", "3.0"),
    )
    info = tp.twins[0]
    serial = f"emulator-{port - 1}"
    adb_server.wait_for(serial, "device")
    dev = Device(serial, port=adb_server.port)

    def on_adb() -> bool:
        return adb_server.states().get(serial) == "device"

    def completed() -> bool:
        return dev.getprop("sys.boot_completed", timeout_s=2.0) == "1"

    seen_offline = []

    def on_adb_watch() -> bool:
        state = on_adb()
        if not state:
            seen_offline.append(True)
        return state

    with LcusRelay(info.relay) as relay:
        timing = time_boot(relay, on_adb_watch, completed, off_s=1.0, poll_s=0.05)
    assert seen_offline, "the twin never left adb while powered off"
    truth = {
        e["event"]: e["t"]
        for e in read_truth(info.truth)
        if e["event"] in ("power_on", "adb_up", "boot_completed")
    }
    true_adb = truth["adb_up"] - truth["power_on"]
    true_completed = truth["boot_completed"] - truth["power_on"]
    assert abs(timing.to_adb_s - true_adb) <= 0.1, (timing, true_adb)
    assert abs(timing.to_completed_s - true_completed) <= 0.1, (timing, true_completed)
