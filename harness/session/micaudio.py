"""The microphone as the agent received it, decoded when it is read.

aiortc hands every complete audio frame (20 ms of Opus, 50 a second) to a decoder thread and the
decoded frame back to the event loop: two thread hops a frame, which cost the AgentBot more than
the decoding itself, for audio that only a microphone-latency check ever reads. `tap_audio` stands
in for the receiver's decoder queue: each complete frame is kept, encoded, with its host arrival
time (as it left aiortc's jitter buffer, on the bot's event loop), and MicAudio decodes what
arrived since the last read, in order and with the same decoder aiortc would use, when the audio
is read. The same samples, dated at least as early as the decoded frames were.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator

import numpy as np

log = logging.getLogger(__name__)

_RECEIVER_QUEUE = "_RTCRtpReceiver__decoder_queue"  # aiortc's receiver: its decoder's input


class MicAudio:
    """(host arrival time, samples) of the newest `keep` audio frames, decoded when read.

    Frames come either encoded (`add_encoded`, from tap_audio; decoded on the next read) or
    decoded (`append`, aiortc's own path). Reading (iteration, len) decodes what is pending;
    thread-safe: the bot's loop adds, any thread reads. `rate` is the decoded sample rate (0
    until a frame is decoded)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.rate = 0
        self.decoded_frames = 0
        self._pending: deque = deque(maxlen=keep)  # (t, codec, encoded frame)
        self._frames: deque = deque(maxlen=keep)  # (t, samples)
        self._lock = threading.Lock()
        self._decoder = None
        self._codec_name: str | None = None

    def add_encoded(self, t: float, codec, encoded) -> None:
        self._pending.append((t, codec, encoded))

    def append(self, item: tuple[float, np.ndarray]) -> None:
        self._frames.append(item)

    def _decode_pending(self) -> None:
        from aiortc.codecs import get_decoder

        with self._lock:
            while self._pending:
                t, codec, encoded = self._pending.popleft()
                if codec.name != self._codec_name:
                    self._decoder, self._codec_name = get_decoder(codec), codec.name
                try:
                    frames = self._decoder.decode(encoded)
                except Exception as e:  # noqa: BLE001 -- a damaged frame is skipped, as aiortc does
                    log.info("microphone: frame at %.3f not decoded: %s", t, e)
                    continue
                for frame in frames:
                    self.rate = frame.sample_rate
                    self._frames.append((t, frame.to_ndarray().reshape(-1)))
                    self.decoded_frames += 1

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        self._decode_pending()
        return iter(list(self._frames))

    def __len__(self) -> int:
        self._decode_pending()
        return len(self._frames)


class _DecoderQueueTap:
    """Stands in for an aiortc receiver's decoder queue: complete frames go to a MicAudio; the
    end (None) still reaches aiortc's decoder thread, whichever queue it waits on, so the thread
    and the track end as before."""

    def __init__(self, old, sink: MicAudio) -> None:
        self.old, self.sink = old, sink
        self._ended = threading.Event()

    def put(self, item) -> None:
        if item is None:
            self._ended.set()
            self.old.put(None)
            return
        codec, encoded = item
        self.sink.add_encoded(time.monotonic(), codec, encoded)

    def get(self, block: bool = True, timeout: float | None = None):
        """aiortc's decoder thread, if started after the tap: waits for the end."""
        self._ended.wait(timeout if block else 0)
        return None


def tap_audio(pc, track, sink: MicAudio) -> bool:
    """Give the receiver of `track` (an audio track of RTCPeerConnection `pc`, from its "track"
    event) a decoder queue that keeps its frames in `sink`, encoded. False if this aiortc's
    receiver keeps no decoder queue where expected (then nothing changes, logged)."""
    for receiver in pc.getReceivers():
        if receiver.track is track and track.kind == "audio":
            old = getattr(receiver, _RECEIVER_QUEUE, None)
            if old is None or not hasattr(old, "put"):
                log.info("aiortc receiver without the expected decoder queue: audio decoded live")
                return False
            setattr(receiver, _RECEIVER_QUEUE, _DecoderQueueTap(old, sink))
            return True
    return False
