"""Tablet -> agent: share latency against the twin's ground truth, and share fidelity."""

from __future__ import annotations

import bisect
import statistics
import time

from harness.session.media import TIMECODE_APP, share_latency
from harness.twin.screen import COMPOSE_S
from harness.twin.truth import read_truth


def _share_window(bot, seconds: float, at_least: int = 0, max_s: float = 45.0):
    """Share frames received from now on, for `seconds` (longer, up to max_s, until `at_least`)."""
    t0 = time.monotonic()
    time.sleep(seconds)
    while time.monotonic() - t0 < max_s:
        frames = [f for f in list(bot.session.share) if f.t_arrival >= t0]
        if len(frames) >= at_least:
            return frames
        time.sleep(0.2)
    return [f for f in list(bot.session.share) if f.t_arrival >= t0]


def test_share_latency_equals_ground_truth_over_300_frames(live):
    live.ui.tap_on(text="Timecode")
    live.ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=5)
    time.sleep(0.5)
    frames = _share_window(live.bot, 20.0, at_least=300)  # 15 fps share: 300 frames in ~20 s
    assert len(frames) >= 300
    result = share_latency(frames, (1280, 800))
    shown = {
        e["frame_no"]: e["t"]
        for e in read_truth(live.tp.twins[0].truth)
        if e["event"] == "timecode_shown"
    }
    checked = 0
    for s in result.measurement.samples:
        frame_no = s.meta["frame"]
        first = next(f for f in frames if f.t_arrival == s.t)
        true_ms = (first.t_arrival - shown[frame_no]) * 1000.0
        assert abs(s.value - true_ms) <= s.uncertainty + 0.01, (frame_no, s.value, true_ms)
        checked += 1
    # every frame is accounted for: a new code (checked against the truth), a held one, or one the
    # codec damaged, which is reported unreadable (never misread)
    assert checked + result.repeated + result.undecodable >= len(frames) - 1
    assert checked >= 200 and result.undecodable <= 0.05 * len(frames)
    assert 12.0 <= result.fps <= 16.0  # the share runs at 15 fps
    # the twin captures one composition after the app's redraw (Screen.next_redraw), as a
    # device's recorder does: a fixed phase, not one drawn afresh each session (median, so a
    # capture the host's load delayed does not decide it)
    truth = read_truth(live.tp.twins[0].truth)
    ticks = sorted(e["t"] for e in truth if e["event"] == "timecode_shown")
    ages = [
        t - ticks[i - 1]
        for t in (e["t"] for e in truth if e["event"] == "share_frame_sent")
        if (i := bisect.bisect_right(ticks, t)) > 0 and t < ticks[-1]
    ]
    assert len(ages) >= 200
    assert COMPOSE_S - 0.002 <= statistics.median(ages) <= COMPOSE_S + 0.008, statistics.median(
        ages
    )


def test_clean_share_fidelity_ssim_at_least_095(live, share_fidelity):
    live.ui.tap_on(text="Timecode")
    live.ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=5)
    time.sleep(1.0)
    screen = live.device.screenshot()
    frames = _share_window(live.bot, 4.0)
    share_fidelity(screen, frames)


def test_on_edge_the_harness_reports_the_frame_rate_drop_the_twin_really_made(live):
    from harness.network.console import TOKEN_FILE_NAME, EmulatorConsole
    from harness.session.media import share_latency

    live.ui.tap_on(text="Timecode")
    live.ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=5)
    with EmulatorConsole(
        live.tp.twins[0].console_port, token_file=live.tp.adb.home / TOKEN_FILE_NAME
    ) as console:
        console.command("network speed edge")  # 473.6 kbit/s both ways
        console.command("network delay 400")
    time.sleep(1.5)
    t_start = time.monotonic()
    frames = _share_window(live.bot, 10.0)
    result = share_latency(frames, (1280, 800))
    sent = [
        e for e in read_truth(live.tp.twins[0].truth, "share_frame_sent") if e["t"] >= t_start - 0.4
    ]
    sent_fps = (len(sent) - 1) / (sent[-1]["t"] - sent[0]["t"])
    assert sent_fps < 10.0  # the twin adapted to the link
    assert abs(result.fps - sent_fps) <= 0.1 * sent_fps, (result.fps, sent_fps)
    stats = result.measurement.stats()
    assert stats.p50 >= 400.0  # the uplink delay is in every frame's latency
