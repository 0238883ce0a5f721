"""Perceptual quality and legibility of the share (the share run's parts beyond SSIM).

SSIMULACRA2 (harness.vision.ssimulacra2) of sampled matched frames; the Text app's share read
against its known text (harness.vision.legibility, with the ocr extra), the words away from
the session pane only; frames a secure window hid left out of both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.errors import MeasurementError
from harness.session.media import SETTLE_S, SHARE_KEEP, crop_share
from harness.session.privacy import SHARE_LAG_S

# SSIMULACRA2 costs ~0.08 s of one core per share frame (640x400 scored at 416x400, the part
# away from the pane): one matched frame per second is ~8 % of a core, inside the session's
# quarter-core goal beside SSIM on every frame. Its effect: a damaged stretch under 1 s can fall
# between two scored frames (SSIM, on every frame, still sees it).
SSIMULACRA2_EVERY_S = 1.0
TEXT_APP = "com.mayday.hil.text"
TEXT_WINDOW_S = 5.0  # twelve OCR reads (the lowest-SSIM frame of each legibility.OCR_INTERVAL_S)
HOME_KEYCODE = 3
NO_TEXT_TRUTH = "the shown screen has no text truth (the twin's Text app has: share_run(text=...))"


@dataclass
class TextWindow:
    """The Text app's share: frames, the reference (the screen at share size), SSIM per frame."""

    frames: list  # those a secure window did not hide
    reference: np.ndarray
    truth: object  # harness.vision.legibility.TextTruth, clipped to the part away from the pane
    ssims: list[float | None]
    all_frames: list = field(default_factory=list)  # every frame of the window


def thumb_gray(img: np.ndarray, side: str) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(crop_share(img, SHARE_KEEP, side), cv2.COLOR_BGR2GRAY)
    return cv2.resize(g, (96, 96), interpolation=cv2.INTER_AREA).astype(np.float32)


def wait_share_shows(bot, reference, previous, side: str, max_wait_s: float) -> bool:
    """Until the newest share frame looks more like `reference` than like `previous` (both at
    share size), at most max_wait_s."""
    import time

    ref, prev = thumb_gray(reference, side), thumb_gray(previous, side)
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        newest = bot.session.share[-1] if bot.session.share else None
        if newest is not None and newest.image.shape == reference.shape:
            t = thumb_gray(newest.image, side)
            if np.abs(t - ref).mean() < np.abs(t - prev).mean():
                return True
        time.sleep(0.1)
    return False


def frames_since(bot, t0: float) -> list:
    return [f for f in list(bot.session.share) if f.t_arrival >= t0]


def score_perceptual(refs, frames, report, side: str, layout_box) -> list:
    """SSIMULACRA2 of one matched frame per SSIMULACRA2_EVERY_S (colour, warped onto the
    reference grid; the timecode's block copied from the reference: it is left out, as in SSIM)."""
    from harness.vision.fidelity.alignment import warp_to_reference
    from harness.vision.ssimulacra2 import ScoredFrame, ssimulacra2

    out: list = []
    next_t = -np.inf
    for f in report.matched:
        if f.t_s < next_t:
            continue
        ref = crop_share(refs[f.ref_index], SHARE_KEEP, side)
        rec = crop_share(frames[f.index].image, SHARE_KEEP, side)
        warped, _valid = warp_to_reference(rec, report.geometry, (ref.shape[1], ref.shape[0]))
        if layout_box is not None:
            x, y, w, h = layout_box
            warped[y : y + h, x : x + w] = ref[y : y + h, x : x + w]
        out.append(ScoredFrame(f.t_s, ssimulacra2(ref, warped), f.ssim, f.index))
        next_t = f.t_s + SSIMULACRA2_EVERY_S
    return out


def twin_text_truth(hil_device, name: str = "settings"):
    """The Text app's screen `name` chosen on a twin (control op `text_screen`) and its truth
    (harness.vision.legibility.TextTruth); None for a device that is not a twin.

    Raises:
        harness.farm.control.TwinControlError: the twin refused or did not answer.
    """
    if not getattr(hil_device, "twin_control", None):
        return None
    from harness.farm.control import TwinControl
    from harness.vision.legibility import TextTruth

    reply = TwinControl(hil_device.twin_control, hil_device.serial).call("text_screen", name=name)
    return TextTruth.from_record(reply["truth"])


def text_window(device, ui, bot, watch, run, truth, window_s, max_wait_s):
    """The Text app's share for `window_s`: SSIM per frame (geometry of the Timecode window),
    SSIMULACRA2 sampled, CER of the lowest-SSIM frame per OCR_INTERVAL_S (into `run`)."""
    import time

    import cv2

    from harness.vision import legibility as lg
    from harness.vision.fidelity import compare
    from harness.vision.stretches import HIDDEN, classify

    side = run.side
    share_size = (run.frames[0].image.shape[1], run.frames[0].image.shape[0])
    device.shell(f"input keyevent {HOME_KEYCODE}", timeout_s=5)
    ui.tap_on(text="Text")
    ui.wait_for(resource_id=f"{TEXT_APP}:id/title")
    time.sleep(SETTLE_S)
    screen = device.screenshot()
    h, w = screen.shape[:2]
    ref = cv2.resize(screen, share_size, interpolation=cv2.INTER_AREA)
    if not wait_share_shows(bot, ref, run.references[-1], side, max_wait_s):
        raise MeasurementError(f"share: the Text app did not reach the agent in {max_wait_s:g} s")
    # the codec's first frames after a screen change are soft (its quality ramps up): the
    # legibility is of the settled share, what the agent reads once the screen has arrived
    watch.watch(SETTLE_S)
    t1 = time.monotonic()
    watch.watch(window_s)
    frames = frames_since(bot, t1)
    if not frames:
        raise MeasurementError(f"share: no frame of the Text app arrived in {window_s:g} s")
    # frames a secure window hid are what the app asked for: no fidelity, no CER
    kinds = classify(
        [f.image for f in frames],
        [f.t_arrival for f in frames],
        hidden=watch.closed(SHARE_LAG_S),
    )
    shown = [f for f, k in zip(frames, kinds, strict=True) if k != HIDDEN]
    keep = int(w * SHARE_KEEP)
    truth = truth.scaled(w, h) if truth.size != (w, h) else truth
    truth = truth.clipped(0, keep) if side == "right" else truth.clipped(w - keep, w)
    text = TextWindow([], ref, truth, [], list(frames))
    if not shown:
        run.cer_absent = "the Text app was hidden by the app (FLAG_SECURE) all the window"
        return text
    frames = shown
    report = compare(
        [crop_share(ref, SHARE_KEEP, side)],
        [crop_share(f.image, SHARE_KEEP, side) for f in frames],
        received_times_s=[f.t_arrival for f in frames],
        geometry=run.fidelity.geometry,
        align="ssim",
        exclude_code=False,
    )
    ssims = [f.ssim for f in report.frames]
    text.ssims = ssims
    text.frames = frames
    c0 = time.process_time()
    run.perceptual += score_perceptual([ref], frames, report, side, None)
    run.perceptual_cpu_s += time.process_time() - c0
    engine = lg.OcrEngine.shared()
    lines0 = (engine.lines_read, engine.cache_hits)
    c0 = time.process_time()
    run.legibility = lg.measure(
        [f.image for f in frames], [f.t_arrival for f in frames], truth, ssims=ssims, engine=engine
    )
    run.legibility_cpu_s = time.process_time() - c0
    run.legibility_lines = (engine.lines_read - lines0[0], engine.cache_hits - lines0[1])
    return text
