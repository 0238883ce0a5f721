"""The agent's strokes and remote taps, timed and placed on the tablet's screen, against the truth."""

from __future__ import annotations

import time

import numpy as np

from harness.session.media import RegionChanged, StrokeShown, poll_until
from harness.twin.truth import read_truth
from harness.vision.annotation import path_error

RED_BGR = (0, 0, 255)
CONTENT = (0, 60, 800, 740)  # x, y, w, h: left of the session pane, below the status bar


def test_stroke_lands_where_the_agent_drew_it_and_its_time_to_appear(live):
    t = np.linspace(0, 1, 40)
    drawn = np.stack([150 + 450 * t, 420 + 120 * np.sin(t * 3.0)], axis=1)

    shown = StrokeShown(RED_BGR, CONTENT)
    t0 = time.monotonic()
    t_sent = live.bot.send_stroke(drawn.tolist(), color=(255, 0, 0), width=6, stroke_id=1)
    event = poll_until(live.device, shown, 5.0, t_start_s=t0)
    latency_ms, unc_ms = event.latency_ms(t_sent)
    (drawn_truth,) = read_truth(live.tp.twins[0].truth, "stroke_drawn")
    true_ms = (drawn_truth["t"] - t_sent) * 1000.0
    assert abs(latency_ms - true_ms) <= unc_ms, (latency_ms, unc_ms, true_ms)

    x, y, _, _ = CONTENT
    stroke = shown.stroke(event.image)
    err = path_error(stroke, drawn - np.array([x, y]))
    assert err.mean_px <= 2.0 and err.p95_px <= 2.0, err
    assert err.coverage > 0.9


def test_remote_control_tap_to_screen_change(live):
    live.bot.request_control()
    live.ui.tap_on(text="Allow", timeout_s=5)
    live.bot.wait_reply("control_granted")
    settings = live.ui.wait_for(text="Settings")
    time.sleep(0.3)
    changed = RegionChanged(live.device.screenshot(), CONTENT)
    x, y = settings.center
    t0 = time.monotonic()
    reply = live.bot.send_tap(x, y)
    assert reply["type"] == "tap_applied"
    event = poll_until(live.device, changed, 5.0, t_start_s=t0)
    latency_ms, unc_ms = event.latency_ms(reply["t_sent"])
    truth = read_truth(live.tp.twins[0].truth)
    t_changed = next(
        e["t"]
        for e in truth
        if e["event"] == "screen_changed" and e["why"] == "open com.android.settings"
    )
    true_ms = (t_changed - reply["t_sent"]) * 1000.0
    assert abs(latency_ms - true_ms) <= unc_ms, (latency_ms, unc_ms, true_ms)
    assert unc_ms < 100
