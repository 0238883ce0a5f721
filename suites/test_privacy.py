"""Privacy of the screen share: an app that marks its window FLAG_SECURE reaches the agent black,
and the harness reports that as "hidden by the app" (the app's choice), not as a freeze or a
fidelity failure. The test fails if the share shows the app."""

from __future__ import annotations

import pytest

from harness.farm.control import TwinControl
from harness.session.media import TIMECODE_APP, share_run
from harness.session.privacy import check_frames, private_template
from harness.vision.stretches import BLANK, HIDDEN, LOADING

SECURE_WINDOW_S = 4.0
HOME_KEYCODE = 3


def _app_region(w: int, h: int) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of the Timecode app's test pattern left of its code (the code changes
    every frame; the pattern does not)."""
    return int(w * 0.02), int(h * 0.2), int(w * 0.34), int(h * 0.9)


@pytest.mark.requires("eligible")
def test_a_secure_app_is_hidden_by_the_app_not_a_freeze_and_never_shown(
    device, hil_device, ui, live_session, agent_bot, measure
):
    if not hil_device.twin_control:
        pytest.skip(
            f"{device.serial}: marking an app FLAG_SECURE needs a twin (control op `secure`)"
        )
    control = TwinControl(hil_device.twin_control, hil_device.serial)
    # what the app looks like, before it is secure: the share must never show this
    ui.tap_on(text="Timecode")
    ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title")
    screen = device.screenshot()
    device.shell(f"input keyevent {HOME_KEYCODE}", timeout_s=5)
    control.call("secure", package=TIMECODE_APP, on=True)
    try:
        run = share_run(device, ui, agent_bot, SECURE_WINDOW_S, side="right")
    finally:
        control.call("secure", package=TIMECODE_APP, on=False)
    measure.measurements.extend(run.measurements())

    frames = run.window_frames
    assert frames, "no share frame reached the agent"
    h, w = screen.shape[:2]
    share_size = (frames[0].image.shape[1], frames[0].image.shape[0])
    template = private_template(screen, _app_region(w, h), share_size)
    leak = check_frames([f.image for f in frames], template)
    assert leak.clean, (
        f"the share showed the secure app in {len(leak.leaked)} of {leak.frames} frames "
        f"(best match {leak.best_score:.2f})"
    )
    # reported as hidden by the app: one stretch over the window, no blank or loading one
    kinds = [s.kind for s in run.stretches]
    assert kinds == [HIDDEN], run.stretch_summary()
    assert run.stretches[0].duration_s >= SECURE_WINDOW_S * 0.8, run.stretch_summary()
    assert BLANK not in run.kinds and LOADING not in run.kinds
    # not a freeze, not a fidelity failure: nothing was scored, and the figure says why
    assert run.hidden and run.cer_absent and HIDDEN in run.cer_absent
    names = [m.name for m in run.measurements()]
    assert names == ["share_hidden_s"], names
