"""Alignment in space: a 2x3 affine fit of a received frame onto its reference (scaled, cropped
or letterboxed shares), refined by ECC, and the warp back onto the reference's grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.vision.fidelity.similarity import to_gray
from harness.vision.image import check_image

_ECC_SHORT_SIDE_PX = 360
ECC_GOOD = 0.98  # a refinement this correlated ends the search
AGREE_PX = 0.05  # two refinements from different starts this close at every corner: one fit


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


def fit_geometry(reference: np.ndarray, received: np.ndarray, *, refine: bool = True) -> Geometry:  # noqa: C901 -- a fallback chain (content box, features, ECC), each step optional
    """Find the 2x3 affine that maps a reference frame into a received frame.

    Tries, in order: the timecode's corners in both frames, ORB features with RANSAC, the
    content box (letterbox and pillarbox bars removed); refines each by ECC and keeps the best,
    stopping once one reaches ECC_GOOD or two from different starts agree within AGREE_PX (a
    further start would refine to the same fit: a wrong content box costs the most to refine).

    Raises:
        MeasurementError: bad frames, or no alignment found.
    """
    check_image(reference, "reference frame", min_size=(16, 16))
    check_image(received, "received frame", min_size=(16, 16))
    ref, rec = to_gray(reference), to_gray(received)
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
    feat = _feature_affine(ref, rec)
    if feat is not None:
        candidates.append(("features", feat))
    box = _content_box(rec)
    if box is not None:
        x, y, w, h = box
        sx, sy = w / ref.shape[1], h / ref.shape[0]
        candidates.append(
            ("content box", np.array([[sx, 0, x + 0.5 * sx - 0.5], [0, sy, y + 0.5 * sy - 0.5]]))
        )
    if not candidates:
        raise MeasurementError(
            f"fidelity: cannot align the received frame ({received.shape}) with the reference "
            f"({reference.shape}): no timecode, content box or features in common"
        )
    if not refine:
        return Geometry(candidates[0][1], candidates[0][0])
    best: Geometry | None = None
    tried: list[np.ndarray] = []
    fits: list[np.ndarray] = []  # each refinement's corners in the received frame
    for method, m0 in candidates:
        if any(np.array_equal(m0, t) for t in tried):
            continue  # the same start refines to the same fit (a content box of the whole frame)
        tried.append(m0)
        got = _ecc_refine(ref, rec, m0)
        if got is None:
            continue
        g = Geometry(got[0], f"{method}+ecc", got[1])
        if best is None or g.ecc > best.ecc:  # type: ignore[operator]
            best = g
        if g.ecc > ECC_GOOD:
            break
        corners = _corners(got[0], ref.shape)
        if any(np.abs(corners - c).max() <= AGREE_PX for c in fits):
            break
        fits.append(corners)
    return best or Geometry(candidates[0][1], candidates[0][0])


def _corners(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Where an affine puts a frame's four corner pixels (pixel centres)."""
    h, w = shape[:2]
    pts = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    return pts @ np.asarray(m, float).T


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
    return warp_image(received, geometry, size), valid_mask(received.shape[:2], geometry, size)


def warp_image(received: np.ndarray, geometry: Geometry, size: tuple[int, int]) -> np.ndarray:
    """The received frame resampled onto the reference grid (w, h) = `size`."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(
        received, geometry.matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE
    )


def valid_mask(
    received_hw: tuple[int, int], geometry: Geometry, size: tuple[int, int]
) -> np.ndarray:
    """Where on the reference grid (w, h) = `size` a received frame of (h, w) = `received_hw`
    lands (bool): the same for every frame of that size under one geometry."""
    inside = np.full(received_hw, 255, np.uint8)
    mask = cv2.warpAffine(
        inside,
        geometry.matrix,
        size,
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return mask > 0
