"""The AgentBot's video jitter buffer hands a frame over when its last packet (RTP marker)
completes it, not when the next frame begins (aiortc's rule, kept for incomplete frames)."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from harness.session.jitter import MarkerJitterBuffer


def _packet(seq: int, ts: int, data: bytes, marker: bool) -> RtpPacket:
    p = RtpPacket(payload_type=96, marker=int(marker), sequence_number=seq, timestamp=ts)
    p._data = data  # what aiortc's receiver sets (the depayloaded bytes)
    return p


def _frame(seq: int, ts: int, parts: list[bytes]) -> list[RtpPacket]:
    return [_packet(seq + i, ts, d, i == len(parts) - 1) for i, d in enumerate(parts)]


def test_a_frame_is_handed_over_by_its_marker_packet():
    buf, aiortc = MarkerJitterBuffer(512, is_video=True), JitterBuffer(512, is_video=True)
    out, out_aiortc = [], []
    for packet in _frame(100, 9000, [b"a", b"b", b"c"]):
        out.append(buf.add(packet)[1])
        out_aiortc.append(aiortc.add(packet)[1])
    assert out[:2] == [None, None] and out[2].data == b"abc" and out[2].timestamp == 9000
    assert out_aiortc == [None, None, None]  # aiortc: held until the next frame starts
    nxt = _frame(103, 12000, [b"d", b"e"])
    assert aiortc.add(nxt[0])[1].data == b"abc"  # ... here, one frame interval later
    assert [buf.add(p)[1] for p in nxt][1].data == b"de"


def test_a_frame_missing_a_packet_waits_and_then_follows_aiortc():
    buf = MarkerJitterBuffer(512, is_video=True)
    first = _frame(200, 1000, [b"x", b"y", b"z"])
    assert buf.add(first[0])[1] is None
    assert buf.add(first[2])[1] is None  # y lost: the marker does not complete it
    assert buf.add(first[1])[1] is None  # y retransmitted (no marker): complete, not yet out
    frame = buf.add(_packet(203, 4000, b"w", True))[1]  # the next frame: aiortc's rule
    assert frame.data == b"xyz"
    assert buf.add(_packet(204, 7000, b"v", True))[1].data == b"w"
