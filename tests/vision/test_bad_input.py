"""Bad input ends in a MeasurementError that names what is missing or wrong, never a traceback
from inside OpenCV or FFmpeg."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.vision import fidelity as fi
from harness.vision.annotation import find_stroke
from harness.vision.events import find_template
from harness.vision.latency import Capture, SentFrame, frame_latency
from harness.vision.locator import read_all
from harness.vision.timecode import ReadStatus, decode, decode_fast, stamp
from harness.vision.video import probe, read_image, read_video, write_video


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad/empty.mp4", r"empty\.mp4: file is empty \(0 bytes\)"),
        ("bad/not_video.mp4", r"not_video\.mp4: not a readable video file"),
        ("bad/truncated.mp4", r"truncated\.mp4: truncated or damaged MP4 file"),
        ("bad/truncated_faststart.mp4", r"truncated_faststart\.mp4: truncated"),
        ("bad/missing.mp4", r"missing\.mp4: no such video file"),
    ],
)
def test_bad_video_files(fixtures_dir, name, message):
    with pytest.raises(MeasurementError, match=message):
        read_video(fixtures_dir / name)
    if name != "bad/truncated_faststart.mp4":  # its header is whole; only its data is cut
        with pytest.raises(MeasurementError, match=message):
            probe(fixtures_dir / name)


def test_bad_files_through_the_high_level_calls(fixtures_dir, tmp_path):
    with pytest.raises(MeasurementError, match="empty.mp4"):
        fi.compare_files(fixtures_dir / "clips/sent.mp4", fixtures_dir / "bad/empty.mp4")
    with pytest.raises(MeasurementError, match="not_video.mp4"):
        fi.compare_files(fixtures_dir / "bad/not_video.mp4", fixtures_dir / "clips/sent.mp4")
    with pytest.raises(MeasurementError, match="is a directory"):
        read_video(tmp_path)
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(MeasurementError, match=r"x\.png: not a readable image"):
        read_image(tmp_path / "x.png")


def test_good_files_still_read(fixtures_dir):
    assert len(read_video(fixtures_dir / "clips/sent.mp4")) == 90
    assert len(read_video(fixtures_dir / "clips/sent_vp8.webm")) == 40
    info = probe(fixtures_dir / "clips/sent.mp4")
    assert (info.width, info.height, info.frames) == (640, 400, 90)
    assert read_video(fixtures_dir / "golden/direct_1280x800.png")[0].image.shape == (800, 1280, 3)


@pytest.mark.parametrize(
    "frame, message",
    [
        (
            np.zeros((400, 640), np.float32),
            r"expected dtype uint8, got float32 \(shape \(400, 640\)\)",
        ),
        (np.zeros((400, 640, 5), np.uint8), r"got \(400, 640, 5\) \(uint8\)"),
        (np.zeros((400,), np.uint8), r"got \(400,\)"),
        (np.zeros((0, 640), np.uint8), r"0 is smaller than"),
        (np.zeros((400, 640), bool), r"got bool"),
    ],
)
def test_frames_of_the_wrong_size_or_dtype(frame, message):
    for call in (
        decode_fast,
        decode,
        read_all,
        lambda f: stamp(f, 1, 1),
        lambda f: fi.ssim(f, f),
        lambda f: fi.psnr(f, f),
        lambda f: find_stroke(f, color=(0, 0, 255)),
        lambda f: find_template(f, np.zeros((8, 8), np.uint8)),
    ):
        with pytest.raises(MeasurementError, match=message):
            call(frame)


def test_writing_frames_of_different_sizes(tmp_path):
    frames = [np.zeros((64, 64, 3), np.uint8), np.zeros((32, 64, 3), np.uint8)]
    with pytest.raises(
        MeasurementError, match=r"frame 1 to write.*64x32 differs from the first frame's 64x64"
    ):
        write_video(tmp_path / "x.mp4", frames)
    with pytest.raises(MeasurementError, match="no frames to write"):
        write_video(tmp_path / "y.mp4", [])


def test_timeline_with_no_overlap():
    sent = [SentFrame(i, i / 30) for i in range(100)]
    caps = [Capture(1 + i / 30, 500 + i) for i in range(50)]
    with pytest.raises(
        MeasurementError,
        match=r"sent frames 0\.\.99\): read 50 unknown frame number\(s\) \[500, 501",
    ):
        frame_latency(sent, caps)
    caps = [Capture(i / 30, None, ReadStatus.NOT_FOUND) for i in range(10)]
    with pytest.raises(MeasurementError, match="10 of 10 capture"):
        frame_latency(sent, caps)
    with pytest.raises(MeasurementError, match="capture 1 has no finite capture time"):
        frame_latency(sent, [Capture(0.0, 1), Capture(float("nan"), 2)])
