"""Annotation: find a stroke the agent drew on the screen, its path, error and first appearance.

A stroke is found by its colour, by its difference from the frame before, or both. Specks,
thick blobs (icons), textures full of holes and blobs without a solid core of the colour are
dropped; the largest remaining blob (with the blobs near it) is thinned to a one-pixel
centreline (Zhang-Suen), pruned of short spurs, moved to the local centroid (sub-pixel) and
ordered into a path. Its error is measured against the path the agent drew (mapped into the
frame by an optional 2x3 affine), in pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.vision.events import DEFAULT_HOLD_FRAMES, Event, Region, _timed, crop
from harness.vision.image import check_image, check_same_shape

COLOR_TOLERANCE = 70.0  # max Euclidean BGR distance from the stroke colour
DIFF_LEVELS = 40  # min per-channel change from the previous frame
MIN_AREA_PX = 30  # smaller blobs are noise
MAX_WIDTH_PX = 16.0  # thicker blobs are not pen strokes
MAX_LOOPS = 2  # a stroke closes on itself at most this often; a texture has many holes
_MIN_HOLE_PX = 6  # smaller holes are compression speckle
_SOLID_CORE_FRACTION = 0.4  # the stroke's truest 10 % of pixels are this close to its colour
JOIN_GAP_PX = 12  # blobs this close to the stroke belong to it (a line broken by compression)
_SPUR_DT_FRACTION = 0.5  # centreline points thinner than this x median half-width are spurs


@dataclass(frozen=True)
class Stroke:
    """A stroke found on screen.

    Attributes:
        mask: bool image, True on the stroke's pixels (frame coordinates).
        path: (N, 2) float centreline points (x, y), ordered along the stroke.
        area_px: pixels in the mask.
        bbox: (x, y, w, h) of the mask.
        width_px: median stroke width.
    """

    mask: np.ndarray
    path: np.ndarray
    area_px: int
    bbox: tuple[int, int, int, int]
    width_px: float


@dataclass(frozen=True)
class PathError:
    """How far a found stroke is from the drawn path, in pixels.

    Attributes:
        mean_px: mean distance of the found centreline from the drawn path.
        max_px: largest such distance.
        p95_px: 95th percentile of it.
        rms_px: root mean square of it.
        missed_px: largest distance of a drawn point from the found centreline (a part of the
            drawing that is missing shows here).
        coverage: share of the drawn path within a stroke width of the found centreline.
    """

    mean_px: float
    max_px: float
    p95_px: float
    rms_px: float
    missed_px: float
    coverage: float


def stroke_mask(
    frame: np.ndarray,
    *,
    color: tuple[int, int, int] | None = None,
    prev: np.ndarray | None = None,
    color_tol: float = COLOR_TOLERANCE,
    diff_levels: int = DIFF_LEVELS,
    region: Region | None = None,
) -> np.ndarray:
    """Pixels that look like a stroke: near `color` (BGR) and/or changed since `prev`.

    Raises:
        MeasurementError: neither color nor prev given, bad frames, or shapes that differ.
    """
    check_image(frame, "annotation frame", min_size=(3, 3))
    if color is None and prev is None:
        raise MeasurementError("annotation: give the stroke colour, the previous frame, or both")
    img = (
        frame
        if frame.ndim == 3 and frame.shape[2] >= 3
        else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    )
    img = img[:, :, :3]
    mask = np.ones(img.shape[:2], bool)
    if color is not None:
        diff = img.astype(np.int16) - np.asarray(color, dtype=np.int16)
        dist2 = np.einsum("ijk,ijk->ij", diff, diff, dtype=np.int32)
        mask &= dist2 <= color_tol * color_tol
    if prev is not None:
        check_image(prev, "previous frame", min_size=(3, 3))
        check_same_shape(frame, prev, "annotation frame", "previous frame")
        p = (
            prev
            if prev.ndim == 3 and prev.shape[2] >= 3
            else cv2.cvtColor(prev, cv2.COLOR_GRAY2BGR)
        )
        # a light blur first: compression noise is high-frequency, a stroke is not
        a_s = cv2.GaussianBlur(img, (3, 3), 0)
        b_s = cv2.GaussianBlur(np.ascontiguousarray(p[:, :, :3]), (3, 3), 0)
        change = cv2.absdiff(a_s, b_s).max(axis=2)
        mask &= change >= diff_levels
    if region is not None:
        keep = np.zeros_like(mask)
        x, y, w, h = region
        crop(mask, region, "annotation frame")
        keep[y : y + h, x : x + w] = True
        mask &= keep
    return mask


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a bool mask to a one-pixel skeleton."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            b = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            a = sum(((ring[k] == 0) & (ring[k + 1] == 1)).astype(np.uint8) for k in range(8))
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            kill = (img[1:-1, 1:-1] == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            if kill.any():
                img[1:-1, 1:-1][kill] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _prune(skel: np.ndarray, max_len: int) -> np.ndarray:
    """Remove spurs: branches of at most max_len pixels from an end to a junction."""
    skel = skel.copy()
    kernel = np.ones((3, 3), np.float32)
    for _ in range(2):
        count = (
            cv2.filter2D(skel.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT) - 1
        )
        ends = np.argwhere(skel & (count == 1))
        if len(ends) <= 2:
            break
        removed = False
        h, w = skel.shape
        for y, x in ends:
            path = [(y, x)]
            seen = {(y, x)}
            cy, cx = y, x
            while len(path) <= max_len:
                nxt = [
                    (cy + dy, cx + dx)
                    for dy, dx in _NEIGHBOURS
                    if 0 <= cy + dy < h
                    and 0 <= cx + dx < w
                    and skel[cy + dy, cx + dx]
                    and (cy + dy, cx + dx) not in seen
                ]
                if len(nxt) != 1:
                    break
                cy, cx = nxt[0]
                seen.add((cy, cx))
                if count[cy, cx] >= 3:  # reached a junction: what we walked is a spur
                    for py, px in path:
                        skel[py, px] = False
                    removed = True
                    break
                path.append((cy, cx))
        if not removed:
            break
    return skel


def _centre(mask: np.ndarray, pts: np.ndarray, radius: int) -> np.ndarray:
    """Move each centreline pixel to the centroid of the stroke around it (sub-pixel)."""
    h, w = mask.shape
    out = pts.astype(float)
    for k, (x, y) in enumerate(pts):
        y0, y1 = max(0, y - radius), min(h, y + radius + 1)
        x0, x1 = max(0, x - radius), min(w, x + radius + 1)
        yy, xx = np.nonzero(mask[y0:y1, x0:x1])
        if len(xx):
            out[k] = (xx.mean() + x0, yy.mean() + y0)
    return out


def _order(points: np.ndarray) -> np.ndarray:
    """Greedy nearest-neighbour ordering, starting from an end of the point set."""
    n = len(points)
    if n <= 2:
        return points
    c = points.mean(axis=0)
    start = int(np.argmax(((points - c) ** 2).sum(axis=1)))
    left = np.ones(n, bool)
    order = [start]
    left[start] = False
    cur = points[start]
    for _ in range(n - 1):
        idx = np.flatnonzero(left)
        d = ((points[idx] - cur) ** 2).sum(axis=1)
        j = idx[int(np.argmin(d))]
        order.append(j)
        left[j] = False
        cur = points[j]
    return points[order]


def find_stroke(
    frame: np.ndarray,
    *,
    color: tuple[int, int, int] | None = None,
    prev: np.ndarray | None = None,
    color_tol: float = COLOR_TOLERANCE,
    diff_levels: int = DIFF_LEVELS,
    region: Region | None = None,
    min_area_px: int = MIN_AREA_PX,
    max_width_px: float = MAX_WIDTH_PX,
) -> Stroke | None:
    """The stroke on a frame: the largest thin blob and the blobs within JOIN_GAP_PX of it.

    Args:
        frame: the screen (BGR).
        color: the stroke's colour (BGR), if known.
        prev: the frame before the stroke, to find it by difference.
        color_tol, diff_levels: thresholds of the two cues.
        region: where to look.
        min_area_px: smallest blob kept.
        max_width_px: thickest blob kept (2 x area / outer perimeter): strokes are thin.

    Raises:
        MeasurementError: bad frames, no cue given.
    """
    mask = stroke_mask(
        frame, color=color, prev=prev, color_tol=color_tol, diff_levels=diff_levels, region=region
    )
    m8 = mask.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    dist_c = None
    if color is not None:
        bgr = (
            frame
            if frame.ndim == 3 and frame.shape[2] >= 3
            else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        )
        diff = bgr[:, :, :3].astype(np.int16) - np.asarray(color, dtype=np.int16)
        dist_c = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff, dtype=np.int32).astype(np.float32))
    keep = []
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < min_area_px:
            continue
        x, y, w, h = stats[i, :4]
        if dist_c is not None:  # a pen stroke has a solid core of its colour; a photo does not
            core = np.percentile(
                dist_c[y : y + h, x : x + w][labels[y : y + h, x : x + w] == i], 10
            )
            if core > _SOLID_CORE_FRACTION * color_tol:
                continue
        blob = (labels[y : y + h, x : x + w] == i).astype(np.uint8)
        contours, hier = cv2.findContours(blob, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        outer = [c for c, link in zip(contours, hier[0], strict=True) if link[3] == -1]
        holes = sum(
            1
            for c, link in zip(contours, hier[0], strict=True)
            if link[3] != -1 and cv2.contourArea(c) >= _MIN_HOLE_PX
        )
        perimeter = sum(cv2.arcLength(c, True) for c in outer)
        thickness = 2.0 * stats[i, cv2.CC_STAT_AREA] / max(perimeter, 1.0)
        # a stroke is thin and simple (a loop or two at most); icons are thick, textures are
        # meshes full of holes
        if thickness <= max_width_px and holes <= MAX_LOOPS:
            keep.append(i)
    if not keep:
        return None
    # the stroke is the largest thin blob and the blobs near it (compression can break a line)
    keep.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    mask = labels == keep[0]
    near = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * JOIN_GAP_PX + 1, 2 * JOIN_GAP_PX + 1))
    rest = keep[1:]
    while rest:
        reach = cv2.dilate(mask.astype(np.uint8), near) > 0
        joined = [i for i in rest if reach[labels == i].any()]
        if not joined:
            break
        mask |= np.isin(labels, joined)
        rest = [i for i in rest if i not in joined]
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    sub = mask[y0:y1, x0:x1]
    dist = cv2.distanceTransform(np.pad(sub, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    skel = _thin(sub)
    ridge = dist[skel]
    spur_len = max(3, int(round(2.0 * float(np.median(ridge)) if ridge.size else 3)))
    skel = _prune(skel, spur_len)
    sy, sx = np.nonzero(skel)
    half = dist[sy, sx]
    med = float(np.median(half)) if half.size else 0.0
    keep_pts = half >= _SPUR_DT_FRACTION * med
    if keep_pts.sum() >= 2:
        sx, sy = sx[keep_pts], sy[keep_pts]
    pts = _centre(sub, np.column_stack([sx, sy]), max(1, int(np.ceil(med)) + 1)) + [x0, y0]
    return Stroke(
        mask,
        _order(pts),
        int(mask.sum()),
        (int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
        2.0 * med,
    )


def _densify(path: np.ndarray, step_px: float = 0.5) -> np.ndarray:
    out = [path[:1]]
    for a, b in zip(path[:-1], path[1:], strict=True):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / step_px)))
        t = np.arange(1, n + 1)[:, None] / n
        out.append(a + (b - a) * t)
    return np.vstack(out)


def _distances(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest target point (memory-bounded chunks)."""
    out = np.empty(len(points))
    chunk = max(1, 2_000_000 // max(1, len(targets)))
    for i in range(0, len(points), chunk):
        p = points[i : i + chunk]
        d = ((p[:, None, :] - targets[None, :, :]) ** 2).sum(axis=2)
        out[i : i + chunk] = np.sqrt(d.min(axis=1))
    return out


def _to_polyline(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Exact distance of each point to a polyline (segments, or one point)."""
    if len(poly) == 1:
        return np.hypot(*(points - poly[0]).T)
    a, b = poly[:-1], poly[1:]
    ab = b - a
    len2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    out = np.empty(len(points))
    chunk = max(1, 2_000_000 // len(a))
    for i in range(0, len(points), chunk):
        p = points[i : i + chunk, None, :]
        t = np.clip(((p - a) * ab).sum(axis=2) / len2, 0, 1)
        q = a + t[..., None] * ab
        out[i : i + chunk] = np.sqrt(((p - q) ** 2).sum(axis=2)).min(axis=1)
    return out


def path_error(
    found: Stroke | np.ndarray,
    drawn: Sequence[Sequence[float]] | np.ndarray,
    *,
    transform: np.ndarray | None = None,
) -> PathError:
    """Error in pixels of a found stroke against the path the agent drew.

    Args:
        found: the stroke (or its (N, 2) centreline points).
        drawn: the drawn polyline, (M, 2) points (x, y).
        transform: 2x3 affine from the drawing's coordinates to the frame's, if they differ
            (the agent draws on a scaled copy of the screen).

    Raises:
        MeasurementError: empty paths or a transform that is not 2x3.
    """
    pts = found.path if isinstance(found, Stroke) else np.asarray(found, dtype=float)
    d = np.asarray(drawn, dtype=float).reshape(-1, 2)
    if len(pts) == 0 or len(d) == 0:
        raise MeasurementError(
            f"annotation: empty path (found {len(pts)} points, drawn {len(d)} points)"
        )
    if transform is not None:
        t = np.asarray(transform, dtype=float)
        if t.shape != (2, 3):
            raise MeasurementError(f"annotation: transform must be 2x3, got shape {t.shape}")
        d = d @ t[:, :2].T + t[:, 2]
    dense = _densify(d) if len(d) > 1 else d
    err = _to_polyline(pts, d)
    back = _distances(dense, pts)
    width = found.width_px if isinstance(found, Stroke) else 2.0
    return PathError(
        mean_px=float(err.mean()),
        max_px=float(err.max()),
        p95_px=float(np.percentile(err, 95)),
        rms_px=float(np.sqrt((err**2).mean())),
        missed_px=float(back.max()),
        coverage=float(np.mean(back <= max(2.0, width))),
    )


def first_appearance(
    frames: Iterable,
    *,
    color: tuple[int, int, int] | None = None,
    by_difference: bool = False,
    min_area_px: int = MIN_AREA_PX,
    hold_frames: int = DEFAULT_HOLD_FRAMES,
    region: Region | None = None,
    fps: float = 30.0,
) -> Event | None:
    """The first frame on which a stroke is visible (and stays visible for hold_frames).

    Args:
        frames: arrays (timed i / fps), (t_s, array) pairs, or VideoFrame objects.
        color: the stroke colour, if known.
        by_difference: find it by difference from the first frame (the screen before).
        min_area_px, region: as find_stroke.
        hold_frames: frames it must stay (a flicker is not a stroke).

    Raises:
        MeasurementError: no cue given, bad frames.
    """
    if color is None and not by_difference:
        raise MeasurementError("annotation: give the stroke colour or by_difference=True")
    base: np.ndarray | None = None
    run, start = 0, None
    prev_t: float | None = None
    for i, (t, img) in enumerate(_timed(frames, fps)):
        check_image(img, f"frame {i}")
        if by_difference and base is None:
            base = img
            prev_t = t
            continue
        s = find_stroke(
            img,
            color=color,
            prev=base if by_difference else None,
            region=region,
            min_area_px=min_area_px,
        )
        if s is not None:
            if run == 0:
                start = Event(i, t, prev_t, float(s.area_px))
            run += 1
            if run >= hold_frames:
                return start
        else:
            run = 0
        prev_t = t
    return None
