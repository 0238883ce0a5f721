"""SSIM and PSNR of two frames.

SSIM follows Wang et al. 2004 exactly as scikit-image's structural_similarity does with
gaussian_weights=True, sigma=1.5, use_sample_covariance=False: an 11-tap Gaussian window,
K1 = 0.01, K2 = 0.03, population covariances, and the mean over the image without a 5-pixel
border. PSNR is 10 log10(R^2 / MSE) over every sample, as cv2.PSNR (capped at 48 dB in the
per-frame series, as WebRTC does, so identical frames do not dominate a mean).
"""

from __future__ import annotations

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
