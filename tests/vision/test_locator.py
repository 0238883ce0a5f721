"""The robust (camera) path: find codes anywhere, under distortion, in any rotation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.vision import synthesis as sy
from harness.vision.locator import decode_robust, read_all
from harness.vision.timecode import ReadStatus, TimecodeLayout, stamp


def test_golden_camera_frames(truth, image):
    seen = 0
    for name, t in truth["frames"].items():
        if t["kind"] != "camera":
            continue
        read = decode_robust(image(name))
        assert read.ok, (name, read)
        assert (read.frame_no, read.t_ms) == (t["frame"], t["t_ms"]), name
        seen += 1
    assert seen >= 8


def test_golden_mid_refresh_frames_are_recognised(truth, image):
    for name, t in truth["frames"].items():
        if t["kind"] != "mid_refresh":
            continue
        read = decode_robust(image(name))
        allowed = [tuple(v) for v in t["either"]]
        assert read.status in (ReadStatus.BLENDED, ReadStatus.TORN) or (
            read.ok and (read.frame_no, read.t_ms) in allowed
        ), (name, read)


def test_golden_dual_view_shows_both_codes(truth, image):
    t = truth["frames"]["golden/camera_dual_view.jpg"]
    reads = [r for r in read_all(image("golden/camera_dual_view.jpg")) if r.ok]
    got = sorted((r.frame_no, r.t_ms) for r in reads)
    assert got == sorted([tuple(t["sender"]), tuple(t["receiver"])])
    left = min(reads, key=lambda r: r.center[0])
    assert (left.frame_no, left.t_ms) == tuple(t["sender"])


def test_frame_without_code_has_no_reads(image):
    assert read_all(image("golden/no_code_1280x800.png")) == []
    assert decode_robust(image("golden/no_code_1280x800.png")).status is ReadStatus.NOT_FOUND


@pytest.mark.parametrize(
    "rotation", [None, cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_COUNTERCLOCKWISE]
)
def test_any_rotation_reads_and_corners_follow_the_code(rotation):
    frame = np.full((400, 640, 3), 235, np.uint8)
    layout = stamp(frame, 31337, 42, TimecodeLayout.for_size(640, 400, cell_px=12, anchor="center"))
    img = frame if rotation is None else cv2.rotate(frame, rotation)
    read = decode_robust(img)
    assert read.ok and read.frame_no == 31337
    # the reported top-left corner is the code's own, wherever the rotation put it
    tl = np.array(layout.corners()[0])
    h, w = frame.shape[:2]
    expect = {
        None: tl,
        cv2.ROTATE_180: [w - 1 - tl[0], h - 1 - tl[1]],
        cv2.ROTATE_90_CLOCKWISE: [h - 1 - tl[1], tl[0]],
        cv2.ROTATE_90_COUNTERCLOCKWISE: [tl[1], w - 1 - tl[0]],
    }[rotation]
    assert np.allclose(read.corners[0], expect, atol=1.5)


def test_many_codes_in_one_frame():
    frame = np.full((720, 1280), 250, np.uint8)
    truth = set()
    for k, (x, y) in enumerate([(20, 20), (700, 40), (60, 420), (900, 400)]):
        tile = np.full((260, 260), 250, np.uint8)
        stamp(
            tile, 100 + k, 1000 * k, TimecodeLayout.for_size(260, 260, cell_px=16, anchor="center")
        )
        frame[y : y + 260, x : x + 260] = tile
        truth.add((100 + k, 1000 * k))
    reads = read_all(frame)
    assert {(r.frame_no, r.t_ms) for r in reads if r.ok} == truth


def test_large_frame_and_small_code_uses_the_full_resolution_retry():
    frame = np.full((1200, 1920, 3), 240, np.uint8)
    stamp(
        frame,
        9,
        9,
        TimecodeLayout.for_size(1920, 1200, cell_px=5, anchor="bottom-left", margin_px=40),
    )
    assert decode_robust(frame).ok


def test_camera_views_of_compressed_share():
    rng = np.random.default_rng(7)
    lay = TimecodeLayout.for_size(640, 400, cell_px=16, margin_px=8)
    screen = sy.ScreenClip(640, 400, seed=5, layout=lay)
    frames = sy.transcode([screen.frame(i) for i in range(60)], bit_rate=400_000)
    for i, f in enumerate(frames):
        cam = sy.random_camera(rng, (640, 400), (1280, 720), severity=0.8)
        read = decode_robust(sy.camera_view(f, cam, rng))
        assert not read.ok or (read.frame_no, read.t_ms) == screen.truth(i)
        assert read.ok, (i, read, cam)


def test_bad_frame_raises():
    with pytest.raises(MeasurementError, match=r"camera frame.*int32"):
        read_all(np.zeros((100, 100), np.int32))
    with pytest.raises(MeasurementError, match="smaller than"):
        read_all(np.zeros((10, 10), np.uint8))
