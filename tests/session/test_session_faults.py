"""Faults around a session: each ends within its bound with one clear error."""

from __future__ import annotations

import time

import pytest
import uiautomator2

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.errors import SessionError, UiError
from harness.profiles import load_app_profile
from harness.session import SelectorNotFound, SessionDriver


@pytest.fixture
def emulator(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    return tp, dev


def test_real_uiautomator2_clicks_the_support_button_by_selector(adb_server, emulator):
    from harness.twin.truth import read_truth

    tp, dev = emulator
    d = uiautomator2.connect(dev.client.device(dev.serial))
    assert d.info["sdkInt"] == 34 and d.info["displayWidth"] == 1280
    d.swipe(640, 1, 640, 480, 0.3)
    button = load_app_profile("mayday").selector("support_button").resolve("en")["description"]
    assert f'content-desc="{button}"' in d.dump_hierarchy()
    d(description=button).click(timeout=5)
    assert d(description="agent video").wait(timeout=5)
    assert "mayday_pressed" in [e["event"] for e in read_truth(tp.twins[0].truth)]
    d(text="End").click()
    assert d(description="agent video").wait_gone(timeout=5)


def test_button_missing_from_the_screen(emulator):
    tp, dev = emulator
    tp.client().mayday_button(False)
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
    t0 = time.monotonic()
    with pytest.raises(
        SelectorNotFound,
        match=r"app profile 'mayday': selector support_button \(description='Mayday live support'\) "
        r"not found in quick settings within 4 s",
    ) as err:
        drv.open_support(timeout_s=4)
    assert time.monotonic() - t0 < 8
    assert isinstance(err.value, UiError) and "<hierarchy" in err.value.dump
    assert dev.retries.counts["open-quick-settings"] == 1


def test_agent_never_arrives(emulator):
    tp, dev = emulator
    tp.client().backend(answer_waits=[3600])
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
    t0 = time.monotonic()
    with pytest.raises(SessionError, match=r"the agent did not appear within 3 s of the tap"):
        drv.connect(timeout_s=3)
    assert time.monotonic() - t0 < 10


def test_twin_drops_off_adb_mid_session(emulator):
    tp, dev = emulator
    tp.client().backend(answer_waits=[3600])
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
    button = drv.open_support()
    t_tap, t_acted = drv.press_support(button)
    pane = drv.wait_for_pane()
    tp.client().offline(60)
    t0 = time.monotonic()
    with pytest.raises(SessionError, match=r"frame capture \(screencap\) failed"):
        drv.wait_for_agent(t_tap, pane, timeout_s=30, tap_s=t_acted - t_tap)
    assert time.monotonic() - t0 < 15
