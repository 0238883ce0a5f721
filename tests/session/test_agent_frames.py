"""The agent's timecoded frames, made in yuv420p, are the frames the RGB path made: the same luma,
chroma within a few levels at the code's edge, and the code reads back after the round trip."""

from __future__ import annotations

import numpy as np
import pytest
from av import VideoFrame

from harness.errors import SessionError
from harness.session.agent import AGENT_VIDEO_SIZE, AgentFrames, _agent_picture
from harness.vision.timecode import decode_fast, feed_layout, stamp

CHROMA_TOL = 3  # levels: the converter's chroma filter blends the picture into the code's edge


@pytest.mark.parametrize("size", [AGENT_VIDEO_SIZE, (320, 240), (384, 288)])
def test_yuv_frames_equal_the_rgb_path(size):
    w, h = size
    rgb = _agent_picture(w, h)
    layout = feed_layout(w, h)
    frames = AgentFrames(rgb, layout)
    for n, t_ms in [(1, 0), (4242, 123456789), ((1 << 24) - 1, (1 << 32) - 1)]:
        ours = frames.frame(n, t_ms)
        img = rgb.copy()
        stamp(img, n, t_ms, layout)
        ref = VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p").to_ndarray()
        assert ours.shape == ref.shape == (h * 3 // 2, w)
        assert np.array_equal(ours[:h], ref[:h])  # luma: byte for byte
        diff = np.abs(ours[h:].astype(int) - ref[h:].astype(int))
        assert diff.max() <= CHROMA_TOL
        back = VideoFrame.from_ndarray(ours, format="yuv420p").to_ndarray(format="bgr24")
        read = decode_fast(back, layout)
        assert read.ok and read.frame_no == n % (1 << 24) and read.t_ms == t_ms


def test_frames_are_new_arrays():
    frames = AgentFrames(_agent_picture(320, 240), feed_layout(320, 240))
    a, b = frames.frame(1, 10), frames.frame(2, 20)
    assert a is not b and not np.array_equal(a, b)
    assert (
        decode_fast(
            VideoFrame.from_ndarray(a, format="yuv420p").to_ndarray(format="bgr24"),
            feed_layout(320, 240),
        ).frame_no
        == 1
    )


def test_odd_sizes_are_refused_with_the_size():
    with pytest.raises(SessionError, match="321x240"):
        AgentFrames(np.zeros((240, 321, 3), np.uint8), feed_layout(321, 240))


def test_received_frame_converts_on_first_use_to_the_same_pixels():
    from harness.session.agent import ReceivedFrame

    frames = AgentFrames(_agent_picture(320, 240), feed_layout(320, 240))
    video = VideoFrame.from_ndarray(frames.frame(7, 70), format="yuv420p")
    expected = video.to_ndarray(format="bgr24")
    f = ReceivedFrame(None, 1.5, 3, video=video)
    assert f.size == (320, 240) and f._image is None  # nothing converted yet
    assert np.array_equal(f.image, expected)
    assert f.image is f.image  # converted once, then kept
    assert f.size == (320, 240) and (f.t_arrival, f.index) == (1.5, 3)
    plain = ReceivedFrame(expected, 2.0, 4)
    assert plain.image is expected
    with pytest.raises(ValueError):
        ReceivedFrame(None, 0.0, 0)


def test_pooled_video_frames_hold_the_same_pixels_as_new_ones():
    """video_frame: the pooled frames rewrite only the code's block, yet each holds exactly what
    `frame` makes, whatever code the frame held before; a forced keyframe is not inherited."""
    from av.video.frame import PictureType

    w, h = 320, 240
    frames = AgentFrames(_agent_picture(w, h), feed_layout(w, h))
    codes = [(n, n * 33 + 12345) for n in range(1, 3 * AgentFrames.FRAME_POOL + 2)]
    codes.append(((1 << 24) - 1, (1 << 32) - 1))  # every bit set, then none: no stale bits
    codes.append((0, 0))
    seen = set()
    for n, t_ms in codes:
        video = frames.video_frame(n, t_ms)
        seen.add(id(video))
        assert (video.width, video.height, video.format.name) == (w, h, "yuv420p")
        assert np.array_equal(video.to_ndarray(), frames.frame(n, t_ms))
        assert video.pict_type == PictureType.NONE
        video.pict_type = PictureType.I  # as an encoder asked for a keyframe does
        read = decode_fast(video.to_ndarray(format="bgr24"), feed_layout(w, h))
        assert read.ok and (read.frame_no, read.t_ms) == (n % (1 << 24), t_ms)
    assert len(seen) == AgentFrames.FRAME_POOL  # a pool, not a new frame each time
