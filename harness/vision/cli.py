"""`hil vision ...`: offline work on recordings (encode, decode, latency, fidelity).

Heavy imports (OpenCV, PyAV) stay inside the command functions so that `hil --help` is fast.
Every command writes JSON lines to stdout; errors are MeasurementErrors (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.errors import MeasurementError

ENCODE_CODE_FILL = 0.8  # the code's side as a fraction of the clip's short side


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 64 or h < 64 or w > 8192 or h > 8192:
        raise argparse.ArgumentTypeError(f"size {w}x{h} out of range (64..8192)")
    return w, h


def _emit(obj: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add the `vision` command group to the top-level `hil` parser."""
    vision = subparsers.add_parser("vision", help="timecodes, latency and fidelity on recordings")
    sub = vision.add_subparsers(dest="vision_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("encode", help="write a timecoded clip and its sent timeline (OUT.jsonl)")
    p.add_argument("out", metavar="OUT.mp4", type=Path)
    p.add_argument("--frames", type=int, required=True, help="number of frames")
    p.add_argument("--size", type=_size, required=True, help="WIDTHxHEIGHT, e.g. 1280x720")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate (default 30)")
    p.add_argument("--crf", type=int, default=18, help="H.264 constant quality (default 18)")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="one JSON line per video frame: its frame number and time")
    p.add_argument("video", metavar="VIDEO", type=Path)
    p.add_argument(
        "--sender-size",
        type=_size,
        default=None,
        help="read the code at the standard layout of this sender size first (fast path)",
    )
    p.add_argument("--all", action="store_true", help="list every code in view (dual view)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("latency", help="per-frame latency of VIDEO against the sent timeline")
    p.add_argument("sent", metavar="SENT.jsonl", type=Path)
    p.add_argument("video", metavar="VIDEO", type=Path)
    p.add_argument(
        "--offset",
        type=float,
        default=0.0,
        help="capture clock minus timeline clock, s: capture time = pts + offset",
    )
    p.add_argument(
        "--dual",
        action="store_true",
        help="VIDEO is a camera view of both displays: latency = difference of the codes",
    )
    p.add_argument(
        "--sender",
        default="newer",
        choices=("newer", "left", "right", "top", "bottom"),
        help="dual view: which code is the sender's (default: the newer one)",
    )
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("fidelity", help="SSIM / PSNR / freezes of VIDEO against REFERENCE")
    p.add_argument("reference", metavar="REFERENCE", type=Path)
    p.add_argument("video", metavar="VIDEO", type=Path)
    p.add_argument("--align", default="auto", choices=("auto", "timecode", "ssim"))
    p.add_argument("--no-vmaf", action="store_true", help="do not try ffmpeg's libvmaf")
    p.set_defaults(func=cmd_fidelity)


def encode_clip(
    out: Path, frames: int, size: tuple[int, int], fps: float = 30.0, crf: int = 18
) -> Path:
    """Write a timecoded clip (frame i carries frame number i, t_ms = round(i * 1000 / fps))
    and its timeline beside it (OUT.jsonl: {"frame": i, "t": i / fps, "t_ms": ...}).

    Returns:
        The timeline's path.

    Raises:
        MeasurementError: bad arguments or an encoder failure.
    """
    import cv2
    import numpy as np

    from harness.vision.latency import SentFrame, write_timeline
    from harness.vision.timecode import BLOCK_CELLS, TimecodeLayout, stamp
    from harness.vision.video import write_video

    if frames < 1:
        raise MeasurementError(f"encode: --frames must be at least 1, got {frames}")
    if fps <= 0:
        raise MeasurementError(f"encode: --fps must be positive, got {fps}")
    w, h = size[0] - size[0] % 2, size[1] - size[1] % 2
    cell = max(4, int(min(w, h) * ENCODE_CODE_FILL) // BLOCK_CELLS)
    layout = TimecodeLayout.for_size(w, h, anchor="center", cell_px=cell)
    x, y, bw, bh = layout.bbox

    def gen():
        for i in range(frames):
            img = np.full((h, w, 3), 255, np.uint8)
            t_ms = round(i * 1000 / fps)
            stamp(img, i, t_ms, layout)
            # a progress bar and the number, for people watching
            bar = int((i % max(1, round(fps))) / max(1, round(fps)) * w)
            cv2.rectangle(img, (0, h - 6), (bar, h - 1), (0, 0, 0), -1)
            label = f"frame {i}  t {t_ms} ms"
            scale = max(0.4, min(w, h) / 900)
            cv2.putText(
                img,
                label,
                (8, max(14, int(y - 8))),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (0, 0, 0),
                max(1, int(scale * 2)),
                cv2.LINE_AA,
            )
            yield img

    out = Path(out)
    write_video(out, gen(), fps=fps, crf=crf)
    timeline = out.with_suffix(".jsonl")
    write_timeline(timeline, (SentFrame(i, i / fps) for i in range(frames)))
    return timeline


def cmd_encode(args: argparse.Namespace) -> int:
    timeline = encode_clip(args.out, args.frames, args.size, args.fps, args.crf)
    _emit(
        {
            "video": str(args.out),
            "timeline": str(timeline),
            "frames": args.frames,
            "size": list(args.size),
            "fps": args.fps,
        }
    )
    return 0


def _reads(video: Path, sender_size: tuple[int, int] | None, every: bool):
    from harness.vision.locator import read_all
    from harness.vision.timecode import TimecodeLayout, decode
    from harness.vision.video import read_frames

    layout = TimecodeLayout.for_size(*sender_size) if sender_size else None
    for vf in read_frames(video):
        if every:
            yield vf, read_all(vf.image)
        else:
            yield vf, [decode(vf.image, layout)]


def cmd_decode(args: argparse.Namespace) -> int:
    for vf, reads in _reads(args.video, args.sender_size, args.all):
        row: dict[str, Any] = {"index": vf.index, "t": round(vf.t_s, 6)}
        if args.all:
            row["codes"] = [r.to_dict() for r in reads if r.ok]
        else:
            r = reads[0]
            row.update({"frame": r.frame_no, "t_ms": r.t_ms, "status": str(r.status)})
        _emit(row)
    return 0


def cmd_latency(args: argparse.Namespace) -> int:
    from harness.vision.latency import Capture, dual_view_latency, frame_latency, load_timeline

    sent = load_timeline(args.sent)
    if args.dual:
        steps = sorted(s.t_s for s in sent)
        interval = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) > 1 else None
        rows = [(vf.t_s + args.offset, reads) for vf, reads in _reads(args.video, None, True)]
        result = dual_view_latency(rows, sender=args.sender, frame_interval_s=interval)
    else:
        caps = [
            Capture.from_read(vf.t_s + args.offset, reads[0])
            for vf, reads in _reads(args.video, None, False)
        ]
        result = frame_latency(sent, caps)
    for s in result.samples:
        _emit(
            {
                "frame": s.frame_no,
                "latency_ms": round(s.latency_s * 1000, 3),
                "uncertainty_ms": round(s.uncertainty_s * 1000, 3),
                "t_capture": round(s.t_capture_s, 6),
            }
        )
    summary = result.to_dict()
    summary.pop("samples")
    _emit({"summary": summary})
    return 0


def cmd_fidelity(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from harness.vision.fidelity import compare_files

    report = compare_files(args.reference, args.video, align=args.align, with_vmaf=not args.no_vmaf)
    for f in report.frames:
        row = asdict(f)
        for k in ("ssim", "psnr_db"):
            if row[k] is not None:
                row[k] = round(row[k], 5)
        _emit(row)
    summary = report.summary()
    summary["dropped"] = report.dropped
    summary["freezes"] = [asdict(f) for f in report.freezes]
    _emit({"summary": summary})
    return 0
