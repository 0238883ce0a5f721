"""Annotations: a drawn stroke's path within 2 px of what the agent drew; when it appeared."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.vision import synthesis as sy
from harness.vision.annotation import find_stroke, first_appearance, path_error, stroke_mask

MAX_ERROR_PX = 2.0
STROKE = (40, 40, 230)


def _draw(img, path, width, colour=STROKE):
    out = img.copy()
    cv2.polylines(
        out, [np.round(path * 16).astype(np.int32)], False, colour, width, cv2.LINE_AA, shift=4
    )
    return out


def _jpeg(img, q=75):
    return cv2.imdecode(
        cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR
    )


def test_fixture_strokes_by_colour_and_by_difference(truth, image):
    for a in truth["annotations"]:
        before, after = image(a["before"]), image(a["after"])
        for stroke in (
            find_stroke(after, color=tuple(a["color"])),
            find_stroke(after, prev=before),
        ):
            err = path_error(stroke, a["path"])
            assert err.mean_px <= MAX_ERROR_PX and err.p95_px <= MAX_ERROR_PX, (a["after"], err)
            assert err.coverage >= 0.95


@pytest.mark.parametrize("seed", range(8))
def test_synthetic_strokes_within_two_pixels(seed):
    rng = np.random.default_rng(seed)
    before = _jpeg(sy.ui_page(800, 500, 100 + seed))
    path = sy.pen_path(rng, 800, 500)
    width = int(rng.integers(2, 11))
    after = _jpeg(_draw(sy.ui_page(800, 500, 100 + seed), path, width))
    for stroke in (find_stroke(after, color=STROKE), find_stroke(after, prev=before)):
        err = path_error(stroke, path)
        assert err.mean_px <= MAX_ERROR_PX and err.p95_px <= MAX_ERROR_PX, (width, err)
        assert err.coverage >= 0.95


def test_path_drawn_in_agent_coordinates():
    """The agent draws on a half-size copy of the screen: a transform maps the path."""
    rng = np.random.default_rng(21)
    path = sy.pen_path(rng, 800, 500)
    after = _draw(sy.ui_page(800, 500, 7), path, 5)
    agent_path = (path + 0.5) * 0.5 - 0.5  # pixel centres in the half-size copy
    to_screen = np.array([[2.0, 0, 0.5], [0, 2.0, 0.5]])
    err = path_error(find_stroke(after, color=STROKE), agent_path, transform=to_screen)
    assert err.mean_px <= MAX_ERROR_PX and err.p95_px <= MAX_ERROR_PX


def test_stroke_is_ordered_and_its_width_measured():
    img = np.full((200, 300, 3), 255, np.uint8)
    path = np.array([[30.0, 100.0], [270.0, 100.0]])
    stroke = find_stroke(_draw(img, path, 6), color=STROKE)
    xs = stroke.path[:, 0]
    assert np.all(np.diff(xs) > 0) or np.all(np.diff(xs) < 0)
    assert 5 <= stroke.width_px <= 9
    assert stroke.bbox[1] <= 97 and stroke.bbox[1] + stroke.bbox[3] >= 103


def test_icons_and_photos_of_the_same_colour_are_not_strokes():
    img = np.full((300, 400, 3), 250, np.uint8)
    cv2.circle(img, (80, 80), 40, STROKE, -1)  # a red icon: thick, not a stroke
    assert find_stroke(img, color=STROKE) is None
    path = np.array([[150.0, 200.0], [360.0, 230.0]])
    stroke = find_stroke(_draw(img, path, 4), color=STROKE)
    assert path_error(stroke, path).max_px <= MAX_ERROR_PX


def test_first_appearance_of_a_stroke_being_drawn():
    rng = np.random.default_rng(5)
    base = sy.ui_page(640, 400, 9)
    path = sy.pen_path(rng, 640, 400, steps=(90, 91))
    starts = 12
    frames = []
    for i in range(30):
        drawn = max(0, (i - starts + 1) * 8)  # the pen moves 8 points per frame from frame 12
        img = _draw(base, path[: drawn + 1], 5) if drawn >= 2 else base.copy()
        frames.append((i / 30, _jpeg(img, 80)))
    by_colour = first_appearance(frames, color=STROKE, hold_frames=2)
    by_diff = first_appearance(frames, by_difference=True, hold_frames=2)
    assert abs(by_colour.index - starts) <= 1 and abs(by_diff.index - starts) <= 1
    assert by_colour.t_s == pytest.approx(by_colour.index / 30)
    assert first_appearance(frames[:starts], color=STROKE) is None


def test_annotation_errors():
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(MeasurementError, match="colour, the previous frame, or both"):
        stroke_mask(img)
    with pytest.raises(
        MeasurementError,
        match=r"annotation frame has shape \(50, 50, 3\) but previous frame has shape "
        r"\(40, 50, 3\)",
    ):
        stroke_mask(img, prev=img[:40])
    with pytest.raises(MeasurementError, match="empty path"):
        path_error(np.zeros((0, 2)), [[1, 2]])
    with pytest.raises(MeasurementError, match="2x3"):
        path_error(np.ones((3, 2)), [[1, 2]], transform=np.eye(3))
    with pytest.raises(MeasurementError, match="by_difference"):
        first_appearance([img])
    assert find_stroke(img, color=STROKE) is None
