"""Synthesis: deterministic synthetic screens, codecs and camera views with known ground truth.

Used by the fixtures script, the tests, the benchmarks and `hil vision encode`: UI-like screen
content that scrolls, timecoded frames, H.264 / VP8 round trips through PyAV, and a lab-camera
model (perspective, blur, noise, exposure, vignetting, moire, JPEG) that returns where the
display landed. Everything is a pure function of its arguments and seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.vision.timecode import TimecodeLayout, stamp


def ui_page(width: int, height: int, seed: int = 0, *, dark: bool = False) -> np.ndarray:
    """A UI-like page (cards, text lines, photos, icons) as a BGR image."""
    rng = np.random.default_rng(seed)
    bg = (32, 32, 36) if dark else (246, 244, 240)
    ink = (225, 225, 225) if dark else (40, 40, 48)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = bg
    y = 8
    while y < height - 40:
        card_h = int(rng.integers(60, 180))
        x0, x1 = 8 + int(rng.integers(0, 12)), width - 8 - int(rng.integers(0, 12))
        colour = tuple(int(c) for c in rng.integers(160, 250, 3)) if not dark else (56, 58, 64)
        cv2.rectangle(img, (x0, y), (x1, min(height - 1, y + card_h)), colour, -1)
        kind = rng.integers(0, 3)
        if kind == 0:  # photo: smooth gradient with texture
            pw = int(min(card_h - 16, (x1 - x0) // 3, height - y - 9))
            if pw > 8:
                gy, gx = np.mgrid[0:pw, 0:pw]
                base = rng.integers(0, 255, 3)
                photo = base + 90 * np.sin(gx[..., None] / (7 + 5 * rng.random(3))) * np.cos(
                    gy[..., None] / (9 + 5 * rng.random(3))
                )
                img[y + 8 : y + 8 + pw, x0 + 8 : x0 + 8 + pw] = np.clip(photo, 0, 255)
        elif kind == 1:  # icon
            cv2.circle(
                img,
                (x0 + 30, y + card_h // 2),
                min(22, card_h // 3),
                tuple(int(c) for c in rng.integers(0, 200, 3)),
                -1,
            )
        ty = y + 14
        tx0 = x0 + (pw + 20 if kind == 0 and pw > 8 else 64)
        while ty < y + card_h - 10:  # text: rows of words
            tx = tx0
            line_end = x1 - int(rng.integers(10, 120))
            while tx < line_end:
                word = int(rng.integers(8, 50))
                cv2.rectangle(img, (tx, ty), (min(tx + word, line_end), ty + 7), ink, -1)
                tx += word + 6
            ty += 16
        y += card_h + 10
    return img


@dataclass(frozen=True)
class ScreenClip:
    """A scrolling UI screen with a timecode in every frame: frame i carries frame number
    frame0 + i and host time t0_ms + round(i * 1000 / fps).

    Attributes:
        width, height: frame size.
        fps: frame rate of the timeline.
        seed: content seed.
        layout: where the code goes (default TimecodeLayout.for_size).
        scroll_px: content scroll per frame.
        frame0, t0_ms: numbering origin.
    """

    width: int
    height: int
    fps: float = 30.0
    seed: int = 0
    layout: TimecodeLayout | None = None
    scroll_px: int = 3
    frame0: int = 0
    t0_ms: int = 0
    dark: bool = False

    def __post_init__(self) -> None:
        page = ui_page(self.width, self.height * 3, self.seed, dark=self.dark)
        object.__setattr__(self, "_page", page)
        lay = self.layout or TimecodeLayout.for_size(self.width, self.height)
        object.__setattr__(self, "_layout", lay)

    @property
    def code_layout(self) -> TimecodeLayout:
        return self._layout  # type: ignore[attr-defined]

    def truth(self, i: int) -> tuple[int, int]:
        """(frame_no, t_ms) stamped in frame i."""
        return self.frame0 + i, self.t0_ms + round(i * 1000 / self.fps)

    def content(self, i: int) -> np.ndarray:
        """Frame i without its code."""
        page: np.ndarray = self._page  # type: ignore[attr-defined]
        span = page.shape[0] - self.height
        off = (i * self.scroll_px) % (2 * span)
        off = off if off < span else 2 * span - off  # scroll down, then back up
        frame = page[off : off + self.height].copy()
        # a moving highlight, like an animation
        x = int((i * 7) % max(1, self.width - 60))
        cv2.rectangle(frame, (x, self.height - 30), (x + 60, self.height - 8), (40, 120, 230), -1)
        return frame

    def frame(self, i: int) -> np.ndarray:
        """Frame i with its code stamped."""
        frame = self.content(i)
        frame_no, t_ms = self.truth(i)
        stamp(frame, frame_no, t_ms, self.code_layout)
        return frame

    def frames(self, n: int, start: int = 0) -> Iterator[np.ndarray]:
        for i in range(start, start + n):
            yield self.frame(i)


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-resize (downscale) or linear-resize (upscale) to width x height."""
    if (frame.shape[1], frame.shape[0]) == (width, height):
        return frame
    shrink = width < frame.shape[1]
    return cv2.resize(
        frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def transcode(
    frames: Iterable[np.ndarray],
    *,
    codec: str = "libx264",
    bit_rate: int = 500_000,
    fps: int = 30,
    options: dict[str, str] | None = None,
    gray: bool = False,
) -> list[np.ndarray]:
    """Encode BGR frames with a real codec (PyAV) and decode them back, in display order.

    Args:
        frames: same-size BGR uint8 frames (even width and height).
        codec: "libx264" (H.264) or "libvpx" (VP8).
        bit_rate: target bits per second.
        fps: frame rate the rate control assumes.
        options: encoder options (default: realtime presets, as a live share would use).
        gray: return the decoded luma planes instead of BGR (cheaper).
    """
    import av  # heavy; only when used

    frames = list(frames)
    if not frames:
        return []
    h, w = frames[0].shape[:2]
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.bit_rate = int(bit_rate)
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps, 1)
    default = {
        "libx264": {"preset": "ultrafast", "tune": "zerolatency"},
        "libvpx": {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0"},
    }.get(codec, {})
    enc.options = dict(default if options is None else options)
    enc.gop_size = 4 * fps
    dec = av.CodecContext.create({"libx264": "h264", "libvpx": "vp8"}.get(codec, codec), "r")
    out: list[np.ndarray] = []

    def keep(decoded) -> None:
        for frame in decoded:
            planes = frame.to_ndarray()  # yuv420p: (h * 3 / 2, w)
            out.append(planes[:h].copy() if gray else cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420))

    for i, img in enumerate(frames):
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        vf = av.VideoFrame.from_ndarray(cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        vf.pts = i
        for packet in enc.encode(vf):
            keep(dec.decode(packet))
    for packet in enc.encode(None):
        keep(dec.decode(packet))
    keep(dec.decode(None))
    if len(out) != len(frames):
        raise MeasurementError(f"transcode: {codec} returned {len(out)} of {len(frames)} frames")
    return out


def blend(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """alpha * a + (1 - alpha) * b: a display caught mid-fade or a long camera exposure."""
    return cv2.addWeighted(a, float(alpha), b, 1.0 - float(alpha), 0.0)


def tear(old: np.ndarray, new: np.ndarray, at: float, *, vertical: bool = False) -> np.ndarray:
    """A frame caught mid-refresh: `new` above (left of) the fraction `at`, `old` below."""
    out = old.copy()
    if vertical:
        cut = int(round(at * old.shape[1]))
        out[:, :cut] = new[:, :cut]
    else:
        cut = int(round(at * old.shape[0]))
        out[:cut] = new[:cut]
    return out


# ---------------------------------------------------------------------------------------------
# Lab camera model


@dataclass(frozen=True)
class Camera:
    """One camera shot of a display.

    Attributes:
        size: output (width, height).
        quad: where the display's corners (TL, TR, BR, BL of the source frame) land, pixels.
        blur_sigma_px: optical defocus (Gaussian).
        motion_px: length of horizontal motion blur (0 = none).
        noise_sigma: sensor noise, 8-bit levels.
        gain, offset, gamma: exposure (out = 255 * (gain * in / 255) ** gamma + offset).
        vignette: brightness lost at the corners (0..1).
        moire_amp, moire_period_px, moire_angle_deg: beat pattern of the display grid.
        jpeg_quality: MJPEG compression of the camera stream (None = none).
    """

    size: tuple[int, int]
    quad: tuple[tuple[float, float], ...]
    blur_sigma_px: float = 0.0
    motion_px: int = 0
    noise_sigma: float = 0.0
    gain: float = 1.0
    offset: float = 0.0
    gamma: float = 1.0
    vignette: float = 0.0
    moire_amp: float = 0.0
    moire_period_px: float = 20.0
    moire_angle_deg: float = 20.0
    jpeg_quality: int | None = None


def random_camera(
    rng: np.random.Generator,
    src_size: tuple[int, int],
    out_size: tuple[int, int] = (640, 360),
    *,
    fill: tuple[float, float] = (0.55, 0.9),
    tilt: float = 0.12,
    roll_deg: float = 12.0,
    severity: float = 1.0,
) -> Camera:
    """A random but plausible camera shot of a display of src_size (width, height).

    Args:
        rng: the random source (seeded by the caller).
        src_size: the display frame's size.
        out_size: camera frame size.
        fill: range of the display's width as a fraction of the camera frame's.
        tilt: perspective: corner displacement as a fraction of the display's size.
        roll_deg: in-plane rotation range.
        severity: scales blur, noise, exposure error, vignetting and moire (0 = clean).
    """
    ow, oh = out_size
    sw, sh = src_size
    scale = rng.uniform(*fill) * min(ow / sw, oh / sh)
    w, h = sw * scale, sh * scale
    ang = np.deg2rad(rng.uniform(-roll_deg, roll_deg))
    base = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    base += rng.uniform(-tilt, tilt, (4, 2)) * [w, h]
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = base @ rot.T
    span = pts.max(axis=0) - pts.min(axis=0)
    fit = min(1.0, 0.97 * ow / span[0], 0.97 * oh / span[1])  # keep the display in view
    pts *= fit
    span *= fit
    room = np.maximum(np.array([ow, oh]) - span, 0)
    centre = np.array([ow, oh]) / 2 + (rng.random(2) - 0.5) * room * 0.9
    pts += centre - (pts.max(axis=0) + pts.min(axis=0)) / 2
    s = float(severity)
    return Camera(
        size=(ow, oh),
        quad=tuple((float(x), float(y)) for x, y in pts),
        blur_sigma_px=float(rng.uniform(0.3, 1.0 + 1.2 * s)),
        motion_px=int(rng.integers(0, 1 + int(4 * s))) if rng.random() < 0.3 else 0,
        noise_sigma=float(rng.uniform(1.0, 2.0 + 8.0 * s)),
        gain=float(rng.uniform(1 - 0.45 * s, 1 + 0.25 * s)),
        offset=float(rng.uniform(0, 25 * s)),
        gamma=float(rng.uniform(1 - 0.3 * s, 1 + 0.5 * s)),
        vignette=float(rng.uniform(0, 0.45 * s)),
        moire_amp=float(rng.uniform(0, 0.18 * s)),
        moire_period_px=float(rng.uniform(6, 40)),
        moire_angle_deg=float(rng.uniform(0, 180)),
        jpeg_quality=int(rng.integers(55, 92)) if rng.random() < 0.7 else None,
    )


@lru_cache(maxsize=8)
def _vignette(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    return np.clip(r2 / 2, 0, 1).astype(np.float32)


def camera_view(display: np.ndarray, cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """What the camera sees: the display frame warped into the shot and degraded.

    A gray display gives a gray (monochrome camera) shot, which is three times cheaper.
    """
    ow, oh = cam.size
    sh, sw = display.shape[:2]
    gray = display.ndim == 2
    src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], dtype=np.float32) - 0.5
    hom = cv2.getPerspectiveTransform(src, np.asarray(cam.quad, dtype=np.float32))
    canvas = np.empty((oh, ow) if gray else (oh, ow, 3), np.uint8)
    canvas[:] = 66 if gray else (70, 66, 60)  # the room
    bezel = cv2.perspectiveTransform(
        src.reshape(-1, 1, 2) * 1.04 - np.float32([sw, sh]) * 0.02, hom
    )
    cv2.fillConvexPoly(
        canvas, np.round(bezel.reshape(-1, 2)).astype(np.int32), 12 if gray else (12, 12, 12)
    )
    cv2.warpPerspective(
        display,
        hom,
        (ow, oh),
        dst=canvas,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_TRANSPARENT,
    )
    img = canvas
    if cam.blur_sigma_px > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), cam.blur_sigma_px)
    if cam.motion_px > 1:
        kernel = np.full((1, cam.motion_px), 1.0 / cam.motion_px, np.float32)
        img = cv2.filter2D(img, -1, kernel)
    if cam.vignette > 0 or cam.moire_amp > 0:
        light = 1.0 - np.float32(cam.vignette) * _vignette(ow, oh)
        if cam.moire_amp > 0:  # cos(kx x + ky y + p) as a sum of two outer products
            a = np.deg2rad(cam.moire_angle_deg)
            k = 2 * np.pi / cam.moire_period_px
            px = (np.arange(ow) * (np.cos(a) * k)).astype(np.float32)
            py = (np.arange(oh) * (np.sin(a) * k) + rng.uniform(0, 6.3)).astype(np.float32)
            wave = np.outer(np.cos(py), np.cos(px)) - np.outer(np.sin(py), np.sin(px))
            amp = cam.moire_amp / 2
            light *= (1.0 - amp - amp * wave).astype(np.float32)
        img = cv2.multiply(
            img, light if gray else cv2.merge([light, light, light]), dtype=cv2.CV_8U
        )
    levels = np.arange(256, dtype=np.float64) * (cam.gain / 255.0)
    lut = 255.0 * np.power(np.clip(levels, 0, 1), cam.gamma) + cam.offset
    img = cv2.LUT(img, np.clip(lut + 0.5, 0, 255).astype(np.uint8))
    if cam.noise_sigma > 0:
        noise = np.empty((oh, ow), np.int16)
        cv2.setRNGSeed(int(rng.integers(1 << 31)))  # deterministic with the caller's seed
        cv2.randn(noise, 0, cam.noise_sigma)
        img = cv2.add(img, noise if gray else cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)
    if cam.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg_quality])
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    return img


def side_by_side_camera(
    left: np.ndarray,
    right: np.ndarray,
    rng: np.random.Generator,
    out_size: tuple[int, int] = (1280, 720),
    severity: float = 0.6,
) -> np.ndarray:
    """One camera frame filming two displays side by side (dual-view latency)."""
    ow, oh = out_size
    cams = []
    for half in (0, 1):
        cam = random_camera(
            rng,
            (left if half == 0 else right).shape[1::-1],
            (ow // 2, oh),
            fill=(0.7, 0.9),
            tilt=0.06,
            roll_deg=5,
            severity=severity,
        )
        quad = tuple((x + half * ow // 2, y) for x, y in cam.quad)
        cams.append(
            Camera(
                **{
                    **cam.__dict__,
                    "size": (ow, oh),
                    "quad": quad,
                    "jpeg_quality": None,
                    "noise_sigma": 0.0,
                }
            )
        )
    first = camera_view(left, cams[0], rng)
    # draw the second display onto the first shot (same room), then degrade once more lightly
    second = camera_view(right, cams[1], rng)
    mask = np.zeros((oh, ow), np.uint8)
    mask[:, ow // 2 :] = 255
    out = np.where(mask[..., None] > 0, second, first)
    noise = rng.normal(0, 3.0 * severity + 1, (oh, ow, 1))
    return np.clip(out + noise, 0, 255).astype(np.uint8)


def pen_path(
    rng: np.random.Generator, w: int, h: int, steps: tuple[int, int] = (60, 120)
) -> np.ndarray:
    """A smooth pen path of 3 px steps (its heading changes slowly: no fold-backs), starting in
    the middle of a w x h screen and stopping 20 px short of its edges; (N, 2) float x, y."""
    p = np.array([rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)])
    a, da = rng.uniform(0, 2 * np.pi), 0.0
    pts = [p.copy()]
    for _ in range(int(rng.integers(*steps))):
        da = 0.8 * da + rng.normal(0, 0.03)
        a += da
        p = p + 3.0 * np.array([np.cos(a), np.sin(a)])
        if not (20 < p[0] < w - 20 and 20 < p[1] < h - 20):
            break
        pts.append(p.copy())
    return np.array(pts)


def scale_frames(frames: Sequence[np.ndarray], factor: float) -> list[np.ndarray]:
    """Frames scaled by factor, rounded to even sizes (what encoders need)."""
    h, w = frames[0].shape[:2]
    nw, nh = max(2, int(round(w * factor / 2)) * 2), max(2, int(round(h * factor / 2)) * 2)
    return [resize(f, nw, nh) for f in frames]
