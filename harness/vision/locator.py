"""Locator: the robust timecode path for a lab camera filming a display (OpenCV).

Finds every code in a frame by its dark border (adaptive threshold, outer contours, four-sided
convex polygons), refines the border's edges by line fits, maps the code's sample points
through the homography of the four corners, and reads them with the same decoder as the fast
path (harness.vision.timecode.read_samples), trying the four rotations. Perspective, blur,
noise, exposure gradients and moire are handled by the pre-blur, the adaptive threshold and the
per-code dark/light reference planes; a frame caught mid-refresh reads BLENDED or TORN.
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.vision.image import check_image, to_gray
from harness.vision.timecode import (
    BLOCK_CELLS,
    CANONICAL_POINTS,
    ReadStatus,
    TimecodeRead,
    read_samples,
    sample_points,
    status_rank,
)

DETECT_SHORT_SIDE_PX = 400  # search first on a copy shrunk 1/k to about this short side
MIN_CELL_PX = 4.0  # smallest cell the search looks for (border side >= 12 cells of it)
_PRE_BLUR_SIGMA_PX = 1.0  # against noise and moire, before thresholding and sampling
_THRESH_BLOCK_FRACTION = 1 / 14  # adaptive threshold window, as a fraction of the short side
_THRESH_OFFSET_LEVELS = 7  # a pixel is dark if below its local mean minus this
_POLY_EPS = 0.035  # polygon approximation tolerance, fraction of the perimeter
_MIN_SIDE_RATIO = 0.25  # shortest / longest side of a candidate quadrilateral
_CANON_CORNERS = np.array(
    [[1, 1], [BLOCK_CELLS - 1, 1], [BLOCK_CELLS - 1, BLOCK_CELLS - 1], [1, BLOCK_CELLS - 1]],
    dtype=np.float32,
)
_CANON_H = np.column_stack([CANONICAL_POINTS, np.ones(len(CANONICAL_POINTS))])


def _order_corners(pts: np.ndarray) -> np.ndarray:
    """Four points as TL, TR, BR, BL in image order (clockwise on screen, y down)."""
    c = pts.mean(axis=0)
    ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
    pts = pts[np.argsort(ang)]  # increasing angle = clockwise on screen
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0)


def _refine(contour: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Corners as intersections of lines fitted to the contour's four sides."""
    pts = contour.reshape(-1, 2).astype(np.float32)
    centroid = quad.mean(axis=0)
    lines = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        d = b - a
        length = float(np.hypot(d[0], d[1]))
        if length < 4:
            return quad
        d = d / length
        rx, ry = pts[:, 0] - a[0], pts[:, 1] - a[1]
        t = (rx * d[0] + ry * d[1]) / length
        dist = rx * d[1] - ry * d[0]
        sel = pts[(t > 0.12) & (t < 0.88) & (np.abs(dist) < max(2.0, 0.04 * length))]
        if len(sel) < 4:
            return quad
        vx, vy, x0, y0 = cv2.fitLine(sel, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        normal = np.array([-vy, vx], dtype=np.float64)
        mean = np.array([x0, y0], dtype=np.float64)
        if (centroid - mean) @ normal > 0:  # point the normal outwards
            normal = -normal
        # contour pixels are the outermost dark pixels: the edge lies half a pixel outside
        lines.append((normal, float(normal @ mean) + 0.5))
    out = np.empty((4, 2))
    for i in range(4):
        (n1, c1), (n2, c2) = lines[i - 1], lines[i]
        m = np.array([n1, n2])
        if abs(np.linalg.det(m)) < 1e-6:
            return quad
        out[i] = np.linalg.solve(m, [c1, c2])
    if np.max(np.abs(out - quad)) > 0.1 * np.ptp(quad[:, 0]) + 3:
        return quad
    return out


def find_quads(gray: np.ndarray, min_cell_px: float = MIN_CELL_PX) -> list[np.ndarray]:
    """Candidate border outlines in a gray image: (4, 2) corners TL, TR, BR, BL in pixels."""
    h, w = gray.shape
    block = int(min(h, w) * _THRESH_BLOCK_FRACTION) | 1
    binary = cv2.adaptiveThreshold(
        gray,
        255,
        cv2.ADAPTIVE_THRESH_MEAN_C,
        cv2.THRESH_BINARY_INV,
        max(block, 15),
        _THRESH_OFFSET_LEVELS,
    )
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    min_side = (BLOCK_CELLS - 2) * min_cell_px
    lengths = np.array(list(map(len, contours)), dtype=np.int64)
    keep = np.flatnonzero((hierarchy[0][:, 3] == -1) & (lengths >= 3 * min_side))
    quads = []
    for i in keep:
        contour = contours[i]
        _, _, bw, bh = cv2.boundingRect(contour)
        if min(bw, bh) < 0.6 * min_side:
            continue
        peri = cv2.arcLength(contour, True)
        approx = cv2.approxPolyDP(contour, _POLY_EPS * peri, True)
        if len(approx) != 4 or not cv2.isContourConvex(approx):
            continue
        quad = _order_corners(approx.reshape(4, 2).astype(np.float64))
        sides = np.hypot(*(np.roll(quad, -1, axis=0) - quad).T)
        if sides.min() < min_side or sides.min() < _MIN_SIDE_RATIO * sides.max():
            continue
        quads.append(_refine(contour, quad))
    return quads


def _read_quad(img: np.ndarray, quad: np.ndarray) -> TimecodeRead:
    hom = cv2.getPerspectiveTransform(_CANON_CORNERS, quad.astype(np.float32))
    p = _CANON_H @ hom.T
    xs, ys = p[:, 0] / p[:, 2], p[:, 1] / p[:, 2]
    values = sample_points(img, xs, ys)
    corners = tuple((float(x), float(y)) for x, y in quad)
    return read_samples(values, find_rotation=True, corners=corners, path="robust")


def read_all(frame: np.ndarray, *, thorough: bool = True, expect: int = 1) -> list[TimecodeRead]:
    """Every code found anywhere in a frame (e.g. two displays in one camera view).

    The search runs on a copy scaled to DETECT_SHORT_SIDE_PX (fast); when that finds fewer
    than `expect` OK codes and `thorough` is set, it runs again at full resolution (small
    codes). Dual view passes expect=2: one code per display.

    Returns:
        One read per code-like border found (NOT_FOUND candidates dropped), OK reads first,
        then by decreasing size. An empty list when no code is in view.

    Raises:
        MeasurementError: bad frame (shape, dtype).
    """
    check_image(frame, "camera frame", min_size=(BLOCK_CELLS, BLOCK_CELLS))
    gray = to_gray(frame)
    h, w = gray.shape
    scale = 1.0 / max(1, round(min(h, w) / DETECT_SHORT_SIDE_PX))  # 1/k: a fast area resize
    reads = _search(gray, scale)
    if scale < 1.0 and thorough and sum(r.ok for r in reads) < expect:
        reads = _merge(reads, _search(gray, 1.0))
    return reads


def _search(gray: np.ndarray, scale: float) -> list[TimecodeRead]:
    h, w = gray.shape
    if scale < 1.0:
        size = (int(w * scale), int(h * scale))
        small = cv2.resize(
            gray[: int(size[1] / scale), : int(size[0] / scale)], size, interpolation=cv2.INTER_AREA
        )
    else:
        small = gray
    smooth = cv2.GaussianBlur(small, (0, 0), _PRE_BLUR_SIGMA_PX)
    sx = sy = 1.0 / scale
    found = []
    for quad in find_quads(smooth, MIN_CELL_PX * min(1.0, scale * 2)):
        quad = (quad + 0.5) * [sx, sy] - 0.5
        read = _read_quad(gray, quad)
        if read.status is not ReadStatus.NOT_FOUND:
            found.append(read)
    return _merge([], found)


def _merge(reads: list[TimecodeRead], more: list[TimecodeRead]) -> list[TimecodeRead]:
    """Union of reads, one per code position (the better read kept), best first."""
    out = list(reads)
    for read in more:
        c = np.array(read.center)
        size = np.sqrt(abs(cv2.contourArea(np.asarray(read.corners, dtype=np.float32))))
        for i, other in enumerate(out):
            if np.hypot(*(np.array(other.center) - c)) < 0.2 * size:
                if status_rank(read.status) < status_rank(other.status):
                    out[i] = read
                break
        else:
            out.append(read)

    def key(r: TimecodeRead) -> tuple[int, float]:
        return status_rank(r.status), -abs(cv2.contourArea(np.asarray(r.corners, dtype=np.float32)))

    return sorted(out, key=key)


def decode_robust(frame: np.ndarray) -> TimecodeRead:
    """The best single read of a frame: the largest OK code, else the most informative failure.

    Raises:
        MeasurementError: bad frame (shape, dtype).
    """
    reads = read_all(frame)
    if not reads:
        return TimecodeRead(ReadStatus.NOT_FOUND, path="robust")
    return reads[0]
