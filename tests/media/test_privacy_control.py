"""Privacy and control during a live session, checked on what the agent really received."""

from __future__ import annotations

import time

import pytest

from harness.device.capabilities import capabilities_from
from harness.device.parsers import parse_dumpsys_audio, parse_dumpsys_camera
from harness.errors import MeasurementError
from harness.session.privacy import check_frames, private_template
from harness.twin.truth import read_truth

EMAIL = "com.android.email"


def _share_since(bot, t0: float, at_least: int = 10, timeout_s: float = 10.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frames = [f for f in list(bot.session.share) if f.t_arrival > t0]
        if len(frames) >= at_least:
            return frames
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} share frames in {timeout_s} s")


def _open_email(live):
    live.ui.tap_on(text="Email")
    body = live.ui.wait_for(resource_id=f"{EMAIL}:id/body", timeout_s=5)
    screen = live.device.screenshot()
    return body, screen


def _leak_check(live, body, screen, t0):
    frames = _share_since(live.bot, t0)
    share_size = (frames[0].image.shape[1], frames[0].image.shape[0])
    tpl = private_template(screen, body.bounds, share_size)
    return check_frames([f.image for f in frames], tpl)


def test_private_app_is_masked_until_the_customer_consents(live):
    body, screen = _open_email(live)
    t_open = time.monotonic()
    before = _leak_check(live, body, screen, t_open + 0.3)
    assert before.clean, (
        f"private content reached the agent in {len(before.leaked)} of {before.frames} frames"
    )

    live.bot.request_access(EMAIL)
    live.ui.tap_on(text="Allow", timeout_s=5)
    assert live.bot.wait_reply("access_granted")["package"] == EMAIL
    after = _leak_check(live, body, screen, time.monotonic() + 0.3)
    # the detector sees the content once it is allowed: the clean result above is meaningful
    assert len(after.leaked) >= after.frames * 0.8
    assert before.best_score < 0.5  # masked frames stay clear of the 0.6 threshold


def test_a_planted_leak_is_caught(live):
    live.tp.client().privacy_mask(False)
    body, screen = _open_email(live)
    leak = _leak_check(live, body, screen, time.monotonic() + 0.3)
    assert not leak.clean and len(leak.leaked) >= leak.frames * 0.8


def test_camera_never_opened_and_microphone_in_use(live):
    cam = parse_dumpsys_camera(live.device.shell("dumpsys media.camera").stdout)
    assert cam.clients == ()
    recordings = parse_dumpsys_audio(live.device.shell("dumpsys audio").stdout)
    assert [(r.source, r.package) for r in recordings] == [("MIC", "com.mayday.support")]
    live.tp.client().camera(True)  # a build that opens the front camera: caught
    cam = parse_dumpsys_camera(live.device.shell("dumpsys media.camera").stdout)
    assert [c.package for c in cam.clients] == ["com.mayday.support"]
    assert capabilities_from  # the same parsers the capability probe uses


def test_remote_control_is_refused_before_permission_and_applied_after(live):
    settings = live.ui.wait_for(text="Settings")
    x, y = settings.center
    refused = live.bot.send_tap(x, y)
    assert refused["type"] == "tap_refused" and refused["reason"] == "no permission"
    time.sleep(0.3)
    assert live.ui.find(resource_id="com.android.settings:id/title") is None
    live.bot.request_control()
    live.ui.tap_on(text="Allow", timeout_s=5)
    live.bot.wait_reply("control_granted")
    applied = live.bot.send_tap(x, y)
    assert applied["type"] == "tap_applied"
    live.ui.wait_for(resource_id="com.android.settings:id/title", timeout_s=5)
    kinds = [
        e["event"]
        for e in read_truth(live.tp.twins[0].truth)
        if e["event"].startswith("remote_tap")
    ]
    assert kinds == ["remote_tap_refused", "remote_tap_applied"]


def test_private_region_must_have_content():
    import numpy as np

    with pytest.raises(MeasurementError, match="flat"):
        private_template(np.zeros((800, 1280, 3), np.uint8), (0, 0, 200, 100), (640, 400))
