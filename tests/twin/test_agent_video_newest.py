"""The twin's agent pane shows the newest decoded agent frame, as Android's renderer does: frames
decoded while an older one waited are dropped late and counted, so a starved twin shows the
agent's current picture instead of falling seconds behind; the stream's end is never swallowed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from harness.twin.rtc import MediaPeer


def _track(*queued):
    queue: asyncio.Queue = asyncio.Queue()
    for item in queued:
        queue.put_nowait(item)
    return SimpleNamespace(_queue=queue)


def test_frames_queued_behind_the_received_one_are_dropped_for_the_newest():
    peer = SimpleNamespace(frames_dropped_late=0)
    track = _track("f2", "f3")
    assert MediaPeer._newest(peer, track, "f1") == "f3"
    assert peer.frames_dropped_late == 2 and track._queue.empty()


def test_nothing_queued_keeps_the_frame_and_counts_nothing():
    peer = SimpleNamespace(frames_dropped_late=0)
    assert MediaPeer._newest(peer, _track(), "f1") == "f1"
    assert MediaPeer._newest(peer, SimpleNamespace(), "f1") == "f1"  # no queue: as it is
    assert peer.frames_dropped_late == 0


def test_the_end_of_the_stream_stays_for_the_next_recv():
    peer = SimpleNamespace(frames_dropped_late=0)
    track = _track("f2", None)
    assert MediaPeer._newest(peer, track, "f1") == "f2"
    assert peer.frames_dropped_late == 1
    assert track._queue.qsize() == 1 and track._queue.get_nowait() is None
