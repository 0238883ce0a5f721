"""Through the real twin and the AgentBot: a FLAG_SECURE app reaches the agent black and is
reported "hidden by the app" (not blank, not a freeze); the Text app's known text is read on
the share the agent receives (with the ocr extra)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from harness.session.media import SETTLE_S, SHARE_KEEP, crop_left
from harness.twin.truth import read_truth
from harness.vision import legibility as lg
from harness.vision import stretches as st
from harness.vision.fidelity import ssim

SETTINGS = "com.android.settings"
TEXT_APP = "com.mayday.hil.text"
SECURE_WINDOW_S = 2.5
POLL_S = 0.2
READ_WINDOW_S = 2.0  # frames of the settled email screen, every one read
FRAME_TOLERANCE = 3  # received vs sent black frames: the window's edges cut a frame or two


def _share_between(bot, t0: float, t1: float) -> list:
    return [f for f in list(bot.session.share) if t0 <= f.t_arrival <= t1]


def _poll_secure(device, seconds: float) -> list[tuple[float, float]]:
    """Intervals (request of the first secure answer, arrival of the last) from dumpsys window."""
    intervals: list[tuple[float, float]] = []
    deadline = time.monotonic() + seconds
    open_at: float | None = None
    last_secure = 0.0
    while time.monotonic() < deadline:
        t_req = time.monotonic()
        out = device.shell("dumpsys window windows", timeout_s=5).stdout
        secure = st.window_is_secure(out)
        t_arr = time.monotonic()
        if secure:
            open_at = t_req if open_at is None else open_at
            last_secure = t_arr
        elif open_at is not None:
            intervals.append((open_at, t_req))
            open_at = None
        time.sleep(POLL_S)
    if open_at is not None:
        intervals.append((open_at, max(last_secure, time.monotonic())))
    return intervals


def test_a_secure_app_is_hidden_by_the_app_not_blank_nor_a_freeze(live):
    live.tp.control("secure", package=SETTINGS, on=True)
    t_open = time.monotonic()
    live.ui.tap_on(text="Settings")
    live.ui.wait_for(resource_id=f"{SETTINGS}:id/title", timeout_s=5)
    hidden = _poll_secure(live.device, SECURE_WINDOW_S)
    live.device.shell("input keyevent 3", timeout_s=5)  # HOME: the secure window goes
    time.sleep(1.0)
    t_end = time.monotonic()
    live.tp.control("secure", package=SETTINGS, on=False)
    assert hidden, "dumpsys window never reported the secure window"
    assert hidden[0][1] - hidden[0][0] >= 2.0

    frames = _share_between(live.bot, t_open, t_end)
    times = [f.t_arrival for f in frames]
    # the share lags the screen: a black frame up to 0.5 s after the window went is still its
    lag_s = 0.5
    kinds = st.classify(
        [f.image for f in frames], times, hidden=[(a, b + lag_s) for a, b in hidden]
    )
    found = st.stretches(kinds, times)
    assert [s.kind for s in found] == [st.HIDDEN], st.summary(found)
    assert found[0].duration_s >= 2.0
    black = [k for k, f in zip(kinds, frames, strict=True) if k == st.HIDDEN]
    assert all(np.max(f.image) < 30 for k, f in zip(kinds, frames, strict=True) if k == st.HIDDEN)
    # ground truth: the twin sent that many secure (black) frames in the window
    sent = [
        e
        for e in read_truth(live.tp.twins[0].truth, "share_frame_sent")
        if e.get("secure") and t_open <= e["t"] <= t_end
    ]
    assert abs(len(sent) - len(black)) <= FRAME_TOLERANCE, (len(sent), len(black))
    # and the fidelity/freeze figures leave them out
    assert st.content_mask(kinds).count(False) == len(black)


@pytest.mark.skipif(lg.ocr_unavailable() is not None, reason=lg.ocr_unavailable() or "")
def test_the_text_app_is_read_on_the_share_against_its_truth(live):
    live.tp.control("text_screen", name="email")
    t0 = time.monotonic()
    live.ui.tap_on(text="Text")
    live.ui.wait_for(resource_id=f"{TEXT_APP}:id/title", timeout_s=5)
    time.sleep(1.5)
    shown = [e for e in read_truth(live.tp.twins[0].truth, "text_shown") if e["t"] >= t0]
    assert shown and shown[-1]["screen"] == "email"
    # the shell's way in logs the same truth: am start, like any installed app
    live.tp.control("text_screen", name="fonts")
    out = live.device.shell(f"am start -n {TEXT_APP}/.MainActivity", timeout_s=5)
    assert out.returncode in (0, None) and "Error" not in out.stdout, out
    fonts = [e for e in read_truth(live.tp.twins[0].truth, "text_shown") if e["t"] >= t0]
    assert fonts[-1]["screen"] == "fonts"
    live.tp.control("text_screen", name="email")
    time.sleep(SETTLE_S + READ_WINDOW_S)
    shown = [e for e in read_truth(live.tp.twins[0].truth, "text_shown") if e["t"] >= t0]
    assert shown[-1]["screen"] == "email"
    truth = lg.TextTruth.from_record(shown[-1])
    assert truth.size == (1280, 800)
    # the settled share (share_run's rule: the codec's first frames after a change are soft)
    frames = _share_between(live.bot, shown[-1]["t"] + SETTLE_S, time.monotonic())
    assert len(frames) >= 2
    # every settled frame is read (a line whose pixels were read before takes that read)
    engine = lg.OcrEngine.shared()
    lines0 = engine.lines_read
    reads = lg.measure(
        [f.image for f in frames], [f.t_arrival for f in frames], truth, every_s=0.0, engine=engine
    )
    m = lg.to_measurement(reads, every_s=0.0)
    assert len(m.samples) == len(frames) >= 2
    # a clean local link: the share (640 px wide, half the screen) keeps the email legible:
    # most frames read exactly (the frame the twin sent reads 0 %). On a loaded host the
    # codec's ramp after the screen change outlasts SETTLE_S and the twin's VP8 sends an
    # occasional soft key frame: those frames read worse (measured up to 5.5 %, p95 2.2-5.5 %
    # at load average 15-20), and then their pixels show the damage (SSIM against what the
    # twin sent below the best-read frame's); a misread without damage is the OCR's fault
    print("share_text_cer", [round(v, 2) for v in m.values], "lines", engine.lines_read - lines0)
    assert m.stats().p50 == 0.0, m.values
    sent = cv2.resize(live.device.screenshot(), (640, 400), interpolation=cv2.INTER_AREA)
    keep = crop_left(sent, SHARE_KEEP)
    similarity = [ssim(keep, crop_left(f.image, SHARE_KEEP)) for f in frames]
    # the best-read frame least like what was sent: a worse-read frame must be less like it
    best = min(range(len(reads)), key=lambda k: (reads[k].cer, similarity[k]))
    for r, s in zip(reads, similarity, strict=True):
        assert r.cer <= 0.02 or s < similarity[best], (
            100 * r.cer,
            s,
            similarity[best],
            [(ln.truth.text, ln.read) for ln in r.lines if ln.errors],
        )
    assert engine.lines_read - lines0 <= len(frames) * len(truth.lines)
