"""The delay of a capture pipeline (screenrecord, screencap, a lab camera), calibrated against the
Timecode app: each code on the device's screen carries the host time it was shown, so a frame's
arrival minus that time is the pipeline's delay. Frame sources (harness.device.frames) report it
as an uncertainty next to every figure they date."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import MeasurementError
from harness.vision.timecode import unwrap_t_ms


@dataclass(frozen=True)
class PipelineDelay:
    """A capture pipeline's delay: from shown on the device to decoded on the host (s)."""

    median_s: float
    spread_s: float  # half the 5..95 % range, plus the frames' own age on screen
    samples: int


def calibrate_delay(reads, frame_interval_s: float) -> PipelineDelay:
    """The delay of a frame source, from frames of the Timecode app (each code carries the host
    time it was shown): arrival - shown, at each code's first appearance.

    Args:
        reads: (arrival time, TimecodeRead) per frame, in order.
        frame_interval_s: the source's frame interval (a frame's age on screen when caught).

    Raises:
        MeasurementError: no readable code among the frames.
    """
    seen: set[int] = set()
    delays = []
    for t_arrival, read in reads:
        if read.ok and read.frame_no not in seen:
            seen.add(read.frame_no)
            delays.append(t_arrival - unwrap_t_ms(read.t_ms, t_arrival * 1000.0) / 1000.0)
    if not delays:
        raise MeasurementError("pipeline calibration: no readable Timecode app code in the frames")
    lo, med, hi = np.percentile(delays, [5, 50, 95])
    return PipelineDelay(float(med), float((hi - lo) / 2 + frame_interval_s), len(delays))
