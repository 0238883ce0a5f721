"""Frame sources' pixel conversions: what the device sent, in BGR, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from harness.device.frames import _rgba_to_bgr


def test_rgba_to_bgr_is_the_channel_reversal_byte_for_byte():
    rgba = np.random.default_rng(3).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    bgr = _rgba_to_bgr(np.frombuffer(rgba.tobytes(), np.uint8).reshape(rgba.shape))
    assert bgr.shape == (37, 53, 3)
    assert bgr.flags["C_CONTIGUOUS"]
    assert np.array_equal(bgr, rgba[:, :, 2::-1])


def test_a_frame_converts_a_region_as_the_whole_image_would():
    from harness.device.frames import Frame

    rgba = np.random.default_rng(5).integers(0, 256, (40, 60, 4), dtype=np.uint8)
    lazy = Frame(None, 0, 1.0, 1.1, "screencap", rgba=rgba)
    region = lazy.region(7, 3, 50, 31)
    assert region.shape == (28, 43, 3) and np.array_equal(region, rgba[3:31, 7:50, 2::-1])
    assert np.array_equal(lazy.image, _rgba_to_bgr(rgba))  # converted on first use, then kept
    assert lazy.image is lazy.image and np.array_equal(lazy.region(7, 3, 50, 31), region)
    bgr = Frame(rgba[:, :, 2::-1].copy(), 1, 1.2, 1.3, "framebuffer")
    assert np.array_equal(bgr.region(7, 3, 50, 31), region)


def test_a_region_view_is_the_region_without_a_copy():
    from harness.device.frames import Frame
    from harness.vision.timecode import decode_fast, feed_layout, stamp

    bgr = np.random.default_rng(6).integers(0, 256, (260, 300, 3), dtype=np.uint8)
    layout = feed_layout(240, 200)  # the agent pane's code, as agent_to_tablet reads it
    stamp(bgr[20:220, 30:270], 4242, 777, layout)
    rgba = np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 255, np.uint8)])
    f = Frame(None, 0, 1.0, 1.1, "screencap", rgba=rgba)
    view = f.region_view(30, 20, 270, 220)
    assert np.shares_memory(view, rgba) and not view.flags.writeable
    assert np.array_equal(view, f.region(30, 20, 270, 220))
    read = decode_fast(view, layout)
    assert read.ok and (read.frame_no, read.t_ms) == (4242, 777)
    assert decode_fast(f.region(30, 20, 270, 220), layout) == read
    with pytest.raises(ValueError, match="rows to 261"):
        f.region_view(0, 0, 10, 261)


def _counting_source(rate_hz):
    from harness.device.frames import PollingSource

    class _Dev:  # the scheduler alone: grab is replaced below, no device is reached
        api_level = 34
        serial = "none"

    src = PollingSource(_Dev(), "screencap", rate_hz=rate_hz)
    src.grab_rgba = lambda device, timeout_s: np.zeros((4, 4, 4), np.uint8)
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


def test_raw_screencap_is_the_png_screencap_pixel_for_pixel(adb_server, start_twin):
    import pytest

    """Through the real adb server to a twin: the raw stream (read into one buffer) and the
    PNG through a file and sync show the same screen, the same pixels; polling for the top
    rows only reads those (the stream closed early) and they are the whole frame's rows."""
    from harness.device.adb import Device
    from harness.device.frames import PollingSource, grab_screencap_png, grab_screencap_raw

    tp = start_twin("android-emulator-api34")
    dev = Device(f"127.0.0.1:{tp.port}", port=adb_server.port)
    for _ in range(3):  # the status bar's clock may turn between two captures: a new pair
        raw = grab_screencap_raw(dev)
        png = grab_screencap_png(dev)
        if np.array_equal(raw, png):
            break
    assert raw.shape == png.shape and raw.shape[2] == 3
    assert raw.flags["C_CONTIGUOUS"]
    assert np.array_equal(raw, png)
    frames = []
    PollingSource(dev, "screencap").run(lambda f: frames.append(f) or len(frames) >= 3, 10.0)
    assert len(frames) == 3 and any(np.array_equal(f.image, raw) for f in frames)
    rows = raw.shape[0] // 3
    part: list = []
    for _ in range(3):  # a new pair if the clock turned
        part.clear()
        src = PollingSource(dev, "screencap", rows=rows)
        src.run(lambda f: part.append(f) or len(part) >= 4, 10.0)
        whole = grab_screencap_raw(dev)  # the twin and the adb server still answer whole frames
        if all(np.array_equal(f.region(0, 0, whole.shape[1], rows), whole[:rows]) for f in part):
            break
    assert src.error is None and len(part) == 4
    assert part[0].image.shape == whole.shape  # the first read whole (it tells the header)
    assert all(f.image.shape == (rows, whole.shape[1], 3) for f in part[1:])
    assert all(np.array_equal(f.region(0, 0, whole.shape[1], rows), whole[:rows]) for f in part)
    with pytest.raises(ValueError, match="rows"):
        part[1].region(0, 0, 10, rows + 1)
