"""Events: the frame a screen enters a state, within one frame, despite animations and noise."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.vision import synthesis as sy
from harness.vision.events import (
    ChangeState,
    ReferenceState,
    TemplateState,
    TimecodeState,
    find_template,
    first_state,
    scores,
)
from harness.vision.timecode import TimecodeLayout
from harness.vision.video import read_video


@pytest.fixture(scope="module")
def connect(fixtures_dir):
    return read_video(fixtures_dir / "clips/connect.mp4")


def test_agent_video_shown_by_its_timecode(connect, truth):
    c = truth["connect"]
    w, h, cell, anchor = c["agent_layout"]
    state = TimecodeState(
        TimecodeLayout.for_size(w, h, cell_px=cell, anchor=anchor), region=tuple(c["pane"])
    )
    event = first_state(connect, state)
    assert abs(event.index - c["event_frame"]) <= 1
    assert event.t_s == pytest.approx(connect[event.index].t_s)
    assert event.uncertainty_s == pytest.approx(0.5 / 30, abs=1e-3)


def test_agent_video_found_anywhere_with_the_robust_path(connect, truth):
    event = first_state(connect, TimecodeState())
    assert abs(event.index - truth["connect"]["event_frame"]) <= 1


def test_badge_template_ignores_the_slide_in_animation(connect, truth, image):
    c = truth["connect"]
    bx, by = c["badge_xy"]
    region = (bx - 12, by - 8, 90 + 24, 28 + 16)  # where the badge settles
    state = TemplateState(image(c["badge"]), region=region, threshold=0.8)
    event = first_state(connect, state)
    assert abs(event.index - c["event_frame"]) <= 1
    anywhere = [s for _, s in scores(connect, TemplateState(image(c["badge"])))]
    assert max(anywhere[c["event_frame"] - 4 : c["event_frame"]]) > 0.8  # it was visible, moving


def test_crossfade_to_a_reference_screen():
    a, b = sy.ui_page(480, 300, 1), sy.ui_page(480, 300, 2)
    rng = np.random.default_rng(3)
    frames = []
    change_at = 17
    for i in range(40):
        alpha = np.clip((i - (change_at - 6)) / 6, 0, 1)  # a 6-frame crossfade ending at 17
        img = cv2.addWeighted(b, float(alpha), a, float(1 - alpha), 0)
        img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
        frames.append(cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 60])[1], 1))
    event = first_state(frames, ReferenceState(b, threshold=0.9))
    assert abs(event.index - change_at) <= 1


def test_a_one_frame_flash_does_not_count():
    base = sy.ui_page(320, 200, 4)
    frames = [base.copy() for _ in range(30)]
    for i in [8] + list(range(20, 30)):
        cv2.rectangle(frames[i], (50, 50), (250, 150), (0, 0, 255), -1)
    event = first_state(frames, ChangeState(base, min_fraction=0.2), hold_frames=3)
    assert event.index == 20
    assert first_state(frames, ChangeState(base), hold_frames=1).index == 8
    assert first_state(frames[:20], ChangeState(base), hold_frames=3) is None


def test_find_template_at_another_scale():
    screen = sy.ui_page(640, 400, 5)
    tpl = screen[100:160, 200:320].copy()
    big = cv2.resize(screen, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
    m = find_template(big, tpl, scales=(1.0, 1.25, 1.5, 1.75))
    assert m.scale == 1.5 and abs(m.x - 300) <= 2 and abs(m.y - 150) <= 2 and m.score > 0.9


def test_event_errors():
    frame = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(
        MeasurementError, match=r"region \(90, 90, 20, 20\) is not inside the 100x100 frame"
    ):
        find_template(frame, frame[:10, :10], region=(90, 90, 20, 20))
    with pytest.raises(MeasurementError, match="frame 1: expected dtype uint8"):
        first_state([frame, frame.astype(np.float32)], lambda f: 0.0, threshold=0.5)
    with pytest.raises(MeasurementError, match="no threshold"):
        first_state([frame], lambda f: 1.0)
