"""Blank, loading and secure ("hidden by the app") stretches on synthetic frame sequences."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.twin import textscreens as ts
from harness.vision import stretches as st

FPS = 15.0


def _content(i: int) -> np.ndarray:
    rgb, _ = ts.render("settings", 640, 400)
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.putText(img, f"{i}", (500, 380), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    return img


def _blank(level: int = 0) -> np.ndarray:
    img = np.full((400, 640, 3), level, np.uint8)
    img[:12] = 40  # a status bar stays: still blank
    return img


def _spinner(i: int) -> np.ndarray:
    img = np.full((400, 640, 3), 250, np.uint8)
    angle = (i * 30) % 360
    cv2.ellipse(img, (320, 200), (24, 24), 0, angle, angle + 270, (120, 120, 120), 5)
    return img


def _seq(parts):
    frames = [f for part in parts for f in part]
    return frames, [i / FPS for i in range(len(frames))]


def test_blank_loading_and_content_are_told_apart_with_count_longest_and_when():
    frames, times = _seq(
        [
            [_content(i) for i in range(15)],  # 1 s of content, a clock ticking at the bottom
            [_blank() for _ in range(30)],  # 2 s black
            [_content(i) for i in range(15)],
            [_spinner(i) for i in range(24)],  # 1.6 s loading animation
            [_content(0) for _ in range(8)],
            [_blank(255) for _ in range(10)],  # 0.67 s white: too short to report
            [_content(1) for _ in range(5)],
        ]
    )
    kinds = st.classify(frames, times)
    assert kinds[15:45] == [st.BLANK] * 30
    assert kinds[60:84] == [st.LOADING] * 24
    assert st.CONTENT in kinds[:15] and set(kinds[:15]) == {st.CONTENT}
    found = st.stretches(kinds, times)
    assert [(s.kind, s.frames) for s in found] == [(st.BLANK, 30), (st.LOADING, 24)]
    assert found[0].start_s == pytest.approx(15 / FPS)
    assert found[0].duration_s == pytest.approx(2.0)
    assert found[1].duration_s == pytest.approx(24 / FPS)
    summ = st.summary(found)
    assert summ[st.BLANK] == {"count": 1, "longest_s": 2.0, "when_s": [1.0]}
    assert summ[st.LOADING]["count"] == 1 and summ[st.HIDDEN]["count"] == 0


def test_a_black_share_while_the_window_is_secure_is_hidden_by_the_app_not_blank():
    frames, times = _seq([[_content(i) for i in range(10)], [_blank() for _ in range(30)]])
    hidden = [(10 / FPS - 0.01, 100.0)]
    kinds = st.classify(frames, times, hidden=hidden)
    assert kinds[10:] == [st.HIDDEN] * 30
    found = st.stretches(kinds, times)
    assert [s.kind for s in found] == [st.HIDDEN]
    assert st.content_mask(kinds) == [True] * 10 + [False] * 30
    # the device was polled late: black frames before its first secure answer are the window's
    late = st.classify(frames, times, hidden=[(20 / FPS, 100.0)])
    assert late[10:] == [st.HIDDEN] * 30
    # the same frames without the device's word for it: a blank stretch
    assert [s.kind for s in st.stretches(st.classify(frames, times), times)] == [st.BLANK]


def test_a_blinking_cursor_on_a_text_page_is_not_a_loading_animation():
    base = _content(0)
    frames = []
    for i in range(45):
        img = base.copy()
        if (i // 7) % 2:
            img[100:120, 300:302] = 0
        frames.append(img)
    times = [i / FPS for i in range(45)]
    assert st.stretches(st.classify(frames, times), times) == []


def test_window_is_secure_reads_the_focused_windows_flags():
    text = (
        "WINDOW MANAGER WINDOWS (dumpsys window windows)\n"
        "  Window #0 Window{41e0b6b8 u0 com.android.settings/.MainActivity}:\n"
        "    mAttrs=WM.LayoutParams{(0,0)(fillxfill) ty=BASE_APPLICATION fl=#81812100 fmt=-1}\n"
        "  Window #1 Window{41e0c000 u0 StatusBar}:\n"
        "    mAttrs=WM.LayoutParams{(0,0)(fillx25) ty=STATUS_BAR fl=#1840040 fmt=-3}\n\n"
        "  mCurrentFocus=Window{41e0b6b8 u0 com.android.settings/.MainActivity}\n"
    )
    assert st.window_is_secure(text)
    assert not st.window_is_secure(text.replace("fl=#81812100", "fl=#81810100"))
    names = text.replace("fl=#81812100", "fl=LAYOUT_IN_SCREEN SECURE HARDWARE_ACCELERATED")
    assert st.window_is_secure(names)
    assert not st.window_is_secure(names.replace(" SECURE", ""))
    assert not st.window_is_secure("no windows")


def test_bad_frames_are_one_clear_error():
    with pytest.raises(MeasurementError, match="frame 1"):
        st.classify([_blank(), np.zeros((4, 4), np.float32)], [0.0, 0.1])
