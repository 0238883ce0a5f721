"""The AgentBot's lean VP8 encoder: every code it sends reads back after decoding, keyframes
when asked (PLI/FIR), reopened at a new bitrate (REMB), fewer bytes than aiortc's own; and it is
put only on a sender that sends VP8."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import pytest

from harness.session.agent import (
    AgentFrames,
    _agent_picture,
    _first_video_codec,
    lean_vp8_encoder,
    use_lean_encoder,
)
from harness.vision.timecode import decode_fast, feed_layout

W, H = 640, 480
N_FRAMES = 60


def _frames(n: int):
    layout = feed_layout(W, H)
    frames = AgentFrames(_agent_picture(W, H), layout)
    for i in range(1, n + 1):
        f = av.VideoFrame.from_ndarray(frames.frame(i, 1000 + 33 * i), format="yuv420p")
        f.pts, f.time_base = i * 3000, Fraction(1, 90000)
        yield i, f


def _depacketize(payloads: list[bytes]) -> bytes:
    from aiortc.codecs.vpx import vp8_depayload

    return b"".join(vp8_depayload(p) for p in payloads)


def test_every_code_reads_back_after_the_lean_encoder():
    from aiortc.codecs.vpx import Vp8Encoder

    layout = feed_layout(W, H)
    lean, stock = lean_vp8_encoder(), Vp8Encoder()
    decoder = av.CodecContext.create("libvpx", "r")
    lean_bytes = stock_bytes = 0
    read = []
    for i, frame in _frames(N_FRAMES):
        stock_payloads, stock_ts = stock.encode(frame)
        payloads, ts = lean.encode(frame, force_keyframe=i == 30)
        assert abs(ts - i * 3000) <= 1 and ts == stock_ts  # 90 kHz RTP clock, as aiortc's
        data = _depacketize(payloads)
        lean_bytes += len(data)
        if i == 30:
            assert data[0] & 1 == 0, "a forced keyframe (VP8: frame type bit 0)"
        elif i > 1:
            assert data[0] & 1 == 1, "an interframe"
        stock_bytes += len(_depacketize(stock_payloads))
        for out in decoder.decode(av.Packet(data)):
            r = decode_fast(out.to_ndarray(format="rgb24"), layout)
            read.append(r.frame_no if r.ok else None)
    assert read == list(range(1, N_FRAMES + 1))
    assert lean_bytes < stock_bytes, (lean_bytes, stock_bytes)


def test_a_new_bitrate_reopens_the_encoder():
    lean = lean_vp8_encoder()
    frames = _frames(3)
    _, f1 = next(frames)
    lean.encode(f1)
    first = lean.codec
    assert first.bit_rate == lean.target_bitrate
    lean.target_bitrate = 300_000  # what REMB does
    _, f2 = next(frames)
    payloads, _ = lean.encode(f2)
    assert lean.codec is not first and lean.codec.bit_rate == 300_000
    assert _depacketize(payloads)[0] & 1 == 0  # a new stream starts on a keyframe


_SDP = """v=0
m=audio 9 UDP/TLS/RTP/SAVPF 111
a=rtpmap:111 opus/48000/2
m=video 9 UDP/TLS/RTP/SAVPF {pts}
a=rtpmap:97 rtx/90000
a=rtpmap:96 VP8/90000
a=rtpmap:102 H264/90000
"""


@pytest.mark.parametrize(("pts", "codec"), [("96 97 102", "VP8"), ("102 96 97", "H264")])
def test_the_first_video_codec_of_a_description(pts, codec):
    assert _first_video_codec(_SDP.format(pts=pts)) == codec


def test_the_lean_encoder_goes_only_on_a_vp8_sender():
    from aiortc import RTCPeerConnection, VideoStreamTrack

    async def senders():
        pc = RTCPeerConnection()
        try:
            return [pc.addTrack(VideoStreamTrack()), pc.addTrack(VideoStreamTrack())]
        finally:
            await pc.close()

    vp8, h264 = asyncio.run(senders())
    assert use_lean_encoder(vp8, _SDP.format(pts="96 97 102"))
    assert type(vp8._RTCRtpSender__encoder).__name__ == "LeanVp8Encoder"
    assert not use_lean_encoder(h264, _SDP.format(pts="102 96 97"))
    assert h264._RTCRtpSender__encoder is None
    assert not use_lean_encoder(vp8, _SDP.format(pts="96 97 102"))  # it has one already


def test_the_silent_microphone_is_one_opus_packet_of_silence_every_opus_frame():
    """Each packet decodes to OPUS_FRAME_S of stereo silence (60 ms: 2880 samples a channel),
    and the packets' timestamps advance by as much."""
    import numpy as np

    from harness.session.agent import OPUS_FRAME_S, OPUS_RATE_HZ, _silence_track, opus_silence

    n = round(OPUS_RATE_HZ * OPUS_FRAME_S)
    assert n == 2880
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout = OPUS_RATE_HZ, "stereo"
    samples = []
    for _ in range(5):
        decoded = decoder.decode(av.Packet(opus_silence()))
        assert sum(f.samples for f in decoded) == n
        samples += [f.to_ndarray() for f in decoded]
    pcm = np.concatenate([s.reshape(-1) for s in samples])
    assert pcm.size == 5 * n * 2 and np.abs(pcm).max() < 1e-3  # stereo silence

    async def packets(k: int):
        track = _silence_track()
        first = await track.recv()  # before Opus is negotiated: aiortc's silent frames
        track.use_packets = True
        out = [await track.recv() for _ in range(k)]
        track.stop()
        return first, out

    first, got = asyncio.run(packets(3))
    assert isinstance(first, av.AudioFrame)
    assert [p.pts for p in got] == [0, n, 2 * n] and got[0].time_base == Fraction(1, 48000)
    assert bytes(got[1]) == opus_silence()


LOOP_FRAMES = 60


def test_the_loop_is_the_live_encoder_from_a_cold_start_and_every_code_reads_back_round_it():
    """EncodedLoop's packets are what LeanVp8Encoder makes live from the first frame, byte for
    byte; the first is the only keyframe; decoded in turn and round the loop again, every code
    reads back in order."""
    from harness.session.agent import encoded_loop, loop_t_ms

    layout = feed_layout(W, H)
    loop = encoded_loop((W, H), 30.0, LOOP_FRAMES)
    assert len(loop) == LOOP_FRAMES
    frames, live = AgentFrames(_agent_picture(W, H), layout), lean_vp8_encoder()
    for k in range(1, LOOP_FRAMES + 1):
        frame = frames.video_frame(k, loop_t_ms(k, 30.0))
        frame.pts, frame.time_base = k * 3000, Fraction(1, 90000)
        payloads, _ = live.encode(frame)
        assert _depacketize(payloads) == loop.packets[k - 1], k
    assert [p[0] & 1 for p in loop.packets] == [0] + [1] * (LOOP_FRAMES - 1)
    decoder = av.CodecContext.create("libvpx", "r")
    read = []
    for k in [*range(1, LOOP_FRAMES + 1), 1, 2, 3]:
        for out in decoder.decode(loop.packet(k)):
            r = decode_fast(out.to_ndarray(format="rgb24"), layout)
            read.append((r.frame_no, r.t_ms) if r.ok else None)
    expect = [*range(1, LOOP_FRAMES + 1), 1, 2, 3]
    assert read == [(k, loop_t_ms(k, 30.0)) for k in expect]


def test_a_keyframe_request_sends_live_frames_until_the_loop_comes_round():
    """Over a real aiortc connection on loopback: the bot's video comes from its loop; a keyframe
    request (what a PLI does) makes the sender encode the same codes live, from a keyframe, until
    the loop's own keyframe; then the loop again. The receiver reads every code in order."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    from harness.session.agent import AiortcAgentBot, BotSession, pin_ice_to_loopback

    fps, loop_s = 30.0, 1.0  # a 30-frame loop; the request after frame ~10
    bot = AiortcAgentBot(("127.0.0.1", 9), fps=fps, loop_s=loop_s)
    layout = feed_layout(W, H)

    async def run():
        pin_ice_to_loopback()
        a, b = RTCPeerConnection(RTCConfiguration([])), RTCPeerConnection(RTCConfiguration([]))
        session = BotSession(rid=1, device="t", t_assigned=0.0)
        video, _ = bot._tracks(session)
        sender = a.addTrack(video)
        got: list[int | None] = []
        asked: list[int] = []  # frames sent when the keyframe was asked for
        done = asyncio.Event()

        async def receive(track):
            while len(got) < 75:
                frame = await asyncio.wait_for(track.recv(), 5.0)
                r = decode_fast(frame.to_ndarray(format="rgb24"), layout)
                got.append(r.frame_no if r.ok else None)
                if len(got) == 10:
                    sender._send_keyframe()  # what aiortc does on a PLI or FIR
                    asked.append(session.frames_sent)
            done.set()

        b.on("track", lambda t: asyncio.ensure_future(receive(t)))
        try:
            await a.setLocalDescription(await a.createOffer())
            assert use_lean_encoder(sender, a.localDescription.sdp)
            video.use_loop(sender)
            await b.setRemoteDescription(a.localDescription)
            await b.setLocalDescription(await b.createAnswer())
            await a.setRemoteDescription(b.localDescription)
            await asyncio.wait_for(done.wait(), 20.0)
        finally:
            video.stop()
            await a.close()
            await b.close()
        return session, got, asked[0]

    session, codes, asked = asyncio.run(run())
    first = codes[0]
    assert codes == [(first - 1 + i) % 30 + 1 for i in range(len(codes))]  # every code, in order
    # live from the request (frame asked + 1 or the next) to the loop's end, then the loop again
    assert abs(session.live_frames - (-asked) % 30) <= 1, (asked, session.live_frames)
    assert session.frames_sent >= len(codes) and len(session.sent) == 30
