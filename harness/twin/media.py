"""screencap and screenrecord from the twin's framebuffer."""

from __future__ import annotations

import asyncio
import logging
import struct
import time

import cv2
import numpy as np

from harness.twin.shell import Proc

log = logging.getLogger(__name__)


SCREENRECORD_LIMIT_S = 180.0  # Android's cap
SCREENRECORD_FPS = 30.0
_DEFAULT_BITRATE = 4_000_000

log = logging.getLogger(__name__)


def png_bytes(rgba: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(
        ".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 1]
    )
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


async def screencap(p: Proc) -> int:
    args = p.argv[1:]
    as_png = "-p" in args
    paths = [a for a in args if not a.startswith("-")]
    rgba = p.twin.screen.frame()
    h, w = rgba.shape[:2]
    if paths:
        as_png = as_png or paths[0].endswith(".png")
    loop = asyncio.get_running_loop()
    if as_png:
        data = await loop.run_in_executor(None, png_bytes, rgba)
    else:
        # raw: width, height, format (1 = RGBA_8888) [+ colour space on API 26+], then pixels
        header = struct.pack("<III", w, h, 1)
        if p.twin.personality.api >= 26:
            header += struct.pack("<I", 0)
        data = header + rgba.tobytes()
    p.twin.truth.record("screencap", frame=p.twin.screen.frame_no, png=as_png, to_file=bool(paths))
    if paths:
        p.twin.fs.write(p.twin.fs.norm(paths[0], p.shell.cwd), data)
    else:
        await p.out.write(data)
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h)


async def screenrecord(p: Proc) -> int:  # noqa: C901 -- screenrecord's option grammar: one branch per flag
    """screenrecord [--size WxH] [--bit-rate R] [--time-limit S] [--output-format=h264] FILE|-"""
    pers = p.twin.personality
    args = p.argv[1:]
    size = None
    bitrate = _DEFAULT_BITRATE
    limit_s = SCREENRECORD_LIMIT_S
    fmt = "mp4"
    target = None
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--size" and i + 1 < len(args):
            size, i = _parse_size(args[i + 1]), i + 2
        elif a == "--bit-rate" and i + 1 < len(args):
            bitrate, i = int(float(args[i + 1])), i + 2
        elif a == "--time-limit" and i + 1 < len(args):
            limit_s, i = float(args[i + 1]), i + 2
            if not 0 < limit_s <= SCREENRECORD_LIMIT_S:
                await p.eprint(
                    f"Time limit {args[i - 1]} out of range [1,{int(SCREENRECORD_LIMIT_S)}]"
                )
                return 2
        elif a.startswith("--output-format="):
            fmt, i = a.split("=", 1)[1], i + 1
        elif a == "--output-format" and i + 1 < len(args):
            fmt, i = args[i + 1], i + 2
        elif a == "--verbose":
            i += 1
        elif a.startswith("-") and a != "-":
            await p.eprint(f"Unknown option {a}")
            return 2
        else:
            target, i = a, i + 1
    if fmt != "mp4" and not pers.has_screenrecord_stdout:
        await p.eprint(f"Unknown format '{fmt}'")
        return 2
    if target is None:
        await p.eprint("Must specify output file (see --help).")
        return 2
    if target == "-" and fmt == "mp4":
        await p.eprint("Cannot write mp4 to stdout")
        return 2
    d = p.twin.profile.display
    w, h = size or (d.width, d.height)
    w, h = w - w % 2, h - h % 2
    recorder = _Recorder(p, w, h, bitrate, fmt)
    try:
        await recorder.run(limit_s, to_stdout=target == "-")
    finally:
        if target != "-":
            p.twin.fs.write(p.twin.fs.norm(target, p.shell.cwd), recorder.file_bytes())
        recorder.close()
    return 0


class _Recorder:
    """Encodes the screen as screenrecord does: H.264 Annex-B to stdout (`--output-format=h264
    -`) or an MP4 file (moov with durations, frame pts in ms) muxed by PyAV."""

    def __init__(self, p: Proc, w: int, h: int, bitrate: int, fmt: str):
        import io
        from fractions import Fraction

        import av

        self.p = p
        self.w, self.h = w, h
        self.fmt = fmt
        self.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "60"}
        self.mp4 = io.BytesIO() if fmt == "mp4" else None
        if self.mp4 is not None:
            self.container = av.open(self.mp4, mode="w", format="mp4")
            stream = self.container.add_stream("libx264", rate=int(SCREENRECORD_FPS))
            stream.width, stream.height = w, h
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = bitrate
            stream.codec_context.options = dict(self.options)
            self.stream = stream
            self.codec = stream.codec_context
        else:
            self.container = None
            self.codec = av.CodecContext.create("libx264", "w")
            self.codec.width, self.codec.height = w, h
            self.codec.pix_fmt = "yuv420p"
            self.codec.bit_rate = bitrate
            self.codec.time_base = Fraction(1, 1000)
            self.codec.options = dict(self.options)
        self.chunks: list[bytes] = []
        self.frames = 0
        self._last_pts = -1
        self._fps_tb = Fraction(1, int(SCREENRECORD_FPS))

    def _encode(self, rgba: np.ndarray, pts_ms: int) -> bytes:
        import av

        rgb = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
        if rgb.shape[1] != self.w or rgb.shape[0] != self.h:
            rgb = cv2.resize(rgb, (self.w, self.h), interpolation=cv2.INTER_AREA)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = max(pts_ms, self._last_pts + 1)
        self._last_pts = frame.pts
        if self.container is not None:  # frames come at a steady rate: pts = frame index
            frame.pts = self.frames
            frame.time_base = self._fps_tb
            self.container.mux(self.stream.encode(frame))
            return b""
        return b"".join(bytes(pkt) for pkt in self.codec.encode(frame))

    async def run(self, limit_s: float, to_stdout: bool) -> None:
        loop = asyncio.get_running_loop()
        truth = self.p.twin.truth
        t0 = time.monotonic()
        truth.record("screenrecord_start", t=t0, size=f"{self.w}x{self.h}", fps=SCREENRECORD_FPS)
        period = 1.0 / SCREENRECORD_FPS
        try:
            while True:
                now = time.monotonic()
                if now - t0 >= limit_s:
                    break
                screen = self.p.twin.screen
                rgba = screen.frame()
                shown = screen.frame_no
                job = loop.run_in_executor(None, self._encode, rgba, int((now - t0) * 1000))
                try:
                    data = await asyncio.shield(job)
                except asyncio.CancelledError:  # SIGINT: let the frame in hand finish, then stop
                    await asyncio.wait([job])
                    raise
                truth.record("screenrecord_frame", t=now, index=self.frames, screen_version=shown)
                self.frames += 1
                if data:
                    if to_stdout:
                        await self.p.out.write(data)
                    else:
                        self.chunks.append(data)
                next_t = t0 + self.frames * period
                await asyncio.sleep(max(0.0, next_t - time.monotonic()))
        finally:
            truth.record("screenrecord_stop", frames=self.frames)

    def file_bytes(self) -> bytes:
        """The MP4 file (flushed and closed here), or the raw stream for other formats."""
        if self.container is None:
            return b"".join(self.chunks)
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except Exception as e:  # noqa: BLE001 -- an empty recording: still a file, as screenrecord leaves one
            log.warning("screenrecord: mp4 not finalised: %s", e)
        self.container = None
        return self.mp4.getvalue()

    def close(self) -> None:
        """Release the encoder. Never raises."""
        try:
            if self.container is not None:
                self.container.close()
            else:
                self.codec.close()
        except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
            log.debug("screenrecord: closing the encoder: %s", e)


__all__ = ["png_bytes", "screencap", "screenrecord"]
