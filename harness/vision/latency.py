"""Latency: per-frame delay from the sender's timeline and timecoded captures.

Single view: the sender's timeline says when each frame number was sent; captures say when a
frame number was seen. A frame counts from its first appearance. Its true display time lies
after the last capture that clearly showed something else and at or before the first capture
showing it, so each sample is reported as the middle of that interval with its half-width as
the uncertainty (the quantisation bound, about half the capture interval).

Dual view: one camera sees the sender's display and the receiver's display; the latency is the
difference of the two codes' host times in the same photo, no clock synchronisation needed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement, Stats, stats_of
from harness.vision.timecode import (
    FRAME_NO_MOD,
    T_MS_MOD,
    ReadStatus,
    TimecodeRead,
    frame_no_delta,
    unwrap_t_ms,
)

MS_PER_S = 1000.0


@dataclass(frozen=True)
class SentFrame:
    """One frame of the sender's timeline.

    Attributes:
        frame_no: the number stamped in it.
        t_s: host monotonic time it was sent (shown / handed to the encoder), seconds.
    """

    frame_no: int
    t_s: float


@dataclass(frozen=True)
class Capture:
    """One observed frame: when it was captured and what its code read.

    Attributes:
        t_s: host monotonic capture time, seconds (same clock as the timeline).
        frame_no: decoded frame number, None when undecodable.
        status: the read's status.
        t_ms: decoded sender host time (ms mod 2**32), if any.
        t_start_s: for a polled capture (screencap, framebuffer), when the grab was requested:
            the picture is of some instant between t_start_s and t_s, so a capture that does not
            show a frame bounds its appearance only from t_start_s. None: an instant capture.
    """

    t_s: float
    frame_no: int | None
    status: ReadStatus = ReadStatus.OK
    t_ms: int | None = None
    t_start_s: float | None = None

    @property
    def t_earliest_s(self) -> float:
        return self.t_s if self.t_start_s is None else self.t_start_s

    @classmethod
    def from_read(cls, t_s: float, read: TimecodeRead, t_start_s: float | None = None) -> Capture:
        return cls(float(t_s), read.frame_no, read.status, read.t_ms, t_start_s)


@dataclass(frozen=True)
class LatencySample:
    """Latency of one frame.

    Attributes:
        frame_no: the frame.
        latency_s: best estimate (middle of the interval the truth lies in).
        lower_s, upper_s: the interval; latency_s +/- uncertainty_s spans it.
        t_capture_s: first capture showing the frame.
        capture_index: its index among the captures.
    """

    frame_no: int
    latency_s: float
    lower_s: float
    upper_s: float
    t_capture_s: float
    capture_index: int

    @property
    def uncertainty_s(self) -> float:
        return 0.5 * (self.upper_s - self.lower_s)


@dataclass
class LatencyResult:
    """Per-frame latency samples and what happened to the other frames.

    Attributes:
        samples: one per frame seen, in order of first appearance.
        captures: number of captures examined.
        sent_frames: number of frames in the timeline (0 in dual view).
        dropped: frames sent within the observed span that were never seen.
        repeated: captures that showed an already-seen frame (held frames, freezes).
        reordered: frames first seen after a later frame had been seen.
        undecodable: captures whose code could not be read (blended, torn, absent...).
        unknown: frame numbers read that the timeline does not contain.
        censored: frames already on screen at the first clean capture: when they appeared is
            unknown, so they give no sample.
        capture_interval_s: median interval between captures.
    """

    samples: list[LatencySample]
    captures: int
    sent_frames: int = 0
    dropped: list[int] = field(default_factory=list)
    repeated: int = 0
    reordered: int = 0
    undecodable: int = 0
    unknown: list[int] = field(default_factory=list)
    censored: list[int] = field(default_factory=list)
    capture_interval_s: float = 0.0
    mode: str = "single"

    @property
    def quantisation_s(self) -> float:
        """Largest per-sample uncertainty: the bound every figure carries."""
        return max((s.uncertainty_s for s in self.samples), default=0.0)

    @property
    def values_ms(self) -> list[float]:
        return [s.latency_s * MS_PER_S for s in self.samples]

    def stats(self) -> Stats:
        """Summary of the latencies in milliseconds."""
        if not self.samples:
            raise MeasurementError("latency: no frame could be matched, no samples")
        return stats_of(self.values_ms)

    def to_measurement(self, name: str = "glass_to_glass_ms") -> Measurement:
        """The samples as a harness Measurement in ms, each with its uncertainty."""
        m = Measurement(
            name,
            "ms",
            meta={
                "mode": self.mode,
                "dropped": len(self.dropped),
                "repeated": self.repeated,
                "reordered": self.reordered,
                "undecodable": self.undecodable,
                "capture_interval_ms": self.capture_interval_s * MS_PER_S,
            },
        )
        for s in self.samples:
            m.add(
                s.latency_s * MS_PER_S,
                t=s.t_capture_s,
                uncertainty=s.uncertainty_s * MS_PER_S,
                frame=s.frame_no,
            )
        return m

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "samples"}
        out["samples"] = [asdict(s) for s in self.samples]
        out["quantisation_s"] = self.quantisation_s
        out["stats_ms"] = asdict(self.stats()) if self.samples else None
        return out


def _sorted_captures(captures: Iterable[Capture]) -> list[Capture]:
    caps = list(captures)
    if not caps:
        raise MeasurementError("latency: no captures to measure (the observed video is empty)")
    for i, c in enumerate(caps):
        if not math.isfinite(c.t_s):
            raise MeasurementError(f"latency: capture {i} has no finite capture time ({c.t_s})")
    return sorted(caps, key=lambda c: c.t_s)


def _ms_diff(a_ms: int, b_ms: int) -> int:
    """a - b for millisecond codes that wrap at T_MS_MOD."""
    return ((a_ms - b_ms + T_MS_MOD // 2) % T_MS_MOD) - T_MS_MOD // 2


def _median_interval(times: Sequence[float]) -> float:
    if len(times) < 2:
        return 0.0
    d = np.diff(np.asarray(times, dtype=float))
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


def frame_latency(  # noqa: C901 -- single and dual view share one pass over the frames
    sent: Sequence[SentFrame] | Mapping[int, float] | None,
    captures: Iterable[Capture],
    *,
    not_found_is_clean: bool = True,
) -> LatencyResult:
    """Per-frame latency of captured frames against the sender's timeline.

    Args:
        sent: the timeline (frame number -> send time, s); None to use the host time carried
            in each code (t_ms, sender's clock = capture clock).
        captures: observed frames (any order; sorted by time).
        not_found_is_clean: a capture with no code in view counts as "showing no new frame"
            and so bounds the next appearance (right for direct captures; for a camera that
            may miss a visible code, pass False).

    Returns:
        LatencyResult with one sample per frame seen.

    Raises:
        MeasurementError: empty timeline or captures, repeated frame numbers in the timeline,
            or no capture matching the timeline (no overlap).
    """
    caps = _sorted_captures(captures)
    send_t: dict[int, float] | None = None
    if sent is not None:
        items = sent.items() if isinstance(sent, Mapping) else ((s.frame_no, s.t_s) for s in sent)
        send_t = {}
        for frame_no, t in items:
            key = int(frame_no) % FRAME_NO_MOD
            if key in send_t:
                raise MeasurementError(f"latency: the sent timeline repeats frame {frame_no}")
            send_t[key] = float(t)
        if not send_t:
            raise MeasurementError("latency: the sent timeline is empty (no frames were sent)")
    interval = _median_interval([c.t_s for c in caps])
    clean = {ReadStatus.OK} | ({ReadStatus.NOT_FOUND} if not_found_is_clean else set())
    seen: set[int] = set()
    samples: list[LatencySample] = []
    unknown: list[int] = []
    censored: list[int] = []
    repeated = reordered = undecodable = 0
    last_clean_t: float | None = None
    newest: int | None = None
    for k, cap in enumerate(caps):
        if cap.status is not ReadStatus.OK or cap.frame_no is None:
            undecodable += 1
            if cap.status in clean:
                last_clean_t = cap.t_earliest_s
            continue
        f = int(cap.frame_no) % FRAME_NO_MOD
        if f in seen:
            repeated += 1
            last_clean_t = cap.t_earliest_s
            continue
        if send_t is not None:
            t_send = send_t.get(f)
            if t_send is None:
                if f not in unknown:
                    unknown.append(f)
                last_clean_t = cap.t_earliest_s
                continue
        else:
            if cap.t_ms is None:
                raise MeasurementError(
                    f"latency: capture {k} (frame {f}) carries no host time and no timeline "
                    "was given"
                )
            t_send = unwrap_t_ms(cap.t_ms, cap.t_s * MS_PER_S) / MS_PER_S
        seen.add(f)
        if newest is not None and frame_no_delta(f, newest) < 0:
            reordered += 1
        else:
            newest = f
        if last_clean_t is None:  # on screen before we looked: no lower bound
            censored.append(f)
        else:
            # nothing is shown before it was sent: on one host clock the bound starts at zero
            lo, hi = max(0.0, last_clean_t - t_send), cap.t_s - t_send
            samples.append(LatencySample(f, 0.5 * (lo + hi), lo, hi, cap.t_s, k))
        last_clean_t = cap.t_earliest_s
    if not samples:
        what = "frame numbers" if send_t is not None else "codes"
        got = (
            f"read {len(unknown)} unknown frame number(s) {unknown[:5]}" if unknown else "read none"
        )
        span = ""
        if send_t:
            span = f" (sent frames {min(send_t)}..{max(send_t)})"
        if censored:
            got += f", {len(censored)} frame(s) already on screen at the first capture"
        raise MeasurementError(
            f"latency: no captured frame matches the sent timeline{span}: {got}, "
            f"{undecodable} of {len(caps)} capture(s) undecodable; no overlap of {what}"
        )
    dropped: list[int] = []
    if send_t is not None:
        matched = [s.frame_no for s in samples] + censored
        t_first = min(send_t[f] for f in matched)
        t_last = max(send_t[f] for f in matched)
        dropped = sorted(f for f, t in send_t.items() if t_first <= t <= t_last and f not in seen)
    return LatencyResult(
        samples=samples,
        captures=len(caps),
        sent_frames=len(send_t or {}),
        dropped=dropped,
        repeated=repeated,
        reordered=reordered,
        undecodable=undecodable,
        unknown=unknown,
        censored=censored,
        capture_interval_s=interval,
    )


_SIDES = ("newer", "left", "right", "top", "bottom")


def _pick(reads: Sequence[TimecodeRead], sender: str) -> tuple[TimecodeRead, TimecodeRead] | None:
    ok = [r for r in reads if r.ok]
    if len(ok) < 2:
        return None
    a, b = ok[0], ok[1]
    if sender == "newer":
        d = ((a.t_ms - b.t_ms + T_MS_MOD // 2) % T_MS_MOD) - T_MS_MOD // 2
        return (a, b) if d >= 0 else (b, a)
    if a.center is None or b.center is None:
        return None
    axis = 0 if sender in ("left", "right") else 1
    first_is_lower = a.center[axis] <= b.center[axis]
    want_lower = sender in ("left", "top")
    return (a, b) if first_is_lower == want_lower else (b, a)


def displayed_delay_s(reads: Sequence[TimecodeRead], *, sender: str = "newer") -> float:
    """How far the receiver's display lags the sender's in one camera frame: tS - tR, in s.

    A snapshot, not a per-frame latency (the receiver's frame may have been on screen for a
    while); dual_view_latency gives bounded per-frame samples from a sequence.

    Raises:
        MeasurementError: bad `sender`, or fewer than two readable codes.
    """
    if sender not in _SIDES:
        raise MeasurementError(f"dual view: sender must be one of {_SIDES}, got {sender!r}")
    p = _pick(reads, sender)
    if p is None:
        n = sum(r.ok for r in reads)
        raise MeasurementError(
            f"dual view: the camera frame shows {n} readable code(s), two are needed"
        )
    diff_ms = ((p[0].t_ms - p[1].t_ms + T_MS_MOD // 2) % T_MS_MOD) - T_MS_MOD // 2
    return diff_ms / MS_PER_S


def dual_view_latency(
    frames: Iterable[tuple[float, Sequence[TimecodeRead]]],
    *,
    sender: str = "newer",
    frame_interval_s: float | None = None,
) -> LatencyResult:
    """Glass-to-glass latency from camera frames that show both displays.

    For each receiver frame number, at its first appearance: the sender's display shows S,
    the receiver's shows R, and the previous readable camera frame showed sender code P; the
    latency lies in (tP - tR, tS - tR + sender frame interval), reported as the middle with the
    half-width as uncertainty. Only the codes date the exposures, so a camera whose frames
    arrive late or in bursts gives the same bounds. The frame on screen in the first readable
    camera frame gives no sample (it appeared before).

    Args:
        frames: (camera time in s, reads of that camera frame), e.g. from locator.read_all.
            Camera times only order the frames (the codes date the exposures).
        sender: which code is the sender's: "newer" (the later host time) or its position in
            the picture ("left", "right", "top", "bottom").
        frame_interval_s: the sender's frame interval; default the median step of its codes.

    Raises:
        MeasurementError: bad `sender`, or no camera frame with two readable codes.
    """
    if sender not in _SIDES:
        raise MeasurementError(f"dual view: sender must be one of {_SIDES}, got {sender!r}")
    rows = sorted(((float(t), list(reads)) for t, reads in frames), key=lambda r: r[0])
    if not rows:
        raise MeasurementError("dual view: no camera frames")
    pairs: list[tuple[int, float, TimecodeRead, TimecodeRead] | None] = []
    for k, (t, reads) in enumerate(rows):
        p = _pick(reads, sender)
        pairs.append(None if p is None else (k, t, p[0], p[1]))
    good = [p for p in pairs if p is not None]
    if not good:
        n_codes = [sum(r.ok for r in reads) for _, reads in rows]
        raise MeasurementError(
            f"dual view: none of {len(rows)} camera frame(s) shows two readable codes "
            f"(readable codes per frame: max {max(n_codes)})"
        )
    if frame_interval_s is None:
        steps = np.diff(sorted({p[2].t_ms for p in good}))
        steps = steps[(steps > 0) & (steps < T_MS_MOD // 2)]
        frame_interval_s = float(np.median(steps)) / MS_PER_S if steps.size else 0.0
    cam_interval = _median_interval([t for t, _ in rows])
    seen: set[int] = set()
    samples: list[LatencySample] = []
    censored: list[int] = []
    repeated = undecodable = 0
    last_s_ms: int | None = None  # the sender's code in the last readable camera frame
    for p in pairs:
        if p is None:
            undecodable += 1
            continue
        k, t, s_read, r_read = p
        if r_read.frame_no in seen:
            repeated += 1
            last_s_ms = s_read.t_ms
            continue
        seen.add(r_read.frame_no)
        if last_s_ms is None:  # on the receiver's screen before the camera looked
            censored.append(int(r_read.frame_no))
            last_s_ms = s_read.t_ms
            continue
        # The exposures are dated by the sender's codes, not by when the camera's frames arrived
        # (a camera's delivery jitters; what it filmed does not): R was not yet on screen at the
        # previous readable exposure, which came after the sender code it showed, and was on
        # screen at this one, which came before the sender's next code.
        lo = max(0.0, _ms_diff(last_s_ms, r_read.t_ms) / MS_PER_S)  # never shown before it was sent
        hi = _ms_diff(s_read.t_ms, r_read.t_ms) / MS_PER_S + frame_interval_s
        samples.append(LatencySample(int(r_read.frame_no), 0.5 * (lo + hi), lo, hi, t, k))
        last_s_ms = s_read.t_ms
    return LatencyResult(
        samples=samples,
        captures=len(rows),
        repeated=repeated,
        undecodable=undecodable,
        censored=censored,
        capture_interval_s=cam_interval,
        mode="dual",
    )


# ---------------------------------------------------------------------------------------------
# Timeline files: one JSON object per line, {"frame": int, "t": seconds, "t_ms": int}


def write_timeline(path: str | os.PathLike, frames: Iterable[SentFrame | tuple[int, float]]) -> int:
    """Write a sent timeline as JSON lines; returns the number of frames written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for item in frames:
            fr = item if isinstance(item, SentFrame) else SentFrame(int(item[0]), float(item[1]))
            f.write(
                json.dumps(
                    {
                        "frame": fr.frame_no,
                        "t": round(fr.t_s, 6),
                        "t_ms": round(fr.t_s * MS_PER_S) % T_MS_MOD,
                    }
                )
                + "\n"
            )
            n += 1
    return n


def load_timeline(path: str | os.PathLike) -> list[SentFrame]:
    """Read a sent timeline written by write_timeline (or by the twin / AgentBot).

    Raises:
        MeasurementError: missing or empty file, or a line that is not {"frame": int, "t": s};
            the message names the file and line.
    """
    p = Path(path)
    if not p.exists():
        raise MeasurementError(f"{p}: no such timeline file")
    out: list[SentFrame] = []
    with open(p, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(SentFrame(int(obj["frame"]), float(obj["t"])))
            except (ValueError, KeyError, TypeError) as e:
                raise MeasurementError(
                    f'{p}:{lineno}: not a timeline line {{"frame": int, "t": seconds}} ({e})'
                ) from e
    if not out:
        raise MeasurementError(f"{p}: the timeline file has no frames")
    return out
