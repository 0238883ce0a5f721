"""`hil vision ...` end to end through the top-level CLI."""

from __future__ import annotations

import json

import pytest

from harness.cli import build_parser, main
from harness.vision.synthesis import ScreenClip, resize
from harness.vision.timecode import TimecodeLayout
from harness.vision.video import write_video


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    assert (
        main(["vision", "encode", "--frames", "45", "--size", "640x360", "--fps", "30", str(out)])
        == 0
    )
    return out


def test_vision_commands_are_registered():
    parser = build_parser()
    args = parser.parse_args(["vision", "decode", "x.mp4"])
    assert args.vision_command == "decode"


def test_encode_writes_clip_and_timeline(clip):
    timeline = [json.loads(line) for line in clip.with_suffix(".jsonl").read_text().splitlines()]
    assert [t["frame"] for t in timeline] == list(range(45))
    assert timeline[3]["t"] == pytest.approx(0.1) and timeline[3]["t_ms"] == 100


def test_decode_gives_one_line_per_frame(clip, capsys):
    capsys.readouterr()
    assert main(["vision", "decode", str(clip)]) == 0
    rows = _lines(capsys)
    assert len(rows) == 45
    assert [r["frame"] for r in rows] == list(range(45))
    assert rows[30]["t_ms"] == 1000 and rows[30]["status"] == "ok"


def test_decode_reports_null_when_undecodable(tmp_path, capsys):
    video = tmp_path / "plain.mp4"
    screen = ScreenClip(320, 200, seed=2)
    write_video(video, [screen.content(i) for i in range(5)])
    assert main(["vision", "decode", str(video)]) == 0
    rows = _lines(capsys)
    assert [r["frame"] for r in rows] == [None] * 5 and rows[0]["status"] == "not_found"


def test_latency_of_a_delayed_recording(clip, tmp_path, capsys):
    """A 'recording' that shows each sent frame 4 frames (133 ms) late, captured at 30 fps."""
    from harness.vision.video import read_video

    frames = [f.image for f in read_video(clip)]
    delayed = [frames[0]] * 4 + frames[:-4]
    rec = tmp_path / "rec.mp4"
    write_video(rec, delayed)
    capsys.readouterr()
    assert main(["vision", "latency", str(clip.with_suffix(".jsonl")), str(rec)]) == 0
    rows = _lines(capsys)
    summary = rows[-1]["summary"]
    samples = rows[:-1]
    assert summary["censored"] == [0] and len(samples) == 40
    for s in samples:
        assert abs(s["latency_ms"] - 133.333) <= s["uncertainty_ms"] + 0.01


def test_fidelity_of_a_scaled_recording(clip, tmp_path, capsys):
    from harness.vision.video import read_video

    rec = tmp_path / "scaled.mp4"
    write_video(rec, [resize(f.image, 480, 270) for f in read_video(clip)])
    capsys.readouterr()
    assert main(["vision", "fidelity", "--no-vmaf", str(clip), str(rec)]) == 0
    rows = _lines(capsys)
    summary = rows[-1]["summary"]
    assert (
        summary["matched"] == 45
        and summary["dropped_frames"] == 0
        and summary["frozen_frames"] == 0
    )
    assert summary["ssim"]["min"] > 0.8
    assert summary["vmaf_skipped"] == "not requested"


def test_dual_view_decode_lists_both_codes(fixtures_dir, capsys):
    assert (
        main(["vision", "decode", "--all", str(fixtures_dir / "golden/camera_dual_view.jpg")]) == 0
    )
    (row,) = _lines(capsys)
    assert len(row["codes"]) == 2


def test_sender_size_uses_the_fast_path(tmp_path, capsys):
    screen = ScreenClip(1280, 800, seed=3, layout=TimecodeLayout.for_size(1280, 800))
    video = tmp_path / "share.mp4"
    write_video(video, [resize(screen.frame(i), 1152, 720) for i in range(3)])
    assert main(["vision", "decode", "--sender-size", "1280x800", str(video)]) == 0
    assert [r["frame"] for r in _lines(capsys)] == [0, 1, 2]


def test_errors_exit_2_with_a_message(fixtures_dir, capsys, tmp_path):
    assert main(["vision", "decode", str(fixtures_dir / "bad/empty.mp4")]) == 2
    assert "empty.mp4: file is empty" in capsys.readouterr().err
    assert (
        main(["vision", "encode", "--frames", "0", "--size", "320x200", str(tmp_path / "x.mp4")])
        == 2
    )
    assert "--frames must be at least 1" in capsys.readouterr().err
    assert main(["vision", "latency", str(tmp_path / "none.jsonl"), str(tmp_path / "x.mp4")]) == 2
    assert "no such timeline file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["vision", "encode", "--frames", "3", "--size", "big", "x.mp4"])
