"""A Wi-Fi outage mid-share: the twin sends and shows nothing while it lasts, and the harness
reports it as a freeze of its true length (or one running to the window's end when the session
ends), never as a perfect share. Proven against the twin's ground truth."""

from __future__ import annotations

import threading
import time

import pytest

from harness.session.media import share_run
from harness.twin.truth import read_truth

FRAME_S = 1 / 15  # the share's frame interval (15 fps)
# The measured freeze runs from the last frame before the outage to the first after it: at most
# one frame interval earlier than the Wi-Fi went off, plus the first frame's capture and transit.
FREEZE_TOLERANCE_S = FRAME_S + 0.05
OUTAGE_AT_S = 4.0  # into share_run: after its tap, 1 s settle and the wait for the app's share


def _outage(tp, at_s: float, outage_s: float) -> threading.Thread:
    def run() -> None:
        time.sleep(at_s)
        tp.control("wifi", on=False)
        time.sleep(outage_s)
        tp.control("wifi", on=True)

    t = threading.Thread(target=run, name="wifi-outage", daemon=True)
    t.start()
    return t


def _outage_truth(tp) -> tuple[float, float]:
    wifi = [e for e in read_truth(tp.twins[0].truth) if e["event"] == "wifi"]
    off = next(e["t"] for e in wifi if not e["enabled"])
    on = next(e["t"] for e in wifi if e["enabled"] and e["t"] > off)
    return off, on


@pytest.mark.parametrize("outage_s", [1.0, 3.0, 10.0])
def test_a_wifi_outage_mid_share_is_a_freeze_of_its_true_length(live, outage_s):
    live.tp.control("support", reconnect_grace_s=outage_s + 20.0)  # the session survives it
    toggler = _outage(live.tp, OUTAGE_AT_S, outage_s)
    run = share_run(live.device, live.ui, live.bot, OUTAGE_AT_S + outage_s + 3.0)
    toggler.join(5.0)
    off, on = _outage_truth(live.tp)
    assert run.frames[0].t_arrival < off and run.frames[-1].t_arrival > on  # inside the window
    truth = read_truth(live.tp.twins[0].truth)
    # the twin honoured it: no share frame left, no agent frame was shown, no audio arrived
    assert not [e for e in truth if e["event"] == "share_frame_sent" and off < e["t"] < on]
    assert not [e for e in truth if e["event"] == "agent_frame_shown" and off < e["t"] < on]
    assert not [t for t, _ in live.bot.session.audio if off + 0.1 < t < on]
    assert [e for e in truth if e["event"] == "agent_frame_shown" and e["t"] > on]  # it resumed
    longest = max(run.fidelity.freezes, key=lambda f: f.duration_s)
    assert abs(longest.duration_s - (on - off)) <= FREEZE_TOLERANCE_S, (longest, on - off)
    # it starts at the last frame that left before the outage (in flight when it began, or
    # up to one frame interval before it)
    assert off - FREEZE_TOLERANCE_S <= longest.start_s <= off + 0.05
    freeze_ms = next(m for m in run.measurements() if m.name == "share_freeze_ms")
    assert freeze_ms.values[0] == pytest.approx(longest.duration_s * 1000.0)


def test_an_outage_that_ends_the_session_is_a_freeze_to_the_window_end(live):
    live.tp.control("support", reconnect_grace_s=2.0)  # the app gives up after 2 s
    toggler = _outage(live.tp, OUTAGE_AT_S, 6.0)
    window_s = OUTAGE_AT_S + 4.0
    run = share_run(live.device, live.ui, live.bot, window_s)
    t_end = time.monotonic()
    toggler.join(10.0)
    off, _ = _outage_truth(live.tp)
    truth = read_truth(live.tp.twins[0].truth)
    ended = [e for e in truth if e["event"] == "support_session_ended"]
    assert ended and ended[0]["why"] == "wifi lost"
    assert not [e for e in truth if e["event"] == "share_frame_sent" and e["t"] > off]
    last = run.frames[-1].t_arrival
    assert last <= off + 0.1
    longest = max(run.fidelity.freezes, key=lambda f: f.duration_s)
    assert longest.start_s == last
    # it runs from the last frame to the window's end (read just before t_end)
    assert t_end - 1.0 <= longest.start_s + longest.duration_s <= t_end
    assert longest.duration_s >= window_s - OUTAGE_AT_S - 2.0
