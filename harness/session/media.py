"""Media figures of a live session, from what the AgentBot received and what the tablet showed.

Share latency (tablet -> agent): the tablet runs the Timecode app (a code at
timecode_layout(W, H) of the screen, the contract with the app,
refreshed at 30 fps with the host time it was shown); each share frame the bot receives is
timed on arrival, so latency = arrival - shown, per code, at first appearance. The codes'
millisecond rounding is the only measurement error (SHARE_LATENCY_UNCERTAINTY_MS).
Fidelity: SSIM/PSNR of the share against the tablet's own screen (harness.vision.fidelity),
aligned by the code, which itself is left out of the scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement
from harness.vision.latency import Capture, frame_latency
from harness.vision.timecode import TimecodeLayout, decode_fast, stamp

TIMECODE_APP = "com.mayday.hil.timecode"
TIMECODE_ANCHOR = "center"
SHARE_LATENCY_UNCERTAINTY_MS = 1.0


@dataclass
class ShareLatency:
    measurement: Measurement
    frames: int
    codes: int
    dropped: int
    repeated: int
    undecodable: int
    fps: float


def timecode_layout(screen_w: int, screen_h: int) -> TimecodeLayout:
    """Where the Timecode app puts its code: centred, cells of 1/32 of the short side (large
    enough to survive a share scaled to half size and a real-time VP8 encoder)."""
    return TimecodeLayout.for_size(screen_w, screen_h, anchor=TIMECODE_ANCHOR, cell_px=min(screen_w, screen_h) // 32)


def share_latency(frames, screen_size: tuple[int, int]) -> ShareLatency:
    """Per-code latency of received share frames (harness.session.agent.ReceivedFrame).

    Raises:
        MeasurementError: no frames, or no frame whose code could be read.
    """
    if not frames:
        raise MeasurementError("share latency: the agent received no share frames")
    layout = timecode_layout(*screen_size)
    captures = [Capture.from_read(f.t_arrival, decode_fast(f.image, layout)) for f in frames]
    result = frame_latency(None, captures)
    m = Measurement("share_latency_ms", "ms", meta={"dropped": len(result.dropped), "repeated": result.repeated,
                                                    "undecodable": result.undecodable})
    for s in result.samples:
        # a received stream is timed on arrival: the upper bound is the latency itself
        m.add(s.upper_s * 1000.0, t=s.t_capture_s, uncertainty=SHARE_LATENCY_UNCERTAINTY_MS, frame=s.frame_no)
    span = frames[-1].t_arrival - frames[0].t_arrival
    fps = (len(frames) - 1) / span if span > 0 else 0.0
    return ShareLatency(m, len(frames), len(result.samples), len(result.dropped), result.repeated,
                        result.undecodable, fps)


def share_reference(screen_bgr: np.ndarray, share_size: tuple[int, int], frame_nos, t_ms: int = 0) -> list[np.ndarray]:
    """Reference frames for the share: the tablet's screen (Timecode app, static but for its code)
    scaled to the share's size, with each code re-stamped, in frame-number order."""
    import cv2

    h, w = screen_bgr.shape[:2]
    layout = timecode_layout(w, h)
    out = []
    for n in frame_nos:
        img = screen_bgr.copy()
        stamp(img, int(n), t_ms, layout)
        out.append(cv2.resize(img, share_size, interpolation=cv2.INTER_AREA))
    return out


def crop_left(img: np.ndarray, share: float) -> np.ndarray:
    """The left part of a frame (the session pane sits on the right and changes on its own)."""
    return img[:, : int(img.shape[1] * share)]
