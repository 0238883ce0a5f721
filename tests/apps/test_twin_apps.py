"""The twin plays three products (Mayday in English, Mayday with a German UI in region DE, and
Helpdesk: a launcher app, pane at the left, text states); the session driver, given the matching
app profile, connects through the real adb server, measures connect time against the twin's
truth, reads the refusal in the UI's language, and ends. A mismatched profile ends in one error
naming the selector, with the UI dump attached."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.profiles import load_app_profile
from harness.session import SelectorNotFound, SessionDriver, SessionRefused
from harness.twin.truth import read_truth

PRODUCTS = {
    "mayday-en": ("mayday", None, "en-US"),
    "mayday-de": ("mayday", "de-DE", "de-DE"),
    "helpdesk": ("helpdesk", None, "en-US"),
}


def _noon_zone() -> str:
    """A fixed-offset zone where it is now about noon (DE opening hours: 6:00-24:00 local)."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def _start(start_twin, adb_server, app: str, locale: str | None):
    args = ["--app", app] + (["--locale", locale] if locale else [])
    tp = start_twin("android-emulator-api34", extra_args=tuple(args))
    if locale == "de-DE":
        tp.control("region", region="DE", timezone=_noon_zone())
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    return tp, dev


def _pressed_and_shown(tp) -> list[tuple[float, float]]:
    events = read_truth(tp.twins[0].truth)
    pressed = [e["t"] for e in events if e["event"] == "mayday_pressed"]
    started = [e["t"] for e in events if e["event"] == "agent_video_started"]
    return list(zip(pressed, started, strict=False))


@pytest.mark.parametrize("product", list(PRODUCTS))
def test_each_product_connects_with_its_profile_and_refuses_in_its_language(
    adb_server, start_twin, product
):
    app_name, locale, expect_locale = PRODUCTS[product]
    tp, dev = _start(start_twin, adb_server, app_name, locale)
    app = load_app_profile(app_name)
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False), app=app)
    assert drv.locale == expect_locale
    tp.control("backend", answer_waits=[1.5])
    r = drv.connect(timeout_s=20)
    assert drv.find("agent_video") is not None
    drv.end()
    ((pressed, shown),) = _pressed_and_shown(tp)
    assert 0.0 <= r.connect_time_s - (shown - pressed) <= r.uncertainty_s, (r, shown - pressed)
    assert r.queue_wait_s is not None and r.queue_wait_s <= r.connect_time_s
    # the refusal, worded as the product words it, in the UI's language
    tp.control("registered", on=False)
    with pytest.raises(SessionRefused) as err:
        drv.connect(timeout_s=15)
    assert err.value.kind == "unregistered"
    assert err.value.message == app.message("unregistered", expect_locale)
    drv.dismiss_message()


def test_helpdesk_looks_like_another_product(adb_server, start_twin):
    tp, dev = _start(start_twin, adb_server, "helpdesk", None)
    ui = Ui.for_device(dev, prefer_u2=False)
    drv = SessionDriver(dev, ui, app=load_app_profile("helpdesk"))
    w = ui.elements()[0].bounds[2]
    button = drv.open_support()
    assert button.text == "Call support" and button.center[1] > ui.elements()[0].bounds[3] * 0.6
    tp.control("backend", answer_waits=[30])
    drv.press_support(button)
    pane = drv.wait_for_pane()
    assert pane.bounds[2] < w / 2  # the agent pane at the left
    status = drv.find("waiting_message")
    assert status is not None and not status.text.startswith("You are number")
    drv.end()


def test_mismatched_profile_is_one_error_naming_the_selector_with_the_dump(adb_server, start_twin):
    tp, dev = _start(start_twin, adb_server, "mayday", None)
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False), app=load_app_profile("helpdesk"))
    with pytest.raises(SelectorNotFound) as err:
        drv.connect(timeout_s=10)
    assert err.value.selector == "icon (description='Helpdesk')"
    assert "app profile 'helpdesk': selector icon (description='Helpdesk') not found" in str(
        err.value
    )
    assert "<hierarchy" in err.value.dump and "Email" in err.value.dump


def test_selectors_resolve_on_both_ui_backends(adb_server, start_twin):
    """The same app profile (XPath pane, text+id button) on uiautomator2 and on dump + input."""
    tp, dev = _start(start_twin, adb_server, "helpdesk", "de-DE")
    tp.control("backend", answer_waits=[30])
    app = load_app_profile("helpdesk")
    seen = {}
    for ui in (Ui.for_device(dev, prefer_u2=True), Ui.for_device(dev, prefer_u2=False)):
        drv = SessionDriver(dev, ui, app=app)
        button = drv.open_support()
        assert button.text == "Support anrufen"
        if not seen:
            drv.press_support(button)
        pane = drv.wait_for_pane()
        seen[ui.backend_name] = pane.bounds
    assert set(seen) == {"uiautomator2", "uiautomator-dump"}
    assert len(set(seen.values())) == 1  # the same pane found by XPath on both
    drv.end()


def test_mismatched_profile_in_a_run_attaches_the_ui_dump(pytester, tmp_path):
    from pathlib import Path

    suites = Path(__file__).resolve().parents[2] / "suites"
    pytester.copy_example(str(suites / "test_connect.py"))
    result = pytester.runpytest_subprocess(
        "test_connect.py",
        "-k",
        "connect_time_within",
        "--twin",
        "android-emulator-api34",
        "--app",
        "helpdesk",
        "--hil-reports",
        str(tmp_path / "reports"),
        "-p",
        "no:cacheprovider",
        timeout=300,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*SelectorNotFound*app profile 'helpdesk': selector icon (description='Helpdesk') not found*"
        ]
    )
    (run,) = list((tmp_path / "reports").glob("*/report.html"))
    dumps = list(run.parent.glob("uidump-*.xml"))
    assert len(dumps) == 1 and "<hierarchy" in dumps[0].read_text()
    assert "UI dump (icon (description=" in run.read_text()


def test_twin_with_an_unknown_app_is_one_error_naming_it(start_twin):
    from harness.errors import HarnessError

    with pytest.raises(
        HarnessError, match=r"unknown app profile 'nosuch'; known: helpdesk, mayday"
    ):
        start_twin("android-emulator-api34", extra_args=("--app", "nosuch"))
