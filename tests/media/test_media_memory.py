"""Nothing of a media session stays in the twin after it ends: its support session, WebRTC peer
connection, transports, frames, codec contexts and asyncio tasks return to the baseline counted
before the first session (the control op "memory", after a full collection in the twin).

Before the fix, each session left the backend's answer task (and through it the request and its
stream) alive for handle_s (600 s): one task more per session.
"""

from __future__ import annotations

import time

from harness.device.adb import Device
from harness.device.ui import Ui
from harness.session import SessionDriver
from harness.session.agent import AiortcAgentBot

SESSIONS = 4
SETTLE_TIMEOUT_S = 15.0  # the peer closes asynchronously (pc.close bounded at 5 s)
_POLL_S = 0.5


def _held(tp) -> dict[str, int]:
    m = tp.control("memory", timeout_s=30)
    return {**m["objects"], "tasks": m["tasks"]}


def test_media_sessions_leave_no_objects_in_the_twin(adb_server, start_twin):
    tp = start_twin("android-emulator-api34")
    info = tp.client().backend(answer_s=0.1, wrap_s=0.0)
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    drv = SessionDriver(dev, Ui.for_device(dev, prefer_u2=False))
    baseline = _held(tp)
    assert baseline["RTCPeerConnection"] == 0 and baseline["SupportSession"] == 0, baseline
    for i in range(SESSIONS):
        bot = AiortcAgentBot(
            info.address,
            name=f"mem-bot-{i}",
            device=tp.twins[0].serial,
            http=info.http,
            token=info.token,
        )
        bot.start()
        try:
            drv.connect(timeout_s=30)
            bot.wait_connected(15)
            during = _held(tp)
            # the count sees a live session's objects (else "back to baseline" proves nothing)
            assert during["SupportSession"] == 1 and during["MediaPeer"] == 1, during
            assert during["RTCPeerConnection"] >= 1 and during["tasks"] > baseline["tasks"], during
            drv.end(timeout_s=10)
        finally:
            bot.stop()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        after = _held(tp)
        for _ in range(int(SETTLE_TIMEOUT_S / _POLL_S)):
            if after == baseline or time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
            after = _held(tp)
        grown = {k: (baseline[k], v) for k, v in after.items() if v != baseline[k]}
        assert not grown, f"after session {i + 1}: held objects (baseline, now): {grown}"
    # the diagnostic's allocation diff (how the leak was found): Python allocations by line
    tp.control("memory", timeout_s=30, tracemalloc="start")
    diff = tp.control("memory", timeout_s=30, tracemalloc="diff")
    tp.control("memory", timeout_s=30, tracemalloc="stop")
    assert diff["traced_kib"] > 0 and isinstance(diff["top"], list), diff
