"""Timecode: a visual code carrying a frame number and the sender's host time, and its decoder.

This module is the pure codec: numpy and the standard library only, no OpenCV, no I/O, no
state beyond small caches, so that the device twin can import it and stamp frames at 30 fps.
The robust (camera) path lives in harness.vision.locator and is imported lazily.

Layout of one code (14 x 14 square cells, see docs/vision.md):

    ring 0        quiet zone, light
    ring 1        border, dark (the fiducial the robust path finds)
    rows 2..11    a 10 x 10 data grid:
                    4 orientation cells in its corners (top-left dark, the other three light),
                    8 tear tags (frame_no mod 4, two bits in each quadrant),
                    88 payload bits: frame_no (24) | t_ms (32) | CRC-32 (32),
                  whitened with a fixed pseudo-random mask and interleaved over the grid.

A dark cell is a 1 bit (after whitening). The CRC is zlib's CRC-32 over a fixed 5-byte magic
followed by the 7 payload bytes; with the tags it makes a wrong decode practically impossible:
a read is either right or reported with a non-OK status.

Size: one codec (encode, locate, decode, error checks) whose parts share its constants.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np

from harness.errors import MeasurementError
from harness.vision.image import LUMA_WEIGHTS_BGR, check_image, to_gray

FRAME_NO_BITS = 24
T_MS_BITS = 32
CRC_BITS = 32
PAYLOAD_BITS = FRAME_NO_BITS + T_MS_BITS + CRC_BITS
FRAME_NO_MOD = 1 << FRAME_NO_BITS  # frame numbers wrap after 16,777,216 frames (155 h at 30 fps)
T_MS_MOD = 1 << T_MS_BITS  # host times in ms wrap after 2**32 ms (49.7 days)
GRID_CELLS = 10  # data grid side, in cells
BLOCK_CELLS = GRID_CELLS + 4  # quiet zone + border on each side
CELLS_PER_SHORT_SIDE = 50  # default cell size: the frame's short side / 50
MIN_CELL_PX = 4  # smallest cell stamp() accepts
DARK = 0
LIGHT = 255
MIN_CONTRAST_LEVELS = 20.0  # light minus dark reference, in 8-bit levels, below which no read
AMBIGUOUS_MARGIN = 0.3  # a cell whose normalised value is within 0.35..0.65 is ambiguous
BLEND_MIN_CELLS = 3  # that many ambiguous cells on a failed read -> BLENDED
MIXED_MIN_CELLS = 6  # that many on an OK read: caught mid-refresh, the dominant code was read
_RING_AGREEMENT = 0.85  # share of border (quiet) samples that must read dark (light)
_CRC_MAGIC = b"MDTC1"
_SUB_OFFSETS = (-0.22, 0.0, 0.22)  # sample offsets inside a cell, in cells (3 x 3 per cell)
_N_SUB = len(_SUB_OFFSETS) ** 2
_QUIET_SAMPLE = 0.6  # where the light reference is sampled in the quiet ring (0 = outer edge)
_ANCHORS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")


class ReadStatus(StrEnum):
    """Outcome of reading one code. Only OK carries a frame number and a time."""

    OK = "ok"
    NOT_FOUND = "not_found"  # no code where one was looked for
    LOW_CONTRAST = "low_contrast"  # a code-like pattern too faint to read
    BLENDED = "blended"  # two codes overlaid (a frame caught mid-refresh or cross-faded)
    TORN = "torn"  # parts of two codes (tear tags disagree)
    CORRUPT = "corrupt"  # looked like a code, failed the CRC or the tags


@dataclass(frozen=True)
class TimecodeRead:
    """One read of one code.

    Attributes:
        status: OK or why not.
        frame_no: decoded frame number (mod 2**24), only when OK.
        t_ms: decoded host time in ms (mod 2**32), only when OK.
        margin: smallest distance of a cell from the decision threshold (0 = on it, 1 = ideal).
        ambiguous_cells: cells whose value sat within AMBIGUOUS_MARGIN of the threshold.
        corners: outer corners of the dark border, in pixels, code-oriented (TL, TR, BR, BL).
        path: "fast" (known region) or "robust" (found in the frame).
    """

    status: ReadStatus
    frame_no: int | None = None
    t_ms: int | None = None
    margin: float = 0.0
    ambiguous_cells: int = 0
    corners: tuple[tuple[float, float], ...] | None = None
    path: str = "fast"

    @property
    def ok(self) -> bool:
        return self.status is ReadStatus.OK

    @property
    def mixed(self) -> bool:
        """An OK read of a frame caught mid-refresh: the dominant of two codes was read.

        Clean captures (even blurred camera shots) have no ambiguous cells; a blend of two
        codes has one per differing cell, typically 15-30.
        """
        return self.ok and self.ambiguous_cells >= MIXED_MIN_CELLS

    @property
    def center(self) -> tuple[float, float] | None:
        """Centre of the code in pixels, if its corners are known."""
        if self.corners is None:
            return None
        c = np.asarray(self.corners, dtype=float).mean(axis=0)
        return float(c[0]), float(c[1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "frame": self.frame_no,
            "t_ms": self.t_ms,
            "margin": round(self.margin, 3),
            "ambiguous_cells": self.ambiguous_cells,
            "mixed": self.mixed,
            "path": self.path,
            "corners": None
            if self.corners is None
            else [[round(x, 2), round(y, 2)] for x, y in self.corners],
        }


# ---------------------------------------------------------------------------------------------
# Cell map (fixed for the format; derived deterministically at import, cheaply)


def _xorshift32(seed: int):
    state = seed & 0xFFFFFFFF
    while True:
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        yield state


def _cell_map() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    g = GRID_CELLS
    orient = np.array([0, g - 1, g * g - 1, g * (g - 1)])  # TL, TR, BR, BL (flat indices)
    tag_cells = [
        (0, 1),
        (1, 0),  # top-left quadrant: msb, lsb
        (0, g - 2),
        (1, g - 1),  # top-right
        (g - 1, g - 2),
        (g - 2, g - 1),  # bottom-right
        (g - 1, 1),
        (g - 2, 0),  # bottom-left
    ]
    tags = np.array([r * g + c for r, c in tag_cells])
    used = set(orient.tolist()) | set(tags.tolist())
    data = [i for i in range(g * g) if i not in used]
    assert len(data) == PAYLOAD_BITS
    rng = _xorshift32(0x4D594459)
    for i in range(len(data) - 1, 0, -1):  # Fisher-Yates interleave: spread every field
        j = next(rng) % (i + 1)
        data[i], data[j] = data[j], data[i]
    bit_cells = np.array(data + tags.tolist())
    whiten = np.array([next(rng) >> 31 for _ in range(bit_cells.size)], dtype=bool)
    return orient, bit_cells, whiten, tags


_ORIENT_CELLS, _BIT_CELLS, _WHITEN, _TAG_CELLS = _cell_map()
_ORIENT_DARK = np.array([True, False, False, False])
_CODED_CELLS = np.concatenate([_ORIENT_CELLS, _BIT_CELLS])  # orientation first, then bits


def payload_bits(frame_no: int, t_ms: int) -> np.ndarray:
    """The 88 payload bits (frame_no | t_ms | CRC-32), most significant first, as bool."""
    data = (int(frame_no) % FRAME_NO_MOD).to_bytes(3, "big") + (int(t_ms) % T_MS_MOD).to_bytes(
        4, "big"
    )
    crc = zlib.crc32(_CRC_MAGIC + data).to_bytes(4, "big")
    return np.unpackbits(np.frombuffer(data + crc, dtype=np.uint8)).astype(bool)


def code_grid(frame_no: int, t_ms: int) -> np.ndarray:
    """The 10 x 10 data grid of a code, True where the cell is dark."""
    grid = np.zeros(GRID_CELLS * GRID_CELLS, dtype=bool)
    grid[_ORIENT_CELLS] = _ORIENT_DARK
    tag = int(frame_no) % 4
    tag_bits = np.array([tag >> 1, tag & 1] * 4, dtype=bool)
    grid[_BIT_CELLS] = np.concatenate([payload_bits(frame_no, t_ms), tag_bits]) ^ _WHITEN
    return grid.reshape(GRID_CELLS, GRID_CELLS)


def code_block(frame_no: int, t_ms: int) -> np.ndarray:
    """The whole 14 x 14 code (quiet zone, border, data) as uint8 levels, one value per cell."""
    block = np.full((BLOCK_CELLS, BLOCK_CELLS), LIGHT, dtype=np.uint8)
    block[1:-1, 1:-1] = DARK
    block[2:-2, 2:-2] = np.where(code_grid(frame_no, t_ms), DARK, LIGHT)
    return block


def render(frame_no: int, t_ms: int, cell_px: int) -> np.ndarray:
    """The code as a gray image of 14 * cell_px pixels square."""
    idx = np.arange(BLOCK_CELLS * cell_px) // cell_px
    return code_block(frame_no, t_ms)[idx[:, None], idx[None, :]]


# ---------------------------------------------------------------------------------------------
# Layout


@dataclass(frozen=True)
class TimecodeLayout:
    """Where a code sits in a frame of a given size: the contract between stamper and reader.

    Coordinates are pixel edges: the block covers x .. x + 14 * cell_w horizontally, and pixel
    column i covers i .. i + 1. Scaling a frame scales every field; stamping needs whole pixels.

    Attributes:
        frame_w, frame_h: size of the frame the layout is for, in pixels.
        x, y: top-left of the block (quiet zone included), in pixels.
        cell_w, cell_h: size of one cell, in pixels.
    """

    frame_w: int
    frame_h: int
    x: float
    y: float
    cell_w: float
    cell_h: float

    @classmethod
    def for_size(
        cls,
        width: int,
        height: int,
        *,
        anchor: str = "top-left",
        cell_px: int | None = None,
        margin_px: int = 0,
    ) -> TimecodeLayout:
        """The standard layout for a frame of width x height.

        Args:
            width, height: frame size in pixels.
            anchor: corner of the frame the block sits in ("top-left", "top-right",
                "bottom-left", "bottom-right") or "center".
            cell_px: cell size; default max(4, round(min(width, height) / 50)), i.e. 16 px on a
                1280x800 screen, 24 px on 1920x1200, 32 px on 2560x1600.
            margin_px: gap between the block and the frame's edges.

        Raises:
            MeasurementError: unknown anchor, or the block does not fit in the frame.
        """
        width, height = int(width), int(height)
        if anchor not in _ANCHORS:
            raise MeasurementError(
                f"timecode layout: unknown anchor {anchor!r}; use one of {_ANCHORS}"
            )
        if cell_px is None:
            cell_px = max(MIN_CELL_PX, round(min(width, height) / CELLS_PER_SHORT_SIDE))
        cell_px = int(cell_px)
        size = BLOCK_CELLS * cell_px
        if cell_px < 1 or size + 2 * margin_px > min(width, height):
            raise MeasurementError(
                f"timecode layout: a {size}x{size} px block (cell {cell_px} px, margin "
                f"{margin_px} px) does not fit in a {width}x{height} frame"
            )
        horiz, vert = ("center", "center") if anchor == "center" else reversed(anchor.split("-"))
        x = {"left": margin_px, "right": width - margin_px - size, "center": (width - size) // 2}
        y = {"top": margin_px, "bottom": height - margin_px - size, "center": (height - size) // 2}
        return cls(width, height, float(x[horiz]), float(y[vert]), float(cell_px), float(cell_px))

    @property
    def block_w(self) -> float:
        return BLOCK_CELLS * self.cell_w

    @property
    def block_h(self) -> float:
        return BLOCK_CELLS * self.cell_h

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the block, rounded outwards to whole pixels."""
        x0, y0 = int(np.floor(self.x)), int(np.floor(self.y))
        x1 = int(np.ceil(self.x + self.block_w))
        y1 = int(np.ceil(self.y + self.block_h))
        return x0, y0, x1 - x0, y1 - y0

    def scaled_to(self, width: int, height: int) -> TimecodeLayout:
        """The same layout in a copy of the frame resized (not cropped) to width x height."""
        sx, sy = width / self.frame_w, height / self.frame_h
        return TimecodeLayout(
            int(width), int(height), self.x * sx, self.y * sy, self.cell_w * sx, self.cell_h * sy
        )

    def point(self, u: np.ndarray | float, v: np.ndarray | float) -> tuple[Any, Any]:
        """Pixel-centre coordinates of a point given in cells from the block's top-left."""
        return self.x + np.asarray(u) * self.cell_w - 0.5, self.y + np.asarray(
            v
        ) * self.cell_h - 0.5

    def corners(self) -> tuple[tuple[float, float], ...]:
        """Outer corners of the dark border (TL, TR, BR, BL), in pixel-centre coordinates."""
        u = np.array([1.0, BLOCK_CELLS - 1.0, BLOCK_CELLS - 1.0, 1.0])
        v = np.array([1.0, 1.0, BLOCK_CELLS - 1.0, BLOCK_CELLS - 1.0])
        xs, ys = self.point(u, v)
        return tuple((float(a), float(b)) for a, b in zip(xs, ys, strict=True))


# ---------------------------------------------------------------------------------------------
# Sample points (canonical, in cells from the block's top-left)


def _canonical_points() -> tuple[np.ndarray, int, int, int]:
    g = GRID_CELLS
    sub = np.array(_SUB_OFFSETS)
    rr, cc = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    du, dv = np.meshgrid(sub, sub, indexing="xy")
    u = (2.5 + cc.reshape(-1, 1) + du.reshape(1, -1)).ravel()  # cell-major, 9 per cell
    v = (2.5 + rr.reshape(-1, 1) + dv.reshape(1, -1)).ravel()
    # dark reference: centre line of the border ring; light reference: in the quiet ring
    lo, hi = 1.5, BLOCK_CELLS - 1.5
    ring = np.arange(lo, hi + 0.5, 1.0)
    bu = np.concatenate([ring, ring, np.full(ring.size - 2, lo), np.full(ring.size - 2, hi)])
    bv = np.concatenate([np.full(ring.size, lo), np.full(ring.size, hi), ring[1:-1], ring[1:-1]])
    qlo, qhi = _QUIET_SAMPLE, BLOCK_CELLS - _QUIET_SAMPLE
    qring = np.arange(0.5, BLOCK_CELLS, 1.0)
    qring = np.clip(qring, qlo, qhi)
    wu = np.concatenate([qring, qring, np.full(qring.size - 2, qlo), np.full(qring.size - 2, qhi)])
    wv = np.concatenate(
        [np.full(qring.size, qlo), np.full(qring.size, qhi), qring[1:-1], qring[1:-1]]
    )
    pts = np.stack([np.concatenate([u, bu, wu]), np.concatenate([v, bv, wv])], axis=1)
    return pts, u.size, bu.size, wu.size


CANONICAL_POINTS, _N_DATA_PTS, _N_BLACK_PTS, _N_WHITE_PTS = _canonical_points()


def _plane_solver(uv: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Matrix M such that M @ samples evaluates the least-squares plane of samples at `at`."""
    design = np.column_stack([np.ones(len(uv)), uv - BLOCK_CELLS / 2])
    eval_at = np.column_stack([np.ones(len(at)), at - BLOCK_CELLS / 2])
    return eval_at @ np.linalg.pinv(design)


_CELL_CENTERS = CANONICAL_POINTS[:_N_DATA_PTS].reshape(-1, _N_SUB, 2).mean(axis=1)
_B0 = _N_DATA_PTS
_W0 = _N_DATA_PTS + _N_BLACK_PTS
_DARK_PLANE = _plane_solver(CANONICAL_POINTS[_B0:_W0], _CELL_CENTERS)
_LIGHT_PLANE = _plane_solver(CANONICAL_POINTS[_W0:], _CELL_CENTERS)


class _Sampler:
    """Luma of an image at fixed points, precomputed for one frame size.

    Nearest-pixel sampling (the fast path: 9 points per cell already average the cell) or
    bilinear (the robust path, whose points fall anywhere).
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, width: int, height: int, bilinear: bool):
        xs = np.clip(np.asarray(xs, dtype=np.float64), 0, width - 1.000001)
        ys = np.clip(np.asarray(ys, dtype=np.float64), 0, height - 1.000001)
        self.width, self.height = width, height
        if bilinear:
            x0, y0 = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
            fx, fy = xs - x0, ys - y0
            x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
            self.ys = np.concatenate([y0, y0, y1, y1])
            self.xs = np.concatenate([x0, x1, x0, x1])
            self.w = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
            self.w = self.w.astype(np.float32)
        else:
            self.ys = np.rint(ys).astype(np.intp)
            self.xs = np.rint(xs).astype(np.intp)
            self.w = None
        self.flat = self.ys * width + self.xs
        self.corners: tuple[tuple[float, float], ...] | None = None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if img.flags.c_contiguous:
            g = np.take(img.reshape(self.width * self.height, -1), self.flat, axis=0)
        else:
            g = img[self.ys, self.xs].reshape(self.flat.size, -1)
        if g.shape[1] >= 3:
            g = g[:, :3] @ _LUMA
        else:
            g = g[:, 0].astype(np.float32)
        if self.w is None:
            return g
        return (g.reshape(4, -1) * self.w).sum(axis=0)


_LUMA = np.asarray(LUMA_WEIGHTS_BGR, dtype=np.float32)


def sample_points(img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Bilinear luma samples of a checked 8-bit image at pixel-centre coordinates."""
    return _Sampler(xs, ys, img.shape[1], img.shape[0], bilinear=True)(img)


@lru_cache(maxsize=64)
def _layout_sampler(layout: TimecodeLayout) -> _Sampler:
    xs, ys = layout.point(CANONICAL_POINTS[:, 0], CANONICAL_POINTS[:, 1])
    sampler = _Sampler(xs, ys, layout.frame_w, layout.frame_h, bilinear=False)
    sampler.corners = layout.corners()
    return sampler


# ---------------------------------------------------------------------------------------------
# Decoding (shared by the fast and the robust path)


def read_samples(
    values: np.ndarray,
    *,
    find_rotation: bool,
    corners: tuple[tuple[float, float], ...] | None,
    path: str,
) -> TimecodeRead:
    """Decode a code from its luma samples at CANONICAL_POINTS.

    Args:
        values: luma at each canonical point (data cells 3x3 each, border ring, quiet ring).
        find_rotation: try the four rotations (robust path) instead of requiring upright.
        corners: outer border corners in image order (TL, TR, BR, BL) to report.
        path: "fast" or "robust", reported.
    """
    data = values[:_B0].reshape(-1, _N_SUB).sum(axis=1) * (1.0 / _N_SUB)
    dark_ref, light_ref = values[_B0:_W0], values[_W0:]
    d_med = float(np.sort(dark_ref)[_N_BLACK_PTS // 2])
    l_med = float(np.sort(light_ref)[_N_WHITE_PTS // 2])
    contrast = l_med - d_med
    mid = 0.5 * (d_med + l_med)
    rings_agree = (
        contrast > 0
        and np.count_nonzero(dark_ref < mid) >= _RING_AGREEMENT * _N_BLACK_PTS
        and np.count_nonzero(light_ref > mid) >= _RING_AGREEMENT * _N_WHITE_PTS
    )
    if not rings_agree:
        return TimecodeRead(ReadStatus.NOT_FOUND, corners=corners, path=path)
    if contrast < MIN_CONTRAST_LEVELS:
        return TimecodeRead(ReadStatus.LOW_CONTRAST, corners=corners, path=path)
    dark_at = _DARK_PLANE @ dark_ref
    light_at = _LIGHT_PLANE @ light_ref
    span = np.maximum(light_at - dark_at, 0.25 * contrast)
    flat = (data - dark_at) / span
    if find_rotation:
        k = int(np.argmin(flat[_ORIENT_CELLS]))
        if k:
            flat = np.rot90(flat.reshape(GRID_CELLS, GRID_CELLS), k).ravel()
            if corners is not None:
                corners = tuple(corners[(i + k) % 4] for i in range(4))
    coded_v = flat[_CODED_CELLS]
    margins = np.abs(coded_v - 0.5) * 2.0
    # every code, even two blended or torn ones, has the same crisp orientation corners
    if not (
        np.array_equal(coded_v[:4] < 0.5, _ORIENT_DARK) and margins[:4].min() >= AMBIGUOUS_MARGIN
    ):
        return TimecodeRead(ReadStatus.NOT_FOUND, corners=corners, path=path)
    n_amb = int(np.count_nonzero(margins < AMBIGUOUS_MARGIN))
    margin = float(margins.min())
    dark = coded_v < 0.5
    bits = dark[4:] ^ _WHITEN
    raw = np.packbits(bits[:PAYLOAD_BITS]).tobytes()
    data_bytes, crc = raw[:7], int.from_bytes(raw[7:11], "big")
    tags = bits[PAYLOAD_BITS:].reshape(4, 2)
    tag_vals = tags[:, 0].astype(int) * 2 + tags[:, 1]
    frame_no = int.from_bytes(data_bytes[:3], "big")
    crc_ok = zlib.crc32(_CRC_MAGIC + data_bytes) == crc
    if crc_ok and bool(np.all(tag_vals == frame_no % 4)):
        t_ms = int.from_bytes(data_bytes[3:], "big")
        return TimecodeRead(ReadStatus.OK, frame_no, t_ms, margin, n_amb, corners, path)
    if n_amb >= BLEND_MIN_CELLS:
        status = ReadStatus.BLENDED
    elif len(set(tag_vals.tolist())) > 1:
        status = ReadStatus.TORN
    else:
        status = ReadStatus.CORRUPT
    return TimecodeRead(status, None, None, margin, n_amb, corners, path)


# ---------------------------------------------------------------------------------------------
# Public API


def _layout_for(frame: np.ndarray, region: TimecodeLayout | None) -> TimecodeLayout:
    h, w = frame.shape[:2]
    if region is None:
        return TimecodeLayout.for_size(w, h)
    if (region.frame_w, region.frame_h) != (w, h):
        return region.scaled_to(w, h)
    return region


def stamp(
    frame: np.ndarray, frame_no: int, t_ms: int, region: TimecodeLayout | None = None
) -> TimecodeLayout:
    """Stamp a code into a frame, in place (cheap: one small block copy).

    Args:
        frame: uint8 image, (H, W) gray or (H, W, 3|4) colour; a 4th channel is set to 255.
        frame_no: frame number (stored mod 2**24).
        t_ms: sender's host time in ms (stored mod 2**32).
        region: where to stamp; default TimecodeLayout.for_size(W, H).

    Returns:
        The layout used (give it to the reader).

    Raises:
        MeasurementError: bad frame, or a region made for another frame size, off whole
            pixels, or outside the frame.
    """
    check_image(frame, "frame to stamp")
    h, w = frame.shape[:2]
    layout = TimecodeLayout.for_size(w, h) if region is None else region
    if (layout.frame_w, layout.frame_h) != (w, h):
        raise MeasurementError(
            f"stamp: region is for a {layout.frame_w}x{layout.frame_h} frame, frame is {w}x{h} "
            f"(shape {frame.shape})"
        )
    cell = layout.cell_w
    if (
        cell != layout.cell_h
        or cell != int(cell)
        or layout.x != int(layout.x)
        or layout.y != int(layout.y)
    ):
        raise MeasurementError(f"stamp: region {layout} is not on whole pixels")
    x, y, cell = int(layout.x), int(layout.y), int(cell)
    size = BLOCK_CELLS * cell
    if x < 0 or y < 0 or x + size > w or y + size > h:
        raise MeasurementError(f"stamp: region {layout.bbox} is outside the {w}x{h} frame")
    block = code_block(frame_no, t_ms)
    view = frame[y : y + size, x : x + size]
    channels = 1 if frame.ndim == 2 else frame.shape[2]
    if channels == 4:  # opaque: one uint32 per pixel holding (v, v, v, 255) as bytes
        quad = np.stack([block, block, block, np.full_like(block, 255)], axis=2)
        block = np.ascontiguousarray(quad).view(np.uint32)[..., 0]
        channels = 1
    # repeating each value cell * channels times along a row interleaves equal channels
    pixels = np.repeat(np.repeat(block, cell, axis=0), cell * channels, axis=1)
    view[...] = pixels.view(np.uint8).reshape(view.shape)
    return layout


class ScaledStamps:
    """Copies of one picture, each stamped with its own code and scaled to `size` (INTER_AREA):
    the reference frames of a static screen whose only change is its code.

    Where the picture's size is a whole multiple k of `size` (the share at half size), the
    picture is scaled once and each frame re-scales only the k-aligned block around the code
    (an area resize by a whole factor averages each k x k block on its own: the same bytes as
    scaling the whole stamped picture, tested); otherwise every frame is stamped and scaled whole.
    """

    def __init__(self, picture: np.ndarray, layout: TimecodeLayout, size: tuple[int, int]):
        """Args: picture: (H, W[, C]) uint8; layout: where its code goes; size: (w, h) out."""
        import cv2

        self.picture, self.layout, self.size = picture, layout, (int(size[0]), int(size[1]))
        h, w = picture.shape[:2]
        sw, sh = self.size
        k = w // sw if sw and sh and w % sw == 0 and h % sh == 0 else 0
        self.k = k if k and h // sh == k else 0
        self._base = None
        self._base_luma: np.ndarray | None = None
        self._inner: tuple | None = None  # frame_luma's code-independent edge, once known
        if self.k:
            x, y, bw, bh = layout.bbox
            x0, y0 = max(0, x) // k * k, max(0, y) // k * k
            x1 = min(w, -(-(x + bw) // k) * k)
            y1 = min(h, -(-(y + bh) // k) * k)
            self._box = (x0, y0, x1, y1)
            self._patch_layout = TimecodeLayout(
                x1 - x0, y1 - y0, layout.x - x0, layout.y - y0, layout.cell_w, layout.cell_h
            )
            self._base = cv2.resize(picture, self.size, interpolation=cv2.INTER_AREA)

    def frame(self, frame_no: int, t_ms: int = 0) -> np.ndarray:
        """A new array: the picture with the code (frame_no, t_ms), scaled to `size`."""
        import cv2

        if not self.k:
            img = self.picture.copy()
            stamp(img, frame_no, t_ms, self.layout)
            return cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
        x0, y0, x1, y1 = self._box
        k = self.k
        patch = self.picture[y0:y1, x0:x1].copy()
        stamp(patch, frame_no, t_ms, self._patch_layout)
        out = self._base.copy()
        out[y0 // k : y1 // k, x0 // k : x1 // k] = cv2.resize(
            patch, ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA
        )
        return out

    def frame_luma(self, frame_no: int, t_ms: int = 0) -> np.ndarray:
        """A new array: the luma of frame() (the same bytes as cv2's BGR -> gray of it), from
        the scaled picture's luma made once and the code's block alone.

        With cells of at least k pixels, the scaled block's edge (k x k areas that take in
        picture pixels) reads only the code's quiet zone, the same light level in every code:
        it is kept from the first frame. Inside it every k x k area is gray cells (v, v, v),
        whose area average is the same in each channel and whose luma is that average (cv2's
        weights sum to one in fixed point): the area average of the gray code alone."""
        if not self.k or self.picture.ndim == 2:
            return to_gray(self.frame(frame_no, t_ms))
        import cv2

        x0, y0, x1, y1 = self._box
        k = self.k
        if self._base_luma is None:
            self._base_luma = to_gray(self._base)
        out = self._base_luma.copy()
        cell = int(self._patch_layout.cell_w)
        inner = self._inner
        if inner is None or cell < k:
            patch = self.picture[y0:y1, x0:x1].copy()
            stamp(patch, frame_no, t_ms, self._patch_layout)
            luma = to_gray(
                cv2.resize(patch, ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
            )
            if cell >= k:  # its edge is every frame's
                bx, by = int(self._patch_layout.x), int(self._patch_layout.y)
                size = BLOCK_CELLS * cell
                rows = slice(-(-by // k), (by + size) // k)
                cols = slice(-(-bx // k), (bx + size) // k)
                self._inner = (luma, rows, cols, np.zeros((y1 - y0, x1 - x0), np.uint8))
        else:
            edge, rows, cols, canvas = inner
            stamp(canvas, frame_no, t_ms, self._patch_layout)
            small = cv2.resize(canvas, (edge.shape[1], edge.shape[0]), interpolation=cv2.INTER_AREA)
            luma = edge.copy()
            luma[rows, cols] = small[rows, cols]
        out[y0 // k : y1 // k, x0 // k : x1 // k] = luma
        return out


FEED_CELLS_PER_SHORT_SIDE = 24


def feed_layout(width: int, height: int) -> TimecodeLayout:
    """Where a live video feed (the agent's camera) carries its code: top-left, cells of 1/24 of
    the short side. Larger than the default so that the code still reads after the feed is shown
    in a pane a third of a tablet wide and that tablet is filmed by the lab camera. The contract
    between the feed's sender and every reader (the twin, the session driver, the harness)."""
    return TimecodeLayout.for_size(
        width, height, cell_px=max(MIN_CELL_PX, min(width, height) // FEED_CELLS_PER_SHORT_SIDE)
    )


def decode_fast(frame: np.ndarray, region: TimecodeLayout | None = None) -> TimecodeRead:
    """Read the code at a known region (direct captures: screenrecord, screencap, framebuffer).

    The region may be for a different frame size: it is scaled to this frame (a share scaled
    down by the encoder). A cropped or letterboxed frame needs decode() or the robust path.

    Args:
        frame: uint8 image, gray or colour.
        region: the sender's layout; default TimecodeLayout.for_size of this frame.

    Raises:
        MeasurementError: bad frame, or a region that does not fit it.
    """
    check_image(frame, "frame to decode", min_size=(BLOCK_CELLS, BLOCK_CELLS))
    layout = _layout_for(frame, region)
    x, y, bw, bh = layout.bbox
    h, w = frame.shape[:2]
    if x < -1 or y < -1 or x + bw > w + 1 or y + bh > h + 1:
        raise MeasurementError(
            f"decode: region {layout.bbox} is outside the {w}x{h} frame (shape {frame.shape})"
        )
    sampler = _layout_sampler(layout)
    return read_samples(sampler(frame), find_rotation=False, corners=sampler.corners, path="fast")


def decode(
    frame: np.ndarray, region: TimecodeLayout | None = None, *, robust: bool = True
) -> TimecodeRead:
    """Read the code of a frame: the fast path at `region`, then (if that fails) the robust path.

    Args:
        frame: uint8 image, gray or colour.
        region: the sender's layout; None skips the fast path when robust is True.
        robust: search the whole frame (OpenCV) when the fast path does not read OK.

    Returns:
        The OK read, else the most informative failure (BLENDED / TORN before NOT_FOUND).
    """
    check_image(frame, "frame to decode", min_size=(BLOCK_CELLS, BLOCK_CELLS))
    fast = None
    if region is not None or not robust:
        fast = decode_fast(frame, region)
        if fast.ok or not robust:
            return fast
    from harness.vision.locator import decode_robust  # OpenCV only when needed

    found = decode_robust(frame)
    if found.ok or fast is None:
        return found
    return fast if _RANK[fast.status] <= _RANK[found.status] else found


_RANK = {
    ReadStatus.OK: 0,
    ReadStatus.BLENDED: 1,
    ReadStatus.TORN: 2,
    ReadStatus.CORRUPT: 3,
    ReadStatus.LOW_CONTRAST: 4,
    ReadStatus.NOT_FOUND: 5,
}


def status_rank(status: ReadStatus) -> int:
    """Order of informativeness of a status (0 = OK, higher = less informative)."""
    return _RANK[status]


def unwrap_t_ms(t_ms: int, near_ms: float) -> float:
    """The full host time (ms) congruent to t_ms mod 2**32 that is nearest to near_ms."""
    base = near_ms - (near_ms % T_MS_MOD)
    cands = np.array([base - T_MS_MOD, base, base + T_MS_MOD]) + t_ms
    return float(cands[np.argmin(np.abs(cands - near_ms))])


def frame_no_delta(a: int, b: int) -> int:
    """a - b for frame numbers mod 2**24, in -2**23 .. 2**23 - 1."""
    return (a - b + FRAME_NO_MOD // 2) % FRAME_NO_MOD - FRAME_NO_MOD // 2
