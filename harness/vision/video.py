"""Video: reading and writing recordings (PyAV), with clear errors for bad files.

An empty, missing, truncated or non-video file ends in a MeasurementError that names the file
and what is wrong with it, never in a traceback from inside FFmpeg or OpenCV.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.vision.image import check_image

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_TRUNCATION_SLACK_FRAMES = 1  # a container may declare one frame more than it decodes


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame.

    Attributes:
        index: position in decode (display) order, from 0.
        t_s: presentation time in seconds from the container (index / fps if it has none).
        image: BGR uint8 (or gray when read with gray=True).
    """

    index: int
    t_s: float
    image: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frames: int  # declared by the container, 0 if unknown
    codec: str


def _container_kind(p: Path) -> str | None:
    """ "MP4" or "Matroska/WebM" when the file starts with that container's signature."""
    with open(p, "rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return "MP4"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "Matroska/WebM"
    return None


def _open(path: str | os.PathLike):
    import av

    p = Path(path)
    if not p.exists():
        raise MeasurementError(f"{p}: no such video file")
    if p.is_dir():
        raise MeasurementError(f"{p}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise MeasurementError(f"{p}: file is empty (0 bytes), no video in it")
    try:
        container = av.open(str(p))
    except Exception as e:  # FFmpeg raises many kinds; all mean "not a readable video"
        kind = _container_kind(p)
        if kind:
            raise MeasurementError(
                f"{p}: truncated or damaged {kind} file: it starts like one but cannot be read "
                f"(missing index or data; {type(e).__name__}: {e})"
            ) from e
        raise MeasurementError(f"{p}: not a readable video file ({type(e).__name__}: {e})") from e
    try:
        streams = container.streams.video
        stream = streams[0] if len(streams) else None
    except Exception:  # noqa: BLE001 -- PyAV fails oddly on some truncated headers
        stream = None
    if stream is None:
        container.close()
        raise MeasurementError(f"{p}: has no video stream (truncated header, or not a video)")
    return container, stream


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, frame rate, declared frame count and codec of a video file.

    Raises:
        MeasurementError: missing, empty, unreadable file or no video stream.
    """
    container, stream = _open(path)
    try:
        rate = stream.average_rate or stream.base_rate or 0
        return VideoInfo(
            str(path),
            int(stream.codec_context.width),
            int(stream.codec_context.height),
            float(rate),
            int(stream.frames or 0),
            str(stream.codec_context.name),
        )
    finally:
        container.close()


def read_frames(
    path: str | os.PathLike, *, gray: bool = False, max_frames: int | None = None
) -> Iterator[VideoFrame]:
    """Decode a video file (or a single image file) frame by frame.

    Args:
        path: a video (anything FFmpeg reads) or an image (.png, .jpg...: one frame).
        gray: yield the luma plane instead of BGR.
        max_frames: stop after this many frames.

    Raises:
        MeasurementError: missing, empty, unreadable, truncated or corrupt file, or no frames;
            the message names the file and the last good frame.
    """
    p = Path(path)
    if p.suffix.lower() in _IMAGE_SUFFIXES:
        yield VideoFrame(0, 0.0, read_image(p, gray=gray))
        return
    container, stream = _open(p)
    declared = int(stream.frames or 0)
    rate = float(stream.average_rate or stream.base_rate or 30)
    n = 0
    try:
        try:
            for frame in container.decode(stream):
                if gray:
                    img = frame.to_ndarray(format="gray")
                else:
                    img = frame.to_ndarray(format="bgr24")
                t = float(frame.time) if frame.time is not None else n / rate
                yield VideoFrame(n, t, img)
                n += 1
                if max_frames is not None and n >= max_frames:
                    return
        except MeasurementError:
            raise
        except Exception as e:  # any FFmpeg error here means a damaged file
            raise MeasurementError(
                f"{p}: truncated or corrupt video: decoding failed after {n} frame(s) "
                f"({type(e).__name__}: {e})"
            ) from e
        if n == 0:
            raise MeasurementError(f"{p}: contains no decodable video frames")
        if declared and n + _TRUNCATION_SLACK_FRAMES < declared:
            raise MeasurementError(
                f"{p}: truncated video: the container declares {declared} frames, "
                f"only {n} could be decoded"
            )
    finally:
        container.close()


def read_video(
    path: str | os.PathLike, *, gray: bool = False, max_frames: int | None = None
) -> list[VideoFrame]:
    """All frames of a video file in a list (see read_frames)."""
    return list(read_frames(path, gray=gray, max_frames=max_frames))


def read_image(path: str | os.PathLike, *, gray: bool = False) -> np.ndarray:
    """One image file as BGR (or gray) uint8.

    Raises:
        MeasurementError: missing, empty or undecodable image file.
    """
    p = Path(path)
    if not p.exists():
        raise MeasurementError(f"{p}: no such image file")
    if p.stat().st_size == 0:
        raise MeasurementError(f"{p}: file is empty (0 bytes), no image in it")
    img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if img is None:
        raise MeasurementError(f"{p}: not a readable image file")
    return img


def write_video(  # noqa: C901 -- one writer per output kind (image files, PyAV codecs), each with its errors
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    *,
    fps: float = 30.0,
    codec: str = "libx264",
    crf: int | None = 18,
    bit_rate: int | None = None,
    preset: str = "veryfast",
) -> int:
    """Encode BGR (or gray) frames to a video file.

    Args:
        path: output (.mp4 / .mkv for H.264, .webm for VP8).
        frames: same-size uint8 frames; odd sizes are cropped to even.
        fps: frame rate (frame i is presented at i / fps).
        codec: "libx264" or "libvpx".
        crf: constant quality (H.264), used when bit_rate is None.
        bit_rate: target bits per second (overrides crf).
        preset: x264 speed preset.

    Returns:
        The number of frames written.

    Raises:
        MeasurementError: no frames, a frame of the wrong size or dtype, or an encoder error.
    """
    import av

    p = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    container = None
    n = 0
    try:
        container = av.open(str(p), "w")
        stream = None
        size = None
        for img in frames:
            check_image(img, f"frame {n} to write to {p}")
            if img.ndim == 3 and img.shape[2] == 4:
                img = img[:, :, :3]
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[:, :, 0]
            if stream is None:
                h, w = img.shape[:2]
                size = (w - w % 2, h - h % 2)
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = size
                stream.pix_fmt = "yuv420p"
                if bit_rate is not None:
                    stream.bit_rate = int(bit_rate)
                opts = {}
                if codec == "libx264":
                    opts["preset"] = preset
                    if bit_rate is None and crf is not None:
                        opts["crf"] = str(crf)
                elif codec == "libvpx":
                    opts = {"deadline": "good", "cpu-used": "4"}
                    if bit_rate is None:
                        stream.bit_rate = 4_000_000
                stream.options = opts
            if (img.shape[1] - img.shape[1] % 2, img.shape[0] - img.shape[0] % 2) != size:
                raise MeasurementError(
                    f"frame {n} to write to {p}: size {img.shape[1]}x{img.shape[0]} differs from "
                    f"the first frame's {size[0]}x{size[1]}"
                )
            img = np.ascontiguousarray(img[: size[1], : size[0]])
            if img.ndim == 2:
                img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
            yuv = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            vf.pts = n
            vf.time_base = 1 / rate
            for packet in stream.encode(vf):
                container.mux(packet)
            n += 1
        if stream is None:
            raise MeasurementError(f"{p}: no frames to write")
        for packet in stream.encode(None):
            container.mux(packet)
    except MeasurementError:
        raise
    except Exception as e:  # encoder errors come in many kinds
        raise MeasurementError(f"{p}: could not encode video ({type(e).__name__}: {e})") from e
    finally:
        if container is not None:
            try:
                container.close()
            except Exception as e:  # noqa: BLE001 -- closing a failed container; the error is raised above
                log.debug("%s: closing the container: %s", p, e)
    return n
