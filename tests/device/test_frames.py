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


def _counting_source(rate_hz):
    from harness.device.frames import PollingSource

    class _Dev:  # the scheduler alone: grab is replaced below, no device is reached
        api_level = 34
        serial = "none"

    src = PollingSource(_Dev(), "screencap", rate_hz=rate_hz)
    src.grab = lambda device, timeout_s: np.zeros((4, 4, 3), np.uint8)
    return src


def test_paced_polling_never_requests_more_than_the_schedule_allows():
    src = _counting_source(40.0)
    times: list[float] = []
    src.run(lambda f: times.append(f.t_request) or False, 0.5)
    assert 1 <= len(times) <= int(0.5 * 40.0) + 1
    assert src.error is None


def test_polling_rate_must_be_positive():
    import pytest

    from harness.device.frames import PollingSource

    with pytest.raises(ValueError, match="rate_hz"):
        PollingSource(object(), "screencap", rate_hz=0)
