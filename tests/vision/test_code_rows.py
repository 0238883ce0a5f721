"""A feed's code read from the pane's top rows only: the same read as from the whole pane."""

from __future__ import annotations

import numpy as np

from harness.session.media import CODE_ROWS_MARGIN_PX, code_rows_layout
from harness.vision import synthesis as sy
from harness.vision.timecode import decode_fast, feed_layout, stamp


def test_the_code_rows_read_as_the_whole_pane():
    for w, h in ((384, 288), (426, 240), (240, 426)):
        pane = sy.resize(sy.ScreenClip(w, h, seed=w).content(0), w, h)
        layout = feed_layout(w, h)
        stamp(pane, 123_456, 789, layout)
        rows = code_rows_layout(layout)
        _, y, _, bh = layout.bbox
        assert rows.frame_h == min(h, y + bh + CODE_ROWS_MARGIN_PX) < h
        whole, top = decode_fast(pane, layout), decode_fast(pane[: rows.frame_h], rows)
        assert top.ok and (top.frame_no, top.t_ms) == (123_456, 789)
        assert top == whole
        noisy = np.clip(pane + np.random.default_rng(1).normal(0, 40, pane.shape), 0, 255)
        noisy = noisy.astype(np.uint8)
        assert decode_fast(noisy[: rows.frame_h], rows) == decode_fast(noisy, layout)
