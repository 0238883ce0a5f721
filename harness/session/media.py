"""Media figures of a live session, from what the AgentBot received and what the tablet showed.

Share latency (tablet -> agent): the tablet runs the Timecode app (a code at
timecode_layout(W, H) of the screen, the contract with the app,
refreshed at 30 fps with the host time it was shown); each share frame the bot receives is
timed on arrival, so latency = arrival - shown, per code, at first appearance. The codes'
millisecond rounding is the only measurement error (SHARE_LATENCY_UNCERTAINTY_MS).
Fidelity: SSIM/PSNR of the share against the tablet's own screen (harness.vision.fidelity),
aligned by the code, which itself is left out of the scores. The share run adds SSIMULACRA2,
the Text app's legibility and stretches through harness.session.share_quality.

Size: the media figures of a live session in one place (share, glass-to-glass, polled events,
microphone), each a few helpers over harness.vision; the share run's perceptual and
legibility parts are in share_quality.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement
from harness.vision.image import LazyFrames
from harness.vision.latency import Capture, frame_latency
from harness.vision.timecode import (
    ScaledStamps,
    TimecodeLayout,
    TimecodeRead,
    decode_fast,
    feed_layout,
)
from harness.vision.workers import analysis_threads

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
    return TimecodeLayout.for_size(
        screen_w, screen_h, anchor=TIMECODE_ANCHOR, cell_px=min(screen_w, screen_h) // 32
    )


def share_reads(frames, screen_size: tuple[int, int]) -> list[TimecodeRead]:
    """The code of each received share frame, read once (share_latency, share_reference)."""
    layout = timecode_layout(*screen_size)
    return [decode_fast(f.image, layout) for f in frames]


def share_latency(frames, screen_size: tuple[int, int], reads=None) -> ShareLatency:
    """Per-code latency of received share frames (harness.session.agent.ReceivedFrame).

    Args:
        reads: the frames' codes when already read (share_reads); else read here.

    Raises:
        MeasurementError: no frames, or no frame whose code could be read.
    """
    if not frames:
        raise MeasurementError("share latency: the agent received no share frames")
    if reads is None:
        reads = share_reads(frames, screen_size)
    captures = [Capture.from_read(f.t_arrival, r) for f, r in zip(frames, reads, strict=True)]
    result = frame_latency(None, captures)
    m = Measurement(
        "share_latency_ms",
        "ms",
        meta={
            "dropped": len(result.dropped),
            "repeated": result.repeated,
            "undecodable": result.undecodable,
        },
    )
    for s in result.samples:
        # a received stream is timed on arrival: the upper bound is the latency itself
        m.add(
            s.upper_s * 1000.0,
            t=s.t_capture_s,
            uncertainty=SHARE_LATENCY_UNCERTAINTY_MS,
            frame=s.frame_no,
        )
    span = frames[-1].t_arrival - frames[0].t_arrival
    fps = (len(frames) - 1) / span if span > 0 else 0.0
    return ShareLatency(
        m,
        len(frames),
        len(result.samples),
        len(result.dropped),
        result.repeated,
        result.undecodable,
        fps,
    )


SHARE_LUMA_KEEP = 4  # reference lumas kept by share_reference (a freeze re-reads the last)


def share_reference(
    screen_bgr: np.ndarray, share_size: tuple[int, int], frame_nos, t_ms: int = 0
) -> LazyFrames:
    """Reference frames for the share: the tablet's screen (Timecode app, static but for its code)
    scaled to the share's size, with each code re-stamped, in frame-number order; each made when
    first asked for (a share at 15 fps shows half of the 30 fps codes)."""
    h, w = screen_bgr.shape[:2]
    nos = [int(n) for n in frame_nos]
    with analysis_threads():
        stamps = ScaledStamps(screen_bgr, timecode_layout(w, h), share_size)

    def make(i: int) -> np.ndarray:
        with analysis_threads():
            return stamps.frame(nos[i], t_ms)

    def make_luma(i: int) -> np.ndarray:
        with analysis_threads():
            return stamps.frame_luma(nos[i], t_ms)

    refs = LazyFrames(len(nos), make)
    refs.frame_nos = nos  # the code stamped in each: compare(reference_frame_nos=)
    # their luma, made without the colour frame; compare() goes through them in order, so
    # only the newest few are kept (SHARE_LUMA_KEEP)
    refs.luma = LazyFrames(len(nos), make_luma, keep=SHARE_LUMA_KEEP)
    refs.luma.frame_nos = nos
    return refs


def share_fidelity(refs, frames, side: str, reads=None, **kw):
    """compare() of the received share frames with their references, away from the session
    pane (`side`), aligned by the code; only the references shown are made and cropped.

    Args:
        reads: the frames' codes when already read (share_reads): not read again.
    """
    from harness.vision.fidelity import compare

    source = getattr(refs, "luma", None) or refs  # compared on luma: the luma if made apart
    keep = getattr(source, "keep", None)
    cropped = LazyFrames(len(refs), lambda i: crop_share(source[i], SHARE_KEEP, side), keep=keep)
    return compare(
        cropped,
        [crop_share(f.image, SHARE_KEEP, side) for f in frames],
        received_times_s=[f.t_arrival for f in frames],
        align="timecode",
        reference_frame_nos=getattr(refs, "frame_nos", None),
        received_reads=reads,
        **kw,
    )


MIC_RATE_HZ = 8000
CHIRP_S = 0.12
_CHIRP_F0_HZ, _CHIRP_F1_HZ = 300.0, 3000.0
CHIRP_MIN_SCORE = 0.5


def chirp(rate: int = MIC_RATE_HZ, seconds: float = CHIRP_S) -> np.ndarray:
    """A linear sweep with a Hann window, int16: what the lab speaker plays into the microphone."""
    t = np.arange(int(rate * seconds)) / rate
    k = (_CHIRP_F1_HZ - _CHIRP_F0_HZ) / seconds
    wave = np.sin(2 * np.pi * (_CHIRP_F0_HZ * t + 0.5 * k * t * t)) * np.hanning(t.size)
    return (wave * 12000).astype(np.int16)


@dataclass
class ChirpArrival:
    t_arrival: float  # host time the chirp's first sample reached the agent
    score: float  # normalised correlation peak


def find_chirp(
    audio: list[tuple[float, np.ndarray]],
    rate: int,
    reference: np.ndarray,
    ref_rate: int = MIC_RATE_HZ,
    after: float = 0.0,
) -> ChirpArrival:
    """Where the reference sound starts in the audio the agent received (frames timed on arrival).

    Args:
        audio: (arrival time, samples) per received frame; samples interleaved if stereo.
        rate: the received sample rate.
        reference: the sound played, at ref_rate.
        after: only frames that arrived after this host time.

    Raises:
        MeasurementError: no audio, or nothing that correlates with the reference.
    """
    frames = [(t, s) for t, s in audio if t >= after]
    if not frames:
        raise MeasurementError(
            "microphone latency: the agent received no audio after the sound was played"
        )
    per = [s.reshape(-1) for _, s in frames]
    channels = max(1, round(sum(p.size for p in per) / max(1, len(per)) / (rate * 0.02)))
    mono = np.concatenate(
        [p.reshape(-1, channels).mean(axis=1) if channels > 1 else p for p in per]
    ).astype(np.float64)
    step = max(1, rate // ref_rate)
    mono = (
        mono[: mono.size - mono.size % step].reshape(-1, step).mean(axis=1)
    )  # to ref_rate (box filter)
    ref = reference.astype(np.float64)
    if mono.size < ref.size:
        raise MeasurementError("microphone latency: less audio received than the sound lasts")
    corr = np.correlate(mono, ref, mode="valid")
    energy = np.sqrt(np.convolve(mono * mono, np.ones(ref.size), mode="valid")) * np.linalg.norm(
        ref
    )
    score = np.divide(corr, energy, out=np.zeros_like(corr), where=energy > 0)
    i = int(np.argmax(score))
    if score[i] < CHIRP_MIN_SCORE:
        raise MeasurementError(
            f"microphone latency: the sound was not found (best correlation {score[i]:.2f})"
        )
    # the sample's arrival: the end time of the frame holding it, less the samples after it
    sample = i * step
    ends = np.cumsum([p.size // channels for p in per])
    k = int(np.searchsorted(ends, sample, side="right"))
    after_in_frame = ends[k] - sample
    return ChirpArrival(frames[k][0] - after_in_frame / rate, float(score[i]))


def wait_for_chirp(
    session,
    reference: np.ndarray,
    after: float,
    timeout_s: float,
    poll_s: float = 0.1,
) -> ChirpArrival:
    """find_chirp on `session.audio` until the sound is there or timeout_s has passed.

    The arrival is dated by the frames' own arrival times, so when the harness looks does not
    change the figure; a receiver with a deeper playout buffer (a browser) only takes longer.

    Raises:
        MeasurementError: the sound was not found within timeout_s (the last reason).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return find_chirp(list(session.audio), session.audio_rate, reference, after=after)
        except MeasurementError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(poll_s)


CODE_ROWS_MARGIN_PX = 2  # rows kept below a code's block


def code_rows_layout(layout: TimecodeLayout) -> TimecodeLayout:
    """The same code in the frame's top rows only, down to the block's bottom (and
    CODE_ROWS_MARGIN_PX): a fast read samples the same pixels, and a polled capture needs only
    those rows (a feed's code sits at its top-left)."""
    _, y, _, h = layout.bbox
    rows = min(layout.frame_h, y + h + CODE_ROWS_MARGIN_PX)
    return TimecodeLayout(layout.frame_w, rows, layout.x, layout.y, layout.cell_w, layout.cell_h)


def agent_to_tablet(
    device,
    pane,
    sent: dict[int, float],
    duration_s: float,
    capture_method: str | None = None,
    poll_interval_s: float = 0.0,
    max_captures: int | None = None,
    rate_hz: float | None = None,
):
    """Glass-to-glass, agent -> tablet, host-clock mode: poll the tablet's screen, read the code
    in the agent pane, and time each frame's first appearance against the bot's send times.

    Each polled capture is of an instant between its request and its arrival, so a sample's
    interval runs from the previous clean capture's request to this capture's arrival (the
    capture pipeline's delay is inside the bound, not an unknown offset).

    Args:
        duration_s: how long to poll at most; max_captures: stop earlier once that many.
        rate_hz: poll on a schedule of this many captures per second (None: back to back).

    Returns:
        harness.vision.latency.LatencyResult (samples in seconds; to_measurement() in ms).
    """
    import time

    from harness.device.frames import PollingSource

    x1, y1, x2, y2 = pane.bounds
    layout = code_rows_layout(feed_layout(x2 - x1, y2 - y1))
    y_end = y1 + layout.frame_h  # the pane's rows down to its code's bottom
    captures: list[Capture] = []

    def on_frame(f) -> bool:
        captures.append(
            Capture.from_read(
                f.t_arrival, decode_fast(f.region_view(x1, y1, x2, y_end), layout), f.t_request
            )
        )
        if poll_interval_s:
            time.sleep(poll_interval_s)
        return max_captures is not None and len(captures) >= max_captures

    # only the rows down to the code's bottom are read (raw screencap)
    source = PollingSource(device, capture_method, rate_hz=rate_hz, rows=y_end)
    with analysis_threads():  # OpenCV's pool, if a frame is converted: more cost than gain
        source.run(on_frame, duration_s)
    if source.error is not None and not captures:
        raise MeasurementError(f"glass-to-glass: frame capture failed: {source.error}")
    return frame_latency(dict(sent), captures)


@dataclass
class PolledEvent:
    """When a state first showed on polled frames: after `t_lower_s` (the previous frame's
    request), by `t_upper_s` (this frame's arrival)."""

    t_lower_s: float
    t_upper_s: float
    image: np.ndarray
    frames: int

    def latency_ms(self, t_cause_s: float) -> tuple[float, float]:
        """(midpoint, half-width) of the delay from a cause at t_cause_s, in ms."""
        lo, hi = (self.t_lower_s - t_cause_s) * 1000.0, (self.t_upper_s - t_cause_s) * 1000.0
        lo = min(max(lo, 0.0), hi)  # nothing shows before its cause (polling may start earlier)
        return 0.5 * (lo + hi), 0.5 * (hi - lo)


def poll_until(
    device,
    detector,
    timeout_s: float,
    *,
    hold_frames: int = 2,
    t_start_s: float | None = None,
    capture_method: str | None = None,
) -> PolledEvent:
    """Poll the screen until `detector(frame) >= detector.threshold` (or 0.5) holds for
    hold_frames frames; the event is the first of them (harness.vision.events.first_state).

    Raises:
        MeasurementError: the state did not show within timeout_s, or capture failed.
    """
    import time

    from harness.device.frames import PollingSource
    from harness.vision.events import first_state

    threshold = getattr(detector, "threshold", 0.5)
    frames: list = []
    run = {"n": 0}

    def on_frame(f) -> bool:
        frames.append(f)
        run["n"] = run["n"] + 1 if detector(f.image) >= threshold else 0
        return run["n"] >= hold_frames

    start = time.monotonic() if t_start_s is None else t_start_s
    source = PollingSource(device, capture_method)
    source.run(on_frame, timeout_s)
    if source.error is not None:
        raise MeasurementError(f"polling for an event: frame capture failed: {source.error}")
    event = first_state(
        [(f.t_arrival, f.image) for f in frames],
        detector,
        threshold=threshold,
        hold_frames=hold_frames,
    )
    if event is None:
        raise MeasurementError(
            f"the expected screen state did not show within {timeout_s:g} s ({len(frames)} frames)"
        )
    lower = frames[event.index - 1].t_request if event.index > 0 else start
    return PolledEvent(lower, frames[event.index].t_arrival, frames[event.index].image, len(frames))


def _crop(img: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
    if region is None:
        return img
    x, y, w, h = region
    return img[y : y + h, x : x + w]


class StrokeShown:
    """Detector: a stroke of `color` (BGR) is on screen within `region` (x, y, w, h)."""

    threshold = 1.0

    def __init__(
        self, color_bgr: tuple[int, int, int], region: tuple[int, int, int, int] | None = None
    ):
        self.color, self.region = color_bgr, region

    def __call__(self, img: np.ndarray) -> float:
        from harness.vision.annotation import find_stroke

        return 1.0 if find_stroke(_crop(img, self.region), color=self.color) is not None else 0.0

    def stroke(self, img: np.ndarray):
        from harness.vision.annotation import find_stroke

        return find_stroke(_crop(img, self.region), color=self.color)


class RegionChanged:
    """Detector: `region` differs from its look in `baseline` (harness.vision.events.ChangeState)."""

    threshold = 1.0

    def __init__(
        self,
        baseline: np.ndarray,
        region: tuple[int, int, int, int] | None = None,
        min_fraction: float = 0.2,
    ):
        from harness.vision.events import ChangeState

        self.region = region
        self.inner = ChangeState(_crop(baseline, region), min_fraction=min_fraction)

    def __call__(self, img: np.ndarray) -> float:
        return self.inner(_crop(img, self.region))


def content_region(
    screen_w: int, screen_h: int, pane_x1: int, status_h: int, pane_x2: int | None = None
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the screen beside the session pane (left of it; right of it when the
    pane, given with pane_x2, floats at the left) and below the status bar."""
    if pane_x2 is not None and pane_x1 < screen_w - pane_x2:
        return pane_x2 + 1, status_h, max(1, screen_w - pane_x2 - 1), screen_h - status_h
    return 0, status_h, max(1, pane_x1 - 1), screen_h - status_h


def crop_left(img: np.ndarray, share: float) -> np.ndarray:
    """The left part of a frame (the session pane sits on the right and changes on its own)."""
    return img[:, : int(img.shape[1] * share)]


def crop_share(img: np.ndarray, share: float, pane_side: str = "right") -> np.ndarray:
    """The part of a frame away from the session pane (which changes on its own): the left
    `share` of it, or the right `share` when the pane floats at the left."""
    if pane_side == "left":
        return img[:, img.shape[1] - int(img.shape[1] * share) :]
    return crop_left(img, share)


def pane_side(pane, screen_w: int) -> str:
    """ "left" or "right": where a pane element (bounds x1, y1, x2, y2) floats on the screen."""
    x1, _, x2, _ = pane.bounds
    return "left" if x1 < screen_w - x2 else "right"


SHARE_KEEP = 0.65  # the share is scored left of the session pane, which changes on its own
SETTLE_S = 1.0  # after an app opened, before its screen is taken as the reference


@dataclass
class ShareRun:
    """One window of the screen share with the Timecode app in front (then, given its text
    truth, the Text app): latency, fidelity, perceptual quality, legibility, stretches."""

    latency: ShareLatency | None  # None: a secure window hid the whole window
    fidelity: object  # harness.vision.fidelity.FidelityReport (None when hidden)
    frames: list  # the frames scored: those a secure window did not hide
    references: Sequence[np.ndarray]  # made when first asked for (share_reference)
    side: str = "right"  # where the session pane floats (fidelity is scored away from it)
    perceptual: list = field(default_factory=list)  # ssimulacra2.ScoredFrame, sampled
    perceptual_cpu_s: float = 0.0
    text: object = None  # harness.session.share_quality.TextWindow
    legibility: list = field(default_factory=list)  # legibility.FrameLegibility, sampled
    legibility_cpu_s: float = 0.0
    legibility_lines: tuple[int, int] = (0, 0)  # lines recognised, lines taken from the cache
    cer_absent: str | None = None  # why share_text_cer has no figure
    kinds: list[str] = field(default_factory=list)  # per received frame (stretches.classify)
    stretches: list = field(default_factory=list)  # stretches.Stretch
    secure_intervals: list[tuple[float, float]] = field(default_factory=list)
    window_frames: list = field(default_factory=list)  # every frame received (kinds align)

    @property
    def hidden(self) -> bool:
        """A secure window hid every frame of the Timecode app: nothing to score."""
        return self.latency is None

    def hidden_measurement(self) -> Measurement | None:
        """share_hidden_s: how long the share was hidden by the app (FLAG_SECURE), a figure
        without budget (the app's choice, neither a freeze nor a fidelity failure)."""
        from harness.vision.stretches import HIDDEN

        hidden = [s for s in self.stretches if s.kind == HIDDEN]
        if not hidden:
            return None
        m = Measurement(
            "share_hidden_s", "s", meta={"kind": HIDDEN, "stretches": self.stretch_summary()}
        )
        m.add(sum(s.duration_s for s in hidden), frames=sum(s.frames for s in hidden))
        return m

    def stretch_summary(self) -> dict[str, dict]:
        from harness.vision.stretches import summary

        return summary(self.stretches)

    def measurements(self) -> list[Measurement]:
        """share_latency_ms, share_fps, share_ssim, share_psnr_db, share_freeze_ms,
        share_ssimulacra2 (per second) and share_text_cer (when read; else its absence and the
        reason are in share_ssimulacra2's meta `text_cer`); share_hidden_s when a secure
        window hid frames (alone when it hid them all)."""
        from harness.session.share_quality import SSIMULACRA2_EVERY_S
        from harness.vision.legibility import OCR_INTERVAL_S, to_measurement
        from harness.vision.ssimulacra2 import per_second

        hidden = self.hidden_measurement()
        if self.hidden:
            return [hidden] if hidden else []
        fps = Measurement("share_fps", "fps")
        fps.add(self.latency.fps, frames=self.latency.frames)
        freeze = Measurement(
            "share_freeze_ms",
            "ms",
            meta={"freezes": len(self.fidelity.freezes), "stretches": self.stretch_summary()},
        )
        freeze.add(max((f.duration_s for f in self.fidelity.freezes), default=0.0) * 1000.0)
        out = [self.latency.measurement, fps, *self.fidelity.to_measurements(), freeze]
        if self.perceptual:
            m = per_second(self.perceptual)
            matched = len(self.fidelity.matched) + sum(
                1 for s in (self.text.ssims if self.text else []) if s is not None
            )
            m.meta.update(
                sampled_every_s=SSIMULACRA2_EVERY_S,
                scored=len(self.perceptual),
                matched=matched,
                cpu_s=round(self.perceptual_cpu_s, 3),
                text_cer=self.cer_absent or "measured",
                stretches=self.stretch_summary(),
            )
            out.append(m)
        if self.legibility:
            cer = to_measurement(self.legibility, every_s=OCR_INTERVAL_S)
            cer.meta.update(
                screen=getattr(self.text.truth, "screen", ""),
                cpu_s=round(self.legibility_cpu_s, 3),
                lines_recognised=self.legibility_lines[0],
                lines_cached=self.legibility_lines[1],
            )
            out.append(cer)
        if hidden is not None:
            out.append(hidden)
        return out


def share_run(
    device,
    ui,
    bot,
    window_s: float,
    *,
    at_least: int = 2,
    max_wait_s: float = 30.0,
    side: str = "right",
    text=None,
    text_window_s: float | None = None,
) -> ShareRun:
    """Open the Timecode app, take the screen as the reference, wait (up to max_wait_s) until the
    share shows it, and score the share the agent receives over `window_s` (longer, up to
    max_wait_s more, until `at_least` frames arrived). Fidelity is scored away from the session
    pane (`side`: where it floats). SSIMULACRA2 scores one matched frame per
    share_quality.SSIMULACRA2_EVERY_S; `dumpsys window` is polled for secure windows
    (stretches).

    With `text` (the harness.vision.legibility.TextTruth of the Text app's screen, e.g. from
    share_quality.twin_text_truth) and the OCR installed, the Text app is shown next for
    `text_window_s` (default share_quality.TEXT_WINDOW_S): SSIM and SSIMULACRA2 of its share, and share_text_cer of the lowest-SSIM
    frame per legibility.OCR_INTERVAL_S (twelve reads). Otherwise `cer_absent` says why there is no CER.

    Raises:
        MeasurementError: fewer than `at_least` share frames arrived, or none could be read.
    """
    import time

    from harness.session import share_quality as sq
    from harness.session.privacy import SHARE_LAG_S, SecureWatch
    from harness.vision.legibility import ocr_unavailable
    from harness.vision.stretches import HIDDEN, classify, stretches

    ui.tap_on(text="Timecode")
    ui.wait_for(resource_id=f"{TIMECODE_APP}:id/title")
    time.sleep(SETTLE_S)
    screen = device.screenshot()
    h, w = screen.shape[:2]
    layout = timecode_layout(w, h)
    watch = SecureWatch(device)
    secure = watch.poll()  # a secure app's share is black: no code will show
    # on a slow link the share shows the previous screen for seconds: start once it shows the app
    deadline = time.monotonic() + (SHARE_LAG_S if secure else max_wait_s)
    while time.monotonic() < deadline:
        newest = bot.session.share[-1] if bot.session.share else None
        if not secure and newest is not None and decode_fast(newest.image, layout).ok:
            break
        time.sleep(0.1)
    t0 = time.monotonic()
    watch.watch(window_s)
    deadline = time.monotonic() + max_wait_s
    received = sq.frames_since(bot, t0)
    while len(received) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        received = sq.frames_since(bot, t0)
    t_end = time.monotonic()
    if len(received) < at_least:
        raise MeasurementError(
            f"share: {len(received)} frame(s) reached the agent in {time.monotonic() - t0:.0f} s "
            f"(needed {at_least})"
        )
    # frames a secure window hid are the app's choice: neither fidelity nor freezes
    kinds = classify(
        [f.image for f in received],
        [f.t_arrival for f in received],
        hidden=watch.closed(SHARE_LAG_S),
    )
    frames = [f for f, k in zip(received, kinds, strict=True) if k != HIDDEN]
    if len(frames) < at_least:
        run = ShareRun(None, None, frames, [], side, window_frames=received, kinds=kinds)
        run.secure_intervals = watch.closed(SHARE_LAG_S)
        run.stretches = stretches(kinds, [f.t_arrival for f in received])
        run.cer_absent = f"the share was {HIDDEN} (FLAG_SECURE)"
        return run
    reads = share_reads(frames, (w, h))
    latency = share_latency(frames, (w, h), reads)
    share_size = (frames[0].image.shape[1], frames[0].image.shape[0])
    codes = sorted({r.frame_no for r in reads if r.ok})
    refs = share_reference(screen, share_size, range(codes[0], codes[-1] + 1))
    report = share_fidelity(refs, frames, side, reads)
    report.freezes.extend(trailing_freeze(report, t_end))
    run = ShareRun(latency, report, frames, refs, side)
    box = layout.scaled_to(*share_size).bbox
    if side == "left":
        box = (box[0] - (share_size[0] - int(share_size[0] * SHARE_KEEP)), *box[1:])
    c0 = time.process_time()
    run.perceptual = sq.score_perceptual(refs, frames, report, side, box)
    run.perceptual_cpu_s = time.process_time() - c0
    shown = list(received)
    run.cer_absent = sq.NO_TEXT_TRUTH if text is None else ocr_unavailable()
    if run.cer_absent is None:
        window = sq.TEXT_WINDOW_S if text_window_s is None else text_window_s
        run.text = sq.text_window(device, ui, bot, watch, run, text, window, max_wait_s)
        shown += run.text.all_frames
    times = [f.t_arrival for f in shown]
    run.secure_intervals = watch.closed(SHARE_LAG_S)
    run.kinds = classify([f.image for f in shown], times, hidden=run.secure_intervals)
    run.stretches = stretches(run.kinds, times)
    run.window_frames = shown
    return run


def trailing_freeze(report, t_end: float) -> list:
    """The freeze still running at the window's end (`t_end`, host monotonic): no new frame
    since the last one rendered (a dead link, the session's end), as long as the window lasted.
    Without it a share that stopped would score only the frames before it stopped."""
    from harness.vision.fidelity import freezes

    rendered: list[float] = []
    prev = None
    for f in report.frames:
        if f.ref_index is not None and f.ref_index != prev:
            rendered.append(f.t_s)
            prev = f.ref_index
    if len(rendered) < 2:
        return []
    return [f for f in freezes([*rendered, t_end]) if f.start_s == rendered[-1]]
