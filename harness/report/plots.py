"""Small plots for the HTML report, drawn with OpenCV (no plotting library needed)."""

from __future__ import annotations

import cv2
import numpy as np

_W, _H = 640, 360
_MARGIN_L, _MARGIN_R, _MARGIN_T, _MARGIN_B = 64, 20, 36, 48
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BLUE, _RED, _GREY, _BLACK = (200, 90, 30), (40, 40, 220), (200, 200, 200), (30, 30, 30)


def _canvas(title: str) -> np.ndarray:
    img = np.full((_H, _W, 3), 255, np.uint8)
    cv2.putText(img, title, (_MARGIN_L, 24), _FONT, 0.55, _BLACK, 1, cv2.LINE_AA)
    return img


def _axes(
    img: np.ndarray, x_lo: float, x_hi: float, y_lo: float, y_hi: float, xlabel: str, ylabel: str
):
    x0, y0, x1, y1 = _MARGIN_L, _H - _MARGIN_B, _W - _MARGIN_R, _MARGIN_T

    def to_px(x: float, y: float) -> tuple[int, int]:
        fx = (x - x_lo) / (x_hi - x_lo) if x_hi > x_lo else 0.5
        fy = (y - y_lo) / (y_hi - y_lo) if y_hi > y_lo else 0.5
        return int(x0 + fx * (x1 - x0)), int(y0 - fy * (y0 - y1))

    cv2.rectangle(img, (x0, y1), (x1, y0), _GREY, 1)
    for i in range(5):
        xv = x_lo + (x_hi - x_lo) * i / 4
        px, _ = to_px(xv, y_lo)
        cv2.putText(img, f"{xv:.3g}", (px - 14, y0 + 18), _FONT, 0.4, _BLACK, 1, cv2.LINE_AA)
        yv = y_lo + (y_hi - y_lo) * i / 4
        _, py = to_px(x_lo, yv)
        cv2.putText(img, f"{yv:.3g}", (6, py + 4), _FONT, 0.4, _BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (x1 - 8 * len(xlabel), _H - 10), _FONT, 0.45, _BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (6, _MARGIN_T - 6), _FONT, 0.45, _BLACK, 1, cv2.LINE_AA)
    return to_px


def _limits(img, to_px, limits, y_lo, y_hi) -> None:
    for label, value in limits:
        top, bottom = to_px(value, y_hi), to_px(value, y_lo)
        cv2.line(img, top, bottom, _RED, 1, cv2.LINE_AA)
        cv2.putText(img, label, (top[0] + 3, top[1] + 14), _FONT, 0.4, _RED, 1, cv2.LINE_AA)


def _range(values, limits) -> tuple[float, float]:
    points = list(values) + [v for _, v in limits]
    lo, hi = min(points + [0.0]), max(points)
    return lo, hi * 1.05 if hi > 0 else 1.0


def cdf_png(values, unit: str, title: str, limits: list[tuple[str, float]] = ()) -> bytes:
    """Empirical CDF of values, with vertical budget lines."""
    img = _canvas(title)
    xs = np.sort(np.asarray(values, float))
    lo, hi = _range(xs, limits)
    to_px = _axes(img, lo, hi, 0.0, 1.0, unit, "share")
    n = len(xs)
    pts = []
    for i, x in enumerate(xs):
        pts += [to_px(x, i / n), to_px(x, (i + 1) / n)]
    if pts:
        cv2.polylines(img, [np.array(pts, np.int32)], False, _BLUE, 2, cv2.LINE_AA)
    _limits(img, to_px, limits, 0.0, 1.0)
    return _png(img)


def hist_png(
    values, unit: str, title: str, limits: list[tuple[str, float]] = (), bins: int = 20
) -> bytes:
    """Histogram of values, with vertical budget lines."""
    img = _canvas(title)
    arr = np.asarray(values, float)
    lo, hi = _range(arr, limits)
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    to_px = _axes(img, lo, hi, 0.0, float(max(counts.max(initial=0), 1)), unit, "count")
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        if c:
            cv2.rectangle(img, to_px(a, c), to_px(b, 0), _BLUE, -1)
    _limits(img, to_px, limits, 0.0, float(max(counts.max(initial=0), 1)))
    return _png(img)


def series_png(times, values, unit: str, title: str, limits: list[tuple[str, float]] = ()) -> bytes:
    """A value over time (e.g. SSIM per frame), with horizontal budget lines."""
    img = _canvas(title)
    t = np.asarray(times, float)
    v = np.asarray(values, float)
    if t.size:
        t = t - t[0]
    points = list(v) + [x for _, x in limits]
    lo, hi = (min(points), max(points)) if points else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or 0.05
    to_px = _axes(img, 0.0, float(t.max()) if t.size else 1.0, lo - pad, hi + pad, "s", unit)
    if t.size > 1:
        cv2.polylines(
            img,
            [np.array([to_px(a, b) for a, b in zip(t, v, strict=True)], np.int32)],
            False,
            _BLUE,
            2,
            cv2.LINE_AA,
        )
    for label, value in limits:
        left, right = to_px(0.0, value), to_px(float(t.max()) if t.size else 1.0, value)
        cv2.line(img, left, right, _RED, 1, cv2.LINE_AA)
        cv2.putText(img, label, (left[0] + 3, left[1] - 4), _FONT, 0.4, _RED, 1, cv2.LINE_AA)
    return _png(img)


def side_by_side_png(left: np.ndarray, right: np.ndarray, caption: str, width: int = 640) -> bytes:
    """Two frames (e.g. sent and received) side by side at the same height, with a caption."""
    h = min(left.shape[0], right.shape[0], 360)

    def fit(img):
        return cv2.resize(
            img, (max(1, int(img.shape[1] * h / img.shape[0])), h), interpolation=cv2.INTER_AREA
        )

    both = np.hstack([fit(left), np.full((h, 8, 3), 255, np.uint8), fit(right)])
    both = np.vstack([both, np.full((28, both.shape[1], 3), 255, np.uint8)])
    cv2.putText(both, caption, (6, h + 20), _FONT, 0.5, _BLACK, 1, cv2.LINE_AA)
    scale = min(1.0, width / both.shape[1])
    if scale < 1:
        both = cv2.resize(
            both,
            (int(both.shape[1] * scale), int(both.shape[0] * scale)),
            interpolation=cv2.INTER_AREA,
        )
    return _png(both)


def thumbnail_png(image: np.ndarray, width: int = 480) -> bytes:
    h, w = image.shape[:2]
    scale = min(1.0, width / w)
    small = (
        cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else image
    )
    return _png(small)


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes()


_PALETTE = (  # BGR, distinguishable on white
    (180, 119, 31),
    (14, 127, 255),
    (44, 160, 44),
    (40, 39, 214),
    (189, 103, 148),
    (75, 86, 140),
    (194, 119, 227),
    (127, 127, 127),
    (34, 189, 188),
    (207, 190, 23),
)


def cdf_multi_png(
    series: dict[str, list[float]],
    unit: str,
    title: str,
    limits: list[tuple[str, float]] = (),
    width: int = 1200,
    height: int = 340,
) -> bytes:
    """Empirical CDFs of several series (e.g. one per device) overlaid, with a legend and
    vertical budget lines; full report width."""
    global _W, _H
    saved = _W, _H
    _W, _H = width, height
    try:
        img = _canvas(title)
        everything = [v for vs in series.values() for v in vs]
        lo, hi = _range(everything or [0.0], limits)
        to_px = _axes(img, lo, hi, 0.0, 1.0, unit, "share")
        cols = 2 if len(series) > 4 else 1
        legend = np.full((16 + 20 * -(-len(series) // cols), _W, 3), 255, np.uint8)
        for k, (label, values) in enumerate(series.items()):
            color = _PALETTE[k % len(_PALETTE)]
            xs = np.sort(np.asarray(values, float))
            n = len(xs)
            pts = []
            for i, x in enumerate(xs):
                pts += [to_px(x, i / n), to_px(x, (i + 1) / n)]
            if pts:
                cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
            x0 = _MARGIN_L + (k % cols) * (_W - _MARGIN_L) // cols
            y = 16 + 20 * (k // cols)
            cv2.line(legend, (x0, y - 4), (x0 + 25, y - 4), color, 3)
            cv2.putText(legend, label[:70], (x0 + 32, y), _FONT, 0.45, _BLACK, 1, cv2.LINE_AA)
        _limits(img, to_px, limits, 0.0, 1.0)
        return _png(np.vstack([img, legend]))
    finally:
        _W, _H = saved


def sparkline_png(
    p50s, p95s, flagged_last: bool = False, width: int = 220, height: int = 56
) -> bytes:
    """p50 (blue) and p95 (orange) over runs, oldest left; the last point red when flagged."""
    img = np.full((height, width, 3), 255, np.uint8)
    values = [v for v in list(p50s) + list(p95s) if np.isfinite(v)]
    if not values:
        return _png(img)
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    n = max(len(p50s), len(p95s))

    def px(i: int, v: float) -> tuple[int, int]:
        x = 6 + (width - 12) * (i / (n - 1) if n > 1 else 0.5)
        return int(x), int(height - 4 - (height - 8) * (v - lo) / (hi - lo))

    for series, color in ((p50s, _PALETTE[0]), (p95s, _PALETTE[1])):
        pts = [px(i, v) for i, v in enumerate(series) if np.isfinite(v)]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, color, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, 2, color, -1, cv2.LINE_AA)
    if flagged_last and p95s and np.isfinite(p95s[-1]):
        cv2.circle(img, px(n - 1, p95s[-1]), 5, _RED, -1, cv2.LINE_AA)
    return _png(img)


_SHADES = {  # BGR fill of a stretch the agent saw nothing useful in (harness.vision.stretches)
    "blank": (215, 215, 215),
    "loading": (170, 225, 245),
    "hidden by the app": (230, 200, 215),
}


def _panel(
    img: np.ndarray,
    top: int,
    bottom: int,
    span: tuple[float, float],
    series: tuple[np.ndarray, np.ndarray],
    unit: str,
    limits,
    shaded,
    color,
) -> None:
    """One panel of quality_series_png, between pixel rows top and bottom."""
    t0, t1 = span
    t, v = series
    points = list(v) + [x for _, x in limits]
    lo, hi = (min(points), max(points)) if points else (0.0, 1.0)
    pad = (hi - lo) * 0.1 or 0.05
    lo, hi = lo - pad, hi + pad
    x0, x1 = _MARGIN_L, _W - _MARGIN_R

    def to_px(x: float, y: float) -> tuple[int, int]:
        fx = (x - t0) / (t1 - t0) if t1 > t0 else 0.5
        return int(x0 + fx * (x1 - x0)), int(bottom - (y - lo) / (hi - lo) * (bottom - top))

    for start, duration, kind in shaded:
        a, b = to_px(start, hi)[0], to_px(start + duration, lo)[0]
        cv2.rectangle(img, (max(x0, a), top), (min(x1, b), bottom), _SHADES.get(kind, _GREY), -1)
    cv2.rectangle(img, (x0, top), (x1, bottom), _GREY, 1)
    for i in range(3):
        yv = lo + (hi - lo) * i / 2
        cv2.putText(img, f"{yv:.3g}", (6, to_px(t0, yv)[1] + 4), _FONT, 0.4, _BLACK, 1, cv2.LINE_AA)
    cv2.putText(img, unit, (x0 + 4, top + 14), _FONT, 0.45, color, 1, cv2.LINE_AA)
    if t.size > 1:  # no line across a gap (e.g. between the share run's two windows)
        gaps = np.diff(t)
        breaks = np.flatnonzero(gaps > 2.5 * float(np.median(gaps))) + 1
        for part_t, part_v in zip(np.split(t, breaks), np.split(v, breaks), strict=True):
            pts = np.array([to_px(a, b) for a, b in zip(part_t, part_v, strict=True)], np.int32)
            cv2.polylines(img, [pts], False, color, 2, cv2.LINE_AA)
    for a, b in zip(t, v, strict=True):
        cv2.circle(img, to_px(a, b), 2, color, -1, cv2.LINE_AA)
    for label, value in limits:
        left, right = to_px(t0, value), to_px(t1, value)
        cv2.line(img, left, right, _RED, 1, cv2.LINE_AA)
        cv2.putText(img, label, (left[0] + 3, left[1] - 4), _FONT, 0.4, _RED, 1, cv2.LINE_AA)


def quality_series_png(
    upper: tuple[list[float], list[float], str, list[tuple[str, float]]],
    lower: tuple[list[float], list[float], str, list[tuple[str, float]]],
    title: str,
    shaded: list[tuple[float, float, str]] = (),
) -> bytes:
    """Two figures over the same host time, one panel each (e.g. SSIM per frame above,
    SSIMULACRA2 per second below), with their budget lines and stretches shaded.

    Args:
        upper, lower: (times s, values, label, limits as ("p50 >= 50", 50.0)).
        shaded: (start s, duration s, kind) of blank / loading / hidden stretches.
    """
    global _H
    saved = _H
    _H = 460
    try:
        img = _canvas(title)
        times = [t for t in list(upper[0]) + list(lower[0])]
        times += [x for s, d, _ in shaded for x in (s, s + d)]
        t0 = min(times) if times else 0.0
        t1 = max(times) if times else 1.0
        t1 = t1 if t1 > t0 else t0 + 1.0
        mid = _MARGIN_T + (_H - _MARGIN_T - _MARGIN_B) // 2
        for (t, v, label, limits), (top, bottom), color in (
            (upper, (_MARGIN_T, mid - 6), _BLUE),
            (lower, (mid + 6, _H - _MARGIN_B), _PALETTE[2]),
        ):
            series = (np.asarray(t, float), np.asarray(v, float))
            _panel(img, top, bottom, (t0, t1), series, label, limits, shaded, color)
        x0, x1 = _MARGIN_L, _W - _MARGIN_R
        for i in range(5):
            px = int(x0 + (x1 - x0) * i / 4)
            label = f"{(t1 - t0) * i / 4:.3g}"
            cv2.putText(img, label, (px - 10, _H - _MARGIN_B + 18), _FONT, 0.4, _BLACK, 1)
        cv2.putText(img, "s", (x1 - 8, _H - 10), _FONT, 0.45, _BLACK, 1, cv2.LINE_AA)
        x = _MARGIN_L
        for kind, fill in _SHADES.items():
            cv2.rectangle(img, (x, _H - 22), (x + 14, _H - 10), fill, -1)
            cv2.putText(img, kind, (x + 18, _H - 11), _FONT, 0.4, _BLACK, 1, cv2.LINE_AA)
            x += 30 + 8 * len(kind)
        return _png(img)
    finally:
        _H = saved
