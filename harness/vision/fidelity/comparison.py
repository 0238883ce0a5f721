"""compare(): a received video against its reference, frame by frame: aligned in space (alignment)
and in time by their timecode, or by the best SSIM when they carry none; frozen frames repeat the
previous source frame, dropped frames are source frames never shown; the report and its
measurements."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement, stats_of
from harness.vision.fidelity.alignment import Geometry, fit_geometry, valid_mask, warp_image
from harness.vision.fidelity.freeze import Freeze, freezes
from harness.vision.fidelity.libvmaf import vmaf, vmaf_unavailable
from harness.vision.fidelity.similarity import (
    PSNR_CAP_DB,
    SSIM_SIGMA,
    SSIM_TRUNCATE,
    SsimReference,
    psnr_of_mse,
    ssim,
    to_gray,
)
from harness.vision.image import LazyFrames, check_image
from harness.vision.timecode import BLOCK_CELLS, TimecodeLayout, TimecodeRead, decode_fast
from harness.vision.workers import analysis_threads

ALIGN_MAX_SKIP_FRAMES = 30  # SSIM alignment looks this many source frames ahead
_THUMB_SHORT_SIDE_PX = 96


@dataclass(frozen=True)
class FrameFidelity:
    """Fidelity of one received frame.

    Attributes:
        index: position among the received frames.
        t_s: its time (presentation or capture).
        ref_index: the reference frame it shows (None when unmatched).
        frame_no: that frame's timecode, if it has one.
        ssim, psnr_db: against the reference frame (None when unmatched).
        ssim_exact: False when the SSIM is the sampled value (see _ScoreMask).
        frozen: it repeats the previous received frame's source frame.
        aligned_by: "timecode" or "ssim".
    """

    index: int
    t_s: float
    ref_index: int | None
    frame_no: int | None
    ssim: float | None
    psnr_db: float | None
    frozen: bool
    aligned_by: str
    ssim_exact: bool = True  # False: the sampled SSIM (within SSIM_SAMPLE_MARGIN of the value
    # over every window, on the same side of SSIM_FLOOR)


@dataclass
class FidelityReport:
    """Per-frame series and summary of a received video against its reference."""

    frames: list[FrameFidelity]
    geometry: Geometry
    dropped: list[int] = field(default_factory=list)
    freezes: list[Freeze] = field(default_factory=list)
    vmaf: float | None = None
    vmaf_skipped: str | None = None

    @property
    def matched(self) -> list[FrameFidelity]:
        return [f for f in self.frames if f.ssim is not None]

    @property
    def frozen_frames(self) -> int:
        return sum(f.frozen for f in self.frames)

    @property
    def total_freeze_s(self) -> float:
        return float(sum(f.duration_s for f in self.freezes))

    def summary(self) -> dict[str, Any]:
        m = self.matched
        out: dict[str, Any] = {
            "frames": len(self.frames),
            "matched": len(m),
            "frozen_frames": self.frozen_frames,
            "dropped_frames": len(self.dropped),
            "freeze_count": len(self.freezes),
            "total_freeze_s": round(self.total_freeze_s, 4),
            "geometry": self.geometry.to_dict(),
            "vmaf": self.vmaf,
            "vmaf_skipped": self.vmaf_skipped,
        }
        if m:
            s = stats_of([f.ssim for f in m])
            p = stats_of([f.psnr_db for f in m])
            out["ssim"] = {"mean": s.mean, "p50": s.p50, "min": s.min}
            out["psnr_db"] = {"mean": p.mean, "p50": p.p50, "min": p.min}
        return out

    def to_measurements(self) -> list[Measurement]:
        """share_ssim (unitless) and share_psnr_db, one sample per matched frame (share_ssim's
        meta: how many are sampled values, and their tolerance)."""
        sampled = sum(1 for f in self.matched if not f.ssim_exact)
        ms = Measurement(
            "share_ssim",
            "",
            meta={
                "dropped": len(self.dropped),
                "freezes": len(self.freezes),
                # frames whose SSIM is the sampled value, within this of the exact one
                "ssim_sampled": sampled,
                "ssim_sample_tolerance": SSIM_SAMPLE_MARGIN,
            },
        )
        mp = Measurement("share_psnr_db", "dB")
        for f in self.matched:
            ms.add(f.ssim, t=f.t_s, frame=f.frame_no, ref_index=f.ref_index)
            mp.add(f.psnr_db, t=f.t_s, frame=f.frame_no, ref_index=f.ref_index)
        return [ms, mp]


def _gray_frames(frames: Sequence[np.ndarray], checked: bool) -> LazyFrames:
    """The luma of each frame of a sequence, converted when first asked for (a timecode-aligned
    comparison scores only the reference frames that were shown, often half of them); as few
    kept as the frames themselves keep (LazyFrames(keep=)). Unless `checked`, each frame is
    checked when made, and against frame 0's size."""
    shape: list[tuple[int, ...]] = []

    def make(i: int) -> np.ndarray:
        f = frames[i]
        if not checked:  # frames made on demand: checked when made
            check_image(f, f"reference frame {i}", min_size=(16, 16))
            if shape and f.shape[:2] != shape[0]:
                raise MeasurementError(
                    f"fidelity: reference frame {i} is {f.shape[1]}x{f.shape[0]}, frame 0 is"
                    f" {shape[0][1]}x{shape[0][0]}"
                )
        g = to_gray(f)
        if not shape:
            shape.append(g.shape)
        return g

    return LazyFrames(len(frames), make, keep=getattr(frames, "keep", None))


def _thumb(gray: np.ndarray) -> np.ndarray:
    s = _THUMB_SHORT_SIDE_PX / min(gray.shape[:2])
    if s >= 1:
        return gray
    return cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


SSIM_FLOOR = 0.95  # device_profiles/budgets.yaml: share_ssim p50 >= 0.95 (the only SSIM limit)
SSIM_SAMPLE_STEP = 2  # a frame's SSIM first from every 2nd window of every 2nd row
# The sampled SSIM is within this of the full one on the corpus (tests/vision/test_ssim_sampled.py
# measures the largest gap and holds it under half of this); a frame whose sampled value is
# nearer SSIM_FLOOR than this is scored again over every window, so every frame's verdict
# against the floor is the full one, and a reported sampled value is within this of it.
SSIM_SAMPLE_MARGIN = 0.005


class _ScoreMask:
    """The valid pixels of a comparison and, derived once, the SSIM windows wholly inside them
    (the mask eroded by the window): reused for every frame of one size under one geometry.

    SSIM is first taken over a sample of the windows (SSIM_SAMPLE_STEP) and again over every
    window when the sampled value is within SSIM_SAMPLE_MARGIN of SSIM_FLOOR (`exact`: always
    over every window); PSNR is always over every valid pixel. The reference's half of SSIM
    (similarity.SsimReference) is kept from frame to frame: a reference that differs from the
    kept one on a pixel a scored window reads replaces it (`rebased` counts them), so a share of
    a static screen, whose references differ only in the code the mask leaves out, blurs its
    reference once."""

    def __init__(self, mask: np.ndarray, exact: bool = False) -> None:
        radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
        self.all = bool(mask.all())
        self.mask = mask
        self.mask_u8 = None if self.all else mask.astype(np.uint8)
        self.inner = None
        self.n = int(np.count_nonzero(mask))
        self.exact = exact
        if not self.all:
            kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
            self.inner = (
                cv2.erode(self.mask_u8, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
            )
        self.reference: SsimReference | None = None
        self.rebased = 0  # references that replaced the kept one (the first one included)

    def _reference(self, ref: np.ndarray) -> SsimReference:
        if self.reference is None:
            self.reference = SsimReference(ref, self.inner)
            self.rebased += 1
        elif not self.reference.covers(ref):
            self.reference.rebase(ref)
            self.rebased += 1
        return self.reference

    def scores(self, ref: np.ndarray, rec: np.ndarray) -> tuple[float, float, bool]:
        """SSIM and capped PSNR of two same-shape gray frames over this mask, and whether the
        SSIM is over every window (False: the sampled value, SSIM_SAMPLE_MARGIN from it)."""
        if self.all:
            mse = cv2.norm(ref, rec, cv2.NORM_L2SQR) / ref.size
        else:
            mse = cv2.norm(ref, rec, cv2.NORM_L2SQR, self.mask_u8) / max(self.n, 1)
        psnr_db = psnr_of_mse(mse, 255.0, PSNR_CAP_DB)
        cached = self._reference(ref)
        if not self.exact:
            total, count = cached.ssim_sum(rec, SSIM_SAMPLE_STEP)
            if count and abs(total / count - SSIM_FLOOR) > SSIM_SAMPLE_MARGIN:
                return total / count, psnr_db, False
        total, count = cached.ssim_sum(rec)
        if count == 0:
            raise MeasurementError(
                "fidelity: the aligned received frame has no valid overlap with the reference"
            )
        return total / count, psnr_db, True


def compare(
    reference: Sequence[np.ndarray],
    received: Iterable[np.ndarray],
    *,
    received_times_s: Sequence[float] | None = None,
    fps: float = 30.0,
    geometry: Geometry | None = None,
    align: str = "auto",
    exclude_code: bool = True,
    exact_ssim: bool = False,
    reference_frame_nos: Sequence[int] | None = None,
    received_reads: Sequence[TimecodeRead | None] | None = None,
) -> FidelityReport:
    """SSIM and PSNR of received frames against the reference frames they show.

    Args:
        reference: the sent frames, in order (uint8, gray or BGR; compared on luma).
        received: the received frames, in order (any size: aligned by an affine fit).
        received_times_s: presentation/capture time of each received frame; default i / fps.
        fps: frame rate used when times are not given.
        geometry: a known alignment (else fit on the first received frame that shows content).
        align: "timecode", "ssim" (best SSIM among the next ALIGN_MAX_SKIP_FRAMES source
            frames) or "auto" (the timecode when readable, else the best SSIM).
        exclude_code: leave the timecode's block out of the scores.
        exact_ssim: every SSIM over every window (default: over a sample of the windows
            unless that is within SSIM_SAMPLE_MARGIN of SSIM_FLOOR; FrameFidelity.ssim_exact).
        reference_frame_nos: the code stamped in each reference frame, when the caller stamped
            them (then they are not read, and a lazy `reference` such as
            harness.vision.image.LazyFrames is made only where shown; a list or tuple is
            checked whole first).
        received_reads: the code of each received frame when the caller already read it
            (harness.session.media.share_reads): an OK read whose frame is in the reference
            is used as it is; any other frame is read here as without it (on the aligned
            frame, then the robust path).

    Raises:
        MeasurementError: no reference or received frames, bad frames, no alignment, or
            received_reads not one per received frame.
    """
    with analysis_threads():  # small frames: OpenCV's pool costs more CPU than it saves
        return _compare(
            reference,
            received,
            received_times_s,
            fps,
            geometry,
            align,
            exclude_code,
            exact_ssim,
            reference_frame_nos,
            received_reads,
        )


def _compare(  # noqa: C901, PLR0913 -- compare()'s body, with OpenCV's threads set
    reference: Sequence[np.ndarray],
    received: Iterable[np.ndarray],
    received_times_s: Sequence[float] | None,
    fps: float,
    geometry: Geometry | None,
    align: str,
    exclude_code: bool,
    exact_ssim: bool,
    reference_frame_nos: Sequence[int] | None,
    received_reads: Sequence[TimecodeRead | None] | None,
) -> FidelityReport:
    if align not in ("auto", "timecode", "ssim"):
        raise MeasurementError(f"fidelity: align must be auto, timecode or ssim, got {align!r}")
    if len(reference) == 0:
        raise MeasurementError("fidelity: no reference frames")
    if received_reads is not None:
        received = list(received)
        if len(received_reads) != len(received):
            raise MeasurementError(
                f"fidelity: {len(received_reads)} received reads for {len(received)} received"
                " frames"
            )
    eager = isinstance(reference, (list, tuple))
    if reference_frame_nos is not None and len(reference_frame_nos) != len(reference):
        raise MeasurementError(
            f"fidelity: {len(reference_frame_nos)} reference frame numbers for"
            f" {len(reference)} reference frames"
        )
    if eager:
        for i, f in enumerate(reference):
            check_image(f, f"reference frame {i}", min_size=(16, 16))
    refs = _gray_frames(reference, checked=eager)
    rh, rw = refs[0].shape
    for i, f in enumerate(reference if eager else ()):
        if f.shape[:2] != (rh, rw):
            raise MeasurementError(
                f"fidelity: reference frame {i} is {f.shape[1]}x{f.shape[0]}, frame 0 is {rw}x{rh}"
            )
    # the reference's timecode: where it is and which frame is which
    layout: TimecodeLayout | None = None
    ref_by_no: dict[int, int] = {}
    if align in ("auto", "timecode"):
        from harness.vision.locator import read_all

        first = [r for r in read_all(refs[0]) if r.ok]
        if first:
            layout = _layout_from_corners(first[0].corners, rw, rh)
            if reference_frame_nos is not None:
                for i, no in enumerate(reference_frame_nos):
                    ref_by_no.setdefault(int(no), i)
            for i, f in enumerate(reference if reference_frame_nos is None else ()):
                r = decode_fast(f, layout)  # read on the frame as given: no conversion
                if r.ok:
                    ref_by_no.setdefault(r.frame_no, i)
        if align == "timecode" and not ref_by_no:
            raise MeasurementError(
                "fidelity: align='timecode' but the reference frames carry no readable timecode"
            )
    use_code = bool(ref_by_no)
    code_mask = np.ones((rh, rw), bool)
    if exclude_code and layout is not None:
        x, y, w, h = layout.bbox
        code_mask[max(0, y) : y + h, max(0, x) : x + w] = False
    thumbs: list[np.ndarray] = []
    score_masks: dict[tuple[int, ...], _ScoreMask] = {}
    frames: list[FrameFidelity] = []
    last_ref: int | None = None
    for n, img in enumerate(received):
        gray = to_gray(check_image(img, f"received frame {n}", min_size=(16, 16)))
        t = float(received_times_s[n]) if received_times_s is not None else n / fps
        if geometry is None:
            if np.ptp(gray) < 12:
                frames.append(FrameFidelity(n, t, None, None, None, None, False, "none"))
                continue
            geometry = fit_geometry(
                refs[last_ref or 0] if not use_code else _ref_guess(refs, gray, ref_by_no), gray
            )
        warped = warp_image(gray, geometry, (rw, rh))
        if gray.shape not in score_masks:  # one geometry: the same valid pixels per frame size
            score_masks[gray.shape] = _ScoreMask(
                valid_mask(gray.shape, geometry, (rw, rh)) & code_mask, exact=exact_ssim
            )
        ref_index, frame_no, how = None, None, "none"
        if use_code:
            r = received_reads[n] if received_reads is not None else None
            if r is None or not r.ok or r.frame_no not in ref_by_no:
                r = decode_fast(warped, layout)
            if not r.ok:
                from harness.vision.locator import decode_robust

                r = decode_robust(gray)
            if r.ok and r.frame_no in ref_by_no:
                ref_index, frame_no, how = ref_by_no[r.frame_no], r.frame_no, "timecode"
        if ref_index is None and align != "timecode":  # no code (or it is cropped away)
            if not thumbs:
                thumbs = [_thumb(r) for r in refs]
            ref_index = _best_ssim_match(thumbs, _thumb(warped), last_ref)
            how = "ssim"
        if ref_index is None:
            frames.append(FrameFidelity(n, t, None, None, None, None, False, how))
            continue
        s, p, full = score_masks[gray.shape].scores(refs[ref_index], warped)
        frozen = ref_index == last_ref
        frames.append(FrameFidelity(n, t, ref_index, frame_no, s, p, frozen, how, full))
        last_ref = ref_index
    if not frames:
        raise MeasurementError("fidelity: no received frames")
    if geometry is None:
        raise MeasurementError("fidelity: every received frame is blank; nothing to compare")
    shown = sorted({f.ref_index for f in frames if f.ref_index is not None})
    dropped = sorted(set(range(shown[0], shown[-1] + 1)) - set(shown)) if shown else []
    rendered: list[float] = []
    prev: int | None = None
    for f in frames:
        if f.ref_index is not None and f.ref_index != prev:
            rendered.append(f.t_s)
            prev = f.ref_index
    return FidelityReport(frames, geometry, dropped, freezes(rendered))


def _layout_from_corners(corners, width: int, height: int) -> TimecodeLayout:
    c = np.asarray(corners, dtype=float)
    cell_w = (c[1, 0] - c[0, 0] + c[2, 0] - c[3, 0]) / 2 / (BLOCK_CELLS - 2)
    cell_h = (c[3, 1] - c[0, 1] + c[2, 1] - c[1, 1]) / 2 / (BLOCK_CELLS - 2)
    x = c[:, 0].min() + 0.5 - cell_w
    y = c[:, 1].min() + 0.5 - cell_h
    return TimecodeLayout(width, height, float(x), float(y), float(cell_w), float(cell_h))


def _ref_guess(refs: LazyFrames, gray: np.ndarray, ref_by_no: dict[int, int]) -> np.ndarray:
    from harness.vision.locator import decode_robust

    r = decode_robust(gray)
    if r.ok and r.frame_no in ref_by_no:
        return refs[ref_by_no[r.frame_no]]
    return refs[0]


def _best_ssim_match(thumbs: list[np.ndarray], thumb: np.ndarray, last: int | None) -> int:
    lo = 0 if last is None else max(0, last)
    hi = len(thumbs) if last is None else min(len(thumbs), last + ALIGN_MAX_SKIP_FRAMES + 1)
    scores = [float(ssim(thumbs[i], thumb)) for i in range(lo, hi)]
    return lo + int(np.argmax(scores))


def compare_files(
    reference: str | os.PathLike,
    received: str | os.PathLike,
    *,
    align: str = "auto",
    with_vmaf: bool = True,
) -> FidelityReport:
    """compare() on two video files, with VMAF when ffmpeg with libvmaf is available.

    Raises:
        MeasurementError: unreadable files (named), no frames, no alignment.
    """
    from harness.vision.video import read_frames

    refs = [f.image for f in read_frames(reference, gray=True)]
    rec_frames = list(read_frames(received, gray=True))
    report = compare(
        refs,
        [f.image for f in rec_frames],
        received_times_s=[f.t_s for f in rec_frames],
        align=align,
    )
    if with_vmaf:
        reason = vmaf_unavailable()
        if reason:
            report.vmaf_skipped = reason
        else:
            report.vmaf = vmaf(reference, received)
    else:
        report.vmaf_skipped = "not requested"
    return report


def report_dict(report: FidelityReport) -> dict[str, Any]:
    """A JSON-ready dict: summary plus the per-frame series."""
    return {
        "summary": report.summary(),
        "frames": [asdict(f) for f in report.frames],
        "dropped": report.dropped,
        "freezes": [asdict(f) for f in report.freezes],
    }
