"""harness.device against twins through the real adb server: shell, exit codes, CRLF repair,
screenshots, UI back ends, capabilities, faults."""

from __future__ import annotations

import time

import pytest

from harness.device.adb import Device
from harness.device.capabilities import compare, eligibility, match_profile
from harness.device.probe import probe
from harness.device.ui import Ui
from harness.errors import AdbError, AdbTimeoutError, DeviceError, UiError
from harness.profiles import load_profile, load_profiles


def _device(adb_server, tp) -> Device:
    return Device(f"127.0.0.1:{tp.port}", port=adb_server.port)


@pytest.mark.parametrize("profile", sorted(load_profiles()))
def test_capabilities_probed_equal_the_profile(adb_server, start_twin, profile):
    tp = start_twin(profile)
    dev = _device(adb_server, tp)
    caps = probe(dev)
    prof = load_profile(profile)
    assert match_profile(dev.getprops(), load_profiles()) == prof
    assert compare(prof, caps) == []
    assert (caps.microphone, caps.front_camera, caps.back_camera) == (
        prof.hardware.microphone,
        prof.hardware.front_camera,
        prof.hardware.back_camera,
    )
    assert caps.wifi.connected and caps.account_registered
    assert eligibility(prof, caps).eligible == prof.eligible


def test_api17_fallbacks_give_clean_output_exit_codes_screenshots_and_taps(adb_server, start_twin):
    tp = start_twin("fire-hdx-7-2013")
    dev = _device(adb_server, tp)
    assert not dev.has_shell_v2 and dev.api_level == 17
    r = dev.shell("getprop ro.product.model; echo two")
    assert r.stdout == "KFTHWI\ntwo\n" and r.returncode == 0  # CRLF repaired
    assert dev.shell("false").returncode == 1
    assert dev.shell("exit 7").returncode == 7
    assert dev.shell("echo 'it''s'").stdout == "its\n"
    with pytest.raises(AdbError, match="exited 127"):
        dev.shell("wm size", check=True)  # API 17 has no wm
    img = dev.screenshot()
    assert img.shape == (1200, 1920, 3)
    ui = Ui.for_device(dev)
    assert ui.backend_name == "uiautomator-dump"  # no UiAutomation before API 18
    ui.tap_on(text="Email")
    assert ui.wait_for(resource_id="com.amazon.email:id/title", timeout_s=3).text == "Email"
    ui.press("KEYCODE_HOME")
    ui.wait_for(text="Photos", timeout_s=3)


def test_api34_drives_the_real_uiautomator2_back_end(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    dev = _device(adb_server, tp)
    assert dev.has_shell_v2
    r = dev.shell("echo out; echo err >&2; exit 3")
    assert (r.stdout, r.stderr, r.returncode) == ("out\n", "err\n", 3)
    ui = Ui.for_device(dev)
    assert ui.backend_name == "uiautomator2"
    t = ui.tap_on(description="Photos")
    assert t <= time.monotonic()
    assert (
        ui.wait_for(resource_id="com.google.android.apps.photos:id/title", timeout_s=3).text
        == "Photos"
    )
    with pytest.raises(UiError, match=r"no element with text='Nope' within 0.5 s"):
        ui.wait_for(text="Nope", timeout_s=0.5)


def test_a_stalled_service_times_out_within_its_bound(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    dev = _device(adb_server, tp)
    dev.features  # noqa: B018 - cache before the stall
    tp.client().stall("shell,v2")
    t0 = time.monotonic()
    with pytest.raises(AdbTimeoutError, match="timed out after 1 s"):
        dev.shell("echo never", timeout_s=1.0)
    assert time.monotonic() - t0 < 3.0
    tp.client().unstall("shell,v2")
    assert dev.shell("echo back").stdout == "back\n"


def test_device_gone_and_reconnect_is_bounded_and_counted(adb_server, start_twin):
    tp = start_twin("android-tablet-api30")
    dev = _device(adb_server, tp)
    dev.features  # noqa: B018
    tp.client().offline(1.5)
    adb_server.wait_for(dev.serial, ("offline", "absent"), timeout_s=5)
    with pytest.raises(AdbError, match=r"127.0.0.1:\d+.*echo x"):
        dev.shell("echo x", timeout_s=2.0)
    dev.reconnect(attempts=5, timeout_s=3.0)
    assert dev.shell("echo again").stdout == "again\n"
    assert dev.retries.counts["reconnect"] >= 1


def test_reconnect_gives_up_with_one_clear_error(adb_server):
    dev = Device("127.0.0.1:9", port=adb_server.port)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"still not connected after 2 reconnect attempts"):
        dev.reconnect(attempts=2, timeout_s=1.0)
    assert time.monotonic() - t0 < 10 and dev.retries.counts["reconnect"] == 2
