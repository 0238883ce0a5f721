"""Frame sources' pixel conversions: what the device sent, in BGR, byte for byte."""

from __future__ import annotations

import numpy as np

from harness.device.frames import _rgba_to_bgr


def test_rgba_to_bgr_is_the_channel_reversal_byte_for_byte():
    rgba = np.random.default_rng(3).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    bgr = _rgba_to_bgr(np.frombuffer(rgba.tobytes(), np.uint8).reshape(rgba.shape))
    assert bgr.shape == (37, 53, 3)
    assert bgr.flags["C_CONTIGUOUS"]
    assert np.array_equal(bgr, rgba[:, :, 2::-1])
