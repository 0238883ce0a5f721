"""Fidelity: how faithful is the received picture (SSIM, PSNR, frozen and dropped frames).

SSIM follows Wang et al. 2004 exactly as scikit-image's structural_similarity does with
gaussian_weights=True, sigma=1.5, use_sample_covariance=False: an 11-tap Gaussian window,
K1 = 0.01, K2 = 0.03, population covariances, and the mean over the image without a 5-pixel
border. PSNR is 10 log10(R^2 / MSE) over every sample, as cv2.PSNR (capped at 48 dB in the
per-frame series, as WebRTC does, so identical frames do not dominate a mean).

Received frames are aligned in space by a 2x3 affine fit (scaled, cropped or letterboxed
shares) and in time by their timecode, or by the best SSIM when they carry none. Frozen frames
repeat the previous source frame; dropped frames are source frames never shown; a freeze is an
interval between rendered frames of at least max(3 x mean, mean + 150 ms) over the previous 30
intervals (the WebRTC stats definition, freezeCount).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement, stats_of
from harness.vision.image import check_image, check_same_shape
from harness.vision.timecode import BLOCK_CELLS, TimecodeLayout, decode_fast

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # window radius = int(3.5 * 1.5 + 0.5) = 5 -> 11 taps
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PSNR_CAP_DB = 48.0  # WebRTC's value for identical frames
FREEZE_MIN_EXTRA_S = 0.150  # WebRTC: a freeze is >= max(3 x mean, mean + 150 ms)
FREEZE_MEAN_FACTOR = 3.0
FREEZE_WINDOW_FRAMES = 30  # the mean is over the previous 30 rendered-frame intervals
ALIGN_MAX_SKIP_FRAMES = 30  # SSIM alignment looks this many source frames ahead
_THUMB_SHORT_SIDE_PX = 96
_ECC_SHORT_SIDE_PX = 360
VMAF_TIMEOUT_S = 600.0


# ---------------------------------------------------------------------------------------------
# SSIM and PSNR


def _gray(img: np.ndarray) -> np.ndarray:
    """Luma of a checked uint8 image (BT.601, as OpenCV computes it)."""
    if img.ndim == 2:
        return img
    if img.shape[2] == 1:
        return img[:, :, 0]
    return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY)


_SSIM_TILE_ROWS = 64  # rows per strip: the working set stays in cache


def _ssim_sum(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float,
    sigma: float,
    mask: np.ndarray | None = None,
    want_map: bool = False,
) -> tuple[float, int, np.ndarray | None]:
    """Sum and count of the SSIM index over the interior of two single-channel images.

    The interior excludes the window radius at every edge (as scikit-image's crop); `mask`
    narrows it further. Works in strips of rows for speed; float32 with values shifted to zero
    mean, which keeps the variance terms accurate.
    """
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    ksize = (2 * radius + 1, 2 * radius + 1)
    h, w = a.shape
    off = np.float32(data_range / 2)
    c1 = np.float32((SSIM_K1 * data_range) ** 2)
    c2 = np.float32((SSIM_K2 * data_range) ** 2)
    smap = np.zeros((h, w), np.float32) if want_map else None
    total, count = 0.0, 0
    cols = slice(radius, w - radius)
    for r0 in range(radius, h - radius, _SSIM_TILE_ROWS):
        r1 = min(h - radius, r0 + _SSIM_TILE_ROWS)
        lo, hi = r0 - radius, r1 + radius
        x = a[lo:hi].astype(np.float32)
        x -= off
        y = b[lo:hi].astype(np.float32)
        y -= off

        def blur(img: np.ndarray, _r0: int = r0, _lo: int = lo, _r1: int = r1) -> np.ndarray:
            out = cv2.GaussianBlur(img, ksize, sigma, borderType=cv2.BORDER_REFLECT)
            return out[_r0 - _lo : _r1 - _lo, cols]

        mx, my = blur(x), blur(y)
        s2 = blur(x * x + y * y)  # only the sum of the variances is needed
        sxy = blur(x * y)
        mxmy = mx * my
        d2 = mx - my
        d2 *= d2
        lum = mx + my  # 2 ux uy + C1 with ux = mx + off
        lum *= off
        lum += mxmy
        lum *= 2
        lum += np.float32(2 * off * off) + c1
        den_l = lum + d2  # ux^2 + uy^2 + C1
        cs = sxy - mxmy  # 2 cov + C2
        cs *= 2
        cs += c2
        den_cs = s2 - d2 - 2 * mxmy + c2  # var x + var y + C2
        lum *= cs
        den_l *= den_cs
        lum /= den_l
        if mask is not None:
            sel = mask[r0:r1, cols]
            total += float(lum[sel].sum(dtype=np.float64))
            count += int(np.count_nonzero(sel))
        else:
            total += float(lum.sum(dtype=np.float64))
            count += lum.size
        if smap is not None:
            smap[r0:r1, cols] = lum
    return total, count, smap


def _ssim_map(x: np.ndarray, y: np.ndarray, data_range: float, sigma: float) -> np.ndarray:
    """SSIM index map of two single-channel images (zero on the window-radius border)."""
    return _ssim_sum(x, y, data_range, sigma, want_map=True)[2]


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    data_range: float = 255.0,
    sigma: float = SSIM_SIGMA,
    channels: str = "luma",
    full: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Mean SSIM of two same-size 8-bit images (Wang et al. 2004 Gaussian window).

    Equal to skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255) for gray images, and with channel_axis=-1
    for colour images when channels="each".

    Args:
        a, b: uint8 images of the same shape.
        data_range: dynamic range of the values.
        sigma: Gaussian window sigma (11 taps at 1.5).
        channels: "luma" (colour converted to BT.601 luma) or "each" (mean over channels).
        full: also return the SSIM map (luma / first channel; zero on the border).

    Raises:
        MeasurementError: bad images, different shapes, or smaller than the 11 x 11 window.
    """
    check_image(a, "SSIM first image")
    check_image(b, "SSIM second image")
    check_same_shape(a, b, "SSIM first image", "SSIM second image")
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    if min(a.shape[:2]) < 2 * radius + 1:
        raise MeasurementError(
            f"SSIM: images of shape {a.shape} are smaller than the {2 * radius + 1}-px window"
        )
    if channels == "each" and a.ndim == 3:
        pairs = [(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]
    elif channels in ("luma", "each"):
        pairs = [(_gray(a), _gray(b))]
    else:
        raise MeasurementError(f"SSIM: channels must be 'luma' or 'each', got {channels!r}")
    values, first_map = [], None
    for i, (x, y) in enumerate(pairs):
        total, count, smap = _ssim_sum(x, y, data_range, sigma, want_map=full and i == 0)
        values.append(total / count)
        first_map = first_map if smap is None else smap
    value = float(np.mean(values))
    return (value, first_map) if full else value


def psnr(
    a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0, cap_db: float | None = None
) -> float:
    """PSNR in dB over every sample of two same-shape 8-bit images (as cv2.PSNR).

    Args:
        cap_db: value for identical images and upper limit (WebRTC: 48); None gives inf.

    Raises:
        MeasurementError: bad images or different shapes.
    """
    check_image(a, "PSNR first image")
    check_image(b, "PSNR second image")
    check_same_shape(a, b, "PSNR first image", "PSNR second image")
    mse = cv2.norm(a, b, cv2.NORM_L2SQR) / a.size
    return _psnr_of_mse(mse, data_range, cap_db)


def _psnr_of_mse(mse: float, data_range: float, cap_db: float | None) -> float:
    if mse <= 0:
        return float("inf") if cap_db is None else float(cap_db)
    value = 10.0 * np.log10(data_range * data_range / mse)
    return float(value if cap_db is None else min(value, cap_db))


# ---------------------------------------------------------------------------------------------
# Geometry


@dataclass(frozen=True)
class Geometry:
    """Where the reference picture lies in the received frame.

    Attributes:
        matrix: 2x3 affine, reference pixel -> received pixel (pixel-centre coordinates).
        method: how it was found ("identity", "timecode", "content box", "features"),
            with "+ecc" when refined by intensity alignment.
        ecc: correlation reached by the refinement (1 = perfect), if refined.
    """

    matrix: np.ndarray
    method: str
    ecc: float | None = None

    @property
    def scale(self) -> tuple[float, float]:
        m = self.matrix
        return float(np.hypot(m[0, 0], m[1, 0])), float(np.hypot(m[0, 1], m[1, 1]))

    def to_dict(self) -> dict[str, Any]:
        return {"matrix": np.round(self.matrix, 5).tolist(), "method": self.method, "ecc": self.ecc}


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    m, _ = cv2.estimateAffine2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    return m


def _content_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box of what is not a uniform letterbox/pillarbox bar."""
    rows = np.ptp(gray, axis=1) > 12
    cols = np.ptp(gray, axis=0) > 12
    if not rows.any() or not cols.any():
        return None
    y0, y1 = np.flatnonzero(rows)[[0, -1]]
    x0, x1 = np.flatnonzero(cols)[[0, -1]]
    return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def _ecc_refine(
    ref: np.ndarray, rec: np.ndarray, m0: np.ndarray
) -> tuple[np.ndarray, float] | None:
    s = min(1.0, _ECC_SHORT_SIDE_PX / min(ref.shape[:2]))
    t = min(1.0, _ECC_SHORT_SIDE_PX / min(rec.shape[:2]))
    ref_s = cv2.resize(ref, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else ref
    rec_s = cv2.resize(rec, None, fx=t, fy=t, interpolation=cv2.INTER_AREA) if t < 1 else rec
    # conjugate by the scalings: pixel-centre coordinates c' = (c + 0.5) * s - 0.5
    to_ref = np.array([[1 / s, 0, 0.5 / s - 0.5], [0, 1 / s, 0.5 / s - 0.5], [0, 0, 1]])
    to_rec = np.array([[t, 0, 0.5 * t - 0.5], [0, t, 0.5 * t - 0.5], [0, 0, 1]])
    m = (to_rec @ np.vstack([m0, [0, 0, 1]]) @ to_ref)[:2].astype(np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
    try:
        cc, m = cv2.findTransformECC(
            ref_s.astype(np.float32), rec_s.astype(np.float32), m, cv2.MOTION_AFFINE, crit, None, 3
        )
    except cv2.error:
        return None
    back = np.linalg.inv(to_rec) @ np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(to_ref)
    return back[:2], float(cc)


def fit_geometry(reference: np.ndarray, received: np.ndarray, *, refine: bool = True) -> Geometry:
    """Find the 2x3 affine that maps a reference frame into a received frame.

    Tries, in order: the timecode's corners in both frames, the content box (letterbox and
    pillarbox bars removed), ORB features with RANSAC; then refines by ECC.

    Raises:
        MeasurementError: bad frames, or no alignment found.
    """
    check_image(reference, "reference frame", min_size=(16, 16))
    check_image(received, "received frame", min_size=(16, 16))
    ref, rec = _gray(reference), _gray(received)
    candidates: list[tuple[str, np.ndarray]] = []
    if ref.shape == rec.shape:
        candidates.append(("identity", np.eye(2, 3)))
    from harness.vision.locator import read_all

    code_ref = [r for r in read_all(ref) if r.ok]
    code_rec = {r.frame_no: r for r in read_all(rec) if r.ok}
    for r in code_ref:
        if r.frame_no in code_rec:
            m = _affine_from_points(np.array(r.corners), np.array(code_rec[r.frame_no].corners))
            if m is not None:
                candidates.append(("timecode", m))
            break
    box = _content_box(rec)
    if box is not None:
        x, y, w, h = box
        sx, sy = w / ref.shape[1], h / ref.shape[0]
        candidates.append(
            ("content box", np.array([[sx, 0, x + 0.5 * sx - 0.5], [0, sy, y + 0.5 * sy - 0.5]]))
        )
    feat = _feature_affine(ref, rec)
    if feat is not None:
        candidates.append(("features", feat))
    if not candidates:
        raise MeasurementError(
            f"fidelity: cannot align the received frame ({received.shape}) with the reference "
            f"({reference.shape}): no timecode, content box or features in common"
        )
    if not refine:
        return Geometry(candidates[0][1], candidates[0][0])
    best: Geometry | None = None
    for method, m0 in candidates:
        got = _ecc_refine(ref, rec, m0)
        if got is None:
            continue
        g = Geometry(got[0], f"{method}+ecc", got[1])
        if best is None or g.ecc > best.ecc:  # type: ignore[operator]
            best = g
        if g.ecc > 0.98:
            break
    return best or Geometry(candidates[0][1], candidates[0][0])


def _feature_affine(ref: np.ndarray, rec: np.ndarray) -> np.ndarray | None:
    orb = cv2.ORB_create(1000)
    k1, d1 = orb.detectAndCompute(ref, None)
    k2, d2 = orb.detectAndCompute(rec, None)
    if d1 is None or d2 is None or len(k1) < 8 or len(k2) < 8:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d1, d2)
    if len(matches) < 8:
        return None
    src = np.float32([k1[m.queryIdx].pt for m in matches])
    dst = np.float32([k2[m.trainIdx].pt for m in matches])
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    if m is None or inliers is None or int(inliers.sum()) < 8:
        return None
    return m


def warp_to_reference(
    received: np.ndarray, geometry: Geometry, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The received frame resampled onto the reference grid, and the mask of valid pixels."""
    w, h = size
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(
        received, geometry.matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
    )
    inside = np.full(received.shape[:2], 255, np.uint8)
    mask = cv2.warpAffine(
        inside,
        geometry.matrix,
        (w, h),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return warped, mask > 0


# ---------------------------------------------------------------------------------------------
# Temporal analysis


@dataclass(frozen=True)
class Freeze:
    """A freeze: a gap between rendered frames of at least max(3 x mean, mean + 150 ms).

    Attributes:
        start_s: time of the last frame before the gap.
        duration_s: the gap.
        threshold_s: the limit it exceeded.
    """

    start_s: float
    duration_s: float
    threshold_s: float


def freezes(render_times_s: Sequence[float]) -> list[Freeze]:
    """Freezes among rendered (new) frames, by the WebRTC stats definition (freezeCount).

    The mean interval is over the previous FREEZE_WINDOW_FRAMES intervals (at least one).
    """
    t = np.asarray(render_times_s, dtype=float)
    out: list[Freeze] = []
    for j in range(1, len(t) - 1):
        d = t[j + 1] - t[j]
        prev = np.diff(t[max(0, j - FREEZE_WINDOW_FRAMES) : j + 1])
        mean = float(prev.mean())
        limit = max(FREEZE_MEAN_FACTOR * mean, mean + FREEZE_MIN_EXTRA_S)
        if d >= limit:
            out.append(Freeze(float(t[j]), float(d), limit))
    return out


@dataclass(frozen=True)
class FrameFidelity:
    """Fidelity of one received frame.

    Attributes:
        index: position among the received frames.
        t_s: its time (presentation or capture).
        ref_index: the reference frame it shows (None when unmatched).
        frame_no: that frame's timecode, if it has one.
        ssim, psnr_db: against the reference frame (None when unmatched).
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
        """share_ssim (unitless) and share_psnr_db, one sample per matched frame."""
        ms = Measurement(
            "share_ssim", "", meta={"dropped": len(self.dropped), "freezes": len(self.freezes)}
        )
        mp = Measurement("share_psnr_db", "dB")
        for f in self.matched:
            ms.add(f.ssim, t=f.t_s, frame=f.frame_no, ref_index=f.ref_index)
            mp.add(f.psnr_db, t=f.t_s, frame=f.frame_no, ref_index=f.ref_index)
        return [ms, mp]


def _thumb(gray: np.ndarray) -> np.ndarray:
    s = _THUMB_SHORT_SIDE_PX / min(gray.shape[:2])
    if s >= 1:
        return gray
    return cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def _masked_scores(ref: np.ndarray, rec: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """SSIM and capped PSNR over the valid pixels (SSIM windows wholly inside them)."""
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if mask.all():
        total, count, _ = _ssim_sum(ref, rec, 255.0, SSIM_SIGMA)
        mse = cv2.norm(ref, rec, cv2.NORM_L2SQR) / ref.size
    else:
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        inner = (
            cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            > 0
        )
        total, count, _ = _ssim_sum(ref, rec, 255.0, SSIM_SIGMA, mask=inner)
        n = int(np.count_nonzero(mask))
        mse = cv2.norm(ref, rec, cv2.NORM_L2SQR, mask.astype(np.uint8)) / max(n, 1)
    if count == 0:
        raise MeasurementError(
            "fidelity: the aligned received frame has no valid overlap with the reference"
        )
    return total / count, _psnr_of_mse(mse, 255.0, PSNR_CAP_DB)


def compare(
    reference: Sequence[np.ndarray],
    received: Iterable[np.ndarray],
    *,
    received_times_s: Sequence[float] | None = None,
    fps: float = 30.0,
    geometry: Geometry | None = None,
    align: str = "auto",
    exclude_code: bool = True,
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

    Raises:
        MeasurementError: no reference or received frames, bad frames, no alignment.
    """
    if align not in ("auto", "timecode", "ssim"):
        raise MeasurementError(f"fidelity: align must be auto, timecode or ssim, got {align!r}")
    if len(reference) == 0:
        raise MeasurementError("fidelity: no reference frames")
    refs = [
        _gray(check_image(f, f"reference frame {i}", min_size=(16, 16)))
        for i, f in enumerate(reference)
    ]
    rh, rw = refs[0].shape
    for i, f in enumerate(refs):
        if f.shape != (rh, rw):
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
            for i, f in enumerate(refs):
                r = decode_fast(f, layout)
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
    frames: list[FrameFidelity] = []
    last_ref: int | None = None
    for n, img in enumerate(received):
        gray = _gray(check_image(img, f"received frame {n}", min_size=(16, 16)))
        t = float(received_times_s[n]) if received_times_s is not None else n / fps
        if geometry is None:
            if np.ptp(gray) < 12:
                frames.append(FrameFidelity(n, t, None, None, None, None, False, "none"))
                continue
            geometry = fit_geometry(
                refs[last_ref or 0] if not use_code else _ref_guess(refs, gray, ref_by_no), gray
            )
        warped, valid = warp_to_reference(gray, geometry, (rw, rh))
        ref_index, frame_no, how = None, None, "none"
        if use_code:
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
        s, p = _masked_scores(refs[ref_index], warped, valid & code_mask)
        frozen = ref_index == last_ref
        frames.append(FrameFidelity(n, t, ref_index, frame_no, s, p, frozen, how))
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


def _ref_guess(refs: list[np.ndarray], gray: np.ndarray, ref_by_no: dict[int, int]) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------
# VMAF (optional, through ffmpeg's libvmaf)


def vmaf_unavailable() -> str | None:
    """None when ffmpeg with the libvmaf filter is on the PATH, else the reason it is not."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return "VMAF skipped: ffmpeg is not on the PATH"
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"VMAF skipped: cannot run {exe} ({e})"
    if "libvmaf" not in out.stdout:
        return f"VMAF skipped: {exe} has no libvmaf filter"
    return None


def vmaf(
    reference: str | os.PathLike, distorted: str | os.PathLike, *, timeout_s: float = VMAF_TIMEOUT_S
) -> float:
    """Mean VMAF (0-100) of a distorted video against its reference, via ffmpeg's libvmaf.

    The distorted video is scaled to the reference's size first (bicubic).

    Raises:
        MeasurementError: ffmpeg or libvmaf missing, ffmpeg failed or timed out, or no score.
    """
    from harness.vision.video import probe

    reason = vmaf_unavailable()
    if reason:
        raise MeasurementError(reason)
    info = probe(reference)
    probe(distorted)
    with tempfile.TemporaryDirectory(prefix="hil-vmaf-") as tmp:
        log = Path(tmp) / "vmaf.json"
        graph = (
            f"[0:v]scale={info.width}:{info.height}:flags=bicubic,setpts=PTS-STARTPTS[d];"
            f"[1:v]setpts=PTS-STARTPTS[r];[d][r]libvmaf=log_fmt=json:log_path={log}"
        )
        cmd = [
            shutil.which("ffmpeg") or "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(distorted),
            "-i",
            str(reference),
            "-lavfi",
            graph,
            "-f",
            "null",
            "-",
        ]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise MeasurementError(
                f"VMAF: ffmpeg timed out after {timeout_s:g} s on {distorted}"
            ) from e
        if run.returncode != 0 or not log.exists():
            tail = (run.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise MeasurementError(
                f"VMAF: ffmpeg failed on {distorted} (exit {run.returncode}): {tail[0]}"
            )
        try:
            data = json.loads(log.read_text())
            return float(data["pooled_metrics"]["vmaf"]["mean"])
        except (ValueError, KeyError, TypeError) as e:
            raise MeasurementError(
                f"VMAF: no score in ffmpeg's libvmaf log for {distorted} ({e})"
            ) from e


def report_dict(report: FidelityReport) -> dict[str, Any]:
    """A JSON-ready dict: summary plus the per-frame series."""
    return {
        "summary": report.summary(),
        "frames": [asdict(f) for f in report.frames],
        "dropped": report.dropped,
        "freezes": [asdict(f) for f in report.freezes],
    }
