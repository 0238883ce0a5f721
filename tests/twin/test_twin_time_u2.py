"""Time passes on the twin as on a device (gestures, reboot), and the uiautomator2 server answers
what uiautomator2 3.7.1's public API calls (issue 13, scopes 5 and 8). Durations are checked
as lower bounds against what was asked (a gesture cannot end before its duration); the twin's
ground truth gives the reboot's order of events."""

from __future__ import annotations

import time

import pytest
import uiautomator2

from harness.twin.truth import read_truth

NEW, OLD = "android-emulator-api34", "fire-hdx-7-2013"


def _shell(adb_server, serial: str, cmd: str, timeout_s: float = 30.0) -> tuple[float, str]:
    t0 = time.monotonic()
    cp = adb_server.adb("-s", serial, "shell", cmd, timeout_s=timeout_s)
    return time.monotonic() - t0, (cp.stdout + cp.stderr).decode(errors="replace")


def test_input_gestures_take_their_duration(adb_server, start_twin):
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    took, out = _shell(adb_server, serial, "input swipe 100 800 100 200 1500")
    assert took >= 1.5 and out == "", out
    took, out = _shell(adb_server, serial, "input draganddrop 100 800 300 800 1000")
    assert took >= 1.0 + 0.5 and out == "", out  # the long-press hold, then the drag
    took, out = _shell(adb_server, serial, "input keyevent --longpress 3")
    assert took >= 0.5 and out == "", out


def test_reboot_offline_then_adb_then_boot_completed(adb_server, start_twin):
    tp = start_twin(NEW, extra_args=("--boot-s", "2"))
    serial = f"127.0.0.1:{tp.port}"
    adb_server.adb("-s", serial, "reboot")
    adb_server.wait_gone(serial, timeout_s=10.0)
    t_gone = time.monotonic()
    adb_server.connect(f"127.0.0.1:{tp.port}", timeout_s=30.0)
    t_back = time.monotonic()
    assert t_back - t_gone >= 1.5, "adb comes back only after the boot time"
    _, first = _shell(adb_server, serial, "getprop sys.boot_completed")
    deadline = time.monotonic() + 15.0
    completed = ""
    while time.monotonic() < deadline and completed != "1":
        completed = _shell(adb_server, serial, "getprop sys.boot_completed")[1].strip()
        time.sleep(0.2)
    assert first.strip() in ("", "0"), "boot_completed is not set the moment adb is back"
    assert completed == "1"
    events = [
        e["event"]
        for e in read_truth(tp.twins[0].truth)
        if e["event"] in ("reboot_begin", "reboot_end", "boot_completed")
    ]
    assert events == ["reboot_begin", "reboot_end", "boot_completed"]


def test_reboot_bootloader_leaves_adb(adb_server, start_twin):
    tp = start_twin(NEW, extra_args=("--boot-s", "0.5"))
    serial = f"127.0.0.1:{tp.port}"
    adb_server.adb("-s", serial, "reboot", "bootloader")
    adb_server.wait_gone(serial, timeout_s=10.0)
    time.sleep(2.0)  # four boot times: a system reboot would be back by now
    assert adb_server.states().get(serial) in (None, "offline")
    assert any(e["event"] == "in_bootloader" for e in read_truth(tp.twins[0].truth))


@pytest.fixture
def u2(adb_server, start_twin):
    tp = start_twin(NEW)
    serial = f"127.0.0.1:{tp.port}"
    d = uiautomator2.connect(adb_server.client().device(serial))
    d.settings["operation_delay"] = (0, 0)
    return d, tp


def test_u2_gestures_take_their_time(u2):
    d, _ = u2
    t0 = time.monotonic()
    d.swipe(100, 800, 100, 200, duration=1.0)
    assert time.monotonic() - t0 >= 1.0
    t0 = time.monotonic()
    d.long_click(200, 200, duration=0.8)
    assert time.monotonic() - t0 >= 0.8
    t0 = time.monotonic()
    d.swipe_points([(100, 800), (200, 600), (300, 400)], duration=0.6)
    assert time.monotonic() - t0 >= 0.5


def test_u2_public_api_methods_answer(u2):
    d, tp = u2
    d.touch.down(100, 100).sleep(0.1).up(100, 100)
    d.set_orientation("left")
    assert d.info["displayRotation"] == 1
    d.set_orientation("natural")
    assert d.last_traversed_text is None
    d.clear_traversed_text()
    d.toast.show("hello", 1.0)
    assert d.toast.get_message(5.0, default="none") == "hello"
    d.toast.reset()
    assert d.toast.get_message(0.5, default="none") == "none"
    d.clipboard = "copied"
    assert d.clipboard == "copied"
    assert d(resourceId="android:id/content").exists
    xml = d.dump_hierarchy()
    assert 'resource-id="android:id/content"' in xml
    # the truth saw the tap from the injected down/up
    assert any(e["event"] in ("tap", "touch") for e in read_truth(tp.twins[0].truth))


def test_u2_app_calls_see_real_pids(u2, adb_server):
    d, tp = u2
    d.app_start("com.android.settings", ".MainActivity")
    pid = d.app_wait("com.android.settings", timeout=5.0)
    assert pid > 1000
    serial = f"127.0.0.1:{tp.port}"
    assert _shell(adb_server, serial, "pidof com.android.settings")[1].strip() == str(pid)
    assert d.app_current()["package"] == "com.android.settings"
    d.app_stop("com.android.settings")
    assert "com.android.settings" not in _shell(adb_server, serial, "ps -A")[1]
