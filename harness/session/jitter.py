"""Video frames handed to the decoder as soon as they are complete, as a WebRTC browser does.

aiortc's receive-side jitter buffer finds the end of a video frame only when the first packet of
the next frame arrives. Every frame then waits one frame interval in the agent (1/15 s at 15 fps,
a whole second at 1 fps), and the last frame before a pause in the stream (a Wi-Fi outage, a
frozen sender) is delivered only when the stream resumes: a stale picture that a share-latency
measurement reads as a latency of the whole pause. The sender marks each frame's last packet
(RTP marker bit, RFC 7741 for VP8; aiortc sets it on every codec); this buffer hands a frame over
when that packet completes it, and keeps aiortc's rule for whatever arrives otherwise (a lost or
reordered marker packet, repaired by NACK).
"""

from __future__ import annotations

import logging

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)

VIDEO_CAPACITY = 512  # packets, as aiortc's own video receiver


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's JitterBuffer, plus: a frame whose marker packet arrives with every packet
    before it (back to the buffer's origin, one RTP timestamp) is returned at once."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is not None or not packet.marker or self._origin is None:
            return pli, frame
        parts: list[bytes] = []
        timestamp = None
        for count in range(self.capacity):
            queued = self._packets[(self._origin + count) % self.capacity]
            if queued is None:
                return pli, None  # a packet of it is missing (NACKed): aiortc's rule
            if timestamp is None:
                timestamp = queued.timestamp
            elif queued.timestamp != timestamp:
                return pli, None  # an older frame is still incomplete before it
            parts.append(queued._data)  # type: ignore[attr-defined] -- set by the receiver
            if queued.sequence_number == packet.sequence_number:
                self.remove(count + 1)
                return pli, JitterFrame(data=b"".join(parts), timestamp=timestamp)
        return pli, None


def complete_on_marker(pc, track) -> bool:
    """Give the receiver of `track` (a video track of RTCPeerConnection `pc`, from its "track"
    event: before any of its packets arrived) a MarkerJitterBuffer. False if aiortc's receiver
    has no jitter buffer where this aiortc keeps it (then its own rule stays, logged)."""
    for receiver in pc.getReceivers():
        if receiver.track is track and track.kind == "video":
            if not hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
                log.info("aiortc receiver without the expected jitter buffer: left as is")
                return False
            receiver._RTCRtpReceiver__jitter_buffer = MarkerJitterBuffer(
                capacity=VIDEO_CAPACITY, is_video=True
            )
            return True
    return False
