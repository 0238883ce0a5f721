"""Images of the report: small thumbnails inside report.html, full-size files beside it.

Plots (line art, few colours) become 8-bit palette PNGs (PNG-8, about 6x smaller than the
OpenCV PNG); frames and screenshots become JPEG thumbnails at most THUMB_WIDTH_PX wide (a
sent|received pair: ~190 KB PNG -> ~15 KB). The full-size PNG is written to <run>/images/ and
linked from the test's row. With `--html FILE --self-contained-html` the full-size PNGs are
embedded instead (one file, larger).
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

THUMB_WIDTH_PX = 480
JPEG_QUALITY = 80
PALETTE_COLOURS = 64
IMAGES_DIR = "images"
PHOTO_KINDS = ("worst_frame", "detection_frame", "screenshot")


@dataclass
class ImagePolicy:
    """How this process stores report images: `files_dir` set -> thumbnails inside, full-size
    files there; None -> the full-size PNG inside the report (self-contained mode)."""

    files_dir: Path | None = None


_POLICY = ImagePolicy()
_COUNTER = itertools.count(1)


def configure(files_dir: Path | None) -> None:
    """Set this process's policy (the plugin calls it on the controller and every worker)."""
    _POLICY.files_dir = Path(files_dir) if files_dir else None


def policy() -> ImagePolicy:
    return _POLICY


def thumbnail(png: bytes, kind: str) -> tuple[bytes, str, str]:
    """(bytes, mime type, extension) of the report's copy of an image.

    Photos (frames, screenshots) -> JPEG at most THUMB_WIDTH_PX wide; plots -> PNG-8.
    """
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return png, "image/png", "png"
    if kind in PHOTO_KINDS:
        h, w = img.shape[:2]
        if w > THUMB_WIDTH_PX:
            img = cv2.resize(
                img, (THUMB_WIDTH_PX, max(1, round(h * THUMB_WIDTH_PX / w))), cv2.INTER_AREA
            )
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        return (buf.tobytes(), "image/jpeg", "jpg") if ok else (png, "image/png", "png")
    from PIL import Image

    rgb = Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    out = io.BytesIO()
    rgb.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE).save(out, "PNG")
    small = out.getvalue()
    return (small, "image/png", "png") if len(small) < len(png) else (png, "image/png", "png")


def save_full_size(png: bytes, name: str) -> str | None:
    """Write the full-size PNG beside the report; its path relative to report.html, or None
    (no files dir, or the write failed: logged)."""
    if _POLICY.files_dir is None:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:60] or "image"
    rel = f"{IMAGES_DIR}/{slug}-{os.getpid()}-{next(_COUNTER)}.png"
    try:
        _POLICY.files_dir.mkdir(parents=True, exist_ok=True)
        (_POLICY.files_dir / Path(rel).name).write_bytes(png)
    except OSError as e:
        log.warning("full-size image %s not written: %s", rel, e)
        return None
    return rel
