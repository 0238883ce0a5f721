"""A connected support session: a twin, the AgentBot, the session driver."""

from __future__ import annotations

import contextlib

import pytest

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.session import SessionDriver
from harness.session.agent import AiortcAgentBot


class Live:
    def __init__(self, tp, device, ui, driver, bot, connect):
        self.tp, self.device, self.ui, self.driver, self.bot, self.connect = (
            tp,
            device,
            ui,
            driver,
            bot,
            connect,
        )


@contextlib.contextmanager
def _live(adb_server, start_twin, media_profile=None, media_seed: int = 0):
    tp = start_twin("android-emulator-api34")
    info = tp.client().backend(answer_s=0.5)
    bot = AiortcAgentBot(
        info.address,
        device=tp.twins[0].serial,
        media_profile=media_profile,
        media_seed=media_seed,
        http=info.http,
        token=info.token,
    )
    bot.start()
    try:
        dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
        ui = Ui.for_device(dev, prefer_u2=False)
        drv = SessionDriver(dev, ui)
        result = drv.connect(timeout_s=20)
        bot.wait_connected(15)
        yield Live(tp, dev, ui, drv, bot, result)
    finally:
        bot.stop()


@pytest.fixture
def live(adb_server, start_twin):
    with _live(adb_server, start_twin) as session:
        yield session


@pytest.fixture
def live_via_relay(request, adb_server, start_twin):
    """A live session whose media crosses the impairment relay with the NetworkProfile given as
    the fixture's (indirect) parameter."""
    with _live(adb_server, start_twin, media_profile=request.param, media_seed=7) as session:
        yield session


def _share_report(screen, frames):
    """The share frames scored against `screen` re-stamped with each code seen (left 65 %, away
    from the pane), aligned by timecode: vision.fidelity's report."""
    from harness.session.media import crop_left, share_reference, timecode_layout
    from harness.vision.fidelity import compare
    from harness.vision.timecode import decode_fast

    layout = timecode_layout(1280, 800)
    seen = sorted({c.frame_no for c in (decode_fast(f.image, layout) for f in frames) if c.ok})
    share_size = (frames[0].image.shape[1], frames[0].image.shape[0])
    refs = share_reference(screen, share_size, range(seen[0], seen[-1] + 1))
    return compare(
        [crop_left(r, 0.65) for r in refs],
        [crop_left(f.image, 0.65) for f in frames],
        received_times_s=[f.t_arrival for f in frames],
        align="timecode",
    )


@pytest.fixture
def share_report():
    """share_report(screen, frames): the share frames' fidelity report against the screen."""
    return _share_report


@pytest.fixture
def share_fidelity():
    """The clean-share fidelity check both agents' tests make: the share report, 90 % of the
    frames matched and SSIM mean >= 0.95. Returns the report's summary."""

    def check(screen, frames) -> dict:
        summary = _share_report(screen, frames).summary()
        assert summary["matched"] >= len(frames) * 0.9
        assert summary["ssim"]["mean"] >= 0.95, summary
        return summary

    return check
