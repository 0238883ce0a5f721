"""Media faults: each ends within its bound with one clear error, or shows in the figures."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.errors import SessionError
from harness.farm.control import TwinControlError
from harness.session import SessionDriver
from harness.session.agent import AiortcAgentBot
from harness.session.media import TIMECODE_APP
from harness.twin.truth import read_truth


def test_the_media_peer_never_connects(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    info = tp.client().backend(answer_s=0.3)
    tp.client().media(block=True)
    bot = AiortcAgentBot(info.address, device=tp.twins[0].serial, http=info.http, token=info.token)
    bot.start()
    try:
        dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
        drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
        t0 = time.monotonic()
        with pytest.raises(SessionError, match=r"the agent did not appear within 5 s"):
            drv.connect(timeout_s=5)
        with pytest.raises(SessionError, match=r"media never connected within 2 s"):
            bot.wait_connected(2)
        assert time.monotonic() - t0 < 15
        assert "rtc_blocked" in [e["event"] for e in read_truth(tp.twins[0].truth)]
    finally:
        bot.stop()


def test_a_frozen_share_shows_as_a_freeze_of_the_right_length(live, share_report):
    live.ui.tap_on(text="Timecode")
    live.ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=5)
    time.sleep(1.0)
    screen = live.device.screenshot()
    t0 = time.monotonic()
    time.sleep(1.0)
    live.tp.client().media(freeze_share=True)
    time.sleep(1.5)
    live.tp.client().media(freeze_share=False)
    time.sleep(1.5)
    frames = [f for f in list(live.bot.session.share) if f.t_arrival >= t0]
    report = share_report(screen, frames)
    truth = {
        e["event"]: e["t"]
        for e in read_truth(live.tp.twins[0].truth)
        if e["event"].startswith("share_") and e["event"] in ("share_freeze", "share_unfreeze")
    }
    true_s = truth["share_unfreeze"] - truth["share_freeze"]
    assert report.frozen_frames >= 15  # 1.5 s of repeats at 15 fps, give or take the edges
    longest = max(report.freezes, key=lambda f: f.duration_s)
    assert abs(longest.duration_s - true_s) <= 2 / 15, (
        longest,
        true_s,
    )  # within a frame interval each side


SHARE_HOLD_MS = 300.0  # control op "media" share_hold_ms: the held share's latency rises by it
SHARE_HOLD_WINDOW_S = 2.5  # share watched before and while held (15 fps: ~35 frames each)
SHARE_HOLD_TOL_MS = 100.0  # the median's rise is at least the hold, less the host's jitter


def test_a_share_hold_shows_in_the_truth_and_the_share_latency(live):
    from harness.session.media import share_latency

    live.ui.tap_on(text="Timecode")
    live.ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=5)
    time.sleep(0.5)

    def window():
        t0 = time.monotonic()
        time.sleep(SHARE_HOLD_WINDOW_S)
        frames = [f for f in list(live.bot.session.share) if f.t_arrival >= t0]
        return [s.value for s in share_latency(frames, (1280, 800)).measurement.samples]

    before = window()
    live.tp.client().media(share_hold_ms=SHARE_HOLD_MS)
    time.sleep(SHARE_HOLD_MS / 1000.0 + 0.2)  # frames captured before the hold have left
    held = window()
    live.tp.client().media(share_hold_ms=0)
    with pytest.raises(TwinControlError, match=r"share_hold_ms -5: use 0 to 10000"):
        live.tp.client().media(share_hold_ms=-5)
    events = read_truth(live.tp.twins[0].truth)
    holds = [e for e in events if e["event"] == "share_hold"]
    assert [h["ms"] for h in holds] == [SHARE_HOLD_MS, 0.0]
    sent = [e for e in events if e["event"] == "share_frame_sent"]
    during = [e for e in sent if holds[0]["t"] < e["t"] < holds[1]["t"]]
    assert during and all(e.get("hold_ms") == SHARE_HOLD_MS for e in during)
    assert not any("hold_ms" in e for e in sent if e["t"] < holds[0]["t"])
    # no frame can arrive sooner than its hold after it was shown (codes rounded to 1 ms)
    assert len(held) >= 5 and min(held) >= SHARE_HOLD_MS - 1.0, held
    # the median rises by the hold (more on a loaded host: a frame waits for the encoder)
    rise = float(np.median(held) - np.median(before))
    assert rise >= SHARE_HOLD_MS - SHARE_HOLD_TOL_MS, (rise, before, held)
