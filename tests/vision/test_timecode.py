"""The timecode codec: layout, stamp, fast-path decode, and the no-wrong-decode guarantees."""

from __future__ import annotations

import itertools
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.vision import timecode as tc
from harness.vision.timecode import (
    FRAME_NO_MOD,
    T_MS_MOD,
    ReadStatus,
    TimecodeLayout,
    decode,
    decode_fast,
    stamp,
)


@pytest.mark.parametrize("shape", [(400, 640), (400, 640, 1), (400, 640, 3), (400, 640, 4)])
@pytest.mark.parametrize(
    "frame_no, t_ms", [(0, 0), (1, 33), (FRAME_NO_MOD - 1, T_MS_MOD - 1), (123_456, 987_654_321)]
)
def test_stamp_then_decode_round_trips(shape, frame_no, t_ms):
    frame = np.full(shape, 128, np.uint8)
    layout = stamp(frame, frame_no, t_ms)
    read = decode_fast(frame, layout)
    assert read.ok, read
    assert (read.frame_no, read.t_ms) == (frame_no, t_ms)
    assert read.margin > 0.99 and read.ambiguous_cells == 0 and not read.mixed
    if len(shape) == 3 and shape[2] == 4:
        x, y, w, h = layout.bbox
        assert np.all(frame[y : y + h, x : x + w, 3] == 255)


def test_values_wrap_modulo_their_width():
    frame = np.zeros((400, 640), np.uint8)
    stamp(frame, FRAME_NO_MOD + 5, T_MS_MOD + 7)
    read = decode_fast(frame)
    assert (read.frame_no, read.t_ms) == (5, 7)


def test_layout_for_size_defaults_and_anchors():
    assert TimecodeLayout.for_size(1280, 800).cell_w == 16
    assert TimecodeLayout.for_size(1920, 1200).cell_w == 24
    assert TimecodeLayout.for_size(2560, 1600).cell_w == 32
    lay = TimecodeLayout.for_size(1280, 800, anchor="bottom-right", margin_px=10)
    x, y, w, h = lay.bbox
    assert (x + w, y + h) == (1270, 790) and w == h == 14 * 16
    lay = TimecodeLayout.for_size(1280, 800, anchor="center", cell_px=10)
    assert lay.bbox == ((1280 - 140) // 2, (800 - 140) // 2, 140, 140)
    scaled = TimecodeLayout.for_size(2560, 1600).scaled_to(1152, 720)
    assert scaled.cell_w == pytest.approx(32 * 0.45) and scaled.frame_w == 1152
    with pytest.raises(MeasurementError, match="does not fit"):
        TimecodeLayout.for_size(100, 60, cell_px=10)
    with pytest.raises(MeasurementError, match="unknown anchor"):
        TimecodeLayout.for_size(1280, 800, anchor="middle")


@pytest.mark.parametrize(
    "sender, shared",
    [
        ((2560, 1600), (1152, 720)),
        ((1920, 1200), (1280, 800)),
        ((1280, 800), (1152, 720)),
        ((1280, 800), (1280, 720)),
    ],
)
def test_fast_path_reads_a_scaled_share(sender, shared):
    frame = np.full((sender[1], sender[0], 3), 200, np.uint8)
    layout = stamp(frame, 4242, 1_000_000, TimecodeLayout.for_size(*sender, anchor="top-right"))
    small = cv2.resize(frame, shared, interpolation=cv2.INTER_AREA)
    read = decode_fast(small, layout)
    assert read.ok and read.frame_no == 4242


def test_golden_direct_frames(truth, image):
    for name, t in truth["frames"].items():
        if t["kind"] != "direct":
            continue
        read = decode_fast(image(name), TimecodeLayout.for_size(*t["sender_size"]))
        assert read.ok, name
        assert (read.frame_no, read.t_ms) == (t["frame"], t["t_ms"]), name


def test_no_code_reads_not_found(image):
    frame = image("golden/no_code_1280x800.png")
    assert decode_fast(frame, TimecodeLayout.for_size(1280, 800)).status is ReadStatus.NOT_FOUND
    assert decode(frame).status is ReadStatus.NOT_FOUND


def test_decode_falls_back_to_the_robust_path_for_a_letterboxed_share():
    frame = np.full((800, 1280, 3), 230, np.uint8)
    layout = stamp(frame, 77, 770)
    box = np.zeros((720, 1280, 3), np.uint8)
    box[:, 64:1216] = cv2.resize(frame, (1152, 720), interpolation=cv2.INTER_AREA)
    assert not decode_fast(box, layout).ok
    read = decode(box, layout)
    assert read.ok and read.frame_no == 77 and read.path == "robust"


def _two_codes(a: int, b: int) -> tuple[np.ndarray, np.ndarray, TimecodeLayout]:
    fa, fb = np.full((400, 640), 255, np.uint8), np.full((400, 640), 255, np.uint8)
    lay = stamp(fa, a, a * 33)
    stamp(fb, b, b * 33, lay)
    return fa, fb, lay


def test_even_blend_of_two_codes_reads_blended():
    fa, fb, lay = _two_codes(1000, 1001)
    rng = np.random.default_rng(0)
    noisy = np.clip(cv2.addWeighted(fa, 0.5, fb, 0.5, 0) + rng.normal(0, 3, fa.shape), 0, 255)
    assert decode_fast(noisy.astype(np.uint8), lay).status is ReadStatus.BLENDED


@pytest.mark.parametrize("alpha, dominant", [(0.4, 1001), (0.45, 1001), (0.55, 1000), (0.6, 1000)])
def test_dominant_code_of_a_blend_is_read_and_flagged_mixed(alpha, dominant):
    fa, fb, lay = _two_codes(1000, 1001)
    read = decode_fast(cv2.addWeighted(fa, alpha, fb, 1 - alpha, 0), lay)
    assert read.ok and read.frame_no == dominant and read.mixed


def test_torn_code_never_reads_wrong():
    fa, fb, lay = _two_codes(2001, 2002)  # differ mod 4: the tear tags disagree
    x, y, w, h = lay.bbox
    statuses = set()
    for cut in range(y, y + h, 4):
        torn = fa.copy()
        torn[:cut] = fb[:cut]
        read = decode_fast(torn, lay)
        statuses.add(read.status)
        if read.ok:
            assert read.frame_no in (2001, 2002)
    assert ReadStatus.TORN in statuses


def test_crc_detects_every_error_of_up_to_six_bits():
    """The 88 coded bits form a code of minimum distance > 6: no pattern of 1..6 bit flips
    turns one valid code into another (checked exhaustively through the CRC's syndromes)."""
    zero = bytes(7)
    c0 = zlib.crc32(tc._CRC_MAGIC + zero)
    syn = []
    for i in range(56):
        d = bytearray(7)
        d[i // 8] |= 0x80 >> (i % 8)
        syn.append(zlib.crc32(tc._CRC_MAGIC + bytes(d)) ^ c0)
    syn += [1 << (31 - j) for j in range(32)]
    assert 0 not in syn and len(set(syn)) == 88  # weights 1 and 2
    singles = set(syn)
    pairs: dict[int, list[tuple[int, int]]] = {}
    for a, b in itertools.combinations(range(88), 2):
        pairs.setdefault(syn[a] ^ syn[b], []).append((a, b))
    assert not singles & set(pairs)  # weight 3
    assert all(len(v) == 1 for v in pairs.values())  # weight 4 (two disjoint pairs)
    triples: dict[int, list[tuple[int, ...]]] = {}
    for t in itertools.combinations(range(88), 3):
        v = syn[t[0]] ^ syn[t[1]] ^ syn[t[2]]
        for p in pairs.get(v, ()):  # weight 5
            assert set(p) & set(t), (p, t)
        for other in triples.get(v, ()):  # weight 6
            assert set(other) & set(t), (other, t)
        triples.setdefault(v, []).append(t)


def test_random_codes_never_decode():
    """20,000 code-shaped patterns with random data cells: none may read OK."""
    rng = np.random.default_rng(99)
    n_cells = tc.GRID_CELLS * tc.GRID_CELLS
    ring = np.concatenate([np.full(tc._N_BLACK_PTS, 10.0), np.full(tc._N_WHITE_PTS, 240.0)])
    ok = 0
    statuses = set()
    for _ in range(20_000):
        cells = rng.integers(0, 2, n_cells).astype(bool)
        cells[tc._ORIENT_CELLS] = tc._ORIENT_DARK  # even the orientation is right
        data = np.repeat(np.where(cells, 10.0, 240.0), tc._N_SUB)
        read = tc.read_samples(
            np.concatenate([data, ring]), find_rotation=False, corners=None, path="fast"
        )
        ok += read.ok
        statuses.add(read.status)
    assert ok == 0
    assert statuses <= {ReadStatus.CORRUPT, ReadStatus.TORN}


def test_bad_frames_raise_clear_errors():
    with pytest.raises(MeasurementError, match=r"float64.*\(400, 640\)"):
        decode_fast(np.zeros((400, 640)))
    with pytest.raises(MeasurementError, match=r"uint16"):
        stamp(np.zeros((400, 640), np.uint16), 1, 1)
    with pytest.raises(MeasurementError, match=r"\(400, 640, 2\)"):
        decode_fast(np.zeros((400, 640, 2), np.uint8))
    with pytest.raises(MeasurementError, match=r"1280x800 frame, frame is 640x400"):
        stamp(np.zeros((400, 640), np.uint8), 1, 1, TimecodeLayout.for_size(1280, 800))
    with pytest.raises(MeasurementError, match="whole pixels"):
        stamp(
            np.zeros((720, 1152), np.uint8),
            1,
            1,
            TimecodeLayout.for_size(2560, 1600).scaled_to(1152, 720),
        )
    with pytest.raises(MeasurementError, match="does not fit"):
        decode_fast(np.zeros((40, 60), np.uint8))
    with pytest.raises(MeasurementError, match="expected a numpy array"):
        decode_fast([[0, 1], [2, 3]])


def test_wrap_helpers():
    assert tc.frame_no_delta(3, FRAME_NO_MOD - 2) == 5
    assert tc.frame_no_delta(FRAME_NO_MOD - 2, 3) == -5
    assert tc.unwrap_t_ms(100, near_ms=T_MS_MOD * 3 + 50) == T_MS_MOD * 3 + 100
    assert tc.unwrap_t_ms(T_MS_MOD - 10, near_ms=T_MS_MOD * 2 + 5) == T_MS_MOD * 2 - 10


def test_codec_module_imports_without_opencv():
    code = (
        "import sys, harness.vision.timecode; sys.exit('cv2' in sys.modules or 'av' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
