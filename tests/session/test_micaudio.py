"""The AgentBot's microphone kept encoded and decoded when read (harness.session.micaudio):
over a real aiortc connection on loopback, every 20 ms frame is there with its arrival time,
decoded as aiortc's own decoder thread would have, and closing the connection still ends
aiortc's decoder thread and the track."""

from __future__ import annotations

import asyncio

import numpy as np

from harness.session.micaudio import MicAudio, tap_audio


def test_the_tapped_microphone_is_every_frame_decoded_when_read_and_the_receiver_still_ends():
    from aiortc import AudioStreamTrack, RTCConfiguration, RTCPeerConnection
    from aiortc.mediastreams import MediaStreamError

    from harness.session.agent import pin_ice_to_loopback

    sink = MicAudio(keep=500)

    async def run():
        pin_ice_to_loopback()
        a, b = RTCPeerConnection(RTCConfiguration([])), RTCPeerConnection(RTCConfiguration([]))
        tapped, tracks = [], []

        def on_track(track):
            tracks.append(track)
            tapped.append(tap_audio(b, track, sink))

        b.on("track", on_track)
        a.addTrack(AudioStreamTrack())  # aiortc's silence, 20 ms frames
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        for _ in range(100):  # bounded: up to 5 s for 1 s of audio
            await asyncio.sleep(0.05)
            if len(sink._pending) >= 50:
                break
        pending = len(sink._pending)
        await asyncio.wait_for(a.close(), 5.0)
        await asyncio.wait_for(b.close(), 5.0)  # joins aiortc's decoder thread: it ended
        try:
            await asyncio.wait_for(tracks[0].recv(), 5.0)
            ended = False
        except MediaStreamError:
            ended = True
        return tapped, pending, ended

    tapped, pending, ended = asyncio.run(run())
    assert tapped == [True] and pending >= 50 and ended
    assert sink.rate == 0 and sink.decoded_frames == 0  # nothing decoded until read
    frames = list(sink)
    assert sink.rate == 48000 and len(frames) >= 50 and not sink._pending
    times = [t for t, _ in frames]
    assert times == sorted(times)
    assert all(s.shape == (960 * 2,) and s.dtype == np.int16 for _, s in frames)  # 20 ms stereo
    assert all(np.abs(s).max() == 0 for _, s in frames)  # aiortc's silence, decoded


def test_decoded_frames_are_kept_to_the_newest_keep():
    sink = MicAudio(keep=3)
    for i in range(5):
        sink.append((float(i), np.zeros(4, np.int16)))
    assert [t for t, _ in sink] == [2.0, 3.0, 4.0] and len(sink) == 3
