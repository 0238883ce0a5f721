"""SSIM and PSNR of two frames.

SSIM follows Wang et al. 2004 exactly as scikit-image's structural_similarity does with
gaussian_weights=True, sigma=1.5, use_sample_covariance=False: an 11-tap Gaussian window,
K1 = 0.01, K2 = 0.03, population covariances, and the mean over the image without a 5-pixel
border. PSNR is 10 log10(R^2 / MSE) over every sample, as cv2.PSNR (capped at 48 dB in the
per-frame series, as WebRTC does, so identical frames do not dominate a mean).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.vision.image import check_image, check_same_shape, to_gray

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # window radius = int(3.5 * 1.5 + 0.5) = 5 -> 11 taps
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PSNR_CAP_DB = 48.0  # WebRTC's value for identical frames


_SSIM_TILE_ROWS = 64  # rows per strip: the working set stays in cache (even: a step of 2 stays
# on the same rows from strip to strip)


def ssim_sum(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float,
    sigma: float,
    mask: np.ndarray | None = None,
    want_map: bool = False,
    step: int = 1,
) -> tuple[float, int, np.ndarray | None]:
    """Sum and count of the SSIM index over the interior of two single-channel images.

    The interior excludes the window radius at every edge (as scikit-image's crop); `mask`
    narrows it further. Works in strips of rows for speed; float32 with values shifted to zero
    mean, which keeps the variance terms accurate. `step` > 1: only every step-th window of
    every step-th row (each the exact SSIM index of its window; the blurs are whole, the
    index's arithmetic on 1/step^2 of the windows); no map then.
    """
    if step > 1 and want_map:
        raise ValueError("ssim_sum: a map needs every window (step=1)")
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    ksize = (2 * radius + 1, 2 * radius + 1)
    h, w = a.shape
    off = np.float32(data_range / 2)
    c1 = np.float32((SSIM_K1 * data_range) ** 2)
    c2 = np.float32((SSIM_K2 * data_range) ** 2)
    smap = np.zeros((h, w), np.float32) if want_map else None
    total, count = 0.0, 0
    cols = slice(radius, w - radius)
    for r0 in range(radius, h - radius, _SSIM_TILE_ROWS):
        r1 = min(h - radius, r0 + _SSIM_TILE_ROWS)
        lo, hi = r0 - radius, r1 + radius
        x = a[lo:hi].astype(np.float32)
        x -= off
        y = b[lo:hi].astype(np.float32)
        y -= off

        def blur(img: np.ndarray, _r0: int = r0, _lo: int = lo, _r1: int = r1) -> np.ndarray:
            out = cv2.GaussianBlur(img, ksize, sigma, borderType=cv2.BORDER_REFLECT)
            return out[_r0 - _lo : _r1 - _lo : step, radius : w - radius : step]

        mx, my = blur(x), blur(y)
        s2 = blur(x * x + y * y)  # only the sum of the variances is needed
        sxy = blur(x * y)
        mxmy = mx * my
        d2 = mx - my
        d2 *= d2
        lum = mx + my  # 2 ux uy + C1 with ux = mx + off
        lum *= off
        lum += mxmy
        lum *= 2
        lum += np.float32(2 * off * off) + c1
        den_l = lum + d2  # ux^2 + uy^2 + C1
        cs = sxy - mxmy  # 2 cov + C2
        cs *= 2
        cs += c2
        den_cs = s2 - d2 - 2 * mxmy + c2  # var x + var y + C2
        lum *= cs
        den_l *= den_cs
        lum /= den_l
        if mask is not None:
            sel = mask[r0:r1:step, radius : w - radius : step]
            total += float(lum[sel].sum(dtype=np.float64))
            count += int(np.count_nonzero(sel))
        else:
            total += float(lum.sum(dtype=np.float64))
            count += lum.size
        if smap is not None:
            smap[r0:r1, cols] = lum
    return total, count, smap


def _ssim_map(x: np.ndarray, y: np.ndarray, data_range: float, sigma: float) -> np.ndarray:
    """SSIM index map of two single-channel images (zero on the window-radius border)."""
    return ssim_sum(x, y, data_range, sigma, want_map=True)[2]


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    data_range: float = 255.0,
    sigma: float = SSIM_SIGMA,
    channels: str = "luma",
    full: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Mean SSIM of two same-size 8-bit images (Wang et al. 2004 Gaussian window).

    Equal to skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255) for gray images, and with channel_axis=-1
    for colour images when channels="each".

    Args:
        a, b: uint8 images of the same shape.
        data_range: dynamic range of the values.
        sigma: Gaussian window sigma (11 taps at 1.5).
        channels: "luma" (colour converted to BT.601 luma) or "each" (mean over channels).
        full: also return the SSIM map (luma / first channel; zero on the border).

    Raises:
        MeasurementError: bad images, different shapes, or smaller than the 11 x 11 window.
    """
    check_image(a, "SSIM first image")
    check_image(b, "SSIM second image")
    check_same_shape(a, b, "SSIM first image", "SSIM second image")
    radius = int(SSIM_TRUNCATE * sigma + 0.5)
    if min(a.shape[:2]) < 2 * radius + 1:
        raise MeasurementError(
            f"SSIM: images of shape {a.shape} are smaller than the {2 * radius + 1}-px window"
        )
    if channels == "each" and a.ndim == 3:
        pairs = [(a[:, :, c], b[:, :, c]) for c in range(a.shape[2])]
    elif channels in ("luma", "each"):
        pairs = [(to_gray(a), to_gray(b))]
    else:
        raise MeasurementError(f"SSIM: channels must be 'luma' or 'each', got {channels!r}")
    values, first_map = [], None
    for i, (x, y) in enumerate(pairs):
        total, count, smap = ssim_sum(x, y, data_range, sigma, want_map=full and i == 0)
        values.append(total / count)
        first_map = first_map if smap is None else smap
    value = float(np.mean(values))
    return (value, first_map) if full else value


def psnr(
    a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0, cap_db: float | None = None
) -> float:
    """PSNR in dB over every sample of two same-shape 8-bit images (as cv2.PSNR).

    Args:
        cap_db: value for identical images and upper limit (WebRTC: 48); None gives inf.

    Raises:
        MeasurementError: bad images or different shapes.
    """
    check_image(a, "PSNR first image")
    check_image(b, "PSNR second image")
    check_same_shape(a, b, "PSNR first image", "PSNR second image")
    mse = cv2.norm(a, b, cv2.NORM_L2SQR) / a.size
    return psnr_of_mse(mse, data_range, cap_db)


def psnr_of_mse(mse: float, data_range: float, cap_db: float | None) -> float:
    if mse <= 0:
        return float("inf") if cap_db is None else float(cap_db)
    value = 10.0 * np.log10(data_range * data_range / mse)
    return float(value if cap_db is None else min(value, cap_db))


class SsimReference:
    """One reference frame's half of SSIM, made once and reused for every received frame scored
    against a reference equal to it on the pixels the scored windows cover.

    A static screen shared with its timecode gives references that differ only in the code's
    block, which the score mask leaves out: x = ref - R/2, blur(x) and blur(x^2) are the same at
    every window scored, so each received frame costs three blurs (y, y^2, x y) instead of four,
    and the arithmetic runs on the sampled windows only. Valid while the windows (`windows`, the
    same for every frame of one size under one geometry) and the reference's pixels under them
    are the same: `covers(ref)` tells (exactly, on the uint8 pixels).

    The blurs are taken in two 1-D passes (along rows, then down the sampled columns only), so
    the sums equal ssim_sum's to float32 rounding, not bit for bit (both within 1e-5 of a float64
    SSIM on the fixtures: tests/vision/test_share_cost.py). Work arrays are kept between
    frames (a new 800 kB array per step costs page faults): one object serves one thread.
    """

    def __init__(
        self,
        ref: np.ndarray,
        windows: np.ndarray | None,
        data_range: float = 255.0,
        sigma: float = SSIM_SIGMA,
    ) -> None:
        """Args: ref: (H, W) uint8; windows: the window centres to score (bool, H x W; None:
        every interior window), as ssim_sum's `mask`."""
        self.radius = r = int(SSIM_TRUNCATE * sigma + 0.5)
        self.ref = np.array(ref, np.uint8, copy=True)  # its own copy: the caller may reuse theirs
        h, w = ref.shape
        self.windows = np.zeros((h, w), bool)
        self.windows[r : h - r, r : w - r] = True
        if windows is not None:
            self.windows &= windows
        side = 2 * r + 1
        # the pixels the scored windows read: where the reference must stay the same
        self.cover = cv2.dilate(
            self.windows.astype(np.uint8), np.ones((side, side), np.uint8), borderValue=0
        )
        self.off = np.float32(data_range / 2)  # x zero-mean: accurate variances in float32
        self.c1 = np.float32((SSIM_K1 * data_range) ** 2)
        self.c2 = np.float32((SSIM_K2 * data_range) ** 2)
        self.kernel = cv2.getGaussianKernel(side, sigma, cv2.CV_32F)
        self.row_kernel = self.kernel.reshape(1, -1)
        self._one = np.ones((1, 1), np.float32)
        self.x = ref.astype(np.float32)
        self.x -= self.off
        self._y = np.empty((h, w), np.float32)  # work arrays, reused frame after frame
        self._prod = np.empty((h, w), np.float32)
        self._rows = np.empty((h, w), np.float32)
        self._at: dict[int, dict[str, Any]] = {}

    def covers(self, ref: np.ndarray) -> bool:
        """Whether `ref` equals this reference on every pixel a scored window reads."""
        return (
            ref.shape == self.ref.shape and cv2.norm(ref, self.ref, cv2.NORM_INF, self.cover) == 0
        )

    def _blur(self, img: np.ndarray, at: dict[str, Any], out: np.ndarray) -> np.ndarray:
        """The Gaussian blur of a float32 image at the interior windows of every step-th row and
        column (ssim_sum's sample), into `out`."""
        r, step = self.radius, at["step"]
        h, w = img.shape
        cv2.filter2D(img, -1, self.row_kernel, dst=self._rows, borderType=cv2.BORDER_REFLECT)
        np.copyto(at["cols"], self._rows[:, r : w - r : step])
        # down the columns: sepFilter2D's symmetric-kernel path, as accurate as GaussianBlur
        # (filter2D's column pass: up to 5e-6 further from a float64 SSIM on the fixtures)
        cv2.sepFilter2D(
            at["cols"], -1, self._one, self.kernel, dst=at["vert"], borderType=cv2.BORDER_REFLECT
        )
        np.copyto(out, at["vert"][r : h - r : step])
        return out

    def rebase(self, ref: np.ndarray) -> None:
        """Make this the half of SSIM of another reference of the same shape (same windows)."""
        if ref.shape != self.ref.shape:
            raise ValueError(f"SsimReference: {ref.shape} reference for {self.ref.shape}")
        np.copyto(self.ref, ref)
        np.subtract(ref, self.off, out=self.x, dtype=np.float32)
        for at in self._at.values():
            self._fill(at)

    def _fill(self, at: dict[str, Any]) -> None:
        """The reference's blurs and per-window terms at one step."""
        mx = self._blur(self.x, at, at["mx"])
        np.multiply(self.x, self.x, out=self._prod)
        bxx = self._blur(self._prod, at, at["varx_c2"])
        np.add(mx, self.off, out=at["ux"])
        # per window: ux^2 + C1 and var x + C2 (x zero-mean: accurate in float32)
        np.multiply(at["ux"], at["ux"], out=at["uxx_c1"])
        at["uxx_c1"] += self.c1
        np.multiply(mx, mx, out=at["t"])
        bxx -= at["t"]
        bxx += self.c2

    def _reference_at(self, step: int) -> dict[str, Any]:
        at = self._at.get(step)
        if at is None:
            r = self.radius
            h, w = self.x.shape
            sel = self.windows[r : h - r : step, r : w - r : step]
            cols = np.empty((h, len(range(r, w - r, step))), np.float32)
            at = {"step": step, "cols": cols, "vert": np.empty_like(cols), "sel": sel}
            at["count"] = int(np.count_nonzero(sel))
            names = ("mx", "ux", "uxx_c1", "varx_c2", "my", "sxy", "byy", "t")
            at.update({k: np.empty(sel.shape, np.float32) for k in names})
            self._fill(at)
            self._at[step] = at
        return at

    def ssim_sum(self, b: np.ndarray, step: int = 1) -> tuple[float, int]:
        """Sum and count of the SSIM index of `b` (uint8, the reference's shape) against this
        reference over the scored windows of every step-th row and column (ssim_sum's sample)."""
        at = self._reference_at(step)
        if at["count"] == 0:
            return 0.0, 0
        y = np.subtract(b, self.off, out=self._y, dtype=np.float32)
        my = self._blur(y, at, at["my"])
        np.multiply(self.x, y, out=self._prod)
        sxy = self._blur(self._prod, at, at["sxy"])
        np.multiply(y, y, out=self._prod)
        byy = self._blur(self._prod, at, at["byy"])
        t, mx = at["t"], at["mx"]
        # SSIM = (2 ux uy + C1)(2 cov + C2) / ((ux^2 + uy^2 + C1)(var x + var y + C2))
        np.multiply(mx, my, out=t)
        np.subtract(sxy, t, out=sxy)  # cov
        sxy *= 2
        sxy += self.c2
        np.multiply(my, my, out=t)
        np.subtract(byy, t, out=byy)  # var y
        byy += at["varx_c2"]
        my += self.off  # uy
        np.multiply(at["ux"], my, out=t)
        t *= 2
        t += self.c1
        t *= sxy
        my *= my
        my += at["uxx_c1"]
        my *= byy
        t /= my
        return float(np.sum(t, dtype=np.float64, where=at["sel"])), at["count"]
