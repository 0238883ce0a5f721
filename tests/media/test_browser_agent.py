"""`--agent browser` against the API 34 twin: the twin world's web agent console in headless
Chromium (libwebrtc) talking to the twin's aiortc peer. Every figure is checked against the twin's
ground truth with the aiortc bot's tolerances widened only by the page-clock mapping's stated
error (ClockMapping.error_s): glass-to-glass, share latency and fidelity, strokes, remote control,
consent, the microphone; VP8 and H.264 both negotiated; media only between loopback addresses."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest

from harness.device.adb import Device
from harness.device.frames import CameraSource
from harness.device.ui import Ui
from harness.network.console import TOKEN_FILE_NAME, EmulatorConsole
from harness.session import SessionDriver
from harness.session.agents.browser import SCHEDULE_SLIP_S, BrowserAgent, find_browser
from harness.session.agents.browser_media import CLIP_FPS
from harness.session.driver import AGENT_VIDEO_DESC
from harness.session.media import (
    TIMECODE_APP,
    agent_to_tablet,
    chirp,
    find_chirp,
    share_latency,
)
from harness.twin.truth import first_times, read_truth
from harness.vision.latency import dual_view_latency
from harness.vision.locator import read_all

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="install the OS packages chromium chromium-driver"
)

G2G_WINDOW_S = 8.0  # shorter than the clip's loop (frame numbers repeat every 60 s)


class BrowserLive:
    def __init__(self, tp, device, ui, driver, agent):
        self.tp, self.device, self.ui, self.driver, self.agent = tp, device, ui, driver, agent

    @property
    def truth(self):
        return self.tp.twins[0].truth


@contextlib.contextmanager
def _browser_live(adb_server, start_twin, codec: str = "", lab: bool = False):
    tp = start_twin("android-emulator-api34", extra_args=("--camera",) if lab else ())
    info = tp.client().backend(answer_s=0.5)
    agent = BrowserAgent(
        info.http,
        info.token,
        tp.twins[0].serial,
        name="browser-1",
        codec=codec,
        display_url=f"{tp.twins[0].camera}/agent_display" if lab else None,
    )
    try:
        agent.start()
        dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
        ui = Ui.for_device(dev, prefer_u2=False)
        drv = SessionDriver(dev, ui)
        drv.connect(timeout_s=30)
        agent.wait_connected(20)
        yield BrowserLive(tp, dev, ui, drv, agent)
    finally:
        agent.stop()


@pytest.fixture
def blive(adb_server, start_twin):
    with _browser_live(adb_server, start_twin) as live:
        yield live


def _shows(truth) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for e in read_truth(truth, "agent_frame_shown"):
        if e.get("frame_no") is not None:
            out.setdefault(e["frame_no"], []).append(e["t"])
    return out


@pytest.mark.parametrize("delay_ms", [0, 400])
def test_glass_to_glass_from_the_browser_within_its_bounds_of_the_truth(
    adb_server, start_twin, delay_ms
):
    with _browser_live(adb_server, start_twin) as live:
        if delay_ms:
            with EmulatorConsole(
                live.tp.twins[0].console_port, token_file=live.tp.adb.home / TOKEN_FILE_NAME
            ) as console:
                console.command(f"network delay {delay_ms}")
            time.sleep(1.0)
        pane = live.ui.wait_for(description=AGENT_VIDEO_DESC)
        sent = live.agent.session.sent
        result = agent_to_tablet(live.device, pane, sent, duration_s=G2G_WINDOW_S)
        err = live.agent.session.clock.error_s
        shows = _shows(live.truth)
    assert len(result.samples) >= 8, (len(result.samples), result.captures)
    checked = 0
    for s in result.samples:
        t_sent = sent[s.frame_no]
        # the twin's display of this send: its last show of the frame number by the sample's bound
        shown = [t for t in shows.get(s.frame_no, []) if t <= t_sent + s.upper_s + err]
        if not shown:  # the twin could not read that frame's code itself (codec damage)
            continue
        true = shown[-1] - t_sent
        assert true >= -err, (s, true)  # the capture time the page reported precedes the display
        assert s.lower_s - err <= true <= s.upper_s + err, (s, true, err)
        checked += 1
    assert checked >= 0.95 * len(result.samples)
    # the console's delay is in the figure (ms). No upper cap as in the aiortc bot's test (+250 ms):
    # Chromium's capture -> encode path on a loaded 2-core host measured 0.3-0.9 s at delay 0;
    # what this test proves is that the harness's figure is the truth's, sample by sample
    assert delay_ms <= result.stats().p50, result.stats()


def test_share_latency_and_fidelity_in_the_page_match_the_truth(blive, share_fidelity):

    blive.ui.tap_on(text="Timecode")
    blive.ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title", timeout_s=5)
    time.sleep(1.0)
    screen = blive.device.screenshot()
    t0 = time.monotonic()
    time.sleep(10.0)
    frames = [f for f in list(blive.agent.session.share) if f.t_arrival >= t0]
    err = blive.agent.session.clock.error_s
    assert blive.agent.probe_state()["shareReader"] == "decoded"  # every decoded frame, a worker
    assert len(frames) >= 40, len(frames)
    result = share_latency(frames, (1280, 800))
    shown = {e["frame_no"]: e["t"] for e in read_truth(blive.truth, "timecode_shown")}
    checked = 0
    for s in result.measurement.samples:
        first = next(f for f in frames if f.t_arrival == s.t)
        true_ms = (first.t_arrival - shown[s.meta["frame"]]) * 1000.0
        assert abs(s.value - true_ms) <= s.uncertainty + 0.01, (s.meta, s.value, true_ms)
        # the page's presentation time, mapped, comes after the twin showed the frame
        assert true_ms > -err * 1000.0, (s.meta, true_ms)
        checked += 1
    assert checked + result.repeated + result.undecodable >= len(frames) - 1
    assert checked >= 30 and result.undecodable <= 0.05 * len(frames)
    # fidelity of the pixels read from the page (canvas of the decoded frame)
    share_fidelity(screen, frames)


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_codec_strokes_control_and_consent_through_the_console(adb_server, start_twin, codec):
    with _browser_live(adb_server, start_twin, codec=codec) as live:
        agent = live.agent
        info = agent.media_info()
        assert info["send"] == info["receive"] == f"video/{codec}", info
        # ICE: both ends of the selected pair on 127.0.0.1 (no STUN, no mDNS, nothing on a wire)
        assert info["local"].startswith("127.0.0.1:") and info["remote"].startswith("127.0.0.1:")
        assert len(agent.session.sent) >= 10 and agent.session.share_count >= 5

        drawn = [[300.0 + 10 * k, 300.0 + 3 * np.sin(k / 3)] for k in range(30)]
        t_sent = agent.send_stroke(drawn, color=(255, 0, 0), width=6, stroke_id=7)
        assert abs(t_sent - time.monotonic()) < 5.0
        tap_refused = agent.send_tap(640, 400)
        assert tap_refused["type"] == "tap_refused"
        agent.request_control()
        live.ui.tap_on(text="Allow", timeout_s=10)
        agent.wait_reply("control_granted")
        applied = agent.send_tap(200.5, 250.0)
        assert applied["type"] == "tap_applied" and applied["t_reply"] >= applied["t_sent"]
        agent.request_access("com.android.email")
        live.ui.tap_on(text="Deny", timeout_s=10)
        assert agent.wait_reply("access_denied")["package"] == "com.android.email"
        consent = agent.driver.execute_script("return window.agentConsole.consent")
        assert consent == {"control": "granted", "apps": {"com.android.email": "denied"}}
        truth = live.truth
        agent.hang_up()  # the console's Hang up button: the backend ends the tablet's session
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not read_truth(truth, "support_session_ended"):
            time.sleep(0.1)
        (ended,) = read_truth(truth, "support_session_ended")
        assert ended["why"] == "ended by agent", ended
    err = agent.session.clock.error_s
    stroke = read_truth(truth, "stroke_drawn")[-1]
    # the console's send time (page clock, mapped) precedes the twin drawing it, by little
    assert -err <= stroke["t"] - t_sent <= 2.0, (stroke["t"], t_sent)
    assert stroke["id"] == 7 and tuple(stroke["color"]) == (255, 0, 0) and stroke["width"] == 6
    got = np.array(stroke["points"])
    # pointer events land on whole CSS pixels; at zoom 1 a CSS pixel is a screen pixel
    assert len(got) == len(drawn) and np.abs(got - np.array(drawn)).max() <= 0.5 + 1e-6
    taps = read_truth(truth, "remote_tap_applied")
    assert len(taps) == 1 and abs(taps[0]["x"] - 200.5) <= 0.5 and taps[0]["y"] == 250.0
    # applied between the console sending the tap and the console seeing the reply
    assert applied["t_sent"] - err <= taps[0]["t"] <= applied["t_reply"] + err, (taps, applied)
    assert len(read_truth(truth, "remote_tap_refused")) == 1
    granted = {(e["what"], e["granted"]) for e in read_truth(truth, "consent")}
    assert granted == {("remote_control", True), ("com.android.email", False)}


# The aiortc bot hears the tablet within 0.5 s. Chromium plays a remote track out before a page
# can read it (MediaStreamTrackProcessor gets what the audio renderer pulls, on headless
# Chromium's fake output device), so its figure includes the playout delay: 0.2-3.1 s measured on
# a loaded 2-core host, varying from chirp to chirp. The bound here is that stated difference, not
# the bot's.
BROWSER_MIC_BOUND_S = 4.0


def test_microphone_reaches_the_page_within_its_bounds_of_the_truth(blive):
    sound = chirp()
    samples = []
    for _ in range(3):
        time.sleep(0.6)
        t_play = blive.tp.client().mic(sound.tolist())
        time.sleep(BROWSER_MIC_BOUND_S + 0.5)
        s = blive.agent.session
        samples.append((t_play, find_chirp(list(s.audio), s.audio_rate, sound, after=t_play)))
    started = [e["t"] for e in read_truth(blive.truth, "mic_sound_started")]
    assert len(started) == 3
    err = blive.agent.session.clock.error_s
    for (t_play, arrival), t_mic in zip(samples, started, strict=True):
        assert arrival.score > 0.8
        measured, true = arrival.t_arrival - t_play, arrival.t_arrival - t_mic
        # the twin's own lag from the speaker to its microphone's next frame: the aiortc bot's
        # test allows 0.1 s; with Chromium on the same 2 cores the twin has been seen at 0.15 s
        assert 0.0 <= measured - true <= 0.25, (measured, true)
        # after the twin's microphone sent it (the page clock's mapping may not put it before)
        assert -err < true < BROWSER_MIC_BOUND_S, true


DUAL_VIEW_SHOTS = 100  # 3.3 s of the lab camera at 30 fps
DUAL_VIEW_TIMEOUT_S = 10.0  # a loaded host's camera shoots slower: then fewer shots
SLIP_MARGIN_S = 0.2  # an anchor's way to the monitor, with margin


def _monitor_clock(anchors: list[dict], fps: float, t: float) -> float:
    """The lab monitor's clip clock (s) at host time t, from the anchors the twin recorded
    taking effect: clip time from the anchor in force, never behind what it already showed."""
    best = float("-inf")
    for j, a in enumerate(anchors):
        if a["t"] > t:
            break
        until = min(anchors[j + 1]["t"], t) if j + 1 < len(anchors) else t
        best = max(best, until - a["t_capture"] + a["i"] / fps)
    return best


def test_dual_view_from_the_browser_reads_the_monitor_and_the_truth(adb_server, start_twin):
    """The lab camera films the tablet and the agent's monitor (the camera's preview, driven by
    the captures the page reports); dual view's figure per agent frame against the twin's truth
    with the aiortc bot's tolerance (one camera frame, tests/media/test_dual_view.py)."""
    with _browser_live(adb_server, start_twin, lab=True) as live:
        time.sleep(1.0)
        shots = []
        cam = CameraSource(f"{live.tp.twins[0].camera}/stream.mjpg")
        cam.run(
            lambda f: (
                shots.append((f.t_arrival, read_all(f.image, expect=2)))
                or len(shots) >= DUAL_VIEW_SHOTS
            ),
            DUAL_VIEW_TIMEOUT_S,
        )
        assert cam.error is None, cam.error
        time.sleep(0.5)  # the last frames' truth lines are written just after they are shown
        s = live.agent.session
        slips, sent, err = list(s.slips), dict(s.sent), s.clock.error_s
        mon = live.agent.monitor
        # every anchor reached the monitor (a post under load may time out: a few are allowed)
        assert mon.posted >= 30 and mon.errors <= 0.05 * mon.posted, (mon.posted, mon.errors)
        truth = live.truth
    result = dual_view_latency(shots, sender="right")
    shown = first_times(truth, "agent_frame_shown")  # the clip's first pass: numbers unique
    anchors = read_truth(truth, "agent_monitor_anchor")
    assert len(result.samples) >= 20, (
        len(result.samples),
        result.captures,
    )
    camera_frame_s = 1 / 30
    checked, host, biases = 0, 0, []
    for smp in result.samples:
        if smp.frame_no not in shown:  # the twin could not read that frame's code (codec damage)
            continue
        t_shown = shown[smp.frame_no]
        # what the codes measure: the monitor's clip clock when the tablet showed the frame, less
        # the frame's clip time
        clip = _monitor_clock(anchors, CLIP_FPS, t_shown) - (smp.frame_no - 1) / CLIP_FPS
        tol = camera_frame_s + err
        assert smp.lower_s - tol <= clip <= smp.upper_s + tol, (smp, clip)
        checked += 1
        t_sent = sent.get(smp.frame_no)
        if t_sent is None or any(t_sent - x - SLIP_MARGIN_S < t <= t_shown for t, x in slips):
            continue
        # the host-clock truth: capture (the page's captureTime) to display. The clip's code dates
        # a frame by the capture schedule; Chromium captured it at most SCHEDULE_SLIP_S later.
        # Left out: a frame in flight while the schedule slipped (the figure reads low by the
        # slip), or shown while the monitor held its clock after one (it reads high)
        true = t_shown - t_sent
        assert smp.lower_s - tol - SCHEDULE_SLIP_S <= true <= smp.upper_s + tol, (smp, true)
        biases.append(clip - true)
        host += 1
    assert checked >= 0.95 * len(result.samples), (checked, len(result.samples))
    # how many met the host truth depends on the load (a loaded host's Chromium slips often)
    print(
        f"dual view: {len(result.samples)} samples, p50 {result.stats().p50:.0f} ms; "
        f"{host} against the host truth, figure - truth p50 "
        f"{np.median(biases) * 1000 if biases else float('nan'):.1f} ms; {len(slips)} slips"
    )
